"""The event envelope every event type shares.

Plugins add event types by subclassing `Event` with a namespaced tag, for
example ``class SmartDaily(Event, tag="drives.smart_daily")``, and returning the
class from `register_event_types`. The ingestion endpoint decodes a batch as a
tagged union of every registered type, keyed by the `type` field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

EventTypeName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*$")]


class Event(msgspec.Struct, tag_field="type", kw_only=True, forbid_unknown_fields=True):
    """Envelope: a client-generated id, when it happened, who and what it is about."""

    event_id: UUID
    ts: Annotated[datetime, msgspec.Meta(tz=True)]  # timezone required (e.g. "2026-01-02T03:04:05Z")
    subject_id: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    session_id: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    attributes: dict[str, Any] = {}


class GenericEvent(Event, tag="core.generic"):
    """An event with nothing but the envelope and free-form attributes."""


class RejectedEvent(msgspec.Struct, kw_only=True):
    """One event of a batch that was not accepted, and why."""

    index: int  # position in the batch (line number - 1 for NDJSON)
    code: str  # validation_error | unknown_type | malformed_event | out_of_range
    message: str
    field: str | None = None  # e.g. "$[3].attributes.x"


class IngestResult(msgspec.Struct, kw_only=True):
    """The outcome of `POST /v1/events`, event by event.

    `accepted` events are durably stored (or, with `spooled`, durably queued on
    disk while Postgres is unavailable: duplicates among them are still
    stored once, and counted as accepted here). `duplicate` events were
    stored before and were not stored again.
    """

    accepted: int
    duplicate: int
    rejected: int
    errors: list[RejectedEvent] = []
    spooled: bool = False


class EventRecord(msgspec.Struct, kw_only=True):
    """A stored event as `GET /v1/events` returns it."""

    event_id: UUID
    type: str
    ts: datetime
    subject_id: str | None
    session_id: str | None
    received_at: datetime
    event: dict[str, Any]  # the whole event as stored (PII scrubbed)


class EventPage(msgspec.Struct, kw_only=True):
    items: list[EventRecord]
    next_cursor: str | None = None
