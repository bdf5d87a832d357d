"""The app's routes, as the sweeps over every route see them (tenant isolation,
scopes, hostile input): derived from the app, so a route added later is
swept without anyone remembering to."""

from __future__ import annotations

import re
import uuid

from litestar.routes import HTTPRoute


def protected_routes(app, *, console: bool = False) -> list[tuple[str, str, list[str]]]:
    """(method, path template, path parameter names) of every authenticated API route
    (with `console`: of every console page that needs a session instead)."""
    out = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, handler in route.route_handler_map.items():
            handler = handler[0] if isinstance(handler, tuple) else handler
            if method in ("OPTIONS", "HEAD") or handler.opt.get("public") or route.path.startswith("/schema"):
                continue
            if bool(handler.opt.get("console")) != console:
                continue
            out.append((method, route.path, [p["name"] for p in route.path_parameters]
                        if isinstance(route.path_parameters, list) else list(route.path_parameters)))
    return sorted(out)


def handler_of(app, method: str, path: str):
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path == path:
            handler = route.route_handler_map[method]
            return handler[0] if isinstance(handler, tuple) else handler
    raise KeyError((method, path))


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: ids[m.group(1)], path)


# A value of the right shape for each path parameter type: enough to reach the handler.
_SHAPED = {"uuid": lambda: str(uuid.uuid4()), "int": lambda: "1", "str": lambda: "x", "path": lambda: "x"}


def fill_shaped(path: str) -> str:
    """`path` with every parameter replaced by a well-formed value naming nothing."""
    return re.sub(r"\{(\w+)(?::(\w+))?\}", lambda m: _SHAPED[m.group(2) or "str"](), path)
