"""Plugin pages: checked at startup, mounted below /console, listed in the navigation."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Router, get
from litestar.handlers import HTTPRouteHandler

from flywheel.contracts.pages import Page

# Top-level console paths of the core; a plugin with one of these names
# cannot have pages (its pages would start with the same segment).
CORE_SEGMENTS = frozenset({"", "login", "logout", "static", "jobs", "models", "events", "keys", "plugins"})


class PageError(ValueError):
    """A page contribution is invalid; the message says why (without the plugin, added by the caller)."""


@dataclass(frozen=True)
class NavItem:
    href: str
    title: str
    order: int
    plugin: str


def is_mountable(handler: Any) -> bool:
    """A route handler, Controller or Router (mounted as given), not a plain function."""
    return isinstance(handler, (HTTPRouteHandler, Router)) or (
        isinstance(handler, type) and issubclass(handler, Controller))


def route_handlers(page: Page) -> list[Any]:
    """What Litestar mounts for `page`, below /console."""
    handler = page.handler
    if is_mountable(handler):
        return [handler]
    if callable(handler):
        return [get(page.path, name=f"console:{page.path}")(handler)]
    raise PageError(f"page {page.path!r}: handler must be an async function, a route handler, a Controller "
                    f"or a Router, got {handler!r}")


def in_namespace(path: str, plugin: str) -> bool:
    return path == f"/{plugin}" or path.startswith(f"/{plugin}/")


def check_page(page: Page, plugin: str) -> list[tuple[str, str]]:
    """Validate one page; returns the (method, path) of each route it mounts."""
    if not isinstance(page.path, str) or not page.path.startswith("/"):
        raise PageError(f"page path {page.path!r} must start with '/{plugin}'")
    if plugin in CORE_SEGMENTS:
        raise PageError(f"page {page.path!r}: a plugin named {plugin!r} cannot have pages "
                        f"(/console/{plugin} belongs to the console itself)")
    if not in_namespace(page.path, plugin):
        raise PageError(f"page path {page.path!r} must start with '/{plugin}' (pages are namespaced by plugin)")
    if not isinstance(page.nav_title, str) or (page.nav and not page.nav_title.strip()):
        raise PageError(f"page {page.path!r} needs a nav_title")
    if page.templates is not None:
        check_templates(page.templates, page.path)
    try:
        probe = Router(path="/", route_handlers=route_handlers(page))
    except PageError:
        raise
    except Exception as exc:
        raise PageError(f"page {page.path!r} has an invalid handler: {exc}") from exc
    routes = []
    for route in probe.routes:
        if not in_namespace(route.path, plugin):
            raise PageError(f"page {page.path!r} mounts {route.path!r}, outside '/{plugin}'")
        routes += [(method, route.path) for method in sorted(route.methods - {"OPTIONS", "HEAD"})]
    if ("GET", _normalize(page.path)) not in routes:
        raise PageError(f"page {page.path!r}: its handler serves no GET {page.path!r} "
                        f"(it serves {', '.join(f'{m} {p}' for m, p in routes) or 'nothing'})")
    return routes


def _normalize(path: str) -> str:
    return path.rstrip("/") or "/"


def check_templates(package: str, where: str) -> None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as exc:
        raise PageError(f"page {where!r}: templates package {package!r} cannot be imported: {exc}") from None
    if spec is None or not spec.submodule_search_locations:
        raise PageError(f"page {where!r}: templates {package!r} must be an importable package (a folder)")


def nav_items(pages: dict[str, tuple[str, Page]], prefix: str) -> list[NavItem]:
    items = [NavItem(f"{prefix}{page.path}", page.nav_title, page.order, plugin)
             for plugin, page in pages.values() if page.nav]
    return sorted(items, key=lambda i: (i.order, i.title.lower(), i.href))


def template_packages(pages: dict[str, tuple[str, Page]]) -> dict[str, list[str]]:
    """Plugin name -> its template packages, in registration order, without repeats."""
    out: dict[str, list[str]] = {}
    for plugin, page in pages.values():
        if page.templates and page.templates not in out.setdefault(plugin, []):
            out[plugin].append(page.templates)
    return out


def mounted_handlers(pages: dict[str, tuple[str, Page]]) -> list[Any]:
    """Every page's route handlers, each Controller or Router once."""
    out, seen = [], set()
    for _, page in pages.values():
        if is_mountable(page.handler):
            if id(page.handler) in seen:
                continue
            seen.add(id(page.handler))
        out += route_handlers(page)
    return out
