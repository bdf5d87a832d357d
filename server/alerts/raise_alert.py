"""`raise_alert`: the one way an alert is opened or repeated, for conditions, monitors and plugins.

Deduplicated while open: (tenant, rule, key) has at most one alert that is not
resolved (a partial unique index); raising it again bumps `count` and
`last_seen`, takes the newer title and details, and escalates the severity if
the new one is higher. Once resolved, the next raise opens a new alert.

The tenant's rules decide what is kept: a disabled rule, or a severity below
the rule's minimum, and nothing is stored (None is returned). A new alert is
handed to the rule's channels (server/alerts/dispatch.py), after commit.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import msgspec

from flywheel.server.alerts.contracts import SEVERITY_RANK, Alert
from flywheel.server.alerts.matching import RULE_NAME, rule_for
from flywheel.server.alerts.rows import ALERT_COLUMNS, alert_of
from flywheel.server.errors import InvalidInput

if TYPE_CHECKING:
    import asyncpg

    from flywheel.server.state import AppState

SYSTEM_ACTOR = "flywheel"
MAX_KEY, MAX_TITLE, MAX_DETAILS_BYTES = 200, 300, 16 * 1024

_OPEN = f"""SELECT {ALERT_COLUMNS} FROM alerts
            WHERE tenant_id = $1 AND rule = $2 AND key = $3 AND state <> 'resolved' FOR UPDATE"""
_REPEAT = f"""UPDATE alerts SET count = count + 1, last_seen = now(), title = $2, details = $3, severity = $4
              WHERE id = $1 RETURNING {ALERT_COLUMNS}"""
_INSERT = f"""INSERT INTO alerts (id, tenant_id, rule, key, severity, title, details)
              VALUES ($1, $2, $3, $4, $5, $6, $7)
              ON CONFLICT (tenant_id, rule, key) WHERE state <> 'resolved' DO NOTHING
              RETURNING {ALERT_COLUMNS}"""
_HISTORY = """INSERT INTO alert_history (alert_id, tenant_id, action, actor, note, severity)
              VALUES ($1, $2, $3, $4, $5, $6)"""


def _check(rule: str, key: str, severity: str, title: str, details: dict) -> None:
    # Callers are code, not tenants, but a monitor may put tenant data in `key` or `details`.
    if not RULE_NAME.match(rule) or len(rule) > 100:
        raise InvalidInput("an alert rule is a namespaced lowercase name (plugin.condition)", field="rule")
    if not key or len(key) > MAX_KEY:
        raise InvalidInput(f"an alert key is 1 to {MAX_KEY} characters", field="key")
    if severity not in SEVERITY_RANK:
        raise InvalidInput("severity is info, warning or critical", field="severity")
    if not title or len(title) > MAX_TITLE:
        raise InvalidInput(f"an alert title is 1 to {MAX_TITLE} characters", field="title")
    if len(msgspec.json.encode(details)) > MAX_DETAILS_BYTES:
        raise InvalidInput(f"alert details are at most {MAX_DETAILS_BYTES} bytes of JSON", field="details")


async def _upsert(conn: asyncpg.Connection, tenant_id: UUID, rule: str, key: str, severity: str, title: str,
                  details: dict) -> tuple[Alert, str | None]:
    """The alert after this raise, and what its history records (None: a plain repeat)."""
    while True:
        current = await conn.fetchrow(_OPEN, tenant_id, rule, key)
        if current is not None:
            higher = SEVERITY_RANK[severity] > SEVERITY_RANK[current["severity"]]
            kept = severity if higher else current["severity"]
            row = await conn.fetchrow(_REPEAT, current["id"], title, details, kept)
            return alert_of(row), "escalated" if higher else None
        row = await conn.fetchrow(_INSERT, uuid.uuid4(), tenant_id, rule, key, severity, title, details)
        if row is not None:
            return alert_of(row), "opened"
        # Another raise opened it between our SELECT and INSERT: go round and repeat it.


async def raise_alert(state: AppState, tenant_id: UUID, *, rule: str, key: str,
                      severity: Literal["info", "warning", "critical"], title: str,
                      details: dict[str, Any]) -> Alert | None:
    """Open the alert (`rule`, `key`) for the tenant, or repeat it while it is open.

    Returns the alert as stored, or None when the tenant's rules drop it (the rule
    is disabled or `severity` is below its minimum). A newly opened alert is sent
    to the rule's channels. Since 0.4.
    """
    _check(rule, key, severity, title, details)
    governing = await rule_for(state.db, tenant_id, rule)
    return await _store(state, tenant_id, governing, rule, key, severity, title, details)


async def raise_governed(state: AppState, tenant_id: UUID, governing: dict[str, Any] | None, *, rule: str,
                         key: str, severity: str, title: str, details: dict[str, Any]) -> Alert | None:
    """`raise_alert` with the governing rule already looked up (a condition raising many findings
    looks it up once: ~1 ms a finding less)."""
    _check(rule, key, severity, title, details)
    return await _store(state, tenant_id, governing, rule, key, severity, title, details)


async def _store(state: AppState, tenant_id: UUID, governing: dict[str, Any] | None, rule: str, key: str,
                 severity: str, title: str, details: dict[str, Any]) -> Alert | None:
    if governing is not None and (not governing["enabled"]
                                  or SEVERITY_RANK[severity] < SEVERITY_RANK[governing["min_severity"]]):
        return None
    async with state.db.acquire() as conn, conn.transaction():
        alert, action = await _upsert(conn, tenant_id, rule, key, severity, title, details)
        if action is not None:
            await conn.execute(_HISTORY, alert.id, tenant_id, action, SYSTEM_ACTOR, None, alert.severity)
    if action == "opened" and governing is not None and governing["channel_ids"]:
        from flywheel.server.alerts.dispatch import dispatch

        await dispatch(state, tenant_id, alert.id, list(governing["channel_ids"]), "opened")
    return alert
