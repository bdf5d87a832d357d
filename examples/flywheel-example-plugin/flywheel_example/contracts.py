"""The plugin's API shapes: separate Create and Read Structs, as Flywheel's own."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from flywheel.contracts.events import Event


class NoteCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    body: Annotated[str, msgspec.Meta(max_length=10_000)] = ""


class NoteRead(msgspec.Struct):
    id: UUID
    title: str
    body: str
    created_at: datetime


class Stats(msgspec.Struct):
    notes: int
    counted_at: datetime | None


class CountNotes(msgspec.Struct, forbid_unknown_fields=True):
    """Payload of the `example.count_notes` job."""

    note_prefix: Annotated[str, msgspec.Meta(max_length=200)] = ""


class NoteViewed(Event, tag="example.note_viewed"):
    """An event type: somebody looked at a note."""

    note_id: UUID
