"""The tenant's alert rules: which alerts are kept (enabled, minimum severity), whether a
condition's alerts resolve themselves, and which channels hear of them (matching.py
says which rule governs an alert)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import msgspec
from asyncpg import UniqueViolationError

from flywheel.server.alerts.channels import check_channel_ids
from flywheel.server.alerts.contracts import Severity
from flywheel.server.alerts.matching import MATCH
from flywheel.server.errors import Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from flywheel.server.state import AppState

Match = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
ChannelIds = Annotated[list[UUID], msgspec.Meta(max_length=20)]


class RuleCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    match: Match  # "drives.top_risk_band", "drives.*" or "*"
    enabled: bool = True
    min_severity: Severity = "info"
    channel_ids: ChannelIds = []
    auto_resolve: bool | None = None  # None: as the condition says


class RuleUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool | None = None
    min_severity: Severity | None = None
    channel_ids: ChannelIds | None = None
    # UNSET leaves it; null hands the choice back to the condition.
    auto_resolve: bool | None | msgspec.UnsetType = msgspec.UNSET


class RuleRead(msgspec.Struct, kw_only=True):
    id: UUID
    match: str
    enabled: bool
    min_severity: Severity
    channel_ids: list[UUID]
    auto_resolve: bool | None
    created_at: datetime
    updated_at: datetime


_COLUMNS = "id, match, enabled, min_severity, channel_ids, auto_resolve, created_at, updated_at"


def _read(row: Any) -> RuleRead:
    return RuleRead(**{**dict(row), "channel_ids": list(row["channel_ids"])})


def check_match(match: str) -> None:
    if not MATCH.match(match):
        raise InvalidInput("match is an alert rule name (drives.top_risk_band), a prefix (drives.*) or *",
                           field="$.match", code="invalid_match")


async def create_rule(state: AppState, tenant_id: UUID, data: RuleCreate) -> RuleRead:
    check_match(data.match)
    await check_channel_ids(state, tenant_id, data.channel_ids, "$.channel_ids")
    try:
        row = await state.db.fetchrow(
            f"""INSERT INTO alert_rules (id, tenant_id, match, enabled, min_severity, channel_ids, auto_resolve)
                VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}""",
            uuid.uuid4(), tenant_id, data.match, data.enabled, data.min_severity, data.channel_ids, data.auto_resolve)
    except UniqueViolationError:
        raise Conflict(f"a rule for {data.match!r} exists: change it instead", field="$.match",
                       code="rule_exists") from None
    return _read(row)


async def get_rule(state: AppState, tenant_id: UUID, rule_id: UUID) -> RuleRead:
    row = await state.db.fetchrow(f"SELECT {_COLUMNS} FROM alert_rules WHERE id = $1 AND tenant_id = $2",
                                  rule_id, tenant_id)
    if row is None:
        raise NotFound("no such rule", field="path.rule_id")
    return _read(row)


async def list_rules(state: AppState, tenant_id: UUID) -> list[RuleRead]:
    rows = await state.db.fetch(f"SELECT {_COLUMNS} FROM alert_rules WHERE tenant_id = $1 ORDER BY match", tenant_id)
    return [_read(r) for r in rows]


async def update_rule(state: AppState, tenant_id: UUID, rule_id: UUID, change: RuleUpdate) -> RuleRead:
    current = await get_rule(state, tenant_id, rule_id)
    if change.channel_ids is not None:
        await check_channel_ids(state, tenant_id, change.channel_ids, "$.channel_ids")
    auto = current.auto_resolve if change.auto_resolve is msgspec.UNSET else change.auto_resolve
    row = await state.db.fetchrow(
        f"""UPDATE alert_rules SET enabled = coalesce($3, enabled), min_severity = coalesce($4, min_severity),
                channel_ids = coalesce($5, channel_ids), auto_resolve = $6, updated_at = now()
            WHERE id = $1 AND tenant_id = $2 RETURNING {_COLUMNS}""",
        rule_id, tenant_id, change.enabled, change.min_severity, change.channel_ids, auto)
    return _read(row)


async def delete_rule(state: AppState, tenant_id: UUID, rule_id: UUID) -> None:
    status = await state.db.execute("DELETE FROM alert_rules WHERE id = $1 AND tenant_id = $2", rule_id, tenant_id)
    if status.endswith(" 0"):
        raise NotFound("no such rule", field="path.rule_id")
