"""A fast OpenAI-compatible upstream for the gateway benchmark, run as its own process.

    python -m benchmarks.upstream_stub --port 9000

It answers at once with fixed content, so whatever time a client measures
through a gateway beyond what it measures against the stub is the gateway's:
- `POST /v1/chat/completions`: one fixed completion with `usage`; with
  `"stream": true`, a role chunk, three content chunks, a finish chunk (and a
  usage chunk when `stream_options.include_usage` asks for it), then
  `data: [DONE]`, as chunked `text/event-stream` in one write;
- `POST /v1/embeddings`: a fixed 8-dimension vector per input;
- `GET /v1/models`: the one model.
The model name is echoed from the request. A raw asyncio protocol with
httptools' parser under uvloop: about 20 us of Python per request, so the
stub is never the bottleneck of what it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httptools
import msgspec

MODEL = "stub-model"
CONTENT = "Hello! This is the stub's fixed answer."
PIECES = ["Hello!", " This is the stub's", " fixed answer."]
USAGE = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
CREATED = int(time.time())

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class ChatRequest(msgspec.Struct):
    model: str = MODEL
    stream: bool | None = None
    stream_options: dict | None = None


class EmbeddingsRequest(msgspec.Struct):
    model: str = MODEL
    input: str | list = ""


def _response(status: bytes, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: " + content_type + b"\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def _error(status: bytes, message: str) -> bytes:
    return _response(status, _encode({"error": {"message": message, "type": "invalid_request_error"}}))


def completion(model: str) -> bytes:
    return _response(b"200 OK", _encode({
        "id": "chatcmpl-stub", "object": "chat.completion", "created": CREATED, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": CONTENT}, "logprobs": None,
                     "finish_reason": "stop"}],
        "usage": USAGE, "system_fingerprint": "fp_stub"}))


def stream(model: str, include_usage: bool) -> bytes:
    def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> dict:
        out = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": CREATED, "model": model,
               "system_fingerprint": "fp_stub",
               "choices": [] if usage else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            out["usage"] = usage
        return out

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in PIECES]
    events.append(chunk({}, "stop"))
    if include_usage:
        events.append(chunk({}, usage=USAGE))
    datas = [b"data: " + _encode(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
    body = b"".join(b"%x\r\n%s\r\n" % (len(d), d) for d in datas) + b"0\r\n\r\n"
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + body)


def embeddings(model: str, inputs: str | list) -> bytes:
    n = len(inputs) if isinstance(inputs, list) else 1
    vector = [0.125, -0.25, 0.5, 0.0625, -0.5, 0.25, 0.75, -0.125]
    return _response(b"200 OK", _encode({
        "object": "list", "model": model,
        "data": [{"object": "embedding", "index": i, "embedding": vector} for i in range(n)],
        "usage": {"prompt_tokens": 2 * n, "total_tokens": 2 * n}}))


MODELS = _response(b"200 OK", _encode({"object": "list", "data": [
    {"id": MODEL, "object": "model", "created": CREATED, "owned_by": "stub"}]}))
# Answers depend only on (model, stream, include_usage): built once each.
_cache: dict[tuple, bytes] = {}


def answer(method: bytes, path: bytes, body: bytes) -> bytes:
    path = path.split(b"?", 1)[0]
    try:
        if method == b"POST" and path == b"/v1/chat/completions":
            req = msgspec.json.decode(body, type=ChatRequest)
            usage = bool(req.stream_options and req.stream_options.get("include_usage"))
            key = (req.model, bool(req.stream), usage)
            found = _cache.get(key)
            if found is None:
                found = stream(req.model, usage) if req.stream else completion(req.model)
                if len(_cache) < 100:
                    _cache[key] = found
            return found
        if method == b"POST" and path == b"/v1/embeddings":
            req = msgspec.json.decode(body, type=EmbeddingsRequest)
            return embeddings(req.model, req.input)
    except msgspec.DecodeError as exc:
        return _error(b"400 Bad Request", f"bad JSON body: {exc}")
    if method == b"GET" and path == b"/v1/models":
        return MODELS
    return _error(b"404 Not Found", f"no route {method.decode()} {path.decode(errors='replace')}")


class StubProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive (and pipelining: answers go out in request order)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(_error(b"400 Bad Request", "malformed HTTP request"))
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url, self.body = b"", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.transport.write(answer(self.parser.get_method(), self.url, b"".join(self.body)))
        if not self.parser.should_keep_alive():
            self.transport.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(StubProtocol, host, port, backlog=1024)
    print(f"upstream stub on http://{host}:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000)
    args = p.parse_args()
    try:
        from uvloop import run
    except ImportError:  # plain asyncio is a little slower, still far faster than a gateway
        run = asyncio.run
    try:
        run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
