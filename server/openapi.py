"""OpenAPI: the document says what the app really accepts and answers.

Before the document is first generated, each route handler gets a summary
and description (its docstring) and `ErrorBody` responses for the error
statuses it can really produce (`error_statuses`). Once Litestar has built
the document, `finish` adds what it cannot see: the bodies of routes that
read raw bytes for speed (`opt={"openapi_body": ...}`, server/openapi_bodies.py)
and `security: []` on public routes.
"""

from __future__ import annotations

import inspect
from typing import Any

from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin  # not public; Litestar is pinned exactly (pyproject.toml)
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPI, Operation
from litestar.routes import HTTPRoute

from flywheel.contracts.errors import ErrorBody
from flywheel.server.openapi_bodies import BODIES, merge_components

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Opt keys a handler may set: extra error statuses ({404: "why"}) and the name of its raw body.
ERRORS, BODY = "errors", "openapi_body"


def error_statuses(handler: HTTPRouteHandler, path_params: bool) -> dict[int, str]:
    """The error statuses `handler` can answer, each with when.

    Every route: 400 and 422 (the Host check and the input guard look at any
    request's host, path and query string) and 500. Authenticated routes add
    401, 403 and 503 (the key store); writes add 409 and 413 (an
    `Idempotency-Key` reads the body of any write); a body adds 413; a path
    parameter names something that may not exist: 404.
    """
    statuses = {400: "malformed request (host, parameter or body)",
                422: "invalid input (`field` names the value at fault)",
                500: "internal error"}
    public = handler.opt.get("public")
    if not public:
        statuses |= {401: "missing, invalid or revoked API key", 403: "the key lacks the scope",
                     503: "unavailable (the key store or a dependency), retry later"}
    if not public and WRITES & set(handler.http_methods):
        statuses |= {409: "conflict (the same Idempotency-Key is still running, or the resource's state)",
                     413: "body too large"}
    if handler.opt.get(BODY) or "data" in handler.parsed_fn_signature.parameters:
        statuses[413] = "body too large"
    if path_params:
        statuses[404] = "not found"
    statuses.update(handler.opt.get(ERRORS) or {})
    return dict(sorted(statuses.items()))


def _describe(handler: HTTPRouteHandler) -> None:
    """Summary: the docstring's first paragraph; description: the rest (or the summary)."""
    doc = inspect.cleandoc(handler.fn.__doc__ or "")
    if not doc:
        return
    first, _, rest = doc.partition("\n\n")
    summary = " ".join(first.split())
    if handler.summary is None:
        handler.summary = summary
    if handler.description is None:
        handler.description = rest.strip() or summary


def document_api(app: Litestar) -> None:
    """Describe every route handler and its errors; have the document finished once built."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            _describe(handler)
            responses = dict(handler.responses or {})
            for status, description in error_statuses(handler, bool(route.path_parameters)).items():
                responses.setdefault(status, ResponseSpec(data_container=ErrorBody, description=description,
                                                          generate_examples=False))
            handler.responses = responses
    plugin = app.plugins.get(OpenAPIPlugin)
    # Litestar has no hook after it builds the document: its plugin becomes one that has
    # (same slots, one method more), so `app.openapi_schema` and /schema both see the result.
    plugin.__class__ = _FinishingOpenAPIPlugin


class _FinishingOpenAPIPlugin(OpenAPIPlugin):
    __slots__ = ()

    def _build_openapi(self) -> OpenAPI:
        return finish(self.app, super()._build_openapi())


def finish(app: Litestar, openapi: OpenAPI) -> OpenAPI:
    """Add raw bodies, their schemas, `security: []` on public routes and a description where none is."""
    state = app.state.flywheel
    schemas: dict[str, Any] = dict(openapi.components.schemas or {})
    plugin_of = {item if isinstance(item, type) else getattr(item, "fn", item): plugin  # a Controller, or a handler
                 for plugin, item in state.contributions.routes}
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in (openapi.paths or {}):
            continue
        item = openapi.paths[route.path_format]
        for handler in route.route_handlers:
            for method in handler.http_methods:
                op: Operation | None = getattr(item, method.lower(), None)
                if op is None:
                    continue
                if handler.opt.get("public"):
                    op.security = []
                if not op.description:
                    op.description = _fallback_description(handler, method, route.path_format, plugin_of)
                body = handler.opt.get(BODY)
                if body:
                    request_body, components = BODIES[body](state)
                    op.request_body = merge_components(schemas, components, request_body)
    openapi.components.schemas = schemas
    return openapi


def _fallback_description(handler: HTTPRouteHandler, method: str, path: str, plugin_of: dict[Any, str]) -> str:
    """For a handler without a docstring: at least which plugin's route it is."""
    controller = getattr(handler.fn, "__self__", None)
    plugin = plugin_of.get(type(controller) if controller is not None else handler.fn)
    where = f"the `{plugin}` plugin" if plugin and plugin != "core" else "Flywheel's core"
    return f"`{method} {path}`, a route of {where}."
