"""The row shape events are stored in, shared by the engine, spool and archive."""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple
from uuid import UUID

COLUMNS = ("tenant_id", "event_id", "day", "ts", "type", "subject_id", "session_id", "body", "received_at")


class EventRow(NamedTuple):
    tenant_id: UUID
    event_id: UUID
    day: date
    ts: datetime
    type: str
    subject_id: str | None
    session_id: str | None
    body: bytes  # the event as JSON, PII scrubbed
    received_at: datetime

    @property
    def key(self) -> tuple[UUID, UUID, date]:
        return self.tenant_id, self.event_id, self.day
