"""The peer for `benchmarks.traces`: the trace-capture service Flywheel's traces plugin replaces.

What that service did per chunk, rebuilt the way it was built: FastAPI with
a bearer token, pydantic models for the five event types (a discriminated
union, unknown fields refused, the same bounds), and in one transaction
holding the trace's row lock: the chunk's digest checked against a retried
chunk, one INSERT per event (duplicates by event id skipped, a seq owned by
another event refused), the HMAC-SHA256 chain advanced over the events that
became contiguous, the trace's head updated and the chunk recorded. Its own
tables, created at startup. Run with:

    PEER_DATABASE_URL=... PEER_TOKEN=... PEER_CHAIN_KEY=hex uvicorn benchmarks.peers.traces_fastapi.app:app
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Literal

import asyncpg
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

TOKEN = os.environ.get("PEER_TOKEN", "peer-token")
CHAIN_KEY = bytes.fromhex(os.environ.get("PEER_CHAIN_KEY", "00" * 32))
PATH = r"^(?!/)(?!.*(^|/)\.\.(/|$))[^\x00-\x1f\x7f\\]{1,1024}$"
Seq = Annotated[int, Field(ge=1, le=10_000_000)]
Count = Annotated[int, Field(ge=0, le=10_000_000)]
Millis = Annotated[float, Field(ge=0, le=86_400_000)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Text = Annotated[str, Field(max_length=200_000)]
Short = Annotated[str, Field(max_length=4_000)]

SCHEMA = """
CREATE TABLE IF NOT EXISTS peer_traces (
    id uuid PRIMARY KEY, repository text NOT NULL, status text NOT NULL DEFAULT 'open',
    chained_through int NOT NULL DEFAULT 0, chain_head bytea, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS peer_trace_chunks (
    trace_id uuid NOT NULL REFERENCES peer_traces (id), chunk_no int NOT NULL, digest text NOT NULL,
    accepted int NOT NULL, duplicate int NOT NULL, PRIMARY KEY (trace_id, chunk_no));
CREATE TABLE IF NOT EXISTS peer_trace_events (
    trace_id uuid NOT NULL REFERENCES peer_traces (id), event_id uuid NOT NULL, seq int NOT NULL,
    kind text NOT NULL, ts timestamptz NOT NULL, body jsonb NOT NULL, hash bytea,
    PRIMARY KEY (trace_id, event_id));
CREATE UNIQUE INDEX IF NOT EXISTS peer_trace_events_seq ON peer_trace_events (trace_id, seq);
"""


class Base(BaseModel):
    # The path pattern looks ahead, which pydantic-core's Rust regex engine refuses.
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")
    event_id: uuid.UUID
    ts: AwareDatetime
    seq: Seq
    subject_id: Annotated[str, Field(max_length=200)] | None = None
    session_id: Annotated[str, Field(max_length=200)] | None = None
    attributes: dict = {}


class FileEdit(Base):
    type: Literal["traces.file_edit"]
    path: Annotated[str, Field(pattern=PATH)]
    diff: Text = ""
    lines_added: Count = 0
    lines_removed: Count = 0


class CmdRun(Base):
    type: Literal["traces.cmd_run"]
    command: Short
    exit_code: Annotated[int, Field(ge=-255, le=255)]
    duration_ms: Millis = 0.0
    output: Text = ""
    output_sha256: Sha256 | None = None


class TestRun(Base):
    type: Literal["traces.test_run"]
    command: Short
    passed: Count = 0
    failed: Count = 0
    errors: Count = 0
    skipped: Count = 0
    duration_ms: Millis = 0.0
    failing: Annotated[list[Annotated[str, Field(max_length=1_000)]], Field(max_length=1_000)] = []
    report_sha256: Sha256 | None = None


class Commit(Base):
    type: Literal["traces.commit"]
    sha: Annotated[str, Field(pattern=r"^[0-9a-f]{7,64}$")]
    message: Short
    files: Annotated[list[Annotated[str, Field(pattern=PATH)]], Field(max_length=10_000)] = []


class RationaleNote(Base):
    type: Literal["traces.rationale_note"]
    kind: Literal["hypothesis", "root_cause", "plan", "reflection", "note"] = "note"
    text: Text


TraceEvent = Annotated[FileEdit | CmdRun | TestRun | Commit | RationaleNote, Field(discriminator="type")]


class Chunk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: Annotated[list[TraceEvent], Field(min_length=1, max_length=5_000)]


class TraceCreate(BaseModel):
    repository: str
    base_commit: str
    task: str


class TraceCreated(BaseModel):
    id: uuid.UUID
    created_at: datetime


class ChunkResult(BaseModel):
    chunk: int
    accepted: int
    duplicate: int
    replayed: bool = False
    chained_through: int


pool: asyncpg.Pool | None = None


@asynccontextmanager
async def lifespan(_: FastAPI):
    global pool
    pool = await asyncpg.create_pool(os.environ["PEER_DATABASE_URL"], min_size=10, max_size=10)
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA)
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


def bearer(authorization: str = Header(default="")) -> None:
    if not hmac.compare_digest(authorization.encode(), f"Bearer {TOKEN}".encode()):
        raise HTTPException(401, "invalid token")


def canonical(event: BaseModel) -> bytes:
    return json.dumps(event.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


@app.post("/v1/traces", status_code=201, dependencies=[Depends(bearer)])
async def create_trace(body: TraceCreate) -> TraceCreated:
    row = await pool.fetchrow("INSERT INTO peer_traces (id, repository) VALUES ($1, $2) RETURNING id, created_at",
                              uuid.uuid4(), body.repository)
    return TraceCreated(id=row["id"], created_at=row["created_at"])


@app.post("/v1/traces/{trace_id}/chunks/{chunk_no}", dependencies=[Depends(bearer)])
async def add_chunk(trace_id: uuid.UUID, chunk_no: int, chunk: Chunk) -> ChunkResult:
    bodies = [canonical(e) for e in chunk.events]
    digest = hashlib.sha256(b"".join(bodies)).hexdigest()
    async with pool.acquire() as conn, conn.transaction():
        trace = await conn.fetchrow("SELECT status, chained_through, chain_head FROM peer_traces WHERE id = $1 "
                                    "FOR UPDATE", trace_id)
        if trace is None:
            raise HTTPException(404, "no such trace")
        prior = await conn.fetchrow("SELECT digest, accepted, duplicate FROM peer_trace_chunks "
                                    "WHERE trace_id = $1 AND chunk_no = $2", trace_id, chunk_no)
        if prior is not None:
            if prior["digest"] != digest:
                raise HTTPException(409, "chunk received before with other events")
            return ChunkResult(chunk=chunk_no, accepted=prior["accepted"], duplicate=prior["duplicate"],
                               replayed=True, chained_through=trace["chained_through"])
        through, head = trace["chained_through"], trace["chain_head"] or hashlib.sha256(trace_id.bytes).digest()
        accepted = 0
        for event, body in sorted(zip(chunk.events, bodies), key=lambda pair: pair[0].seq):
            chained = event.seq == through + 1
            digest_ = hmac.new(CHAIN_KEY, head + body, hashlib.sha256).digest() if chained else None
            try:
                status = await conn.execute(
                    "INSERT INTO peer_trace_events (trace_id, event_id, seq, kind, ts, body, hash) "
                    "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT (trace_id, event_id) DO NOTHING",
                    trace_id, event.event_id, event.seq, event.type, event.ts, body.decode(), digest_)
            except asyncpg.UniqueViolationError:
                raise HTTPException(409, f"seq {event.seq} already belongs to another event") from None
            if status.endswith("1"):
                accepted += 1
                if chained:
                    through, head = event.seq, digest_
        # Events that arrived ahead of a gap this chunk filled join the chain now, one UPDATE each.
        for row in await conn.fetch("SELECT event_id, seq, body::text AS body FROM peer_trace_events "
                                    "WHERE trace_id = $1 AND seq > $2 AND hash IS NULL ORDER BY seq",
                                    trace_id, through):
            if row["seq"] != through + 1:
                break
            head = hmac.new(CHAIN_KEY, head + canonical_text(row["body"]), hashlib.sha256).digest()
            through = row["seq"]
            await conn.execute("UPDATE peer_trace_events SET hash = $3 WHERE trace_id = $1 AND event_id = $2",
                               trace_id, row["event_id"], head)
        await conn.execute("UPDATE peer_traces SET chained_through = $2, chain_head = $3 WHERE id = $1",
                           trace_id, through, head)
        await conn.execute("INSERT INTO peer_trace_chunks (trace_id, chunk_no, digest, accepted, duplicate) "
                           "VALUES ($1, $2, $3, $4, $5)", trace_id, chunk_no, digest, accepted,
                           len(chunk.events) - accepted)
    return ChunkResult(chunk=chunk_no, accepted=accepted, duplicate=len(chunk.events) - accepted,
                       chained_through=through)


def canonical_text(stored: str) -> bytes:
    """jsonb gives keys back in its own order: the canonical form again."""
    return json.dumps(json.loads(stored), sort_keys=True, separators=(",", ":")).encode()
