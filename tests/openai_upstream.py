"""An OpenAI-compatible upstream for the gateway's tests: a real HTTP server (raw ASGI under uvicorn).

It answers chat completions (plain, streamed, with tool calls), embeddings and
errors the way OpenAI's API does, and keeps every request it received so tests
can check what the gateway sent. A stream stops after its first chunks until
`gate` is set, so a test can see the first chunk reach the client while the
upstream has not finished. `hold` does the same for non-streamed answers.

It serves on the test's own event loop, not in a thread: two busy threads of
one process hand the GIL to each other every 5 ms, which made each proxied
request cost ~30 ms.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from flywheel.server.testing.live import serving

# One creation time for every answer: the same call twice answers byte for byte alike (tests
# compare whole bodies across paths, and two calls can fall either side of a second).
CREATED = int(time.time())


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeUpstream:
    requests: list[Received] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # streams wait for it mid-way
    hold: asyncio.Event = field(default_factory=asyncio.Event)  # plain answers wait for it
    status: int | None = None  # answer every request with this error status
    finished: int = 0  # answers sent in full

    def __post_init__(self) -> None:
        self.gate.set()
        self.hold.set()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = json.loads(b"".join(chunks) or b"{}")
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append(Received(scope["path"], headers, body))
        await self._answer(scope["path"], body, send)

    async def _answer(self, path: str, body: dict[str, Any], send) -> None:
        if self.status is not None:
            await _json(send, self.status, {"detail": "upstream exploded"})
        elif body.get("model") == "bad-request":
            await _json(send, 400, {"error": {"message": "messages is too long", "type": "invalid_request_error",
                                              "param": "messages", "code": "context_length_exceeded"}})
        elif path.endswith("/embeddings"):
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            await _json(send, 200, {"object": "list", "model": body["model"], "usage": {"prompt_tokens": 3,
                                                                                       "total_tokens": 3},
                                    "data": [{"object": "embedding", "index": i, "embedding": [0.5] * 8}
                                             for i, _ in enumerate(inputs)]})
        elif body.get("stream"):
            await self._stream(body, send)
        else:
            await self.hold.wait()
            await _json(send, 200, completion(body))
        self.finished += 1

    async def _stream(self, body: dict[str, Any], send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"x-request-id", b"req-123")]})
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": CREATED,
                "model": body["model"]}
        tools = bool(body.get("tools"))
        first = [{"index": 0, "delta": {"role": "assistant", "content": "" if not tools else None}}]
        await _event(send, {**base, "choices": first})
        if tools:
            call = {"index": 0, "id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": '}}
            await _event(send, {**base, "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
        else:
            await _event(send, {**base, "choices": [{"index": 0, "delta": {"content": "Hello"}}]})
        await self.gate.wait()
        if tools:
            rest = {"index": 0, "function": {"arguments": '"Paris"}'}}
            await _event(send, {**base, "choices": [{"index": 0, "delta": {"tool_calls": [rest]}}]})
        else:
            await _event(send, {**base, "choices": [{"index": 0, "delta": {"content": " world"}}]})
        await _event(send, {**base, "choices": [{"index": 0, "delta": {},
                                                 "finish_reason": "tool_calls" if tools else "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            await _event(send, {**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2,
                                                                 "total_tokens": 7}})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


def completion(body: dict[str, Any]) -> dict[str, Any]:
    last = body["messages"][-1].get("content") if body.get("messages") else ""
    if body.get("tools"):
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                              "arguments": '{"city": "Paris"}'}}]}
        finish = "tool_calls"
    else:
        message = {"role": "assistant", "content": f"echo: {last}"}
        finish = "stop"
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": CREATED, "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}}


async def _json(send, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"x-request-id", b"req-123"),
                            (b"set-cookie", b"upstream=private")]})
    await send({"type": "http.response.body", "body": data, "more_body": False})


async def _event(send, payload: dict[str, Any]) -> None:
    await send({"type": "http.response.body", "body": b"data: " + json.dumps(payload).encode() + b"\n\n",
                "more_body": True})


class UpstreamServer:
    """`async with UpstreamServer() as up:` a FakeUpstream on a free port; `up.base_url` ends in /v1."""

    def __init__(self) -> None:
        self.fake = FakeUpstream()
        self.serving = serving(self.fake, access_log=False)

    async def __aenter__(self) -> FakeUpstream:
        port = await self.serving.__aenter__()
        self.fake.base_url = f"http://127.0.0.1:{port}/v1"  # type: ignore[attr-defined]
        return self.fake

    async def __aexit__(self, *exc) -> None:
        self.fake.gate.set()
        self.fake.hold.set()
        await self.serving.__aexit__(*exc)
