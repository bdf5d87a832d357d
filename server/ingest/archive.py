"""The event archive in the object store.

Committed events are appended, as JSON lines, to files under each tenant's
`events/jsonl/dt=YYYY-MM-DD/` (a stream for other tools to pick up; written
off the request path, in batches of up to a second). A daily job compacts a
day into Parquet (zstd), read from Postgres, which holds every committed event
exactly once: the output is deterministic, so compacting a day twice changes
nothing. It writes two data sets, both hive-partitioned:

- `events/typed/type=<event type>/dt=YYYY-MM-DD/part-00000.parquet`: one
  schema per event type, with a column per field of the type's Struct and the
  free-form `attributes` inferred into a struct (see `archive_schema`), so
  DuckDB, Spark or Trino read `attributes.temp_c` as a column; `body` keeps
  the raw event. Partitioning by type as well keeps one schema per file.
- `events/parquet/dt=YYYY-MM-DD/part-00000.parquet`: every type of the day in
  one file, the envelope and the event as JSON text in `body`, as before 0.4.
  Kept at its path, unchanged, so its readers go on working; the typed set has
  a root of its own because a reader of `events/parquet/` as one data set
  would otherwise meet two layouts and every event twice.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import re
import tempfile
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from flywheel.contracts.events import Event
from flywheel.server.ingest import metrics as m
from flywheel.server.ingest.archive_schema import ENVELOPE, Column, EventTable, Seen, arrow_schema
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
OBSERVE_BATCH = 10_000
SAFE_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_decode_object = msgspec.json.Decoder(dict[str, Any]).decode


def jsonl_prefix(day: date) -> str:
    return f"events/jsonl/dt={day.isoformat()}/"


def parquet_key(day: date) -> str:
    return f"events/parquet/dt={day.isoformat()}/part-00000.parquet"


def typed_key(event_type: str, day: date) -> str:
    return f"events/typed/type={event_type}/dt={day.isoformat()}/part-00000.parquet"


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
    """Write one tenant's events of `day` as Parquet: the day's file and one typed file per
    event type; returns what was written."""
    store = state.tenant_store(tenant_id)
    with tempfile.TemporaryDirectory(dir=_tmp_dir(state)) as tmp:
        # One snapshot for the count and both passes: a late event committed in between
        # must not reach the files without having been seen by the schema inference.
        async with state.db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            total = await conn.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1 AND day = $2",
                                        tenant_id, day)
            if not total:
                return {"day": day.isoformat(), "rows": 0, "key": None, "typed": {}}
            tables = _event_tables(state)
            seen = await _observe(conn, tenant_id, day, tables)
            files = _DayFiles(Path(tmp), tables, seen)
            try:
                written = await _write(conn, tenant_id, day, files, total, progress)
            finally:
                files.close()
        key = parquet_key(day)
        await store.put_file(key, files.day_path, content_type="application/vnd.apache.parquet")
        for tag, path in files.typed_paths().items():
            await store.put_file(typed_key(tag, day), path, content_type="application/vnd.apache.parquet")
    typed = {tag: typed_key(tag, day) for tag in sorted(files.typed)}
    return {"day": day.isoformat(), "rows": written, "key": key, "typed": typed}


async def _observe(conn, tenant_id: UUID, day: date, tables: _Tables) -> dict[str, dict[str, Seen]]:
    """Pass 1: the shapes of each type's free-form fields (`attributes`, ...) on the day."""
    seen: dict[str, dict[str, Seen]] = collections.defaultdict(dict)

    def observe(batch: list) -> None:
        for event_type, body in batch:
            tables.get(event_type).observe(seen[event_type], body)

    cursor = conn.cursor("SELECT type, body::text FROM events WHERE tenant_id = $1 AND day = $2",
                         tenant_id, day, prefetch=10_000)
    batch: list = []
    async for record in cursor:
        batch.append(tuple(record))
        if len(batch) >= OBSERVE_BATCH:
            await asyncio.to_thread(observe, batch)  # decoding is CPU work: off the event loop
            batch = []
    await asyncio.to_thread(observe, batch)
    return seen


async def _write(conn, tenant_id: UUID, day: date, files: _DayFiles, total: int, progress) -> int:
    """Pass 2: every event, in time order, into the day's file and its type's file."""
    cursor = conn.cursor(
        """SELECT event_id::text, type, ts, subject_id, session_id, received_at, body::text
           FROM events WHERE tenant_id = $1 AND day = $2 ORDER BY ts, event_id""",
        tenant_id, day, prefetch=10_000)
    batch: list = []
    written = 0
    async for record in cursor:
        batch.append(tuple(record))
        if len(batch) >= PARQUET_ROW_GROUP:
            await asyncio.to_thread(files.write, batch)
            written += len(batch)
            batch = []
            if progress:
                await progress(written, total)
    if batch:
        await asyncio.to_thread(files.write, batch)
        written += len(batch)
    return written


class _Tables:
    """The archive table of each event type; a type no longer registered gets the envelope's."""

    def __init__(self, event_types: dict[str, type[Event]]) -> None:
        self.event_types = event_types

    def get(self, tag: str) -> EventTable:
        return _table_of(self.event_types.get(tag, Event))


@functools.cache
def _table_of(event_type: type[Event]) -> EventTable:
    return EventTable(event_type)


def _event_tables(state: AppState) -> _Tables:
    return _Tables({tag: cls for tag, (_, cls) in state.contributions.event_types.items()})


class _DayFiles:
    """The Parquet writers of one compaction: the day's file and one file per event type."""

    def __init__(self, folder: Path, tables: _Tables, seen: dict[str, dict[str, Seen]]) -> None:
        self.folder = folder
        self.tables = tables
        self.seen = seen
        self.day_path = folder / "day.parquet"
        self.day = pq.ParquetWriter(self.day_path, PARQUET_SCHEMA, compression="zstd")
        self.typed: dict[str, _TypedFile] = {}

    def write(self, rows: list[tuple]) -> None:
        # Each type's share of a batch is one row group of its file: a rare type gets small
        # row groups, but memory stays bounded by one batch whatever the number of types.
        self.day.write_table(_table(rows))
        by_type: dict[str, list[tuple]] = collections.defaultdict(list)
        for row in rows:
            by_type[row[1]].append(row)
        for tag, group in by_type.items():
            if not SAFE_TYPE.match(tag):  # it names a folder; registered types always match
                log.warning("event type not archived by type", type=tag)
                continue
            if tag not in self.typed:
                columns = self.tables.get(tag).columns(self.seen.get(tag, {}))
                self.typed[tag] = _TypedFile(self.folder / f"{tag}.parquet", columns)
            self.typed[tag].write(group)

    def typed_paths(self) -> dict[str, Path]:
        return {tag: f.path for tag, f in self.typed.items()}

    def close(self) -> None:
        self.day.close()
        for f in self.typed.values():
            f.writer.close()


class _TypedFile:
    def __init__(self, path: Path, columns: list[Column]) -> None:
        self.path = path
        self.columns = columns
        self.schema = arrow_schema(columns)
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")

    def write(self, rows: list[tuple]) -> None:
        # rows: (event_id, type, ts, subject_id, session_id, received_at, body), as selected
        events = [_decode(row[6]) for row in rows]  # a body that is not an object: null columns
        arrays = [pa.array([row[i] for row in rows], type=t) for i, (_, t) in zip((0, 2, 3, 4, 5), ENVELOPE)]
        for column in self.columns:
            convert, key = column.shape.convert, column.key
            arrays.append(pa.array([convert(e.get(key)) for e in events], type=column.shape.arrow))
        arrays.append(pa.array([row[6] for row in rows], type=pa.string()))
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))


def _decode(body: str) -> dict[str, Any]:
    try:
        return _decode_object(body)
    except msgspec.ValidationError:
        return {}


def _table(rows: list[tuple]) -> pa.Table:
    columns = list(zip(*rows))
    return pa.Table.from_arrays([pa.array(col, type=f.type) for col, f in zip(columns, PARQUET_SCHEMA)],
                                schema=PARQUET_SCHEMA)


def _tmp_dir(state: AppState) -> str:
    path = state.settings.data_path / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)
