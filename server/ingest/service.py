"""From request body to stored rows: decode, scrub, deduplicate, enqueue."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from flywheel.contracts.events import IngestResult, RejectedEvent
from flywheel.contracts.pii import PiiAllowList, PiiSettings
from flywheel.server.db.pool import bounded
from flywheel.server.errors import ApiError
from flywheel.server.ingest import metrics as m
from flywheel.server.ingest.decode import BatchDecoder, DecodedBatch, gunzip
from flywheel.server.ingest.engine import IngestEngine
from flywheel.server.ingest.pii import BUILTIN_SCRUBBERS, CompiledAllowList, PiiScrubber
from flywheel.server.ingest.rows import EventRow
from flywheel.server.validation import MAX_DEPTH, NUL_MESSAGE, find_problem

if TYPE_CHECKING:
    from flywheel.server.state import AppState

ALLOW_LIST_TTL_S = 5.0  # how long a replica may use a tenant's allow-list before re-reading it
ALLOW_LIST_READ_TIMEOUT_S = 1.0
_encode = msgspec.json.encode
# EventRow(...) runs the namedtuple's Python-level __new__ (~0.3 us); this is
# the same tuple built in C, for every event on the request path.
_new_row = tuple.__new__


class Ingestor:
    """One per app: owns the decoder, the scrubber and the engine."""

    def __init__(self, state: AppState) -> None:
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
        self._allow_refresh: dict[UUID, asyncio.Task] = {}

    async def start(self) -> None:
        await self.engine.start()

    async def stop(self) -> None:
        await self.engine.stop()

    # -- per-tenant PII allow-lists ------------------------------------------

    async def allow_list(self, tenant_id: UUID) -> CompiledAllowList | None:
        """The tenant's compiled allow-list, never waiting on Postgres once known.

        An entry older than ALLOW_LIST_TTL_S is used while one background read
        refreshes it. A tenant not seen yet waits for one bounded read; if
        Postgres does not answer, events are scrubbed with no exceptions at
        all, which can only scrub more, never leak more.
        """
        cached = self._allow.get(tenant_id)
        if cached is not None:
            if cached[0] <= time.monotonic() and tenant_id not in self._allow_refresh:
                self._allow_refresh[tenant_id] = asyncio.create_task(self._refresh_allow_list(tenant_id))
            return cached[1]
        try:
            return await self._read_allow_list(tenant_id)
        except Exception:
            return None

    async def _refresh_allow_list(self, tenant_id: UUID) -> None:
        try:
            await self._read_allow_list(tenant_id)
        except Exception:
            pass  # keep what we knew; the next request after the TTL tries again
        finally:
            self._allow_refresh.pop(tenant_id, None)

    async def _read_allow_list(self, tenant_id: UUID) -> CompiledAllowList | None:
        async with bounded(self.state.db, ALLOW_LIST_READ_TIMEOUT_S) as conn:
            # The allow-list and the settings (phone regions, optional kinds) travel together.
            row = await conn.fetchrow(
                """SELECT (SELECT allow FROM pii_allow_lists WHERE tenant_id = $1) AS allow,
                          (SELECT settings FROM pii_settings WHERE tenant_id = $1) AS settings""", tenant_id)
        allow, settings = row["allow"], row["settings"]
        compiled = CompiledAllowList.build(
            msgspec.convert(allow, PiiAllowList) if allow else PiiAllowList(),
            msgspec.convert(settings, PiiSettings) if settings else None) if allow or settings else None
        self._allow[tenant_id] = (time.monotonic() + ALLOW_LIST_TTL_S, compiled)
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
        rows, seen, unstorable = [], set(), []
        received_at = datetime.now(UTC)
        events = [event for _, event in batch.events]
        # Most telemetry holds no PII: one cheap search over the batch's
        # strings decides which events need the full scan at all.
        flags = self.scrubber.flag_events(events, allow)
        tags, scrubber = self._tags, self.scrubber
        for (index, event), flagged in zip(batch.events, flags):
            ts = event.ts
            # msgspec gives UTC timestamps the `UTC` singleton: most need no conversion.
            day = ts.date() if ts.tzinfo is UTC else ts.astimezone(UTC).date()
            event_id = event.event_id
            key = (event_id.int, day)  # UUID.int is a plain attribute; hashing the UUID is Python code
            if key in seen:
                continue  # the same event twice in one batch: stored once
            body = _encode(event)
            # Two C-speed scans (~40 ns an event) rule out what Postgres cannot
            # store (NUL) and what would nest too deep for the scrubber; only a
            # hit pays for the exact check, which names the field.
            if b"\\u0000" in body or body.count(b"[") + body.count(b"{") > MAX_DEPTH:
                rejection = _unstorable(index, event)
                if rejection is not None:
                    unstorable.append(rejection)
                    continue
            seen.add(key)
            subject_id, session_id = event.subject_id, event.session_id
            if flagged:
                scrubbed, count = scrubber.scrub_event(event, allow)
                if count:
                    body = _encode(scrubbed)
                    subject_id, session_id = scrubbed.get("subject_id"), scrubbed.get("session_id")
            rows.append(_new_row(EventRow, (tenant_id, event_id, day, ts, tags[event.__class__], subject_id,
                                            session_id, body, received_at)))
        if unstorable:
            rejected = {r.index for r in unstorable}
            batch.events = [pair for pair in batch.events if pair[0] not in rejected]
            batch.errors = sorted([*batch.errors, *unstorable], key=lambda r: r.index)
        return batch, rows


def _unstorable(index: int, event: Any) -> RejectedEvent | None:
    """The rejection of an event holding NUL or nested too deep, or None when it is fine."""
    try:
        problem = find_problem(msgspec.to_builtins(event), f"$[{index}]")
    except RecursionError:
        problem = ("depth", f"$[{index}]")
    if problem is None:
        return None
    kind, field = problem
    if kind == "nul":
        return RejectedEvent(index=index, code="validation_error", field=field, message=NUL_MESSAGE)
    return RejectedEvent(index=index, code="too_deep", field=field,
                         message=f"nested deeper than {MAX_DEPTH} levels")


def _max_age(settings: Any) -> int:
    # Events older than the retention window would recreate dropped partitions.
    if settings.events_retention_days > 0:
        return min(settings.events_max_age_days, settings.events_retention_days)
    return settings.events_max_age_days
