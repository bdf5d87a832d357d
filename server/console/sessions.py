"""Console sessions in Postgres: opened with an API key, carried by a cookie.

The cookie holds a random 256-bit id; the table holds its SHA-256, the
tenant and the key. A session is looked up on every console request with
one indexed join that also checks the key is not revoked, so revoking a key
ends its sessions at once, on every replica, with no cache to invalidate.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from flywheel.contracts.tenants import Scope
from flywheel.server.auth.principal import Principal
from flywheel.server.auth.service import lookup_key

COOKIE = "flywheel_session"
COOKIE_PATH = "/console"
LIFETIME = timedelta(hours=12)

_LOOKUP = """
SELECT s.tenant_id, s.key_id, s.expires_at, t.name AS tenant_name, k.name AS key_name, k.prefix, k.scopes
FROM console_sessions s
JOIN api_keys k ON k.id = s.key_id AND k.tenant_id = s.tenant_id AND k.revoked_at IS NULL
JOIN tenants t ON t.id = s.tenant_id
WHERE s.id_hash = $1 AND s.expires_at > now()
"""


@dataclass(frozen=True)
class ConsoleSession:
    """The signed-in caller of a console page (``request.auth``)."""

    tenant_id: UUID
    tenant_name: str
    key_id: UUID
    key_name: str
    key_prefix: str
    scopes: frozenset[Scope]
    expires_at: datetime

    @property
    def principal(self) -> Principal:
        return Principal(self.tenant_id, self.key_id, self.scopes)


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


async def check_key(db, key: str) -> Principal | None:
    """The principal of a live API key, read fresh (a sign-in never trusts a cache)."""
    return await lookup_key(db, key)


async def open_session(db, principal: Principal) -> str:
    """A new session for `principal`; returns the id for the cookie (never stored)."""
    session_id = secrets.token_urlsafe(32)
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM console_sessions WHERE expires_at <= now()")
        await conn.execute(
            """INSERT INTO console_sessions (id_hash, tenant_id, key_id, expires_at)
               VALUES ($1, $2, $3, now() + $4::interval)""",
            _hash(session_id), principal.tenant_id, principal.key_id, LIFETIME)
    return session_id


async def find_session(db, session_id: str | None) -> ConsoleSession | None:
    if not session_id or len(session_id) > 100:
        return None
    row = await db.fetchrow(_LOOKUP, _hash(session_id))
    if row is None:
        return None
    return ConsoleSession(tenant_id=row["tenant_id"], tenant_name=row["tenant_name"], key_id=row["key_id"],
                          key_name=row["key_name"], key_prefix=row["prefix"],
                          scopes=frozenset(Scope(s) for s in row["scopes"]), expires_at=row["expires_at"])


async def close_session(db, session_id: str | None) -> None:
    if session_id:
        await db.execute("DELETE FROM console_sessions WHERE id_hash = $1", _hash(session_id))
