"""The event archive in the object store.

Committed events are appended, as JSON lines, to files under each tenant's
`events/jsonl/dt=YYYY-MM-DD/` (a stream for other tools to pick up; written
off the request path, in batches of up to a second). A daily job compacts a
day into Parquet under `events/parquet/dt=YYYY-MM-DD/part-00000.parquet`
(zstd), read from Postgres, which holds every committed event exactly once:
the output is deterministic, so compacting a day twice changes nothing.
Hive-style `dt=` folders make the set readable by DuckDB, Polars or pyarrow
as a partitioned data set.
"""

from __future__ import annotations

import asyncio
import collections
import os
import tempfile
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from flywheel.server.ingest import metrics as m
from flywheel.server.ingest.rows import EventRow

if TYPE_CHECKING:
    from flywheel.server.state import AppState

log = structlog.get_logger("flywheel.ingest")
FLUSH_INTERVAL_S = 1.0
QUEUE_GROUPS = 1024

PARQUET_SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("type", pa.string()),
    ("ts", pa.timestamp("us", tz="UTC")),
    ("subject_id", pa.string()),
    ("session_id", pa.string()),
    ("received_at", pa.timestamp("us", tz="UTC")),
    ("body", pa.string()),  # the event as JSON (PII scrubbed)
])
PARQUET_ROW_GROUP = 100_000


def jsonl_prefix(day: date) -> str:
    return f"events/jsonl/dt={day.isoformat()}/"


def parquet_key(day: date) -> str:
    return f"events/parquet/dt={day.isoformat()}/part-00000.parquet"


class JsonlArchiver:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.queue: asyncio.Queue[list[EventRow]] = asyncio.Queue(maxsize=QUEUE_GROUPS)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._write(self._take_all())  # what is still queued

    def offer(self, rows: list[EventRow]) -> None:
        try:
            self.queue.put_nowait(rows)
        except asyncio.QueueFull:
            # The archive of record is Postgres (and its Parquet compaction);
            # the JSONL stream may lag but must never hold up intake.
            m.ARCHIVE_ERRORS.inc()

    def _take_all(self) -> list[EventRow]:
        rows = []
        while not self.queue.empty():
            rows += self.queue.get_nowait()
        return rows

    async def _run(self) -> None:
        while True:
            rows = await self.queue.get()
            await asyncio.sleep(FLUSH_INTERVAL_S)  # gather a second's worth into one file per tenant-day
            await self._write(rows + self._take_all())

    async def _write(self, rows: list[EventRow]) -> None:
        groups: dict[tuple[UUID, date], list[bytes]] = collections.defaultdict(list)
        for row in rows:
            groups[(row.tenant_id, row.day)].append(row.body)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        for (tenant_id, day), bodies in groups.items():
            key = f"{jsonl_prefix(day)}{stamp}-{uuid.uuid4().hex[:8]}.jsonl"
            try:
                await self.state.tenant_store(tenant_id).put(key, b"\n".join(bodies) + b"\n",
                                                             content_type="application/x-ndjson")
            except Exception:
                m.ARCHIVE_ERRORS.inc()
                log.exception("JSONL archive write failed", tenant_id=str(tenant_id), day=str(day))


async def compact_day(state: AppState, tenant_id: UUID, day: date, progress=None) -> dict[str, Any]:
    """Write one tenant's events of `day` as Parquet; returns what was written."""
    store = state.tenant_store(tenant_id)
    total = await state.db.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1 AND day = $2",
                                    tenant_id, day)
    key = parquet_key(day)
    if not total:
        return {"day": day.isoformat(), "rows": 0, "key": None}
    fd, tmp = tempfile.mkstemp(suffix=".parquet", dir=_tmp_dir(state))
    os.close(fd)
    written = 0
    try:
        with pq.ParquetWriter(tmp, PARQUET_SCHEMA, compression="zstd") as writer:
            async with state.db.acquire() as conn, conn.transaction():
                cursor = conn.cursor(
                    """SELECT event_id::text, type, ts, subject_id, session_id, received_at, body::text
                       FROM events WHERE tenant_id = $1 AND day = $2 ORDER BY ts, event_id""",
                    tenant_id, day, prefetch=10_000)
                batch: list = []
                async for record in cursor:
                    batch.append(tuple(record))
                    if len(batch) >= PARQUET_ROW_GROUP:
                        await asyncio.to_thread(writer.write_table, _table(batch))
                        written += len(batch)
                        batch = []
                        if progress:
                            await progress(written, total)
                if batch:
                    await asyncio.to_thread(writer.write_table, _table(batch))
                    written += len(batch)
        await store.put_file(key, Path(tmp), content_type="application/vnd.apache.parquet")
    finally:
        Path(tmp).unlink(missing_ok=True)
    return {"day": day.isoformat(), "rows": written, "key": key}


def _table(rows: list[tuple]) -> pa.Table:
    columns = list(zip(*rows))
    return pa.Table.from_arrays([pa.array(col, type=f.type) for col, f in zip(columns, PARQUET_SCHEMA)],
                                schema=PARQUET_SCHEMA)


def _tmp_dir(state: AppState) -> str:
    path = state.settings.data_path / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)
