"""The Host header check: answer only to the names this deployment is reached by.

A page on another site can make a browser send requests to 127.0.0.1 under
a name its own DNS resolves there (DNS rebinding); checking Host stops
that. Litestar has an allowed-hosts middleware, but it compares the header
with its port, answers in a body of its own, and would sit behind the
ingest fast path; this check runs in front of everything, in the API's
error body.
"""

from __future__ import annotations

from typing import Any

from flywheel.server.asgi import respond_error


def host_name(header: bytes) -> str:
    """The name part of a Host header: `[::1]:8000` -> `::1`, `Example.com:80` -> `example.com`."""
    text = header.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1:text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


class HostCheck:
    """ASGI wrapper refusing requests whose Host is not in `allowed` (400 `invalid_host`)."""

    def __init__(self, app: Any, allowed: list[str]) -> None:
        self.app = app
        names = {name.strip().lower().strip("[]") for name in allowed}
        self.any = "*" in names
        self.exact = {n for n in names if not n.startswith("*.")}
        self.suffixes = tuple(n[1:] for n in names if n.startswith("*."))  # "*.example.com" -> ".example.com"

    def allows(self, header: bytes | None) -> bool:
        if header is None:
            return False  # HTTP/1.1 requires Host; HTTP/1.0 clients without one are not ours
        name = host_name(header)
        return name in self.exact or (bool(self.suffixes) and name.endswith(self.suffixes))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self.any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = next((value for name, value in scope["headers"] if name == b"host"), None)
        if self.allows(header):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await respond_error(send, 400, "invalid_host",
                            "this server does not answer to that Host; set FLYWHEEL_ALLOWED_HOSTS", "header.Host")
