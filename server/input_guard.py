"""Refuses input that no handler should ever see, before any handler runs.

Postgres text and jsonb cannot store U+0000; a query or body holding one
used to reach the database and come back as a 500. Invalid UTF-8 and
hostile nesting used to escape the decoders the same way. This middleware
checks, for every route:

- query parameters and path parameters: valid UTF-8, no NUL;
- JSON and form bodies: valid UTF-8, no NUL in any string or key, nesting
  at most `MAX_DEPTH` deep.

The body checks cost an `isascii` scan and one `translate` of the bytes
(`may_hold_problems`: a NUL needs a backslash, deep nesting needs many
brackets); a body is decoded here only when that finds something. Routes
that decode and check their own bodies opt out (below): ingestion, and
scoring, whose throughput these scans cost 5-15%. Routes that decode and check their own
bodies opt out with ``opt={"own_body_checks": True}`` (event ingestion,
which rejects such events one by one); msgpack and other binary bodies are
left to the handlers that accept them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

import msgspec
from litestar.types import ASGIApp, Receive, Scope, Send

from flywheel.server.asgi import BodyTooLarge, read_body, replay, respond_error
from flywheel.server.errors import ApiError
from flywheel.server.validation import MAX_DEPTH, NUL_MESSAGE, check_document, may_hold_problems

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OWN_BODY_CHECKS = "own_body_checks"
_FORM = "application/x-www-form-urlencoded"


def _pairs(raw: bytes) -> list[tuple[str, bytes]]:
    """(name, percent-decoded value) of a query string or form body."""
    out = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        name_text = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
        out.append((name_text, unquote_to_bytes(value.replace(b"+", b" "))))
    return out


def encoded_pairs_problem(raw: bytes, where: str) -> ApiError | None:
    """The error for a query string or form body holding NUL or invalid UTF-8."""
    if b"%" not in raw and b"\x00" not in raw and raw.isascii():
        return None  # the common case: nothing encoded, nothing to decode
    for name, value in _pairs(raw):
        field = f"{where}.{name}"
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return ApiError("not valid UTF-8 once percent-decoded", code="malformed_parameter", field=field)
        if "\x00" in text or "\x00" in name:
            return ApiError(NUL_MESSAGE, status=422, code="validation_error", field=field)
    return None


def path_problem(scope: Scope) -> ApiError | None:
    path = scope.get("path", "")
    if "\x00" not in path:
        return None
    for name, value in (scope.get("path_params") or {}).items():
        if isinstance(value, str) and "\x00" in value:
            return ApiError(NUL_MESSAGE, status=422, code="validation_error", field=f"path.{name}")
    return ApiError(NUL_MESSAGE, status=422, code="validation_error", field="path")


def json_problem(body: bytes) -> ApiError | None:
    """The error for a JSON body that is not UTF-8, holds a NUL, or nests too deep."""
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return ApiError(f"body is not valid UTF-8 (byte {exc.start})", code="malformed_body")
    if not may_hold_problems(body, MAX_DEPTH):
        return None  # the common case: nothing that could be NUL, nothing nested too deep
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        return ApiError(f"body nests deeper than {MAX_DEPTH} levels", code="too_deep")
    except msgspec.DecodeError:
        return None  # not JSON at all: the handler's decoder says why, as for any malformed body
    try:
        check_document(value)
    except ApiError as exc:
        return exc
    return None


def _content_type(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower()
    return "application/json"  # what Litestar assumes for a body without one


async def _answer(send: Send, error: ApiError) -> None:
    await respond_error(send, error.status, error.code, error.message, error.field)


def input_guard(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        problem = path_problem(scope) or encoded_pairs_problem(scope.get("query_string", b""), "query")
        if problem is not None:
            await _answer(send, problem)
            return
        handler: Any = scope.get("route_handler")
        if scope["method"] not in BODY_METHODS or (handler is not None and handler.opt.get(OWN_BODY_CHECKS)):
            await app(scope, receive, send)
            return
        kind = _content_type(scope)
        if kind != _FORM and not (kind == "application/json" or kind.endswith("+json")):
            await app(scope, receive, send)
            return
        try:
            chunks = await read_body(receive, scope["app"].state.flywheel.settings.max_body_bytes)
        except BodyTooLarge as exc:  # Litestar answers 413 as for any route
            await app(scope, replay(exc.chunks, receive, more=exc.more), send)
            return
        if chunks is None:
            return  # the client went away
        body = b"".join(chunks)
        problem = encoded_pairs_problem(body, "form") if kind == _FORM else json_problem(body)
        if problem is not None:
            await _answer(send, problem)
            return
        await app(scope, replay([body], receive), send)

    return middleware
