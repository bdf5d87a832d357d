"""Policies in Postgres: create, read, change and delete them, every change audited.

Credentials are sealed (`seal_secret`) before any SQL runs, so a server
without FLYWHEEL_SECRET_KEY refuses the change before anything is written.
Reads never select the sealed columns: a policy comes out as `PolicyRead`
(`has_api_key`, `header_names`), and that is also what the audit log holds.
The API and the CLI both call these functions; `actor` is the API key that
made the change, None for the CLI.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import msgspec

from flywheel.contracts.errors import ErrorDetail
from flywheel.plugins.rlaas.policy_types import (
    AuditEntry,
    AuditPage,
    PolicyCreate,
    PolicyPage,
    PolicyRead,
    PolicyUpdate,
    Upstream,
    UpstreamRead,
)
from flywheel.plugins.rlaas.routing import forget
from flywheel.plugins.rlaas.runtime import settings_of
from flywheel.plugins.rlaas.settings import upstream_url_problem
from flywheel.server.plugin_api import (
    Conflict,
    InvalidInput,
    NotFound,
    decode_cursor,
    encode_cursor,
    open_secret,
    seal_secret,
)

_READ = ("id, route, name, version, status, base_url, upstream_model, adapter_id, header_names,"
         " api_key_sealed IS NOT NULL AS has_api_key, canary_share, description, created_at, updated_at")
# A route has at most one policy in each of these statuses (partial unique indexes in 0001_policies.sql).
ONE_PER_ROUTE = {"active": "active_exists", "canary": "canary_exists"}
_CONSTRAINTS = {"rlaas_policies_one_active": "active_exists", "rlaas_policies_one_canary": "canary_exists",
                "rlaas_policies_tenant_id_route_name_version_key": "policy_exists"}
# Headers the gateway's HTTP client sets itself: a policy setting them would break or redirect the call.
RESERVED_HEADERS = {"host", "content-length", "content-type", "content-encoding", "transfer-encoding", "connection",
                    "keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-connection", "expect"}


def policy_read(row: Any) -> PolicyRead:
    return PolicyRead(
        id=row["id"], route=row["route"], name=row["name"], version=row["version"], status=row["status"],
        upstream=UpstreamRead(base_url=row["base_url"], model=row["upstream_model"], adapter_id=row["adapter_id"],
                              has_api_key=row["has_api_key"], header_names=list(row["header_names"])),
        canary_share=row["canary_share"], description=row["description"], created_at=row["created_at"],
        updated_at=row["updated_at"])


# -- validation and sealing ------------------------------------------------------------------


def check_upstream(state: Any, upstream: Upstream) -> None:
    problem = upstream_url_problem(upstream.base_url, settings_of(state).upstream_hosts)
    if problem:
        raise InvalidInput(problem, field="$.upstream.base_url")
    seen: set[str] = set()
    for name in upstream.headers:
        lower = name.lower()
        if lower in RESERVED_HEADERS:
            raise InvalidInput(f"the gateway sets {name} itself", field=f"$.upstream.headers.{name}")
        if lower == "authorization" and upstream.api_key is not None:
            raise InvalidInput("give `api_key` or an Authorization header, not both",
                               field=f"$.upstream.headers.{name}")
        if lower in seen:
            raise InvalidInput(f"header {name} is given twice (names are case-insensitive)",
                               field=f"$.upstream.headers.{name}")
        seen.add(lower)


def check_share(status: str, share: float | None) -> None:
    if status == "canary" and share is None:
        raise InvalidInput("a canary needs `canary_share`, its share of the route's traffic", field="$.canary_share")
    if status != "canary" and share is not None:
        raise InvalidInput("only a canary has a `canary_share`", field="$.canary_share")


def seal(state: Any, upstream: Upstream) -> tuple[str | None, str | None, list[str]]:
    """(api_key_sealed, headers_sealed, header_names); Unavailable when secrets are given and no key is set."""
    api_key = seal_secret(state, upstream.api_key) if upstream.api_key is not None else None
    headers = seal_secret(state, json.dumps(upstream.headers)) if upstream.headers else None
    return api_key, headers, sorted(upstream.headers)


# -- changes ---------------------------------------------------------------------------------


async def create(state: Any, tenant_id: UUID, actor: UUID | None, data: PolicyCreate, *,
                 replace: bool = False) -> PolicyRead:
    """A new policy. With `replace`, the route's current active (or canary) policy is retired in the same
    transaction when the new one takes its status; without, that is a Conflict."""
    check_upstream(state, data.upstream)
    check_share(data.status, data.canary_share)
    api_key, headers, names = seal(state, data.upstream)
    up = data.upstream
    async with state.db.acquire() as conn, conn.transaction():
        await _make_room(conn, tenant_id, actor, data.route, data.status, None, replace)
        try:
            row = await conn.fetchrow(
                f"""INSERT INTO rlaas_policies (id, tenant_id, route, name, version, status, base_url, upstream_model,
                        adapter_id, headers_sealed, header_names, api_key_sealed, canary_share, description)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING {_READ}""",
                uuid4(), tenant_id, data.route, data.name, data.version, data.status, up.base_url, up.model,
                up.adapter_id, headers, names, api_key, data.canary_share, data.description)
        except asyncpg.UniqueViolationError as exc:
            raise _conflict(exc, data.route, data.name, data.version) from None
        after = policy_read(row)
        await _audit(conn, tenant_id, after.id, "create", actor, None, after)
    forget(state, tenant_id)
    return after


async def update(state: Any, tenant_id: UUID, actor: UUID | None, policy_id: UUID, change: PolicyUpdate, *,
                 replace: bool = False) -> PolicyRead:
    """Change a policy's status, share, upstream or description (fields left None stay as they are)."""
    up = change.upstream
    if up is not None:
        check_upstream(state, up)
    api_key, headers, names = seal(state, up) if up is not None else (None, None, [])
    async with state.db.acquire() as conn, conn.transaction():
        before = await _locked(conn, tenant_id, policy_id)
        status = change.status or before.status
        share = change.canary_share if change.canary_share is not None else (
            before.canary_share if status == "canary" else None)
        check_share(status, share)
        await _make_room(conn, tenant_id, actor, before.route, status, policy_id, replace)
        try:
            row = await conn.fetchrow(
                f"""UPDATE rlaas_policies SET status = $3, canary_share = $4, description = coalesce($5, description),
                        base_url = CASE WHEN $6 THEN $7 ELSE base_url END,
                        upstream_model = CASE WHEN $6 THEN $8 ELSE upstream_model END,
                        adapter_id = CASE WHEN $6 THEN $9 ELSE adapter_id END,
                        api_key_sealed = CASE WHEN $6 THEN $10 ELSE api_key_sealed END,
                        headers_sealed = CASE WHEN $6 THEN $11 ELSE headers_sealed END,
                        header_names = CASE WHEN $6 THEN $12::text[] ELSE header_names END, updated_at = now()
                    WHERE tenant_id = $1 AND id = $2 RETURNING {_READ}""",
                tenant_id, policy_id, status, share, change.description, up is not None,
                up.base_url if up else None, up.model if up else None, up.adapter_id if up else None,
                api_key, headers, names)
        except asyncpg.UniqueViolationError as exc:
            raise _conflict(exc, before.route, before.name, before.version) from None
        after = policy_read(row)
        await _audit(conn, tenant_id, policy_id, "update", actor, before, after)
    forget(state, tenant_id)
    return after


async def delete(state: Any, tenant_id: UUID, actor: UUID | None, policy_id: UUID) -> PolicyRead:
    """Delete a policy whatever its status (deleting the active one leaves the route unserved); the audit
    log keeps its history."""
    async with state.db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(f"DELETE FROM rlaas_policies WHERE tenant_id = $1 AND id = $2 RETURNING {_READ}",
                                  tenant_id, policy_id)
        if row is None:
            raise NotFound("no such policy")
        before = policy_read(row)
        await _audit(conn, tenant_id, policy_id, "delete", actor, before, None)
    forget(state, tenant_id)
    return before


async def _locked(conn: Any, tenant_id: UUID, policy_id: UUID) -> PolicyRead:
    row = await conn.fetchrow(f"SELECT {_READ} FROM rlaas_policies WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                              tenant_id, policy_id)
    if row is None:
        raise NotFound("no such policy")  # never echo the id: it looks the same whoever owns it
    return policy_read(row)


async def _make_room(conn: Any, tenant_id: UUID, actor: UUID | None, route: str, status: str,
                     policy_id: UUID | None, replace: bool) -> None:
    """Before a policy takes `status` on `route`: retire the one holding it (`replace`), or refuse."""
    code = ONE_PER_ROUTE.get(status)
    if code is None:
        return
    row = await conn.fetchrow(
        f"""SELECT {_READ} FROM rlaas_policies WHERE tenant_id = $1 AND route = $2 AND status = $3
              AND id IS DISTINCT FROM $4 FOR UPDATE""", tenant_id, route, status, policy_id)
    if row is None:
        return
    held = policy_read(row)
    if not replace:
        raise Conflict(f"policy {held.name} v{held.version} ({held.id}) is already {status} on route {route!r}: "
                       "retire it first, or send replace=true to retire it in the same change", code=code,
                       details=[ErrorDetail(code=code, message=f"{held.name} v{held.version}", field=str(held.id))])
    retired = policy_read(await conn.fetchrow(
        f"""UPDATE rlaas_policies SET status = 'retired', canary_share = NULL, updated_at = now()
            WHERE tenant_id = $1 AND id = $2 RETURNING {_READ}""", tenant_id, held.id))
    await _audit(conn, tenant_id, held.id, "update", actor, held, retired)


def _conflict(exc: asyncpg.UniqueViolationError, route: str, name: str, version: int) -> Conflict:
    """A unique index caught what the checks above did not see yet (a concurrent change)."""
    code = _CONSTRAINTS.get(exc.constraint_name or "", "conflict")
    if code == "policy_exists":
        return Conflict(f"route {route!r} already has policy {name} v{version}", code=code)
    return Conflict(f"another policy of route {route!r} took that status at the same time: try again", code=code)


async def _audit(conn: Any, tenant_id: UUID, policy_id: UUID, action: str, actor: UUID | None,
                 before: PolicyRead | None, after: PolicyRead | None) -> None:
    # PolicyRead, never the request: it has no field a secret could be in.
    await conn.execute(
        "INSERT INTO rlaas_policy_audit (tenant_id, policy_id, action, actor_key_id, before, after)"
        " VALUES ($1, $2, $3, $4, $5, $6)", tenant_id, policy_id, action, actor, before, after)


# -- reads -----------------------------------------------------------------------------------


async def get(db: Any, tenant_id: UUID, policy_id: UUID) -> PolicyRead:
    row = await db.fetchrow(f"SELECT {_READ} FROM rlaas_policies WHERE tenant_id = $1 AND id = $2",
                            tenant_id, policy_id)
    if row is None:
        raise NotFound("no such policy")
    return policy_read(row)


async def list_policies(db: Any, tenant_id: UUID, *, route: str | None = None, status: str | None = None,
                        limit: int = 50, cursor: str | None = None) -> PolicyPage:
    """Newest first."""
    after = decode_cursor(cursor, datetime, UUID) if cursor else (None, None)
    rows = await db.fetch(
        f"""SELECT {_READ} FROM rlaas_policies
            WHERE tenant_id = $1 AND ($2::text IS NULL OR route = $2) AND ($3::text IS NULL OR status = $3)
              AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid))
            ORDER BY created_at DESC, id DESC LIMIT $6""", tenant_id, route, status, *after, limit + 1)
    items = [policy_read(r) for r in rows[:limit]]
    last = items[-1] if len(rows) > limit else None
    return PolicyPage(items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None)


async def list_audit(db: Any, tenant_id: UUID, *, policy_id: UUID | None = None, limit: int = 50,
                     cursor: str | None = None) -> AuditPage:
    """Newest first; `policy_id` may name a deleted policy (its history stays)."""
    (before_id,) = decode_cursor(cursor, int) if cursor else (None,)
    rows = await db.fetch(
        """SELECT id, policy_id, action, actor_key_id, at, before, after FROM rlaas_policy_audit
           WHERE tenant_id = $1 AND ($2::uuid IS NULL OR policy_id = $2) AND ($3::bigint IS NULL OR id < $3)
           ORDER BY id DESC LIMIT $4""", tenant_id, policy_id, before_id, limit + 1)
    items = [_entry(r) for r in rows[:limit]]
    return AuditPage(items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > limit else None)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(id=row["id"], policy_id=row["policy_id"], action=row["action"], actor_key_id=row["actor_key_id"],
                      at=row["at"], before=msgspec.convert(row["before"], PolicyRead | None),
                      after=msgspec.convert(row["after"], PolicyRead | None))


async def any_sealed(conn: Any) -> bool:
    """True when any tenant's policy holds a sealed credential: at startup, a server without the key to
    open them refuses to start (the one query here across tenants, and it reads no tenant's data)."""
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM rlaas_policies"
                               " WHERE api_key_sealed IS NOT NULL OR headers_sealed IS NOT NULL)")


async def reseal(state: Any, tenant_id: UUID) -> int:
    """Seal the tenant's credentials again with the first FLYWHEEL_SECRET_KEY, so an older key can be dropped;
    returns how many policies hold credentials. The policies themselves do not change (nothing is audited)."""
    async with state.db.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT id, api_key_sealed, headers_sealed FROM rlaas_policies WHERE tenant_id = $1
                 AND (api_key_sealed IS NOT NULL OR headers_sealed IS NOT NULL) FOR UPDATE""", tenant_id)
        for row in rows:
            api_key, headers = (None if token is None else seal_secret(state, open_secret(state, token))
                                for token in (row["api_key_sealed"], row["headers_sealed"]))
            await conn.execute("UPDATE rlaas_policies SET api_key_sealed = $3, headers_sealed = $4"
                               " WHERE tenant_id = $1 AND id = $2", tenant_id, row["id"], api_key, headers)
    forget(state, tenant_id)
    return len(rows)
