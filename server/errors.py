"""Errors: one body (`ErrorBody`) for every 4xx and 5xx, never a stack trace.

Raise `ApiError` (or a subclass) from handlers and services. Litestar's own
exceptions (routing, validation, body size) are translated into the same body,
and anything unexpected becomes a 500 with code `internal_error`, logged with
its trace on the server side only.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from flywheel.contracts.errors import ErrorBody, ErrorDetail

log = structlog.get_logger("flywheel.errors")


class ApiError(Exception):
    """An error the client should see, with a stable machine-readable code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None,
                 status: int | None = None, details: list[ErrorDetail] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or []
        self.headers = headers or {}
        if code:
            self.code = code
        if status:
            self.status = status

    def body(self) -> ErrorBody:
        return ErrorBody(status=self.status, code=self.code, message=self.message, field=self.field,
                         details=self.details)


class NotFound(ApiError):
    status, code = 404, "not_found"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class Conflict(ApiError):
    status, code = 409, "conflict"


class Unavailable(ApiError):
    status, code = 503, "unavailable"


class InvalidInput(ApiError):
    status, code = 422, "validation_error"


# Where msgspec says the problem is: "... - at `$.a[0]`", or for a bad dict key "... - at `key` in `$.a`".
MSGSPEC_AT = re.compile(r" - at (?:`key` in )?`\$(.*)`$")
# msgspec names the object holding a missing or unknown field, and the field in its message.
_NAMED_FIELD = re.compile(r"^Object (missing required|contains unknown) field `(.+)`$")


def unknown_field(message: str) -> str | None:
    """The field msgspec's "Object contains unknown field `x`" names, else None."""
    match = _NAMED_FIELD.match(message)
    return match.group(2) if match and match.group(1) == "contains unknown" else None


def from_msgspec(exc: msgspec.ValidationError | msgspec.DecodeError, *, prefix: str = "$") -> ApiError:
    """Turn msgspec's message ("Expected `int`, got `str` - at `$.a[0]`") into an error with a field path."""
    text = str(exc)
    match = MSGSPEC_AT.search(text)
    field = prefix + match.group(1) if match else None
    message = text[: match.start()] if match else text
    unknown = unknown_field(message)
    if unknown:  # msgspec names the object holding an unknown key (nothing at the top): name the key
        field = f"{field or prefix}.{unknown}"
    if isinstance(exc, msgspec.ValidationError):
        return InvalidInput(message, field=field)
    return ApiError(f"malformed body: {message}", code="malformed_body", field=field)


# Litestar's status codes -> our codes, for exceptions Litestar raises itself.
_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "body_too_large",
          415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
          500: "internal_error", 503: "unavailable"}


def _respond(body: ErrorBody, headers: dict[str, str] | None = None) -> Response[ErrorBody]:
    return Response(content=body, status_code=body.status, headers=headers or {})


def handle_api_error(request: Request, exc: ApiError) -> Response[ErrorBody]:
    return _respond(exc.body(), exc.headers)


def handle_validation(request: Request, exc: ValidationException) -> Response[ErrorBody]:
    """Litestar's own validation (bodies, query, path, headers): 422, like every validation error.

    Litestar answers 400; handlers raising InvalidInput answer 422. One status
    for one kind of error: 422 `validation_error` means "well-formed, but not
    acceptable", and 400 is kept for bodies that do not parse at all.
    """
    return _respond(validation_body(exc))


def validation_body(exc: ValidationException) -> ErrorBody:
    """The error body of Litestar's validation error: each problem with its field."""
    details = []
    for item in exc.extra or []:
        if isinstance(item, dict):
            message = str(item.get("message", "invalid"))
            field = _field_path(item.get("key"), item.get("source"), message)
            details.append(ErrorDetail(code="validation_error", message=message, field=field))
    first = details[0] if details else None
    message = first.message if first else str(exc.detail)
    return ErrorBody(status=422, code="validation_error", message=message, field=first.field if first else None,
                     details=details)


def _field_path(key: Any, source: Any, message: str = "") -> str | None:
    if key is None:
        return None
    key = str(key)
    if key.startswith("$"):
        return key
    source = getattr(source, "value", source)  # Litestar passes a ParamType enum for parameters
    if source in ("query", "path", "header", "cookie"):
        return f"{source}.{key}"
    # Litestar names the object holding the problem ("data" is the body itself, else a dotted
    # path); a missing or unknown field is then named in the message: point at the field.
    where = "$" if key == "data" else f"$.{key}"
    named = _NAMED_FIELD.match(message)
    return f"{where}.{named.group(2)}" if named else where


def handle_http(request: Request, exc: HTTPException) -> Response[ErrorBody]:
    status = exc.status_code
    if status >= 500:
        log.error("server error", path=request.url.path, method=request.method, status=status,
                  error=f"{type(exc).__name__}: {exc.detail}")
    message = exc.detail if isinstance(exc.detail, str) and status < 500 else _default_message(status)
    body = ErrorBody(status=status, code=_CODES.get(status, "error"), message=message)
    return _respond(body, dict(exc.headers or {}))


def handle_unexpected(request: Request, exc: Exception) -> Response[ErrorBody]:
    # The trace stays on the server; the client gets a stable, boring body.
    log.exception("unhandled error", path=request.url.path, method=request.method)
    return _respond(ErrorBody(status=500, code="internal_error", message="internal server error"))


def _default_message(status: int) -> str:
    return {500: "internal server error", 503: "service unavailable"}.get(status, "error")


EXCEPTION_HANDLERS = {
    ApiError: handle_api_error,
    ValidationException: handle_validation,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}
