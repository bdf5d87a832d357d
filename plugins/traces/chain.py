"""The hash chain: each event's hash is HMAC-SHA256(tenant key, previous hash + canonical event bytes).

The key is the tenant's, made on first use (32 random bytes) and stored
sealed with FLYWHEEL_SECRET_KEY. Rotating it makes a new active version;
old versions stay (still sealed) so events chained under them still verify:
each event records the version that chained it. The chain starts from a
hash of the trace id, so events cannot be moved between traces either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any
from uuid import UUID

import msgspec

from flywheel.server.plugin_api import AppState, open_secret, seal_secret

_ACTIVE = "SELECT version, sealed FROM traces_chain_keys WHERE tenant_id = $1 AND active"
_ALL = "SELECT version, sealed FROM traces_chain_keys WHERE tenant_id = $1"
_CREATE = """INSERT INTO traces_chain_keys (tenant_id, version, sealed) VALUES ($1, 1, $2)
             ON CONFLICT DO NOTHING"""
_CACHE = "traces.chain_keys"

canonical = msgspec.json.Encoder(order="sorted").encode


def genesis(trace_id: UUID) -> bytes:
    return hashlib.sha256(b"flywheel.traces.chain:" + trace_id.bytes).digest()


def link(key: bytes, previous: bytes, body: bytes) -> bytes:
    return hmac.new(key, previous + body, hashlib.sha256).digest()


def _open(state: AppState, tenant_id: UUID, version: int, sealed: str) -> bytes:
    # Opening a Fernet token costs ~50 µs; chunks arrive often, so opened keys are kept per process.
    cache: dict[tuple[UUID, int], bytes] = state.extras.setdefault(_CACHE, {})
    key = cache.get((tenant_id, version))
    if key is None:
        key = cache[(tenant_id, version)] = base64.b64decode(open_secret(state, sealed))
    return key


async def active_key(state: AppState, conn: Any, tenant_id: UUID) -> tuple[int, bytes]:
    row = await conn.fetchrow(_ACTIVE, tenant_id)
    if row is None:
        sealed = seal_secret(state, base64.b64encode(secrets.token_bytes(32)).decode())
        await conn.execute(_CREATE, tenant_id, sealed)
        row = await conn.fetchrow(_ACTIVE, tenant_id)
    return row["version"], _open(state, tenant_id, row["version"], row["sealed"])


async def all_keys(state: AppState, conn: Any, tenant_id: UUID) -> dict[int, bytes]:
    return {r["version"]: _open(state, tenant_id, r["version"], r["sealed"])
            for r in await conn.fetch(_ALL, tenant_id)}


async def rotate(state: AppState, tenant_id: UUID) -> int:
    """A new active key; events chained from now on use it. Returns its version."""
    sealed = seal_secret(state, base64.b64encode(secrets.token_bytes(32)).decode())
    async with state.db.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('traces.chain_keys:' || $1))", str(tenant_id))
        current = await conn.fetchval("SELECT max(version) FROM traces_chain_keys WHERE tenant_id = $1",
                                      tenant_id) or 0
        await conn.execute("UPDATE traces_chain_keys SET active = false WHERE tenant_id = $1", tenant_id)
        await conn.execute("INSERT INTO traces_chain_keys (tenant_id, version, sealed) VALUES ($1, $2, $3)",
                           tenant_id, current + 1, sealed)
    return current + 1
