"""`Idempotency-Key` for every write endpoint.

A client that retries a POST (a timeout, a dropped connection) sends the
same `Idempotency-Key` header. The first response for an (API key,
Idempotency-Key) pair is kept for 24 hours: the same request again gets
that response (with `Idempotent-Replayed: true`) without running the
handler twice; the same Idempotency-Key with anything else is refused
(422), and while the first request still runs, a second one gets 409.

Responses belong to the API key that made the request, never to its whole
tenant: a stored answer (a new key's secret, say) is not replayed to
another key. The caller's scope is checked before anything is claimed or
replayed, so a key without the route's scope gets the usual 403 and
nothing is stored; 401/403 answers are never stored either.

Responses of 5xx, 409 and 429 are not kept: those are worth retrying. If
Postgres is unavailable the request runs without the guarantee (logged);
events stay deduplicated by their `event_id` anyway.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from flywheel.server.asgi import BodyTooLarge, read_body, replay, respond_error
from flywheel.server.auth.middleware import required_scope

log = structlog.get_logger("flywheel.idempotency")

HEADER = b"idempotency-key"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces
_NOT_KEPT = {401, 403, 409, 429}
_FIELD = "header.Idempotency-Key"


def idempotency_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        key = _idempotency_key(scope)
        if key is None:
            await app(scope, receive, send)
            return
        if not _VALID_KEY.match(key):
            await respond_error(send, 400, "invalid_idempotency_key",
                                "Idempotency-Key must be 1-200 printable ASCII characters", _FIELD)
            return
        limit = scope["app"].state.flywheel.settings.max_body_bytes
        try:
            chunks = await read_body(receive, limit)
        except BodyTooLarge:
            await respond_error(send, 413, "body_too_large", f"request body exceeds {limit} bytes")
            return
        if chunks is not None:
            await _run_once(app, scope, replay(chunks, receive), send, key, b"".join(chunks))

    return middleware


def _idempotency_key(scope: Scope) -> str | None:
    """The Idempotency-Key of a write by a caller allowed to make it, else None (no guarantee needed).

    A caller without the route's scope is answered 403 by the scope guard as
    usual: checked here first, nothing it sends is claimed, stored or replayed.
    """
    if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
        return None
    principal = scope.get("user")
    raw = dict(scope["headers"]).get(HEADER)
    handler = scope.get("route_handler")
    if raw is None or principal is None or handler is None or not hasattr(principal, "allows"):
        return None
    if handler.opt.get("public") or not principal.allows(required_scope(handler, scope["method"])):
        return None
    return raw.decode("latin-1")


async def _run_once(app: ASGIApp, scope: Scope, receive: Receive, send: Send, key: str, body: bytes) -> None:
    """Run the request unless this key already has an answer; keep the answer if it is worth keeping."""
    path = scope["path"] + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
    digest = hashlib.sha256(scope["method"].encode() + b" " + path.encode() + b"\n" + body).digest()
    db = scope["app"].state.flywheel.db
    owner = (scope["user"].tenant_id, scope["user"].key_id, key)
    try:
        stored = await _claim(db, owner, scope["method"], path, digest)
    except Exception as exc:  # Postgres away: run without the guarantee rather than refuse the write
        log.warning("idempotency store unavailable; running request without it", error=type(exc).__name__)
        await app(scope, receive, send)
        return
    if stored is not None:
        await _answer_stored(send, stored, scope["method"], path, digest)
        return
    captured = _Capture(send)
    try:
        await app(scope, receive, captured)
    except BaseException:
        await _release(db, owner)
        raise
    if captured.status >= 500 or captured.status in _NOT_KEPT:
        await _release(db, owner)
    else:
        await _record(db, owner, captured)


class _Capture:
    """A `send` that passes messages on and keeps the response's status, type and body."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500
        self.content_type: str | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.content_type = dict(message.get("headers", [])).get(b"content-type", b"").decode()
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
        await self.send(message)


async def _claim(db: Any, owner: tuple, method: str, path: str, digest: bytes):
    """Insert a placeholder for this key, or return the row already there."""
    async with db.acquire() as conn, conn.transaction():
        # An expired record (over 24 h) no longer counts: the key may be reused.
        await conn.execute("""DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key_id = $2 AND key = $3
                              AND created_at < now() - interval '24 hours'""", *owner)
        inserted = await conn.fetchval(
            """INSERT INTO idempotency_keys (tenant_id, key_id, key, method, path, body_sha256)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, key_id, key) DO NOTHING RETURNING 1""",
            *owner, method, path, digest)
        if inserted:
            return None
        return await conn.fetchrow(
            "SELECT method, path, body_sha256, status, content_type, response FROM idempotency_keys "
            "WHERE tenant_id = $1 AND key_id = $2 AND key = $3", *owner)


async def _answer_stored(send: Send, row: Any, method: str, path: str, digest: bytes) -> None:
    if row["method"] != method or row["path"] != path or bytes(row["body_sha256"]) != digest:
        await respond_error(send, 422, "idempotency_key_reused",
                            "this Idempotency-Key was used with a different request; use a new key", _FIELD)
    elif row["status"] is None:
        await respond_error(send, 409, "idempotency_in_progress",
                            "a request with this Idempotency-Key is still running; retry shortly", _FIELD,
                            [(b"retry-after", b"1")])
    else:
        headers = [(b"idempotent-replayed", b"true")]
        content_type = (row["content_type"] or "application/json").encode()
        await send({"type": "http.response.start", "status": row["status"],
                    "headers": [(b"content-type", content_type), *headers,
                                (b"content-length", str(len(row["response"] or b"")).encode())]})
        await send({"type": "http.response.body", "body": bytes(row["response"] or b"")})


async def _record(db: Any, owner: tuple, captured: _Capture) -> None:
    try:
        await db.execute(
            """UPDATE idempotency_keys SET status = $4, content_type = $5, response = $6
               WHERE tenant_id = $1 AND key_id = $2 AND key = $3""",
            *owner, captured.status, captured.content_type, b"".join(captured.chunks))
    except Exception:
        log.warning("could not record idempotent response", exc_info=True)


async def _release(db: Any, owner: tuple) -> None:
    try:
        await db.execute("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key_id = $2 AND key = $3 "
                         "AND status IS NULL", *owner)
    except Exception:
        log.warning("could not release idempotency key", exc_info=True)

