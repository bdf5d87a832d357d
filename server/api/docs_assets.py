"""The API docs viewer (Swagger UI at `/schema`), served with its own assets.

Litestar's viewers load their scripts, styles and fonts from CDNs, so an
operator without internet access got a blank page. Swagger UI's files come
from the `swagger-ui-py` package instead (only its `static/` folder is
used, never its framework glue) and are served at `/schema/assets/`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router

ASSETS = "/schema/assets"


def assets_folder() -> Path:
    """swagger-ui-py's `static/` folder, found without importing the package (it imports its framework glue)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the API docs need the swagger-ui-py package: pip install 'flywheel'")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def docs_assets_router() -> Router:
    """`/schema/assets/*`: Swagger UI's files, public (like the document), cached for a day."""
    return create_static_files_router(
        path=ASSETS, directories=[assets_folder()], opt={"public": True}, name="docs:assets",
        cache_control=CacheControlHeader(max_age=86400), include_in_schema=False)


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI at `/schema` and `/schema/swagger`, every asset local; the document as JSON and YAML."""
    favicon = f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>"
    swagger = SwaggerRenderPlugin(
        js_url=f"{ASSETS}/swagger-ui-bundle.js", css_url=f"{ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
        path=["/", "/swagger"], favicon=favicon)
    return [swagger, JsonRenderPlugin(), YamlRenderPlugin()]
