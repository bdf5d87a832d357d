"""`Idempotency-Key` for every write endpoint.

A client that retries a POST (a timeout, a dropped connection) sends the
same `Idempotency-Key` header. The first response for a (tenant, key) is
kept for 24 hours: the same key with the same method, path and body gets
that response again (with `Idempotent-Replayed: true`), without running the
handler twice; the same key with anything else is refused (422), and while
the first request still runs, a second one gets 409.

Responses of 5xx, 409 and 429 are not kept: those are worth retrying. If
Postgres is unavailable the request runs without the guarantee (logged);
events stay deduplicated by their `event_id` anyway.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec
import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from flywheel.contracts.errors import ErrorBody

log = structlog.get_logger("flywheel.idempotency")

HEADER = b"idempotency-key"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces
_NOT_KEPT = {409, 429}


def _error(status: int, code: str, message: str, headers: list | None = None) -> tuple[int, list, bytes]:
    body = msgspec.json.encode(ErrorBody(status=status, code=code, message=message, field="header.Idempotency-Key"))
    return status, [(b"content-type", b"application/json"), *(headers or [])], body


async def _respond(send: Send, status: int, headers: list, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def idempotency_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await app(scope, receive, send)
            return
        key = dict(scope["headers"]).get(HEADER)
        principal = scope.get("user")
        if key is None or principal is None:
            await app(scope, receive, send)
            return
        key_text = key.decode("latin-1")
        if not _VALID_KEY.match(key_text):
            await _respond(send, *_error(400, "invalid_idempotency_key",
                                         "Idempotency-Key must be 1-200 printable ASCII characters"))
            return

        # Read the whole body (to hash it), then hand the same bytes to the app.
        chunks, size = [], 0
        limit = scope["app"].state.flywheel.settings.max_body_bytes
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                body = msgspec.json.encode(ErrorBody(status=413, code="body_too_large",
                                                     message=f"request body exceeds {limit} bytes"))
                await _respond(send, 413, [(b"content-type", b"application/json")], body)
                return
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        path = scope["path"] + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
        digest = hashlib.sha256(scope["method"].encode() + b" " + path.encode() + b"\n" + body).digest()
        db = scope["app"].state.flywheel.db
        tenant_id = principal.tenant_id
        try:
            stored = await _claim(db, tenant_id, key_text, scope["method"], path, digest)
        except Exception as exc:  # Postgres away: run without the guarantee rather than refuse the write
            log.warning("idempotency store unavailable; running request without it", error=type(exc).__name__)
            await app(scope, replay_receive, send)
            return
        if stored is not None:
            await _answer_stored(send, stored, scope["method"], path, digest)
            return

        status_holder: dict[str, Any] = {}
        response_chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["content_type"] = dict(message.get("headers", [])).get(b"content-type", b"").decode()
            elif message["type"] == "http.response.body":
                response_chunks.append(message.get("body", b""))
            await send(message)

        try:
            await app(scope, replay_receive, capture)
        except BaseException:
            await _release(db, tenant_id, key_text)
            raise
        status = status_holder.get("status", 500)
        if status >= 500 or status in _NOT_KEPT:
            await _release(db, tenant_id, key_text)
        else:
            try:
                await db.execute(
                    """UPDATE idempotency_keys SET status = $3, content_type = $4, response = $5
                       WHERE tenant_id = $1 AND key = $2""",
                    tenant_id, key_text, status, status_holder.get("content_type"), b"".join(response_chunks))
            except Exception:
                log.warning("could not record idempotent response", exc_info=True)

    return middleware


async def _claim(db, tenant_id, key: str, method: str, path: str, digest: bytes):
    """Insert a placeholder for this key, or return the row already there."""
    async with db.acquire() as conn, conn.transaction():
        # An expired record (over 24 h) no longer counts: the key may be reused.
        await conn.execute("""DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2
                              AND created_at < now() - interval '24 hours'""", tenant_id, key)
        inserted = await conn.fetchval(
            """INSERT INTO idempotency_keys (tenant_id, key, method, path, body_sha256)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, key) DO NOTHING RETURNING 1""",
            tenant_id, key, method, path, digest)
        if inserted:
            return None
        return await conn.fetchrow(
            "SELECT method, path, body_sha256, status, content_type, response FROM idempotency_keys "
            "WHERE tenant_id = $1 AND key = $2", tenant_id, key)


async def _answer_stored(send: Send, row, method: str, path: str, digest: bytes) -> None:
    if row["method"] != method or row["path"] != path or bytes(row["body_sha256"]) != digest:
        await _respond(send, *_error(422, "idempotency_key_reused",
                                     "this Idempotency-Key was used with a different request; use a new key"))
    elif row["status"] is None:
        await _respond(send, *_error(409, "idempotency_in_progress",
                                     "a request with this Idempotency-Key is still running; retry shortly",
                                     [(b"retry-after", b"1")]))
    else:
        headers = [(b"idempotent-replayed", b"true")]
        if row["content_type"]:
            headers.append((b"content-type", row["content_type"].encode()))
        await _respond(send, row["status"], headers, bytes(row["response"] or b""))


async def _release(db, tenant_id, key: str) -> None:
    try:
        await db.execute("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND status IS NULL",
                         tenant_id, key)
    except Exception:
        log.warning("could not release idempotency key", exc_info=True)
