"""Hot plugin routes served in front of Litestar: `opt={"fast_path": serve}`.

Litestar's per-request machinery (middleware stack, request object,
dependency injection, response rendering) costs a few hundred microseconds
of CPU a request. For most routes that is nothing; for a route whose whole
point is to add little latency (the rlaas gateway in front of an LLM), it
is most of what the route adds. A plugin marks such a route handler with
``opt={"fast_path": serve}``; this ASGI wrapper then answers the ordinary
request itself by calling ``serve(FastRequest)`` and sending the
`FastResponse` it returns. The route handler stays the documented, tested
definition of the endpoint (its OpenAPI entry, its validation, its errors),
and it still answers everything out of the ordinary, untouched or with the
body that was already read replayed:

- no or unknown key, or a key without the route's scope (401/403);
- an `Idempotency-Key` (the idempotency middleware must see it);
- a body over the limit, not JSON, or one the input guard would refuse
  (invalid UTF-8, NUL, hostile nesting);
- ``serve`` returning None: it could not take the request as it is (a body
  that does not validate, say), and the handler answers it as usual.

What `serve` raises on purpose (`ApiError`) is answered with the API's
error body; anything else is logged and answered 500, never handed on (the
request may already have had effects). Requests served here count in the
same HTTP metrics, and get a server span when tracing is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.response import Response, Stream
from opentelemetry import trace

from flywheel.contracts.tenants import Scope
from flywheel.server.asgi import BodyTooLarge, read_body, replay
from flywheel.server.auth.middleware import required_scope
from flywheel.server.errors import ApiError
from flywheel.server.input_guard import json_problem
from flywheel.server.telemetry import tracing_enabled

if TYPE_CHECKING:
    from litestar import Litestar

    from flywheel.server.auth.principal import Principal
    from flywheel.server.state import AppState

FAST_PATH = "fast_path"
log = structlog.get_logger("flywheel.fast_routes")
_encode = msgspec.json.encode


@dataclass(frozen=True, slots=True)
class FastRequest:
    """What `serve` gets: the caller, the headers (lower-case names) and the whole body."""

    state: AppState
    principal: Principal
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class FastResponse:
    """A whole body, or `stream`: chunks sent as they come (the body is then ignored)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"
    stream: AsyncIterator[bytes] | None = None

    def to_litestar(self) -> Response | Stream:
        """The same answer from the route handler (the path Litestar serves)."""
        if self.stream is not None:
            return Stream(self.stream, status_code=self.status, media_type=self.media_type, headers=self.headers)
        return Response(content=self.body, status_code=self.status, media_type=self.media_type,
                        headers=self.headers)


Serve = Callable[[FastRequest], Awaitable[FastResponse | None]]


@dataclass(frozen=True, slots=True)
class _Route:
    path: str
    scope: Scope
    serve: Serve


def fast_routes_of(app: Litestar) -> dict[tuple[str, str], _Route]:
    """(method, path) of every handler marked `fast_path`; only fixed paths can be."""
    found = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            serve = handler.opt.get(FAST_PATH)
            if serve is None:
                continue
            if route.path_parameters:
                raise ValueError(f"{route.path}: a fast_path route cannot have path parameters")
            for method in handler.http_methods:
                found[(method, route.path)] = _Route(route.path, required_scope(handler, method), serve)
    return found


async def bearer_principal(state: AppState, authorization: bytes | None, needed: Scope) -> Principal | None:
    """The key's principal when it is valid and allows `needed`; else None (Litestar's auth answers)."""
    if authorization is None:
        return None
    scheme, _, key = authorization.decode("latin-1").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return None
    try:
        principal = await state.keys.resolve(state.db, key)
    except ApiError:  # the key store is away: Litestar's auth answers 503 as usual
        return None
    if principal is None or not principal.allows(needed):
        return None
    return principal


class HttpMetrics:
    """Litestar's HTTP metrics (PrometheusMiddleware's class-level registry) for one method and path."""

    def __init__(self, app: Any, prometheus: PrometheusConfig | None, method: str, path: str) -> None:
        self.metrics = PrometheusMiddleware(app, prometheus) if prometheus is not None else None
        self.labels = {"method": method, "path": path, "status_code": 0,
                       "app_name": prometheus.app_name if prometheus is not None else ""}
        self.children: dict[int, tuple] = {}

    def observe(self, started: float, status: int) -> None:
        if self.metrics is None:
            return
        children = self.children.get(status)
        if children is None:  # `.labels()` costs microseconds: look the series up once per status
            labels = {**self.labels, "status_code": status}
            values = list(labels.values())
            children = self.children[status] = (
                self.metrics.requests_error_count(labels).labels(*values) if status >= 500 else None,
                self.metrics.request_count(labels).labels(*values),
                self.metrics.request_time(labels).labels(*values))
        errors, count, latency = children
        if errors is not None:
            errors.inc()
        count.inc()
        latency.observe(time.perf_counter() - started)


class FastRoutes:
    def __init__(self, app: Any, state: AppState, routes: dict[tuple[str, str], _Route],
                 prometheus: PrometheusConfig | None = None, *, cors: bool = False) -> None:
        self.app = app
        self.state = state
        self.routes = routes
        # With CORS on, a browser's request (it has an Origin) goes to Litestar, which adds the headers.
        self.cors = cors
        self.max_body = state.settings.max_body_bytes
        self.metrics = {key: HttpMetrics(app, prometheus, *key) for key in routes}
        self.tracer = trace.get_tracer("flywheel.fast_routes") if tracing_enabled() else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        route = self.routes.get((scope.get("method"), scope.get("path"))) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))  # the first, as Litestar reads it
        length = headers.get("content-length", "0")
        if ("idempotency-key" in headers or (self.cors and "origin" in headers) or not length.isdigit()
                or int(length) > self.max_body):
            await self.app(scope, receive, send)
            return
        authorization = headers.get("authorization")
        principal = await bearer_principal(self.state, authorization.encode("latin-1") if authorization else None,
                                           route.scope)
        if principal is None:
            await self.app(scope, receive, send)
            return
        if self.tracer is None:
            await self._serve(scope, receive, send, route, principal, headers, started)
            return
        with self.tracer.start_as_current_span(f"{scope['method']} {route.path}", kind=trace.SpanKind.SERVER,
                                               attributes={"http.request.method": scope["method"],
                                                           "http.route": route.path, "url.path": route.path,
                                                           "flywheel.tenant_id": str(principal.tenant_id)}) as span:
            status = await self._serve(scope, receive, send, route, principal, headers, started)
            if status is not None:
                span.set_attribute("http.response.status_code", status)

    async def _serve(self, scope: dict, receive: Any, send: Any, route: _Route, principal: Principal,
                     headers: dict[str, str], started: float) -> int | None:
        """Read, serve, answer; the status sent, or None when Litestar answered instead."""
        try:
            chunks = await read_body(receive, self.max_body)
        except BodyTooLarge as exc:
            await self.app(scope, replay(exc.chunks, receive, more=exc.more), send)
            return None
        if chunks is None:  # the client went away
            return None
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        kind = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if not (kind == "application/json" or kind.endswith("+json")) or json_problem(body) is not None:
            await self.app(scope, replay([body], receive), send)
            return None
        try:
            answer = await route.serve(FastRequest(self.state, principal, headers, body))
        except ApiError as exc:
            answer = FastResponse(exc.status, _encode(exc.body()), dict(exc.headers))
        except Exception:
            log.exception("fast path failed", path=route.path)
            answer = FastResponse(500, _encode({"status": 500, "code": "internal_error",
                                                "message": "internal server error"}))
        if answer is None:
            await self.app(scope, replay([body], receive), send)
            return None
        await _send(send, receive, answer)
        self.metrics[(scope["method"], route.path)].observe(started, answer.status)
        return answer.status


async def _send(send: Any, receive: Any, answer: FastResponse) -> None:
    media_type = answer.media_type
    if media_type.startswith("text/") and "charset" not in media_type:
        media_type += "; charset=utf-8"  # as Litestar's responses say it
    headers = [(b"content-type", media_type.encode("latin-1")),
               *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items())]
    if answer.stream is None:
        headers.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})
        return
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await _stream(send, receive, answer.stream)


async def _stream(send: Any, receive: Any, chunks: AsyncIterator[bytes]) -> None:
    """Send chunks as they come; stop reading them when the client goes away (as Litestar's Stream does)."""

    async def pump() -> None:
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    sending, watching = asyncio.ensure_future(pump()), asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait((sending, watching), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watching.cancel()
        sending.cancel()  # a no-op when it has finished
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        try:
            await sending  # raises what the stream raised, if it did
        except asyncio.CancelledError:
            pass
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:  # runs the generator's own cleanup when the client left mid-stream
                await close()
