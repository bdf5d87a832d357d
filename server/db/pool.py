"""The asyncpg pool: JSON codecs on msgspec, and a span per query."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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


class NoAnswer(TimeoutError):
    """Postgres did not finish within a deadline; the connection was cut."""


# How long to wait for a connection from a pool before giving up.
ACQUIRE_TIMEOUT_S = 5.0
# Errors that mean "Postgres is not there right now", as opposed to a bug or bad
# data: ingestion spools on them, key lookups answer 503.
UNAVAILABLE = (OSError, asyncio.TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
               asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.InsufficientResourcesError)
# Postgres errors that mean "this data cannot be stored", as opposed to
# "Postgres is not there": invalid values (class 22), constraint violations
# (23) and limits such as an index row too large (54); and a value the client
# side could not encode (asyncpg's own DataError subclasses InterfaceError,
# which otherwise means "connection trouble": match DATA_ERRORS first).
DATA_ERRORS = (asyncpg.DataError, asyncpg.exceptions._base.DataError, asyncpg.IntegrityConstraintViolationError,
               asyncpg.exceptions.ProgramLimitExceededError, ValueError, UnicodeError, OverflowError)


@asynccontextmanager
async def bounded(pool: asyncpg.Pool, deadline_s: float) -> AsyncIterator[asyncpg.Connection]:
    """A pool connection that is cut if the work on it takes longer than `deadline_s`.

    A statement timeout is not enough against a hung server (stopped, or a
    network black hole): asyncpg then sends a cancel request and waits for
    it before the connection goes back to the pool, and that wait hangs too.
    Terminating the connection closes its socket at once; whatever awaited
    it fails, and is raised here as `NoAnswer`.
    """
    conn = await pool.acquire(timeout=ACQUIRE_TIMEOUT_S)
    cut: list[bool] = []

    def terminate() -> None:
        cut.append(True)
        conn.terminate()

    timer = asyncio.get_running_loop().call_later(deadline_s, terminate)
    try:
        yield conn
    except Exception as exc:
        if cut:
            raise NoAnswer(f"Postgres did not answer within {deadline_s:g} s") from exc
        raise
    finally:
        timer.cancel()
        await pool.release(conn)
