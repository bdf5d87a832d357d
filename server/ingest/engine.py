"""The ingestion engine: group commit into Postgres, spool when it is away.

Requests hand their rows to `enqueue()` and wait. A few flusher tasks take
whatever has queued up (up to `ingest_flush_events` rows) and COPY it into
`events` (through a staging table and `ON CONFLICT DO NOTHING` when the
group meets stored events), then answer every request in the group.
Concurrent requests so share one COPY and one commit (one fsync) instead of
paying for their own. The first flusher starts as soon as anything waits;
another starts beside it only for a backlog of
`ingest_parallel_flush_events`.

When Postgres cannot be reached, the flusher writes the group to the
on-disk spool instead and answers once that is durable; a drainer task
probes Postgres and moves spooled rows in when it is back. The in-memory
queue and the spool are both bounded: past either bound a request gets 503
with Retry-After, never a silent drop.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import operator
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec
import structlog

from flywheel.server.db.pool import ACQUIRE_TIMEOUT_S, DATA_ERRORS, UNAVAILABLE, NoAnswer, bounded
from flywheel.server.errors import ApiError, Unavailable
from flywheel.server.ingest import metrics as m
from flywheel.server.ingest.pgcopy import copy_source, encode_rows
from flywheel.server.ingest.rows import COLUMNS, EventRow
from flywheel.server.ingest.spool import Spool, SpoolFull

if TYPE_CHECKING:
    from flywheel.server.state import AppState

log = structlog.get_logger("flywheel.ingest")

PROBE_INTERVAL_S = 0.25
PROBE_TIMEOUT_S = 2.0
STAGING_AFTER_CONFLICT_S = 5.0  # after a group held a stored event, skip the plain COPY this long
RETRY_FILE_AFTER_S = 30.0  # a spool file that failed for no known reason waits this long (others go on)


class Unstorable(ApiError):
    """Postgres refused a request's events for a reason in the data itself."""

    status, code = 422, "unstorable_events"


@dataclass
class Outcome:
    accepted: int
    duplicate: int
    spooled: bool = False
    accepted_by_type: collections.Counter = field(default_factory=collections.Counter)


@dataclass
class _Pending:
    rows: list[EventRow]
    data: bytes  # the rows as binary COPY data (pgcopy.encode_rows)
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)


def _types(rows: list[EventRow]) -> collections.Counter:
    """How many of `rows` are of each type (counted in C: this runs for every row)."""
    return collections.Counter(map(_ROW_TYPE, rows))


_ROW_TYPE = operator.itemgetter(EventRow._fields.index("type"))
_ROW_DAY = operator.itemgetter(EventRow._fields.index("day"))


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Bodies arrive already encoded as JSON bytes: jsonb's binary format is a
    # version byte and the text, so they go to Postgres without re-encoding.
    await conn.set_type_codec("jsonb", schema="pg_catalog", format="binary",
                              encoder=lambda b: b"\x01" + b, decoder=lambda b: b[1:])
    await conn.execute("CREATE TEMP TABLE IF NOT EXISTS events_staging (LIKE events) ON COMMIT DELETE ROWS")


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    # These connections only COPY and INSERT: no SET, LISTEN or advisory lock
    # to undo, and the staging table empties itself at commit. asyncpg's
    # default reset would cost a round trip and a statement per flush.
    return None


class IngestEngine:
    def __init__(self, state: AppState) -> None:
        s = state.settings
        self.state = state
        self.settings = s
        self.spool = Spool(s.data_path / "spool" / "events", s.spool_max_bytes)
        self.pending: collections.deque[_Pending] = collections.deque()
        self.queued_events = 0
        self._changed = asyncio.Event()  # set when a request queues or a flush ends
        self._flushing = 0  # COPYs in progress
        self.pool: asyncpg.Pool | None = None
        self.db_up = True
        self.known_days: set[date] = set()
        self.listeners: list[Any] = []  # callables(rows) run after commit (archive, subscribers)
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self._drain_lock = asyncio.Lock()
        self._staging_until = 0.0  # monotonic time until which groups go through the staging table
        self._retry_at: dict[str, float] = {}  # spool file name -> when to try it again

    # -- what it is doing (for metrics, operators and tests) -------------------

    @property
    def copies_in_progress(self) -> int:
        """Group commits (COPYs) running now."""
        return self._flushing

    @property
    def via_staging(self) -> bool:
        """Whether groups go through the staging table (for a while after one met a stored event)."""
        return time.monotonic() < self._staging_until

    def forget_conflicts(self) -> None:
        """Try the plain COPY first for the next group, as after a quiet spell."""
        self._staging_until = 0.0

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        self.spool.open()
        self._gauges()
        # Counted when scraped: the folder changes when a drain quarantines and when an
        # operator deletes a file, and listing it on every spooled flush would be I/O for nothing.
        m.QUARANTINE_FILES.set_function(lambda: len(self.spool.dead_letters()))
        if self.spool.files:
            log.warning("spool holds events from an earlier run; draining", batches=self.spool.files)
        try:
            await self._open_pool()
            await self.ensure_partitions(date.today() - timedelta(days=1), date.today() + timedelta(days=7))
        except UNAVAILABLE as exc:
            # Start anyway: events go to the spool until Postgres answers.
            log.warning("Postgres unavailable at ingest start; spooling", error=type(exc).__name__)
            self.db_up = False
        for _ in range(self.settings.ingest_flushers):
            self._tasks.append(asyncio.create_task(self._flusher()))
        self._tasks.append(asyncio.create_task(self._drainer()))

    async def stop(self) -> None:
        """Finish what was accepted (into Postgres, or the spool), then stop."""
        self._stopping = True
        self._changed.set()
        flushers, drainer = self._tasks[:-1], self._tasks[-1:]
        await asyncio.gather(*flushers, return_exceptions=True)
        for task in drainer:
            task.cancel()
        await asyncio.gather(*drainer, return_exceptions=True)
        if self.pool is not None:
            await self.pool.close()

    # -- intake -------------------------------------------------------------

    def enqueue(self, rows: list[EventRow]) -> asyncio.Future[Outcome]:
        """Queue `rows` for the next group commit; the future is done once they are durable.

        The rows are encoded for COPY here, in the caller's turn of the event
        loop, so that a flush only sends bytes. Raises 503 when the queue is
        full or the engine is stopping.
        """
        if not rows:
            done = asyncio.get_running_loop().create_future()
            done.set_result(Outcome(0, 0))
            return done
        if self._stopping:
            raise Unavailable("shutting down; retry on another replica", headers={"Retry-After": "1"})
        if self.queued_events + len(rows) > self.settings.ingest_queue_events:
            raise Unavailable("ingestion queue is full; retry shortly", code="overloaded",
                              headers={"Retry-After": "1"})
        pending = _Pending(rows, encode_rows(rows), asyncio.get_running_loop().create_future())
        self.queued_events += len(rows)
        m.QUEUE_EVENTS.set(self.queued_events)
        self.pending.append(pending)
        self._changed.set()
        return pending.future

    def _may_flush(self) -> bool:
        # The first COPY starts as soon as anything is queued: at low load a
        # request waits for nothing but its own commit. Another COPY beside
        # it starts only for a backlog worth it. A COPY has a fixed cost
        # (about 0.4 ms of Postgres CPU, plus a commit), so a second flusher
        # taking each request as it comes would spend that on groups of one
        # request, and the backlog drains faster into the next big group.
        if not self.pending:
            return False
        return self._flushing == 0 or self.queued_events >= self.settings.ingest_parallel_flush_events

    async def _flusher(self) -> None:
        limit = self.settings.ingest_flush_events
        pending = self.pending
        while True:
            while not self._may_flush():
                if self._stopping and not pending:
                    return
                self._changed.clear()
                await self._changed.wait()
            group, count = [], 0
            while pending and count < limit:
                p = pending.popleft()
                group.append(p)
                count += len(p.rows)
            self.queued_events -= count
            m.QUEUE_EVENTS.set(self.queued_events)
            self._flushing += 1
            try:
                await self._flush(group)
            finally:
                self._flushing -= 1
                self._changed.set()

    async def _flush(self, group: list[_Pending]) -> None:
        rows = list(itertools.chain.from_iterable(p.rows for p in group))
        started = time.perf_counter()
        try:
            if not self.db_up:
                raise ConnectionError("Postgres marked unavailable")
            inserted = await self._insert(rows, [p.data for p in group])
        except DATA_ERRORS as exc:  # first: asyncpg's client-side DataError is also an InterfaceError
            await self._refused(group, exc)
            return
        except UNAVAILABLE as exc:
            if isinstance(exc, NoAnswer):
                m.FLUSH_TIMEOUTS.inc()
            if self.db_up:
                log.warning("Postgres unavailable; spooling events", error=f"{type(exc).__name__}: {exc}")
            self.db_up = False
            await self._spool(group, rows)
            return
        except Exception as exc:  # a bug or a constraint we did not expect: fail these requests loudly
            log.exception("event insert failed")
            for p in group:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        m.FLUSH_EVENTS.observe(len(rows))
        m.FLUSH_SECONDS.observe(time.perf_counter() - started)
        if inserted is None:
            # The common case: nothing was stored before, every row is new.
            for p in group:
                if not p.future.done():
                    p.future.set_result(Outcome(len(p.rows), 0, accepted_by_type=_types(p.rows)))
            self._notify(rows)
            return
        # Some were duplicates: the first request (in queue order) to carry an
        # event gets it as accepted, the others count it as a duplicate.
        owned: set[tuple] = set()
        for p in group:
            by_type: collections.Counter = collections.Counter()
            for row in p.rows:
                key = (row.tenant_id, row.event_id, row.day)
                if key in inserted and key not in owned:
                    owned.add(key)
                    by_type[row.type] += 1
            accepted = sum(by_type.values())
            if not p.future.done():
                p.future.set_result(Outcome(accepted, len(p.rows) - accepted, accepted_by_type=by_type))
        self._notify([row for row in rows if (row.tenant_id, row.event_id, row.day) in inserted])

    async def _refused(self, group: list[_Pending], exc: Exception) -> None:
        """Postgres refused a group for a reason in its data: only the request at fault may fail.

        Requests of many tenants share a COPY, so the group is retried one
        request at a time; a request refused on its own gets a 422.
        """
        if len(group) > 1:
            m.SPLIT_GROUPS.inc()
            log.warning("group commit refused for its data; retrying request by request",
                        requests=len(group), error=f"{type(exc).__name__}: {exc}")
            for p in group:
                await self._flush([p])
            return
        log.warning("events refused by Postgres", error=f"{type(exc).__name__}: {exc}")
        error = Unstorable(f"Postgres refused these events: {type(exc).__name__}: {exc}"[:500])
        for p in group:
            if not p.future.done():
                p.future.set_exception(error)

    async def _spool(self, group: list[_Pending], rows: list[EventRow]) -> None:
        try:
            await self.spool.write(rows)
        except SpoolFull as exc:
            for p in group:
                if not p.future.done():
                    p.future.set_exception(Unavailable(
                        f"Postgres is unavailable and the spool is full ({exc}); retry later",
                        headers={"Retry-After": "5"}))
            return
        except Exception:
            log.exception("spool write failed")
            for p in group:
                if not p.future.done():
                    p.future.set_exception(Unavailable("events could not be stored; retry",
                                                       headers={"Retry-After": "5"}))
            return
        m.SPOOLED.inc(len(rows))
        self._gauges()
        for p in group:
            if not p.future.done():
                p.future.set_result(Outcome(len(p.rows), 0, spooled=True,
                                            accepted_by_type=_types(p.rows)))

    # -- Postgres -----------------------------------------------------------

    async def _open_pool(self) -> None:
        if self.pool is None:
            self.pool = await asyncpg.create_pool(
                self.settings.database_url, min_size=1, max_size=self.settings.ingest_flushers + 1,
                init=_init_connection, reset=_nothing_to_reset, timeout=ACQUIRE_TIMEOUT_S)

    async def _insert(self, rows: list[EventRow], data: list[bytes]) -> set[tuple] | None:
        """Insert rows, skipping stored ones; the keys of the new ones, or None when all were new.

        Most groups hold only new events, so the first try is a plain COPY
        into `events`: Postgres does a third less work than for the staging
        table and `ON CONFLICT`, and nothing comes back. A duplicate makes
        that COPY fail as a whole; the group is then written through the
        staging table, which skips stored events. After such a conflict the
        staging path is used for a while: a client retrying batches would
        otherwise make every group pay for a failed COPY.
        """
        await self._open_pool()
        # The whole group commit, partitions included, has one deadline: a
        # hung Postgres cuts the connection and the group goes to the spool.
        async with bounded(self.pool, self.settings.ingest_flush_timeout_s) as conn:
            days = set(map(_ROW_DAY, rows)) - self.known_days
            if days:
                await self._ensure_partitions(conn, min(days), max(days))
            if time.monotonic() >= self._staging_until:
                try:
                    # One statement is its own transaction: all rows or none, and
                    # no BEGIN and COMMIT round trips waiting for a busy event loop.
                    await conn.copy_to_table("events", source=copy_source(data), columns=COLUMNS, format="binary")
                    return None
                except asyncpg.UniqueViolationError:
                    m.COPY_CONFLICTS.inc()
                    self._staging_until = time.monotonic() + STAGING_AFTER_CONFLICT_S
            async with conn.transaction():
                await conn.copy_to_table("events_staging", source=copy_source(data), columns=COLUMNS,
                                         format="binary")
                returned = await conn.fetch(
                    "INSERT INTO events SELECT * FROM events_staging ON CONFLICT DO NOTHING "
                    "RETURNING tenant_id, event_id, day")
        if len(returned) == len(rows):
            return None
        return {(r[0], r[1], r[2]) for r in returned}

    async def ensure_partitions(self, first: date, last: date) -> None:
        await self._open_pool()
        async with bounded(self.pool, self.settings.ingest_flush_timeout_s) as conn:
            await self._ensure_partitions(conn, first, last)

    async def _ensure_partitions(self, conn: asyncpg.Connection, first: date, last: date) -> None:
        await conn.fetchval("SELECT flywheel_ensure_event_partitions($1, $2)", first, last)
        self.known_days.update(first + timedelta(days=i) for i in range((last - first).days + 1))

    async def _drainer(self) -> None:
        """Probe Postgres while it is away; move spooled rows in when it is back."""
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            try:
                if not self.db_up:
                    await self._probe()
                if self.db_up and self.spool.files:
                    await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("spool drain failed; will retry")

    async def _probe(self) -> None:
        try:
            await self._open_pool()
            async with bounded(self.pool, PROBE_TIMEOUT_S) as conn:
                await conn.fetchval("SELECT 1")
        except UNAVAILABLE:
            return
        log.info("Postgres is back; draining the spool", batches=self.spool.files)
        self.db_up = True

    async def drain(self) -> int:
        """Commit every spooled batch to Postgres, oldest first; returns rows moved.

        A file whose rows Postgres refuses for their data is not retried
        forever in front of the others: its rows are stored but for the ones
        refused on their own, which go to the dead-letter folder. A file that
        fails for any other reason waits a while; the files after it go on.
        """
        moved = 0
        async with self._drain_lock:
            for path in self.spool.pending():
                if self._retry_at.get(path.name, 0.0) > time.monotonic():
                    continue
                try:
                    moved += await self._drain_file(path)
                except UNAVAILABLE:
                    self.db_up = False
                    break
                except Exception:
                    log.exception("spool file could not be drained; trying the next ones", file=path.name)
                    self._retry_at[path.name] = time.monotonic() + RETRY_FILE_AFTER_S
        return moved

    async def _drain_file(self, path: Path) -> int:
        try:
            rows = await self.spool.read(path)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:  # written by nothing we know
            self._quarantined(path, self.spool.quarantine_file(path, f"unreadable: {exc}"), 0)
            return 0
        stored, refused = await self._insert_isolating(rows)
        if refused:
            dead = await self.spool.quarantine(path, refused)
            self._quarantined(path, dead, len(refused))
        self.spool.remove(path)
        self._retry_at.pop(path.name, None)
        m.DRAINED.inc(len(rows) - len(refused))
        self._gauges()
        self._notify(stored)
        return len(rows) - len(refused)

    async def _insert_isolating(self, rows: list[EventRow]) -> tuple[list[EventRow], list[tuple[EventRow, str]]]:
        """Insert `rows`, halving on a data error until each refused row stands alone.

        Returns the rows newly stored and (row, reason) for each refused one.
        A spooled group mixes requests of many tenants: one bad event must
        cost the others nothing. A file of n rows with one bad row takes
        about 2 log2(n) inserts.
        """
        try:
            inserted = await self._insert(rows, [encode_rows(rows)])
        except DATA_ERRORS as exc:
            if len(rows) == 1:
                return [], [(rows[0], f"{type(exc).__name__}: {exc}")]
            half = len(rows) // 2
            first, second = await self._insert_isolating(rows[:half]), await self._insert_isolating(rows[half:])
            return first[0] + second[0], first[1] + second[1]
        return (rows if inserted is None else [row for row in rows if row.key in inserted]), []

    def _quarantined(self, source: Path, dead: Path, events: int) -> None:
        m.QUARANTINED.inc(events)
        log.error("spooled events moved to the dead-letter folder: Postgres refused them",
                  file=source.name, dead_letter=str(dead), events=events)
        self._gauges()

    # -- after commit -------------------------------------------------------

    def _notify(self, rows: list[EventRow]) -> None:
        if not rows:
            return
        for listener in self.listeners:
            try:
                listener(rows)
            except Exception:
                log.exception("event listener failed")

    def _gauges(self) -> None:
        m.SPOOL_BYTES.set(self.spool.bytes)
        m.SPOOL_BATCHES.set(self.spool.files)

