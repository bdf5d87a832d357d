"""The asyncpg pool: JSON codecs on msgspec, and a span per query."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import msgspec
from opentelemetry import trace

tracer = trace.get_tracer("flywheel.db")
_encode = msgspec.json.encode
_decode = msgspec.json.decode


def _trace_query(record: Any) -> None:
    # asyncpg reports each query after it ran; the span is back-dated to match.
    end = time.time_ns()
    start = end - int(record.elapsed * 1e9)
    span = tracer.start_span("db.query", start_time=start, attributes={
        "db.system": "postgresql", "db.statement": record.query[:2000]})
    if record.exception is not None:
        span.record_exception(record.exception)
        span.set_status(trace.StatusCode.ERROR)
    span.end(end_time=end)


async def _init(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=lambda v: _encode(v).decode(), decoder=_decode,
                                  schema="pg_catalog", format="text")
    conn.add_query_logger(_trace_query)


async def create_pool(dsn: str, *, size: int = 10, **kwargs: Any) -> asyncpg.Pool:
    """A pool whose connections decode json/jsonb with msgspec and trace queries."""
    return await asyncpg.create_pool(dsn, min_size=1, max_size=size, init=_init, **kwargs)


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init(conn)
    return conn
