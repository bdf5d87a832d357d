"""The OpenAI-compatible gateway: `POST /v1/chat/completions`, `POST /v1/embeddings`.

Point the official `openai` client at Flywheel (`base_url=".../v1"`) with a
Flywheel API key (scope `ingest`) as its `api_key`; the `model` it asks for
is a route, answered by the tenant's policies (routing.py). `GET /v1/models`
is the core's model list, which also carries the gateway's routes in
OpenAI's `data` shape (`list_served_models` below).

Both routes are marked `fast_path`: the core answers an ordinary request
(a valid key, a body that validates) in front of Litestar by calling
`serve_fast`, which does what the handler does. Litestar's per-request work
was most of what the gateway added to a call's latency. Everything else
(a 422, a missing key) goes to the handlers below, which stay the
documented definition of the endpoints.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.datastructures import State
from litestar.params import JSONBody

from flywheel.contracts.models import ServedModel
from flywheel.plugins.rlaas import upstream
from flywheel.plugins.rlaas.openai_types import ChatRequest, EmbeddingRequest, ErrorInfo, GatewayError
from flywheel.plugins.rlaas.proxy import handle
from flywheel.plugins.rlaas.recording import RECORDER, Recorder
from flywheel.plugins.rlaas.routing import routes_of
from flywheel.plugins.rlaas.runtime import settings_of
from flywheel.plugins.rlaas.shadow import SHADOWS, ShadowPool
from flywheel.server.plugin_api import FAST_PATH, ApiError, Caller, FastRequest, FastResponse, secrets_ready

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "invalid_request_error", 409: "invalid_request_error", 422: "invalid_request_error",
          429: "rate_limit_error"}
_encode = msgspec.json.encode


def gateway_error(exc: ApiError) -> GatewayError:
    """An error in OpenAI's shape, so its clients show the message (Flywheel's fields beside it)."""
    body = exc.body()
    info = ErrorInfo(message=body.message, type=_TYPES.get(body.status, "api_error"), param=body.field,
                     code=body.code)
    return GatewayError(error=info, status=body.status, code=body.code, message=body.message, field=body.field)


def openai_error(request: Request, exc: ApiError) -> Response[GatewayError]:
    return Response(gateway_error(exc), status_code=exc.status, headers=exc.headers)


def serve_fast(endpoint: str, kind: type[ChatRequest | EmbeddingRequest]):
    """The fast-path `serve` for one endpoint: None (the handler answers) when the body does not validate."""

    async def serve(request: FastRequest) -> FastResponse | None:
        try:
            body = msgspec.json.decode(request.body)
            data = msgspec.convert(body, kind)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        try:
            return await handle(request.state, request.principal, request.headers, body, endpoint, data)
        except ApiError as exc:
            return FastResponse(exc.status, _encode(gateway_error(exc)), dict(exc.headers))

    return serve


CHAT = {"scope": "ingest", FAST_PATH: serve_fast("chat.completions", ChatRequest)}
EMBEDDINGS = {"scope": "ingest", FAST_PATH: serve_fast("embeddings", EmbeddingRequest)}


class GatewayController(Controller):
    path = "/v1"
    tags = ["rlaas gateway"]
    exception_handlers = {ApiError: openai_error}

    @post("/chat/completions", operation_id="createChatCompletion", status_code=200, opt=CHAT)
    async def chat_completions(self, request: Request, state: State, principal: Caller,
                               data: JSONBody[ChatRequest]) -> Response:
        """A chat completion through the route's policy, streamed (`"stream": true`) or not.

        The answer is the upstream's, with `X-Flywheel-Interaction-Id` (attach feedback to it) and
        `X-Flywheel-Policy` headers. Fields Flywheel does not read pass through unchanged.
        """
        body = msgspec.json.decode(await request.body())
        return (await handle(state.flywheel, principal, request.headers, body, "chat.completions", data)).to_litestar()

    @post("/embeddings", operation_id="createEmbedding", status_code=200, opt=EMBEDDINGS)
    async def embeddings(self, request: Request, state: State, principal: Caller,
                         data: JSONBody[EmbeddingRequest]) -> Response:
        """Embeddings through the route's policy (recorded without the vectors)."""
        body = msgspec.json.decode(await request.body())
        return (await handle(state.flywheel, principal, request.headers, body, "embeddings", data)).to_litestar()


async def served_models(state: Any, tenant_id: Any) -> list[ServedModel]:
    """The tenant's routes that an active policy answers, as OpenAI model entries."""
    routes = await routes_of(state, tenant_id)
    return [ServedModel(id=route) for route, p in sorted(routes.items()) if p.active is not None]


async def start_gateway(state: Any) -> None:
    settings_of(state)  # a bad FLYWHEEL_RLAAS_* value stops startup here, naming it
    await _check_secret_key(state)
    state.extras[SHADOWS] = ShadowPool(settings_of(state).shadow_concurrency)
    recorder = state.extras[RECORDER] = Recorder(state)
    recorder.start()


async def stop_gateway(state: Any) -> None:
    pool = state.extras.pop(SHADOWS, None)
    if pool is not None:
        await pool.stop()
    recorder = state.extras.pop(RECORDER, None)
    if recorder is not None:
        await recorder.stop()
    await upstream.close_all(state)


async def _check_secret_key(state: Any) -> None:
    """Refuse to start when policies hold sealed credentials that no key could open."""
    if secrets_ready(state):
        return
    from flywheel.plugins.rlaas.policies import any_sealed

    async with state.db.acquire() as conn:
        sealed = await any_sealed(conn)
    if sealed:
        raise RuntimeError("rlaas: policies hold upstream credentials, and FLYWHEEL_SECRET_KEY is not set: "
                           "set it to the key they were sealed with")
