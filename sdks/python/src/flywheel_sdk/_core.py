"""The client's state, without network I/O: which events wait, which batch goes next, what is full.

Both clients (a thread in `Client`, a task in `AsyncClient`) drive the same
`Pipeline`: callers `add()` encoded events; the worker asks `next_step()`
what to do, does it (an HTTP delivery, file writes, a wait) and reports
back. `Client` calls it under its lock, `AsyncClient` from its event loop.

- Events wait in `pending` until `batch_size` of them (or `max_batch_bytes`)
  make a batch, or the oldest has waited `flush_interval`.
- Batches go out one at a time, oldest first. When a delivery gives up (the
  server is unavailable) the client is offline: the oldest batch is tried
  again after a backoff, and meanwhile every batch is written to the buffer
  folder, if there is one, so that a restart finds them.
- `buffered` counts every event not acknowledged yet (pending, in memory, on
  disk). Past `max_buffer_events` the `on_full` policy applies.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import msgspec

from flywheel_sdk._buffer import FileBuffer, Stored
from flywheel_sdk._http import Delivery, IngestResult, RetryPolicy

log = logging.getLogger("flywheel_sdk")

ON_FULL = ("drop_oldest", "block", "raise")
MAX_BATCH_EVENTS = 10_000  # the server's limit for one request
ROOM, FULL, DROP_NEW = "room", "full", "drop_new"


class BufferFull(RuntimeError):
    """The buffer holds `max_buffer_events` events (on_full="raise", or "block" past its timeout)."""


class ClientClosed(RuntimeError):
    """The client was closed: it takes no more events."""


@dataclass(frozen=True)
class Stats:
    sent: int  # events the server acknowledged (accepted, or stored before: `duplicate`)
    duplicate: int
    buffered: int  # events not acknowledged yet: waiting, being sent, or in the buffer folder
    dropped: int  # events given up by the on_full policy, or unsent at close without a buffer folder
    retried: int  # requests sent again after a failed try
    rejected: int  # events the server refused (see on_rejected)


@dataclass(frozen=True)
class Rejection:
    """An event the server refused, and why. `status` 200: refused alone, in an accepted batch."""

    event: dict[str, Any] | None
    code: str
    message: str
    field: str | None = None
    status: int | None = 200

    @property
    def event_id(self) -> str | None:
        return self.event.get("event_id") if isinstance(self.event, dict) else None


@dataclass(eq=False)
class Batch:
    key: str  # its Idempotency-Key, for every try and after a restart
    count: int
    body: bytes | None  # None while it is only on disk: read back to send
    stored: Stored | None = None
    busy: bool = False  # being sent or written: never dropped meanwhile
    unspillable: bool = False  # writing it to disk failed: it stays in memory


@dataclass(frozen=True)
class Wait:
    seconds: float | None  # None: until something changes


@dataclass(frozen=True)
class Send:
    batch: Batch
    retries: int


@dataclass(frozen=True)
class Spill:
    batches: list[Batch]


EXIT = "exit"


def new_key() -> str:
    return uuid4().hex


def join_events(events: list[bytes]) -> bytes:
    return b"[" + b",".join(events) + b"]"


@dataclass
class Pipeline:
    batch_size: int
    flush_interval: float
    max_batch_bytes: int
    max_buffer_events: int
    on_full: str
    policy: RetryPolicy
    store: FileBuffer | None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("sent", "duplicate", "dropped", "retried", "rejected"), 0))

    def __post_init__(self) -> None:
        self.buffered = 0
        self.pending: list[bytes] = []
        self.pending_bytes = 2
        self.pending_since = 0.0
        self.queue: deque[Batch] = deque()
        self.offline_until: float | None = None
        self.failures = 0  # deliveries in a row that gave up
        self.gave_up = 0  # all deliveries that gave up: `flush()` stops waiting when it moves
        self.closing = self.aborting = self.flush_now = False
        for stored in self.store.load() if self.store else ():
            self.queue.append(Batch(stored.key, stored.count, None, stored))
            self.buffered += stored.count

    def stats(self) -> Stats:
        return Stats(buffered=self.buffered, **self.counts)

    def idle(self) -> bool:
        return not self.pending and not self.queue

    # -- callers ---------------------------------------------------------------

    def room(self) -> str:
        """ROOM for one more event, FULL (the policy decides), or DROP_NEW (nothing older could go)."""
        while self.buffered >= self.max_buffer_events:
            if self.on_full != "drop_oldest":
                return FULL
            if not self._drop_oldest():
                self.counts["dropped"] += 1
                return DROP_NEW
        return ROOM

    def add(self, data: bytes, now: float) -> bool:
        """Queue one encoded event; True when the worker should look again (a batch or a timer began)."""
        if self.pending and self.pending_bytes + len(data) + 1 > self.max_batch_bytes:
            self._cut()
        if not self.pending:
            self.pending_since = now
        self.pending.append(data)
        self.pending_bytes += len(data) + 1
        self.buffered += 1
        if len(self.pending) >= self.batch_size:
            self._cut()
        return len(self.pending) <= 1

    def flush(self, now: float) -> int:
        """Send what waits now, and try the server now even if offline; the mark `gave_up` moves from."""
        self.flush_now = True
        if self.offline_until is not None:
            self.offline_until = now
        return self.gave_up

    # -- the worker --------------------------------------------------------------

    def next_step(self, now: float) -> Wait | Send | Spill | str:
        if self.pending and (self.closing or self.flush_now or now - self.pending_since >= self.flush_interval):
            self._cut()
        self.flush_now = False
        if self._offline(now):
            spill = [b for b in self.queue if b.stored is None and not b.busy and not b.unspillable]
            if spill and self.store is not None:
                for batch in spill:
                    batch.busy = True
                return Spill(spill)
            if self.closing:
                return EXIT
            return Wait(self._timer(now, self.offline_until))
        if not self.queue:
            return EXIT if self.closing else Wait(self._timer(now, None))
        head = self.queue[0]
        head.busy = True
        # Offline, one try is the probe: its failure only pushes the next probe back.
        return Send(head, 0 if self.failures else self.policy.max_retries)

    def spilled(self, batch: Batch, stored: Stored | None) -> None:
        batch.busy = False
        if stored is None:
            batch.unspillable = True
        else:
            batch.stored, batch.body = stored, None

    def finish(self, batch: Batch, body: bytes, delivery: Delivery, now: float) -> list[Rejection]:
        """Account for a delivery; the rejections to report (outside any lock)."""
        batch.busy = False
        self.counts["retried"] += delivery.retries
        if delivery.kind == "unavailable":
            self.failures += 1
            self.gave_up += 1
            self.offline_until = now + self.policy.probe_delay(self.failures - 1, delivery.retry_after)
            # Loud once per outage; each failed probe after that only at INFO.
            log.log(logging.WARNING if self.failures == 1 else logging.INFO,
                    "Flywheel is unavailable (%s); %d events wait, next try in %.1f s",
                    delivery.message or delivery.status, self.buffered, self.offline_until - now)
            return []
        if self.failures:
            log.info("Flywheel is reachable again; sending the %d events that waited", self.buffered)
        self.failures, self.offline_until = 0, None
        self._remove(batch)
        if delivery.kind == "ok":
            return self._acknowledged(body, batch.count, delivery.result)
        self.counts["rejected"] += batch.count
        code = delivery.code or (f"http_{delivery.status}" if delivery.status else "rejected")
        return [Rejection(event, code, delivery.message, None, delivery.status)
                for event in _events_of(body, batch.count)]

    def replace(self, batch: Batch, halves: list[Batch]) -> None:
        """A batch the server found too large (413) is sent as two."""
        batch.busy = False
        self.failures, self.offline_until = 0, None
        at = self.queue.index(batch)
        self.queue.remove(batch)
        for offset, half in enumerate(halves):
            self.queue.insert(at + offset, half)
        if batch.stored is not None and self.store is not None:
            self.store.remove(batch.stored.path)

    def vanished(self, batch: Batch) -> None:
        """Its file was removed by someone else: nothing left to send."""
        log.warning("Flywheel buffer file %s disappeared; its %d events are lost",
                    batch.stored.path if batch.stored else "?", batch.count)
        self._remove(batch)
        self.counts["dropped"] += batch.count

    def leftovers(self) -> list[Batch]:
        """At close: every batch that is only in memory (what waited included)."""
        if self.pending:
            self._cut()
        return [b for b in self.queue if b.stored is None]

    def abandon(self, batches: list[Batch]) -> None:
        lost = sum(b.count for b in batches)
        for batch in batches:
            self._remove(batch)
        if lost:
            self.counts["dropped"] += lost
            log.warning("%d events were not sent to Flywheel (unavailable) and could not be kept on disk "
                        "(no buffer_path, or writing failed)", lost)

    # -- inside ------------------------------------------------------------------

    def _offline(self, now: float) -> bool:
        if self.aborting:
            return True
        return self.offline_until is not None and (self.closing or now < self.offline_until)

    def _timer(self, now: float, until: float | None) -> float | None:
        deadlines = [t for t in (until, self.pending_since + self.flush_interval if self.pending else None)
                     if t is not None]
        return max(0.0, min(deadlines) - now) if deadlines else None

    def _cut(self) -> None:
        self.queue.append(Batch(new_key(), len(self.pending), join_events(self.pending)))
        self.pending, self.pending_bytes = [], 2

    def _remove(self, batch: Batch) -> None:
        if batch in self.queue:
            self.queue.remove(batch)
            self.buffered -= batch.count
        if batch.stored is not None and self.store is not None:
            try:
                self.store.remove(batch.stored.path)
            except OSError:
                log.exception("could not remove Flywheel buffer file %s", batch.stored.path)

    def _drop_oldest(self) -> bool:
        for batch in self.queue:
            if not batch.busy:
                self._remove(batch)
                self.counts["dropped"] += batch.count
                log.warning("Flywheel buffer full (%d events): dropped the oldest %d", self.max_buffer_events,
                            batch.count)
                return True
        if self.pending:
            self.pending_bytes -= len(self.pending.pop(0)) + 1
            self.buffered -= 1
            self.counts["dropped"] += 1
            return True
        return False

    def _acknowledged(self, body: bytes, count: int, result: IngestResult | None) -> list[Rejection]:
        if result is None:
            self.counts["sent"] += count
            return []
        self.counts["sent"] += result.accepted + result.duplicate
        self.counts["duplicate"] += result.duplicate
        self.counts["rejected"] += result.rejected
        if not result.errors:
            return []
        events = _events_of(body, count)
        return [Rejection(events[e.index] if 0 <= e.index < len(events) else None, e.code, e.message, e.field)
                for e in result.errors]


def _events_of(body: bytes, count: int) -> list[Any]:
    try:
        events = msgspec.json.decode(body)
    except msgspec.DecodeError:
        events = None
    return events if isinstance(events, list) else [None] * count


def split_batch(batch: Batch, body: bytes, store: FileBuffer | None) -> list[Batch]:
    """Two batches of half the events each, under new keys (the server stored none of them).

    A batch that was on disk has its halves written beside it first, named to
    sort in its place; it is removed only after (`Pipeline.replace`).
    """
    events = msgspec.json.decode(body, type=list[msgspec.Raw])
    middle = len(events) // 2
    halves = []
    for digit, part in enumerate((events[:middle], events[middle:])):
        half = Batch(new_key(), len(part), join_events([bytes(raw) for raw in part]))
        if batch.stored is not None and store is not None:
            half.stored = store.write(half.key, half.count, half.body, seq=f"{batch.stored.seq}{digit}")
            half.body = None
        halves.append(half)
    return halves


def write_batch(store: FileBuffer, batch: Batch) -> Stored | None:
    try:
        return store.write(batch.key, batch.count, batch.body)
    except OSError:
        log.exception("could not write a batch to the Flywheel buffer folder")
        return None


def keep(pipeline: Pipeline, batches: list[Batch]) -> None:
    """At close, once the worker stopped: write what is left to the buffer folder, or count it dropped."""
    if pipeline.store is None:
        pipeline.abandon(batches)
        return
    for batch in batches:
        stored = write_batch(pipeline.store, batch)
        if stored is None:
            pipeline.abandon([batch])
        else:
            pipeline.spilled(batch, stored)
