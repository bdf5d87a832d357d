"""The delivery log: each delivery (alert, channel, event) with its attempts."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from flywheel.server.errors import NotFound
from flywheel.server.pagination import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from flywheel.server.state import AppState


class DeliveryAttempt(msgspec.Struct, kw_only=True):
    attempt: int
    started_at: datetime
    duration_ms: float
    status_code: int | None = None
    error: str | None = None


class DeliveryRead(msgspec.Struct, kw_only=True):
    id: UUID
    alert_id: UUID
    channel_id: UUID
    channel_name: str
    channel_kind: str
    event: str
    state: str
    attempts: int
    created_at: datetime
    finished_at: datetime | None = None
    log: list[DeliveryAttempt] = []


class DeliveryPage(msgspec.Struct):
    items: list[DeliveryRead]
    next_cursor: str | None = None


_SELECT = """SELECT d.id, d.alert_id, d.channel_id, c.name AS channel_name, c.kind AS channel_kind, d.event,
                    d.state, d.attempts, d.created_at, d.finished_at
             FROM alert_deliveries d JOIN alert_channels c ON c.id = d.channel_id AND c.tenant_id = d.tenant_id"""
_LIST = f"""{_SELECT}
            WHERE d.tenant_id = $1 AND ($2::uuid IS NULL OR d.alert_id = $2) AND ($3::text IS NULL OR d.state = $3)
              AND ($4::timestamptz IS NULL OR (d.created_at, d.id) < ($4, $5::uuid))
            ORDER BY d.created_at DESC, d.id DESC LIMIT $6"""
_ATTEMPTS = """SELECT delivery_id, attempt, started_at, duration_ms, status_code, error FROM alert_delivery_attempts
               WHERE tenant_id = $1 AND delivery_id = ANY($2::uuid[]) ORDER BY delivery_id, attempt, id"""


async def _with_log(state: AppState, tenant_id: UUID, rows: list[Any]) -> list[DeliveryRead]:
    attempts = await state.db.fetch(_ATTEMPTS, tenant_id, [r["id"] for r in rows])
    by_delivery: dict[UUID, list[DeliveryAttempt]] = {}
    for a in attempts:
        by_delivery.setdefault(a["delivery_id"], []).append(
            DeliveryAttempt(attempt=a["attempt"], started_at=a["started_at"], duration_ms=round(a["duration_ms"], 3),
                            status_code=a["status_code"], error=a["error"]))
    return [DeliveryRead(**dict(r), log=by_delivery.get(r["id"], [])) for r in rows]


async def list_deliveries(state: AppState, tenant_id: UUID, *, alert_id: UUID | None = None,
                          delivery_state: str | None = None, limit: int = 50,
                          cursor: str | None = None) -> DeliveryPage:
    after: tuple[Any, ...] = decode_cursor(cursor, datetime, UUID) if cursor else (None, None)
    rows = await state.db.fetch(_LIST, tenant_id, alert_id, delivery_state, *after, limit + 1)
    items = await _with_log(state, tenant_id, rows[:limit])
    more = len(rows) > limit
    return DeliveryPage(items=items, next_cursor=encode_cursor(items[-1].created_at, items[-1].id) if more else None)


async def get_delivery(state: AppState, tenant_id: UUID, delivery_id: UUID) -> DeliveryRead:
    row = await state.db.fetchrow(f"{_SELECT} WHERE d.id = $1 AND d.tenant_id = $2", delivery_id, tenant_id)
    if row is None:
        raise NotFound("no such delivery", field="path.delivery_id")
    return (await _with_log(state, tenant_id, [row]))[0]
