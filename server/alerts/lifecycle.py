"""Acknowledging and resolving alerts, by people and when a condition clears.

Acknowledging says someone is on it (who, a note); the alert stays open for
deduplication. Resolving closes the episode: the next raise opens a new
alert. Each step is one row of the alert's history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from flywheel.server.alerts.contracts import Alert, AlertDetail
from flywheel.server.alerts.rows import ALERT_COLUMNS, alert_of, history_of
from flywheel.server.errors import Conflict, NotFound

if TYPE_CHECKING:
    from flywheel.server.state import AppState

AUTO_ACTOR = "auto"

_ACK = f"""UPDATE alerts SET state = 'acknowledged', acknowledged_by = $3, acknowledged_at = now(), ack_note = $4
           WHERE id = $1 AND tenant_id = $2 AND state = 'open' RETURNING {ALERT_COLUMNS}"""
_RESOLVE = f"""UPDATE alerts SET state = 'resolved', resolved_by = $3, resolved_at = now(), resolve_note = $4
               WHERE id = $1 AND tenant_id = $2 AND state <> 'resolved' RETURNING {ALERT_COLUMNS}"""
_HISTORY = """INSERT INTO alert_history (alert_id, tenant_id, action, actor, note, severity)
              VALUES ($1, $2, $3, $4, $5, $6)"""


async def get_alert(state: AppState, tenant_id: UUID, alert_id: UUID) -> AlertDetail:
    row = await state.db.fetchrow(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1 AND tenant_id = $2",
                                  alert_id, tenant_id)
    if row is None:
        raise NotFound("no such alert", field="path.alert_id")
    history = await state.db.fetch("SELECT action, actor, note, severity, at FROM alert_history "
                                   "WHERE alert_id = $1 AND tenant_id = $2 ORDER BY at, id", alert_id, tenant_id)
    alert = alert_of(row)
    return AlertDetail(**{f: getattr(alert, f) for f in Alert.__struct_fields__},
                       history=[history_of(h) for h in history])


async def _transition(state: AppState, sql: str, action: str, tenant_id: UUID, alert_id: UUID, by: str,
                      note: str | None, refusal: str) -> Alert:
    async with state.db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(sql, alert_id, tenant_id, by[:200], note)
        if row is None:
            current = await conn.fetchval("SELECT state FROM alerts WHERE id = $1 AND tenant_id = $2",
                                          alert_id, tenant_id)
            if current is None:
                raise NotFound("no such alert", field="path.alert_id")
            raise Conflict(refusal.format(state=current), code=f"alert_{current}")
        await conn.execute(_HISTORY, alert_id, tenant_id, action, by[:200], note, row["severity"])
    return alert_of(row)


async def acknowledge(state: AppState, tenant_id: UUID, alert_id: UUID, *, by: str, note: str | None) -> Alert:
    """Mark an open alert as being handled (409 when it is acknowledged or resolved already)."""
    return await _transition(state, _ACK, "acknowledged", tenant_id, alert_id, by, note,
                             "the alert is {state}: only an open alert is acknowledged")


async def resolve(state: AppState, tenant_id: UUID, alert_id: UUID, *, by: str, note: str | None) -> Alert:
    """Close an open or acknowledged alert (409 when it is resolved already)."""
    alert = await _transition(state, _RESOLVE, "resolved", tenant_id, alert_id, by, note,
                              "the alert is {state} already")
    await notify_resolved(state, tenant_id, alert)
    return alert


async def resolve_cleared(state: AppState, tenant_id: UUID, rule: str, found_keys: set[str],
                          note: str = "the condition no longer holds") -> list[Alert]:
    """Resolve the tenant's open alerts of `rule` whose key is not among `found_keys` (as "auto")."""
    rows = await state.db.fetch("SELECT id, key FROM alerts WHERE tenant_id = $1 AND rule = $2 AND state <> 'resolved'",
                                tenant_id, rule)
    resolved = []
    for row in rows:
        if row["key"] in found_keys:
            continue
        try:
            resolved.append(await resolve(state, tenant_id, row["id"], by=AUTO_ACTOR, note=note))
        except Conflict:  # resolved by someone meanwhile
            continue
    return resolved


async def notify_resolved(state: AppState, tenant_id: UUID, alert: Alert) -> None:
    """Tell the channels that heard of the alert's opening that it is resolved."""
    from flywheel.server.alerts.dispatch import dispatch

    channels: list[Any] = await state.db.fetch(
        "SELECT DISTINCT channel_id FROM alert_deliveries WHERE tenant_id = $1 AND alert_id = $2 AND event = 'opened'",
        tenant_id, alert.id)
    if channels:
        await dispatch(state, tenant_id, alert.id, [r["channel_id"] for r in channels], "resolved")
