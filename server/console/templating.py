"""The console's Jinja environment: Flywheel's templates, each plugin's, and the globals they share.

Templates are named by owner: ``console/base.html`` is Flywheel's,
``drives/fleet.html`` comes from the template packages the `drives` plugin
named in its pages. Autoescaping is on for everything.
"""

from __future__ import annotations

from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    PackageLoader,
    PrefixLoader,
    StrictUndefined,
    select_autoescape,
)
from litestar.connection import ASGIConnection
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template import TemplateConfig

from flywheel.server import __version__
from flywheel.server.console import charts, formatting
from flywheel.server.console.pages import NavItem
from flywheel.server.console.sessions import COOKIE_PATH, ConsoleSession

CORE_TEMPLATES = "flywheel.server.console.templates"
OVERVIEW = NavItem(href=f"{COOKIE_PATH}/", title="Overview", order=0, plugin="core")
# The operator's pages: the tenant's work first, plugins' pages (order 10 and up) next,
# the tenant's settings last.
CORE_NAV = [OVERVIEW,
            NavItem(href=f"{COOKIE_PATH}/jobs", title="Jobs", order=1, plugin="core"),
            NavItem(href=f"{COOKIE_PATH}/models", title="Models", order=2, plugin="core"),
            NavItem(href=f"{COOKIE_PATH}/events", title="Events", order=3, plugin="core"),
            NavItem(href=f"{COOKIE_PATH}/alerts", title="Alerts", order=4, plugin="core"),
            NavItem(href=f"{COOKIE_PATH}/keys", title="API keys", order=10_000, plugin="core"),
            NavItem(href=f"{COOKIE_PATH}/plugins", title="Plugins", order=10_001, plugin="core")]


def environment(nav: list[NavItem], template_packages: dict[str, list[str]]) -> Environment:
    loaders: dict[str, Any] = {"console": PackageLoader(CORE_TEMPLATES, ".")}
    for plugin, packages in template_packages.items():
        loaders[plugin] = ChoiceLoader([PackageLoader(package, ".") for package in packages])
    env = Environment(loader=PrefixLoader(loaders), autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    items = sorted([*CORE_NAV, *nav], key=lambda i: (i.order, i.title.lower(), i.href))
    env.globals.update(
        console_nav=items,
        console_session=console_session,
        current_nav=lambda request: current_href(request, items),
        static=static_url,
        flywheel_version=__version__,
        bar_chart=charts.bar_chart,
        line_chart=charts.line_chart,
        histogram=charts.histogram,
        **formatting.GLOBALS,
    )
    env.filters.update(formatting.FILTERS)
    return env


def template_config(env: Environment) -> TemplateConfig:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(env))


def console_session(request: ASGIConnection) -> ConsoleSession | None:
    """The signed-in session of a console request, or None (sign-in and error pages)."""
    auth = request.scope.get("auth")
    return auth if isinstance(auth, ConsoleSession) else None


def current_href(request: ASGIConnection, items: list[NavItem]) -> str | None:
    """The navigation entry a page belongs to: the longest one its path starts with."""
    path = request.scope.get("path", "").rstrip("/") or "/"
    best = None
    for item in items:
        target = item.href.rstrip("/")
        if path == target or (target != COOKIE_PATH and path.startswith(f"{target}/")):
            if best is None or len(target) > len(best.rstrip("/")):
                best = item.href
    return best


def static_url(name: str) -> str:
    # The version in the query string makes a new release's CSS load at once.
    return f"{COOKIE_PATH}/static/{name}?v={__version__}"
