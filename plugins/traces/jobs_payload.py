"""The payload of the traces jobs."""

from __future__ import annotations

from uuid import UUID

import msgspec


class TraceJob(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    trace_id: UUID
    judge: bool = True  # QA queues the judging job when it is done
