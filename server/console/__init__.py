"""The web console: server-rendered pages under /console, signed in with an API key.

`console_router(state)` mounts Flywheel's own pages (sign-in, sign-out, the
overview, the operator's pages for jobs, models, events, API keys and
plugins, static files) and every plugin page from `register_pages`;
`console_templates(state)` is the Jinja setup they share. See
docs/plugins.md (register_pages) for what a plugin author writes.
"""

from __future__ import annotations

from importlib.resources import files

from litestar import Router
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from flywheel.server.console.alerts_pages import AlertPages
from flywheel.server.console.errors import is_console_path, with_html_errors
from flywheel.server.console.events_pages import EventPages
from flywheel.server.console.jobs_pages import JobPages
from flywheel.server.console.keys_pages import KeyPages
from flywheel.server.console.middleware import console_auth_middleware
from flywheel.server.console.models_pages import ModelPages
from flywheel.server.console.monitoring_pages import MonitoringPages
from flywheel.server.console.pages import mounted_handlers, nav_items, template_packages
from flywheel.server.console.plugins_pages import plugins_page
from flywheel.server.console.security import SECURITY_HEADERS
from flywheel.server.console.sessions import COOKIE_PATH
from flywheel.server.console.templating import environment, template_config
from flywheel.server.console.views import home, login, login_form, logout

__all__ = ["console_router", "console_templates", "is_console_path", "with_html_errors", "CONSOLE_OPT"]

# Every console route carries this opt: API-only checks (the tenant-isolation
# sweep with API keys, the OpenAPI coverage test) recognise console pages by it.
CONSOLE_OPT = "console"
# The console's own pages beyond sign-in and the overview (their navigation: templating.CORE_NAV).
OPERATOR_PAGES = [JobPages, ModelPages, MonitoringPages, EventPages, KeyPages, plugins_page, AlertPages]


def console_router(state) -> Router:
    pages = state.contributions.pages
    static = create_static_files_router(
        path="/static", directories=[str(files("flywheel.server.console.static"))], opt={"public": True},
        name="console:static", cache_control=CacheControlHeader(max_age=3600), include_in_schema=False)
    return Router(
        path=COOKIE_PATH,
        route_handlers=[login_form, login, logout, home, *OPERATOR_PAGES, static, *mounted_handlers(pages)],
        middleware=[console_auth_middleware],
        response_headers=[ResponseHeader(name=k, value=v) for k, v in SECURITY_HEADERS.items()
                          if k != "Cache-Control"],
        cache_control=CacheControlHeader(no_store=True),  # pages hold tenant data; static files override it
        include_in_schema=False,
        opt={CONSOLE_OPT: True},
    )


def console_templates(state) -> TemplateConfig:
    pages = state.contributions.pages
    return template_config(environment(nav_items(pages, COOKIE_PATH), template_packages(pages)))
