"""The tenant's alert channels: webhooks (URL, signing secret) and e-mail (recipients).

A webhook's secret is generated here, sealed with FLYWHEEL_SECRET_KEY, and
shown once, in the answer to its creation (or to a rotation).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID

import msgspec
from asyncpg import UniqueViolationError

from flywheel.server.alerts.recipients import check_address
from flywheel.server.alerts.settings import HOSTS_VAR, alert_settings
from flywheel.server.alerts.signing import new_webhook_secret
from flywheel.server.errors import Conflict, InvalidInput, NotFound
from flywheel.server.net_guard import url_problem

if TYPE_CHECKING:
    from flywheel.server.state import AppState

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Recipients = Annotated[list[Annotated[str, msgspec.Meta(max_length=254)]], msgspec.Meta(max_length=20)]


class ChannelCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    kind: Literal["webhook", "email"]
    url: Url | None = None  # webhook
    recipients: Recipients = []  # email
    enabled: bool = True


class ChannelUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | None = None
    url: Url | None = None
    recipients: Recipients | None = None
    enabled: bool | None = None


class ChannelRead(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    kind: str
    url: str | None
    recipients: list[str]
    enabled: bool
    created_at: datetime
    # Only in the answer to creating a webhook or rotating its secret: it is never shown again.
    secret: str | None = None


_COLUMNS = "id, name, kind, url, recipients, enabled, created_at"


def _read(row: Any, secret: str | None = None) -> ChannelRead:
    return ChannelRead(id=row["id"], name=row["name"], kind=row["kind"], url=row["url"],
                       recipients=list(row["recipients"]), enabled=row["enabled"], created_at=row["created_at"],
                       secret=secret)


def check_webhook_url(url: str, field: str = "$.url") -> None:
    problem = url_problem(url, alert_settings().hosts, setting=HOSTS_VAR)
    if problem:
        raise InvalidInput(problem, field=field, code="url_not_allowed")


def _check_shape(kind: str, url: str | None, recipients: list[str]) -> None:
    if kind == "webhook":
        if url is None:
            raise InvalidInput("a webhook channel needs a url", field="$.url")
        if recipients:
            raise InvalidInput("a webhook channel has no recipients", field="$.recipients")
        check_webhook_url(url)
    else:
        if url is not None:
            raise InvalidInput("an e-mail channel has no url", field="$.url")
        if not recipients:
            raise InvalidInput("an e-mail channel needs at least one recipient", field="$.recipients")
        for i, address in enumerate(recipients):
            check_address(address, f"$.recipients[{i}]")


async def create_channel(state: AppState, tenant_id: UUID, data: ChannelCreate) -> ChannelRead:
    _check_shape(data.kind, data.url, data.recipients)
    secret = new_webhook_secret() if data.kind == "webhook" else None
    sealed = state.secrets().seal(secret) if secret else None
    try:
        row = await state.db.fetchrow(
            f"""INSERT INTO alert_channels (id, tenant_id, name, kind, url, recipients, secret_sealed, enabled)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_COLUMNS}""",
            uuid.uuid4(), tenant_id, data.name, data.kind, data.url, data.recipients, sealed, data.enabled)
    except UniqueViolationError:
        raise Conflict(f"a channel named {data.name!r} exists", field="$.name", code="channel_exists") from None
    return _read(row, secret)


async def get_channel(state: AppState, tenant_id: UUID, channel_id: UUID) -> ChannelRead:
    row = await state.db.fetchrow(f"SELECT {_COLUMNS} FROM alert_channels WHERE id = $1 AND tenant_id = $2",
                                  channel_id, tenant_id)
    if row is None:
        raise NotFound("no such channel", field="path.channel_id")
    return _read(row)


async def list_channels(state: AppState, tenant_id: UUID) -> list[ChannelRead]:
    rows = await state.db.fetch(f"SELECT {_COLUMNS} FROM alert_channels WHERE tenant_id = $1 ORDER BY name",
                                tenant_id)
    return [_read(r) for r in rows]


async def update_channel(state: AppState, tenant_id: UUID, channel_id: UUID, change: ChannelUpdate) -> ChannelRead:
    current = await get_channel(state, tenant_id, channel_id)
    url = change.url if change.url is not None else current.url
    recipients = change.recipients if change.recipients is not None else current.recipients
    _check_shape(current.kind, url, recipients)
    try:
        row = await state.db.fetchrow(
            f"""UPDATE alert_channels SET name = coalesce($3, name), url = $4, recipients = $5,
                    enabled = coalesce($6, enabled)
                WHERE id = $1 AND tenant_id = $2 RETURNING {_COLUMNS}""",
            channel_id, tenant_id, change.name, url, recipients, change.enabled)
    except UniqueViolationError:
        raise Conflict(f"a channel named {change.name!r} exists", field="$.name", code="channel_exists") from None
    return _read(row)


async def rotate_secret(state: AppState, tenant_id: UUID, channel_id: UUID) -> ChannelRead:
    """A new signing secret for a webhook, shown in this answer only; the old one stops at once."""
    current = await get_channel(state, tenant_id, channel_id)
    if current.kind != "webhook":
        raise InvalidInput("only a webhook channel has a secret", field="path.channel_id", code="not_a_webhook")
    secret = new_webhook_secret()
    await state.db.execute("UPDATE alert_channels SET secret_sealed = $3 WHERE id = $1 AND tenant_id = $2",
                           channel_id, tenant_id, state.secrets().seal(secret))
    return msgspec.structs.replace(current, secret=secret)


async def delete_channel(state: AppState, tenant_id: UUID, channel_id: UUID) -> None:
    """Delete a channel, its deliveries and their log, and take it out of the tenant's rules."""
    async with state.db.acquire() as conn, conn.transaction():
        status = await conn.execute("DELETE FROM alert_channels WHERE id = $1 AND tenant_id = $2",
                                    channel_id, tenant_id)
        if status.endswith(" 0"):
            raise NotFound("no such channel", field="path.channel_id")
        await conn.execute("UPDATE alert_rules SET channel_ids = array_remove(channel_ids, $2), updated_at = now() "
                           "WHERE tenant_id = $1 AND $2 = ANY(channel_ids)", tenant_id, channel_id)


async def check_channel_ids(state: AppState, tenant_id: UUID, channel_ids: list[UUID], field: str) -> None:
    """Every id names one of the tenant's channels (another tenant's is as unknown as a made-up one)."""
    known = {r["id"] for r in await state.db.fetch(
        "SELECT id FROM alert_channels WHERE tenant_id = $1 AND id = ANY($2::uuid[])", tenant_id, channel_ids)}
    for i, channel_id in enumerate(channel_ids):
        if channel_id not in known:
            raise InvalidInput(f"no channel {channel_id}", field=f"{field}[{i}]", code="unknown_channel")
