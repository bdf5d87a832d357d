"""Tenants and keys in Postgres: creation, listing, revocation, lookup."""

from __future__ import annotations

import asyncio
import time
import uuid
from uuid import UUID

import asyncpg

from flywheel.contracts.tenants import ApiKeyCreated, ApiKeyRead, Scope, TenantRead
from flywheel.server.auth.keys import matches, new_key, parse_key
from flywheel.server.auth.principal import Principal
from flywheel.server.db.pool import UNAVAILABLE, bounded
from flywheel.server.errors import Conflict, NotFound, Unavailable

_KEY_COLUMNS = "id, name, prefix, scopes, created_at, revoked_at"


async def create_tenant(db: asyncpg.Pool | asyncpg.Connection, name: str) -> TenantRead:
    try:
        row = await db.fetchrow(
            "INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING id, name, created_at", uuid.uuid4(), name)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a tenant named {name!r} already exists", field="name") from None
    return TenantRead(**row)


async def get_tenant(db, tenant_id: UUID) -> TenantRead:
    row = await db.fetchrow("SELECT id, name, created_at FROM tenants WHERE id = $1", tenant_id)
    if row is None:
        raise NotFound("no such tenant")
    return TenantRead(**row)


async def find_tenant(db, name_or_id: str) -> TenantRead:
    try:
        row = await db.fetchrow("SELECT id, name, created_at FROM tenants WHERE id = $1", UUID(name_or_id))
    except ValueError:
        row = await db.fetchrow("SELECT id, name, created_at FROM tenants WHERE name = $1", name_or_id)
    if row is None:
        raise NotFound(f"no tenant {name_or_id!r}")
    return TenantRead(**row)


async def list_tenants(db) -> list[TenantRead]:
    return [TenantRead(**r) for r in await db.fetch("SELECT id, name, created_at FROM tenants ORDER BY name")]


def _key(row) -> ApiKeyRead:
    return ApiKeyRead(id=row["id"], name=row["name"], prefix=row["prefix"],
                      scopes=[Scope(s) for s in row["scopes"]], created_at=row["created_at"],
                      revoked_at=row["revoked_at"])


async def create_key(db, tenant_id: UUID, name: str, scopes: list[Scope]) -> ApiKeyCreated:
    key, prefix, secret_hash = new_key()
    row = await db.fetchrow(
        f"""INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, scopes)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_KEY_COLUMNS}""",
        uuid.uuid4(), tenant_id, name, prefix, secret_hash, sorted({s.value for s in scopes}),
    )
    return ApiKeyCreated(key=_key(row), secret=key)


async def list_keys(db, tenant_id: UUID) -> list[ApiKeyRead]:
    rows = await db.fetch(
        f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id", tenant_id)
    return [_key(r) for r in rows]


async def revoke_key(db, tenant_id: UUID, key_id: UUID) -> ApiKeyRead:
    row = await db.fetchrow(
        f"""UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
            WHERE id = $1 AND tenant_id = $2 RETURNING {_KEY_COLUMNS}""", key_id, tenant_id)
    if row is None:
        raise NotFound("no such key")
    return _key(row)


class KeyCache:
    """Resolves keys to principals, caching hits briefly.

    Ingestion sends thousands of requests a second with the same key; a
    database round trip per request would cost more than the work. A hit
    older than `ttl_s` is still answered at once while one background lookup
    per key refreshes it, so a slow or hung Postgres never holds a request
    with a known key: revocation takes effect within `ttl_s` plus that
    lookup, on every replica (at once on the replica that revoked).
    """

    # While Postgres is unavailable, keys seen recently keep working (so that
    # ingestion can spool) for at most this long; unknown keys get 503.
    STALE_OK_S = 900.0
    LOOKUP_TIMEOUT_S = 2.0

    def __init__(self, ttl_s: float = 5.0, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._hits: dict[str, tuple[float, Principal]] = {}
        self._refreshing: dict[str, asyncio.Task] = {}

    async def resolve(self, db, key: str) -> Principal | None:
        now = time.monotonic()
        hit = self._hits.get(key)
        if hit is not None:
            age = now - hit[0]
            if age < self.ttl_s:
                return hit[1]
            if age < self.STALE_OK_S:
                self._refresh_later(db, key)
                return hit[1]
        try:
            return await self._lookup(db, key)
        except UNAVAILABLE as exc:
            raise Unavailable("the key store is unavailable; retry shortly", headers={"Retry-After": "2"}) from exc

    def _refresh_later(self, db, key: str) -> None:
        if key in self._refreshing:
            return
        task = asyncio.get_running_loop().create_task(self._refresh(db, key))
        self._refreshing[key] = task

    async def _refresh(self, db, key: str) -> None:
        try:
            await self._lookup(db, key)
        except UNAVAILABLE:
            pass  # keep the stale hit until STALE_OK_S; the next request tries again
        finally:
            self._refreshing.pop(key, None)

    async def _lookup(self, db, key: str) -> Principal | None:
        principal = await lookup_key(db, key, self.LOOKUP_TIMEOUT_S)
        if principal is None:
            self._hits.pop(key, None)
            return None
        if len(self._hits) >= self.max_entries:
            self._hits.clear()
        self._hits[key] = (time.monotonic(), principal)
        return principal

    def forget(self) -> None:
        self._hits.clear()


_KEY_LOOKUP = "SELECT id, tenant_id, secret_hash, scopes FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL"


async def lookup_key(db, key: str, deadline_s: float | None = None) -> Principal | None:
    """The principal of a live API key, read from Postgres now (no cache); None for an unknown,
    revoked or mistyped key. With `deadline_s`, a lookup Postgres does not answer in time
    raises (a TimeoutError) instead of waiting."""
    parsed = parse_key(key)
    if parsed is None:
        return None
    prefix, secret = parsed
    if deadline_s is None:
        row = await db.fetchrow(_KEY_LOOKUP, prefix)
    elif isinstance(db, asyncpg.Pool):
        async with bounded(db, deadline_s) as conn:
            row = await conn.fetchrow(_KEY_LOOKUP, prefix)
    else:
        row = await db.fetchrow(_KEY_LOOKUP, prefix, timeout=deadline_s)
    if row is None or not matches(secret, row["secret_hash"]):
        return None
    return Principal(row["tenant_id"], row["id"], frozenset(Scope(s) for s in row["scopes"]))
