"""Small ASGI helpers for the code that runs in front of Litestar's handlers.

The ingest fast path, the input guard and the idempotency middleware all
read a whole request body, answer with a JSON error, or hand a body they
already read to the app; they share these.
"""

from __future__ import annotations

from typing import Any

import msgspec

from flywheel.contracts.errors import ErrorBody

JSON_HEADER = (b"content-type", b"application/json")


class BodyTooLarge(Exception):
    """The body grew past the limit; `chunks` holds what was read so far."""

    def __init__(self, chunks: list[bytes], more: bool) -> None:
        super().__init__("request body too large")
        self.chunks = chunks
        self.more = more


async def read_body(receive: Any, limit: int) -> list[bytes] | None:
    """The body's chunks, or None when the client went away.

    Raises BodyTooLarge past `limit` bytes, with what was read, so a caller
    can still hand the request on (`replay`) for the app to answer 413.
    """
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
        if size > limit:
            raise BodyTooLarge(chunks, more)
        if not more:
            return chunks


def replay(chunks: list[bytes], receive: Any, *, more: bool = False) -> Any:
    """A `receive` that hands out what was read already, then reads on."""
    pending = list(chunks)

    async def replayed() -> dict:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending) or more}
        return await receive()

    return replayed


async def respond(send: Any, status: int, body: bytes, headers: list | None = None) -> None:
    """Send a whole response: `headers` are added after the content type and length."""
    await send({"type": "http.response.start", "status": status,
                "headers": [JSON_HEADER, (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def respond_error(send: Any, status: int, code: str, message: str, field: str | None = None,
                        headers: list | None = None) -> None:
    """Answer with the API's error body (`ErrorBody`), as the exception handlers render it."""
    body = msgspec.json.encode(ErrorBody(status=status, code=code, message=message, field=field))
    await respond(send, status, body, headers)
