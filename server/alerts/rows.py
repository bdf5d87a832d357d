"""Alert rows as Structs, and the column lists the queries share."""

from __future__ import annotations

import asyncpg

from flywheel.server.alerts.contracts import Alert, AlertHistoryEntry

ALERT_COLUMNS = ("id, rule, key, severity, title, details, state, count, first_seen, last_seen, acknowledged_by,"
                 " acknowledged_at, ack_note, resolved_by, resolved_at, resolve_note")


def alert_of(row: asyncpg.Record) -> Alert:
    fields = dict(row)
    fields["details"] = fields["details"] or {}  # jsonb, decoded by the pool's codec (db/pool.py)
    return Alert(**{name: fields[name] for name in Alert.__struct_fields__})


def history_of(row: asyncpg.Record) -> AlertHistoryEntry:
    return AlertHistoryEntry(action=row["action"], actor=row["actor"], at=row["at"], note=row["note"],
                             severity=row["severity"])
