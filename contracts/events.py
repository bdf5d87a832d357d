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
    ts: datetime
    subject_id: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    session_id: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    attributes: dict[str, Any] = {}


class GenericEvent(Event, tag="core.generic"):
    """An event with nothing but the envelope and free-form attributes."""
