"""OpenAPI: the document says what the app really sends on errors.

Litestar documents its own error shape by default; Flywheel answers every
4xx and 5xx with `ErrorBody`. Before the schema is first generated, each
handler gets `ErrorBody` responses for the statuses it can produce, so
clients (and schemathesis) see the truth.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.datastructures import ResponseSpec
from litestar.routes import HTTPRoute

from flywheel.contracts.errors import ErrorBody

_ALWAYS = {400: "bad request", 404: "not found", 405: "method not allowed", 413: "body too large",
           422: "invalid input (`field` names the value at fault)", 500: "internal error",
           503: "unavailable, retry later"}
_AUTHENTICATED = {401: "missing, invalid or revoked API key", 403: "the key lacks the scope",
                  409: "conflict"}


def document_errors(app: Litestar) -> None:
    """Give every route handler `ErrorBody` responses for its error statuses."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            statuses = dict(_ALWAYS)
            if not handler.opt.get("public"):
                statuses.update(_AUTHENTICATED)
            responses = dict(handler.responses or {})
            for status, description in statuses.items():
                responses.setdefault(status, ResponseSpec(data_container=ErrorBody, description=description,
                                                          generate_examples=False))
            handler.responses = responses
