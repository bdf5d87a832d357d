"""One gateway call: pick the policies, call the upstream, answer, record.

The client's body goes upstream as sent, with `model` swapped for the
policy's upstream model (or adapter). A canary that fails before its first
byte (unreachable, timed out, or a 5xx) is retried once on the route's
active policy; anything after the first byte is the client's answer. Shadow
policies get a mirrored, non-streamed copy in the background.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from prometheus_client import Counter

from flywheel.plugins.rlaas import upstream
from flywheel.plugins.rlaas.contracts import Interaction
from flywheel.plugins.rlaas.openai_types import ChatRequest, EmbeddingRequest
from flywheel.plugins.rlaas.recording import RECORDER
from flywheel.plugins.rlaas.routing import Choice, Policy, choose
from flywheel.plugins.rlaas.shadow import SHADOWS
from flywheel.plugins.rlaas.streaming import StreamRecord
from flywheel.plugins.rlaas.users import user_hash
from flywheel.server.plugin_api import FastResponse, Principal, Unavailable

CALLS = Counter("flywheel_rlaas_calls_total", "Gateway calls by endpoint, role and outcome",
                ["endpoint", "role", "outcome"])
INTERACTION_HEADER = "X-Flywheel-Interaction-Id"
_encode = msgspec.json.encode


@dataclass
class Call:
    state: Any
    tenant_id: UUID
    endpoint: str  # "chat.completions" | "embeddings"
    route: str  # the `model` the client asked for
    body: dict[str, Any]
    stream: bool
    user_hash: str | None
    session_id: str | None
    interaction_id: UUID = field(default_factory=uuid.uuid4)
    started: float = field(default_factory=time.perf_counter)

    @property
    def path(self) -> str:
        return self.endpoint.replace(".", "/")


async def handle(state: Any, principal: Principal, headers: Mapping[str, str], body: dict[str, Any],
                 endpoint: str, data: ChatRequest | EmbeddingRequest) -> FastResponse:
    """`data` is `body` checked; the body itself goes upstream, unknown fields and all.

    `headers` are the request's (lower-case names). The answer is sent by the
    fast path (server/fast_routes.py) or, from the route handler, by Litestar.
    """
    user = data.user or headers.get("x-flywheel-user")
    call = Call(state=state, tenant_id=principal.tenant_id, endpoint=endpoint, route=data.model, body=body,
                stream=isinstance(data, ChatRequest) and data.stream,
                user_hash=user_hash(principal.tenant_id, user) if user else None,
                session_id=(headers.get("x-flywheel-session") or "")[:200] or None)
    choice = await choose(state, principal.tenant_id, call.route, call.user_hash)
    _mirror(call, choice)
    policy, response, fell_back = await _first_answer(call, choice)
    if call.stream and response.status_code == 200:
        return _relay(call, policy, response, fell_back)
    content = response.content
    answer = _json(content)
    _record(call, policy, response.status_code, response=answer, fell_back=fell_back)
    media_type = response.headers.get("content-type", "application/json")
    if response.status_code >= 400 and not (answer and isinstance(answer.get("error"), dict)):
        content, media_type = _openai_error(response.status_code, answer), "application/json"
    return FastResponse(response.status_code, content, {**upstream.passed_headers(response), **_ids(call, policy)},
                        media_type)


async def _first_answer(call: Call, choice: Choice) -> tuple[Policy, upstream.UpstreamResponse, Policy | None]:
    """The upstream response to answer with, its policy, and the canary it replaced (if any)."""
    try:
        response = await _send(call, choice.primary, stream=call.stream)
        if response.status_code < 500 or choice.fallback is None:
            return choice.primary, response, None
        response.close()
        failure = f"the canary answered {response.status_code}"
    except upstream.UpstreamFailed as exc:
        if choice.fallback is None:
            _record(call, choice.primary, 0, error=str(exc))
            raise Unavailable(str(exc), code="upstream_unreachable") from None
        failure = str(exc)
    CALLS.labels(call.endpoint, "canary", "fell_back").inc()
    try:
        return choice.fallback, await _send(call, choice.fallback, stream=call.stream), choice.primary
    except upstream.UpstreamFailed as exc:
        _record(call, choice.fallback, 0, error=f"{failure}; then {exc}", fell_back=choice.primary)
        raise Unavailable(str(exc), code="upstream_unreachable") from None


async def _send(call: Call, policy: Policy, *, stream: bool,
                body: dict[str, Any] | None = None) -> upstream.UpstreamResponse:
    payload = {**(body or call.body), "model": policy.adapter_id or policy.model}
    return await upstream.send(call.state, policy.base_url, call.path, _encode(payload), policy.headers, stream=stream)


def _relay(call: Call, policy: Policy, response: upstream.UpstreamResponse,
           fell_back: Policy | None) -> FastResponse:
    """Forward the stream chunk by chunk as it arrives; record it once it has ended."""
    record = StreamRecord()

    async def chunks():
        first: float | None = None
        error = None
        try:
            async for chunk in response.chunks():
                if first is None:
                    first = time.perf_counter()
                record.feed(chunk)
                yield chunk
        except upstream.BrokenStream as exc:
            error = f"the upstream stream broke off ({type(exc).__name__})"
        finally:
            response.close()
            prompt, completion, counted = record.tokens()
            ttft = None if first is None else (first - call.started) * 1000
            _record(call, policy, response.status_code, response=record.response(), fell_back=fell_back,
                    ttft_ms=ttft, tokens=(prompt, completion, counted), error=error)

    headers = {**upstream.passed_headers(response), **_ids(call, policy), "Cache-Control": "no-cache"}
    return FastResponse(200, headers=headers, media_type=response.headers.get("content-type", "text/event-stream"),
                        stream=chunks())


def _mirror(call: Call, choice: Choice) -> None:
    pool = call.state.extras.get(SHADOWS)
    if pool is None:
        return
    for policy in choice.shadows:
        pool.offer(_shadow(call, policy))


async def _shadow(primary: Call, policy: Policy) -> None:
    call = Call(state=primary.state, tenant_id=primary.tenant_id, endpoint=primary.endpoint, route=primary.route,
                body=primary.body, stream=False, user_hash=primary.user_hash, session_id=primary.session_id)
    body = {k: v for k, v in primary.body.items() if k not in ("stream", "stream_options")}
    try:
        response = await _send(call, policy, stream=False, body=body)
    except upstream.UpstreamFailed as exc:
        _record(call, policy, 0, error=str(exc), role="shadow", primary_id=primary.interaction_id)
        return
    _record(call, policy, response.status_code, response=_json(response.content), role="shadow",
            primary_id=primary.interaction_id)


def _record(call: Call, policy: Policy, status: int, *, response: dict[str, Any] | None = None,
            error: str | None = None, fell_back: Policy | None = None, ttft_ms: float | None = None,
            tokens: tuple[int | None, int | None, bool] | None = None, role: str = "primary",
            primary_id: UUID | None = None) -> None:
    CALLS.labels(call.endpoint, role, _outcome(status)).inc()
    recorder = call.state.extras.get(RECORDER)
    if recorder is None:
        return
    if tokens is None:
        usage = (response or {}).get("usage") if isinstance((response or {}).get("usage"), dict) else {}
        tokens = (_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")), False)
    request = {**call.body, "user": call.user_hash} if "user" in call.body else call.body
    if call.endpoint == "embeddings" and response is not None:
        response = _embedding_summary(response)
    recorder.record(call.tenant_id, Interaction(
        event_id=call.interaction_id, ts=datetime.now(UTC), subject_id=call.user_hash, session_id=call.session_id,
        interaction_id=call.interaction_id, route=call.route, endpoint=call.endpoint, policy_id=policy.id,
        policy=policy.name, policy_version=policy.version, role=role, primary_interaction_id=primary_id,
        fallback_from_policy_id=fell_back.id if fell_back else None, stream=call.stream, status=status,
        latency_ms=(time.perf_counter() - call.started) * 1000, ttft_ms=ttft_ms, prompt_tokens=tokens[0],
        completion_tokens=tokens[1], tokens_counted=tokens[2], request=request, response=response,
        error=error[:2000] if error else None))


def _embedding_summary(response: dict[str, Any]) -> dict[str, Any]:
    """An embeddings answer without its vectors: they are large and not what feedback is about."""
    data = response.get("data") if isinstance(response.get("data"), list) else []
    return {**response, "data": [{"index": d.get("index"), "dimensions": len(d.get("embedding") or [])}
                                 for d in data if isinstance(d, dict)]}


def _openai_error(status: int, answer: dict[str, Any] | None) -> bytes:
    """An upstream's error that is not OpenAI-shaped, in OpenAI's shape (what clients parse)."""
    detail = answer.get("detail") or answer.get("message") or answer.get("text") if answer else None
    message = f"the upstream answered {status}" + (f": {str(detail)[:500]}" if detail else "")
    kind = "rate_limit_error" if status == 429 else "api_error" if status >= 500 else "invalid_request_error"
    return _encode({"error": {"message": message, "type": kind, "param": None, "code": "upstream_error"}})


def _ids(call: Call, policy: Policy) -> dict[str, str]:
    return {INTERACTION_HEADER: str(call.interaction_id), "X-Flywheel-Policy": f"{policy.name}/{policy.version}"}


def _json(content: bytes) -> dict[str, Any] | None:
    try:
        value = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return {"text": content[:2000].decode("utf-8", "replace")} if content else None
    return value if isinstance(value, dict) else {"value": value}


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and 0 <= value <= 100_000_000 else None


def _outcome(status: int) -> str:
    return "unreachable" if status == 0 else "ok" if status < 400 else "client_error" if status < 500 else "error"
