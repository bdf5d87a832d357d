"""The peer for `benchmarks.ingest`: the event collector Flywheel replaces.

What those systems ran: FastAPI, pydantic models for the events, an
asyncpg connection pool, and one INSERT per event (skipping duplicates),
awaited in turn. Same table as Flywheel writes to, same durability (each
INSERT commits). Run with:

    PEER_DATABASE_URL=... PEER_TENANT_ID=... uvicorn benchmarks.peers.fastapi_ingest.app:app
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal

import asyncpg
from fastapi import FastAPI
from pydantic import BaseModel, Field

TENANT = uuid.UUID(os.environ.get("PEER_TENANT_ID", "00000000-0000-0000-0000-000000000000"))


class Event(BaseModel):
    type: Literal["core.generic"]
    event_id: uuid.UUID
    ts: datetime
    subject_id: str | None = Field(default=None, max_length=200)
    session_id: str | None = Field(default=None, max_length=200)
    attributes: dict[str, Any] = {}


class Result(BaseModel):
    accepted: int
    duplicate: int


pool: asyncpg.Pool | None = None


@asynccontextmanager
async def lifespan(_: FastAPI):
    global pool
    pool = await asyncpg.create_pool(os.environ["PEER_DATABASE_URL"], min_size=10, max_size=10)
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/v1/events")
async def ingest(events: list[Event]) -> Result:
    accepted = 0
    async with pool.acquire() as conn:
        for e in events:
            status = await conn.execute(
                """INSERT INTO events (tenant_id, event_id, day, ts, type, subject_id, session_id, body, received_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, now()) ON CONFLICT DO NOTHING""",
                TENANT, e.event_id, e.ts.date(), e.ts, e.type, e.subject_id, e.session_id,
                json.dumps(e.model_dump(mode="json")))
            accepted += status.endswith("1")
    return Result(accepted=accepted, duplicate=len(events) - accepted)
