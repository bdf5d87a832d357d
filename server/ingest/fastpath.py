"""`POST /v1/events` without Litestar's per-request machinery.

Intake is the one route that runs hundreds of times a second with large
bodies. Through Litestar every request pays for its middleware stack,
request object, dependency injection and response rendering: measured at
about 250 us of CPU a request, as much as decoding and scrubbing 25 events.
This ASGI wrapper sits in front of the app and serves the ordinary case
itself (a valid key with the `ingest` scope, no Idempotency-Key, a body
within the limit) with the same code the route handler calls
(`Ingestor.ingest`), the same response body and status, and the same HTTP
metrics. Everything else goes to Litestar untouched, or, when the body was
already read, with that body replayed:

- no or unknown key, or a key without `ingest`: Litestar answers 401/403;
- an `Idempotency-Key`: the idempotency middleware must see the request;
- a body over the limit, or an error nobody expected: Litestar answers.

Errors the ingestor raises on purpose (415, 400, 413, 503 with Retry-After)
are rendered here exactly as the app's exception handler renders them.
With tracing on, each request it serves gets a server span of its own, as
Litestar's OpenTelemetry middleware would give it.
The route handler in `api.py` stays the documented, tested definition of
the endpoint; tests run the same requests through both paths.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.plugins.prometheus import PrometheusConfig
from opentelemetry import trace

from flywheel.contracts.tenants import Scope
from flywheel.server.asgi import BodyTooLarge, read_body, replay, respond
from flywheel.server.errors import ApiError
from flywheel.server.fast_routes import HttpMetrics, bearer_principal
from flywheel.server.telemetry import tracing_enabled

if TYPE_CHECKING:
    from flywheel.server.state import AppState

PATH = "/v1/events"
_encode = msgspec.json.encode


class IngestFastPath:
    def __init__(self, app: Any, state: AppState, prometheus: PrometheusConfig | None = None, *,
                 cors: bool = False) -> None:
        self.app = app
        self.state = state
        # With CORS on, a browser's request (it has an Origin) goes to Litestar, which adds the headers.
        self.cors = cors
        self.max_body = state.settings.max_body_bytes
        self.metrics = HttpMetrics(app, prometheus, "POST", PATH)
        self.tracer = trace.get_tracer("flywheel.ingest") if tracing_enabled() else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        authorization = content_type = content_encoding = None
        declared = -1
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"content-type":
                content_type = value
            elif name == b"content-encoding":
                content_encoding = value
            elif name == b"content-length":
                declared = int(value) if value.isdigit() else self.max_body + 1
            elif name == b"idempotency-key" or (name == b"origin" and self.cors):
                await self.app(scope, receive, send)
                return
        principal = await bearer_principal(self.state, authorization, Scope.INGEST)
        if principal is None or declared > self.max_body:
            await self.app(scope, receive, send)
            return
        if self.tracer is None:
            await self._serve(scope, receive, send, principal, content_type, content_encoding, started)
            return
        with self.tracer.start_as_current_span(f"POST {PATH}", kind=trace.SpanKind.SERVER, attributes={
                "http.request.method": "POST", "http.route": PATH, "url.path": PATH,
                "flywheel.tenant_id": str(principal.tenant_id)}) as span:
            status = await self._serve(scope, receive, send, principal, content_type, content_encoding, started)
            if status is not None:
                span.set_attribute("http.response.status_code", status)

    async def _serve(self, scope: dict, receive: Any, send: Any, principal: Any, content_type: bytes | None,
                     content_encoding: bytes | None, started: float) -> int | None:
        """Read, ingest, answer; the status sent, or None when Litestar answered instead."""
        try:
            chunks = await read_body(receive, self.max_body)
        except BodyTooLarge as exc:  # Litestar answers 413, as for any route
            await self.app(scope, replay(exc.chunks, receive, more=exc.more), send)
            return None
        if chunks is None:  # the client went away
            return None
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)

        ingestor = self.state.ingestor
        try:
            if ingestor is None:
                raise RuntimeError("ingestion is not running")
            result = await ingestor.ingest(principal.tenant_id, body,
                                           content_type.decode("latin-1") if content_type else None,
                                           content_encoding.decode("latin-1") if content_encoding else None)
        except ApiError as exc:
            headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
            await respond(send, exc.status, _encode(exc.body()), headers)
            self.metrics.observe(started, exc.status)
            return exc.status
        except Exception:
            # Not ours to explain: Litestar's handler logs it and answers 500 as for any route.
            await self.app(scope, replay(chunks, receive), send)
            return None
        await respond(send, 200, _encode(result))
        self.metrics.observe(started, 200)
        return 200
