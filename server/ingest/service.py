"""From request body to stored rows: decode, scrub, deduplicate, enqueue."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from flywheel.contracts.events import IngestResult
from flywheel.contracts.pii import PiiAllowList
from flywheel.server.errors import ApiError
from flywheel.server.ingest import metrics as m
from flywheel.server.ingest.decode import BatchDecoder, DecodedBatch, gunzip
from flywheel.server.ingest.engine import IngestEngine
from flywheel.server.ingest.pii import BUILTIN_SCRUBBERS, CompiledAllowList, PiiScrubber
from flywheel.server.ingest.rows import EventRow

ALLOW_LIST_TTL_S = 5.0  # how long a replica may use a tenant's allow-list before re-reading it
_encode = msgspec.json.encode
# EventRow(...) runs the namedtuple's Python-level __new__ (~0.3 us); this is
# the same tuple built in C, for every event on the request path.
_new_row = tuple.__new__


class Ingestor:
    """One per app: owns the decoder, the scrubber and the engine."""

    def __init__(self, state: Any) -> None:
        c = state.contributions
        s = state.settings
        self.state = state
        self.event_types = [cls for _, cls in c.event_types.values()]
        self.decoder = BatchDecoder(self.event_types, max_age_days=_max_age(s))
        self.scrubber = PiiScrubber([*BUILTIN_SCRUBBERS, *(scrubber for _, scrubber in c.scrubbers)])
        self.engine = IngestEngine(state)
        self._tags = {cls: cls.__struct_config__.tag for cls in self.event_types}
        self._turn = asyncio.Lock()
        self._allow: dict[UUID, tuple[float, CompiledAllowList | None]] = {}

    async def start(self) -> None:
        await self.engine.start()

    async def stop(self) -> None:
        await self.engine.stop()

    # -- per-tenant PII allow-lists ------------------------------------------

    async def allow_list(self, tenant_id: UUID) -> CompiledAllowList | None:
        cached = self._allow.get(tenant_id)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        compiled = None
        try:
            raw = await self.state.db.fetchval("SELECT allow FROM pii_allow_lists WHERE tenant_id = $1", tenant_id)
        except Exception:
            # Postgres away: scrub with what we knew (or with no exceptions at all,
            # which can only scrub more, never leak more).
            return cached[1] if cached else None
        if raw:
            compiled = CompiledAllowList.build(msgspec.convert(raw, PiiAllowList))
        self._allow[tenant_id] = (now + ALLOW_LIST_TTL_S, compiled)
        return compiled

    def forget_allow_list(self, tenant_id: UUID) -> None:
        self._allow.pop(tenant_id, None)

    # -- the request path ---------------------------------------------------

    async def ingest(self, tenant_id: UUID, body: bytes, content_type: str | None,
                     content_encoding: str | None = None) -> IngestResult:
        kind = self.decoder.media_type(content_type)
        encoding = (content_encoding or "").strip().lower()
        if encoding not in ("gzip", "identity", ""):
            raise ApiError(f"unsupported Content-Encoding {content_encoding!r}; send gzip or nothing",
                           status=415, code="unsupported_media_type", field="header.Content-Encoding")
        allow = await self.allow_list(tenant_id)
        # The CPU-heavy part (gunzip, decode, scrub, encode) runs for one
        # request per turn of the event loop. The loop reads its sockets only
        # between turns: at load, a turn that prepared every request that had
        # arrived (a dozen or more, ~0.6 ms each) kept a flusher's reply from
        # Postgres waiting as long, with Postgres idle. Taking turns lets those
        # replies in between requests: +8% events/s at 32 connections.
        async with self._turn:
            if encoding == "gzip":
                body = gunzip(body, self.state.settings.max_body_bytes)
            batch, rows = self._rows(tenant_id, body, kind, allow)
            future = self.engine.enqueue(rows)
            await asyncio.sleep(0)  # end this turn before the next request's
        outcome = await future
        for type_, n in outcome.accepted_by_type.items():
            m.events(type_, "accepted").inc(n)
        duplicates = outcome.duplicate + len(batch.events) - len(rows)
        if duplicates:
            m.events("*", "duplicate").inc(duplicates)
        if batch.errors:
            m.events("*", "rejected").inc(len(batch.errors))
        return IngestResult(accepted=outcome.accepted, duplicate=duplicates, rejected=len(batch.errors),
                            errors=batch.errors, spooled=outcome.spooled)

    def _rows(self, tenant_id: UUID, body: bytes, kind: str,
              allow: CompiledAllowList | None) -> tuple[DecodedBatch, list[EventRow]]:
        """The decoded batch, and its events as rows to store (scrubbed, each event once)."""
        batch = self.decoder.decode(body, kind)
        rows, seen = [], set()
        received_at = datetime.now(UTC)
        events = [event for _, event in batch.events]
        # Most telemetry holds no PII: one cheap search over the batch's
        # strings decides which events need the full scan at all.
        flags = self.scrubber.flag_events(events)
        tags, scrubber = self._tags, self.scrubber
        for event, flagged in zip(events, flags):
            ts = event.ts
            # msgspec gives UTC timestamps the `UTC` singleton: most need no conversion.
            day = ts.date() if ts.tzinfo is UTC else ts.astimezone(UTC).date()
            event_id = event.event_id
            key = (event_id.int, day)  # UUID.int is a plain attribute; hashing the UUID is Python code
            if key in seen:
                continue  # the same event twice in one batch: stored once
            seen.add(key)
            body = _encode(event)
            subject_id, session_id = event.subject_id, event.session_id
            if flagged:
                scrubbed, count = scrubber.scrub_event(event, allow)
                if count:
                    body = _encode(scrubbed)
                    subject_id, session_id = scrubbed.get("subject_id"), scrubbed.get("session_id")
            rows.append(_new_row(EventRow, (tenant_id, event_id, day, ts, tags[event.__class__], subject_id,
                                            session_id, body, received_at)))
        return batch, rows


def _max_age(settings: Any) -> int:
    # Events older than the retention window would recreate dropped partitions.
    if settings.events_retention_days > 0:
        return min(settings.events_max_age_days, settings.events_retention_days)
    return settings.events_max_age_days
