"""What the scoring path counts, in memory, flushed to Postgres every few seconds.

A request only appends to lists and bumps integers (well under a microsecond
of a `/score` request's ~200 us); every DIGEST_ROWS rows, and at each flush,
the buffered rows are counted into the version's bins at once (numpy, a few
milliseconds for thousands of rows) and the latencies into their buckets.
A flush (every FLUSH_S seconds in an API process, at the end of each
`score_table` in a worker, and at shutdown) adds everything counted since
the last one to the day's rows in one transaction: writes grow with versions
scored, not with requests. What a process holds when it is killed (at most
FLUSH_S seconds of counts) is lost; a flush that fails is kept for the next.

Days are UTC days of when rows were scored. A family whose rows describe
other days (batch jobs over history) gives its own rows to the daily job
instead (the `monitoring_rows` hook; see sources.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from flywheel.server.monitoring.latency import BUCKETS, bucket_counts

if TYPE_CHECKING:
    from flywheel.server.monitoring.bins import Layout

log = structlog.get_logger("flywheel.monitoring")

FLUSH_S = 5.0
DIGEST_ROWS = 2048
MAX_HELD = 10_000  # version-days kept across failing flushes before the oldest are dropped

_BINS = """
INSERT INTO model_scored_bins AS b (tenant_id, family, version, day, rows, score_sum, counts)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (tenant_id, family, version, day) DO UPDATE SET
    rows = b.rows + EXCLUDED.rows, score_sum = b.score_sum + EXCLUDED.score_sum,
    counts = CASE WHEN cardinality(b.counts) <> cardinality(EXCLUDED.counts) THEN EXCLUDED.counts
             ELSE (SELECT array_agg(x + y ORDER BY i)
                   FROM unnest(b.counts, EXCLUDED.counts) WITH ORDINALITY AS u(x, y, i)) END
"""
_COUNTERS = """
INSERT INTO model_scoring_counters AS c (tenant_id, family, version, day, endpoint, requests, rows, client_errors,
                                         server_errors, latency)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (tenant_id, family, version, day, endpoint) DO UPDATE SET
    requests = c.requests + EXCLUDED.requests, rows = c.rows + EXCLUDED.rows,
    client_errors = c.client_errors + EXCLUDED.client_errors,
    server_errors = c.server_errors + EXCLUDED.server_errors,
    latency = (SELECT array_agg(x + y ORDER BY i)
               FROM unnest(c.latency, EXCLUDED.latency) WITH ORDINALITY AS u(x, y, i))
"""


@dataclass
class _Endpoint:
    requests: int = 0
    rows: int = 0
    client_errors: int = 0
    server_errors: int = 0
    seconds: list[float] = field(default_factory=list)
    latency: np.ndarray = field(default_factory=lambda: np.zeros(BUCKETS, dtype=np.int64))

    def digest(self) -> None:
        if self.seconds:
            self.latency += bucket_counts(np.asarray(self.seconds))
            self.seconds = []


@dataclass
class _VersionDay:
    """One version's counts for one day, since the last flush."""

    key: tuple[Any, str, int]  # (tenant_id, family, version)
    day: date
    layout: Layout | None
    endpoints: dict[str, _Endpoint] = field(default_factory=dict)
    one_x: list[np.ndarray] = field(default_factory=list)  # single rows (/score) and their margins
    one_m: list[float] = field(default_factory=list)
    many_x: list[np.ndarray] = field(default_factory=list)  # batches and their margins
    many_m: list[np.ndarray] = field(default_factory=list)
    buffered: int = 0
    counts: np.ndarray | None = None
    rows: int = 0  # rows in `counts`
    score_sum: float = 0.0

    def endpoint(self, name: str) -> _Endpoint:
        e = self.endpoints.get(name)
        if e is None:
            e = self.endpoints[name] = _Endpoint()
        return e

    def digest(self) -> None:
        """Count the buffered rows into the bins."""
        for e in self.endpoints.values():
            e.digest()
        if not self.buffered:
            return
        from scipy.special import expit  # here: scipy takes a while to import, and most processes never digest

        X = np.concatenate(self.one_x + self.many_x)
        m = np.concatenate([np.asarray(self.one_m, dtype=np.float64), *self.many_m])
        self.one_x, self.one_m, self.many_x, self.many_m, self.buffered = [], [], [], [], 0
        self.add(self.layout.count(X, m), len(m), float(expit(m).sum()))

    def add(self, counts: np.ndarray, rows: int, score_sum: float) -> None:
        self.counts = counts if self.counts is None else self.counts + counts
        self.rows += rows
        self.score_sum += score_sum


class ScoringMonitor:
    """The process's scoring counts. One per ModelRuntime; `score`/`score_batch`/`score_table` feed it."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self._open: dict[tuple, _VersionDay] = {}
        self._closed: list[_VersionDay] = []  # a finished day's, or a failed flush's, waiting to be written
        self._day, self._day_end = _today()
        self._task: asyncio.Task | None = None

    # -- the hot path --------------------------------------------------------------------------

    def _current(self, model: Any) -> _VersionDay:
        if time.time() >= self._day_end:  # midnight UTC: what was counted belongs to the day before
            self._closed += self._open.values()
            self._open = {}
            self._day, self._day_end = _today()
        vd = self._open.get(model.monitor_key)
        if vd is None:
            vd = self._open[model.monitor_key] = _VersionDay(model.monitor_key, self._day, model.layout)
        return vd

    def scored_one(self, model: Any, X: np.ndarray, margin: float, seconds: float) -> None:
        """One row scored by `/score` in `seconds`."""
        vd = self._current(model)
        e = vd.endpoint("score")
        e.requests += 1
        e.rows += 1
        e.seconds.append(seconds)
        if vd.layout is not None:
            vd.one_x.append(X)
            vd.one_m.append(margin)
            vd.buffered += 1
            if vd.buffered >= DIGEST_ROWS:
                vd.digest()

    def scored_many(self, model: Any, endpoint: str, X: np.ndarray, margins: np.ndarray, seconds: float) -> None:
        """A batch of rows scored in one request (`/score_batch`) in `seconds`."""
        vd = self._current(model)
        e = vd.endpoint(endpoint)
        e.requests += 1
        e.rows += len(margins)
        e.seconds.append(seconds)
        if vd.layout is not None:
            vd.many_x.append(X)
            vd.many_m.append(np.asarray(margins, dtype=np.float64))
            vd.buffered += len(margins)
            if vd.buffered >= DIGEST_ROWS:
                vd.digest()

    def counted(self, model: Any, endpoint: str, counts: np.ndarray | None, rows: int, score_sum: float,
                seconds: float) -> None:
        """Rows already counted into the version's bins (by `score_table`, off the event loop)."""
        vd = self._current(model)
        e = vd.endpoint(endpoint)
        e.requests += 1
        e.rows += rows
        e.seconds.append(seconds)
        if counts is not None and vd.layout is not None:
            vd.add(counts, rows, score_sum)

    def failed(self, model: Any, endpoint: str, *, client: bool) -> None:
        """A request `model` was to score that failed: refused rows (`client`) or an error of ours."""
        e = self._current(model).endpoint(endpoint)
        e.requests += 1
        if client:
            e.client_errors += 1
        else:
            e.server_errors += 1

    # -- flushing ------------------------------------------------------------------------------

    async def flush(self) -> int:
        """Write everything counted since the last flush; returns the version-days written."""
        held = self._closed + list(self._open.values())
        self._closed, self._open = [], {}
        if not held:
            return 0
        for vd in held:
            vd.digest()
        try:
            async with self.state.db.acquire() as conn, conn.transaction():
                await conn.executemany(_BINS, _bin_records(held))
                await conn.executemany(_COUNTERS, _counter_records(held))
        except Exception as exc:  # Postgres away: keep the counts for the next flush
            self._closed = (held + self._closed)[-MAX_HELD:]
            log.warning("scoring counts not flushed; kept for the next flush", error=type(exc).__name__,
                        version_days=len(held))
            return 0
        return len(held)

    @property
    def flushing(self) -> bool:
        """Whether this process writes the counts every FLUSH_S (an API process; a worker does not)."""
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._flush_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            try:
                await self.flush()
            except Exception:
                log.exception("scoring counts flush failed")


def _bin_records(held: list[_VersionDay]) -> list[tuple]:
    return [(*vd.key, vd.day, vd.rows, vd.score_sum, vd.counts.tolist()) for vd in held if vd.counts is not None]


def _counter_records(held: list[_VersionDay]) -> list[tuple]:
    return [(*vd.key, vd.day, name, e.requests, e.rows, e.client_errors, e.server_errors, e.latency.tolist())
            for vd in held for name, e in vd.endpoints.items()]


def _today() -> tuple[date, float]:
    now = datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    return now.date(), midnight.timestamp()
