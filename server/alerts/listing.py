"""Listing a tenant's alerts: filters, keyset pages (newest opened first), and who acted."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from flywheel.server.alerts.contracts import AlertPage
from flywheel.server.alerts.rows import ALERT_COLUMNS, alert_of
from flywheel.server.pagination import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from flywheel.server.state import AppState

# Ordered by first_seen, which never changes: a repeat moving last_seen must not move an alert
# between pages while someone pages through them.
_LIST = f"""SELECT {ALERT_COLUMNS} FROM alerts
            WHERE tenant_id = $1
              AND ($2::text[] IS NULL OR state = ANY($2))
              AND ($3::text IS NULL OR rule = $3)
              AND ($4::text IS NULL OR severity = $4)
              AND ($5::timestamptz IS NULL OR (first_seen, id) < ($5, $6::uuid))
            ORDER BY first_seen DESC, id DESC
            LIMIT $7"""


def states_of(state: str | None) -> list[str] | None:
    """A `state` filter: one state, or "active" for open and acknowledged (what needs someone)."""
    if state is None:
        return None
    return ["open", "acknowledged"] if state == "active" else [state]


async def list_alerts(state: AppState, tenant_id: UUID, *, alert_state: str | None = None, rule: str | None = None,
                      severity: str | None = None, limit: int = 50, cursor: str | None = None) -> AlertPage:
    after: tuple[Any, ...] = decode_cursor(cursor, datetime, UUID) if cursor else (None, None)
    rows = await state.db.fetch(_LIST, tenant_id, states_of(alert_state), rule, severity, *after, limit + 1)
    items = [alert_of(r) for r in rows[:limit]]
    more = len(rows) > limit
    return AlertPage(items=items, next_cursor=encode_cursor(items[-1].first_seen, items[-1].id) if more else None)


async def actor_of(state: AppState, key_id: UUID, tenant_id: UUID, *, where: str = "") -> str:
    """Who a caller is, as history records it: the key's name and prefix (never its secret)."""
    row = await state.db.fetchrow("SELECT name, prefix FROM api_keys WHERE id = $1 AND tenant_id = $2",
                                  key_id, tenant_id)
    who = f"key {row['name']} ({row['prefix']})" if row else f"key {key_id}"
    return f"{who}{where}"
