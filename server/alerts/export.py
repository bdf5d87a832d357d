"""Alerts as CSV: every alert the filters match, streamed, oldest-opened last.

Titles, keys, notes and actors may hold text a tenant's data or users wrote:
each passes `spreadsheet_safe`, so a cell starting with `=` is never a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec

from flywheel.server.alerts.contracts import Alert
from flywheel.server.alerts.listing import list_alerts
from flywheel.server.spreadsheets import spreadsheet_safe

if TYPE_CHECKING:
    from flywheel.server.state import AppState

CSV_COLUMNS = ["id", "rule", "key", "severity", "state", "title", "count", "first_seen", "last_seen",
               "acknowledged_by", "acknowledged_at", "ack_note", "resolved_by", "resolved_at", "resolve_note",
               "details"]
_PAGE = 500


def _when(value) -> str:
    return value.isoformat() if value is not None else ""


def _text(value: str | None) -> str:
    return spreadsheet_safe(value) if value is not None else ""


def csv_row(a: Alert) -> list[str]:
    return [str(a.id), a.rule, _text(a.key), a.severity, a.state, _text(a.title), str(a.count), _when(a.first_seen),
            _when(a.last_seen), _text(a.acknowledged_by), _when(a.acknowledged_at), _text(a.ack_note),
            _text(a.resolved_by), _when(a.resolved_at), _text(a.resolve_note),
            _text(msgspec.json.encode(a.details).decode())]


async def alerts_csv(state: AppState, tenant_id: UUID, **filters) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    cursor = None
    while True:
        page = await list_alerts(state, tenant_id, limit=_PAGE, cursor=cursor, **filters)
        for alert in page.items:
            writer.writerow(csv_row(alert))
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
