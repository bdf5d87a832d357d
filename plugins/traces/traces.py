"""Trace rows: create, read, list (the functions the API, the CLI and the pages share)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from flywheel.plugins.traces.contracts import (
    Dimension,
    Gap,
    Metrics,
    QaResult,
    Score,
    TraceCreate,
    TracePage,
    TraceRead,
)
from flywheel.plugins.traces.runners import DEFAULT_TEST_COMMAND, check_test_command
from flywheel.server.plugin_api import AppState, NotFound, decode_cursor, encode_cursor

_COLUMNS = """t.id, t.repository, t.base_commit, t.task, t.test_command, t.status, t.created_at, t.finalized_at,
    t.metrics, t.gaps, t.workspace_sha256, t.qa, t.document_key,
    (SELECT count(*) FROM traces_events e WHERE e.trace_id = t.id) AS events,
    (SELECT count(*) FROM traces_chunks c WHERE c.trace_id = t.id) AS chunks"""
_SCORES = """SELECT trace_id, judge, rubric_version, overall, dimensions, created_at FROM traces_scores
             WHERE tenant_id = $1 AND trace_id = ANY($2::uuid[]) ORDER BY created_at"""


async def create_trace(state: AppState, tenant_id: UUID, body: TraceCreate) -> TraceRead:
    command = check_test_command(body.test_command) if body.test_command else list(DEFAULT_TEST_COMMAND)
    trace_id = uuid.uuid4()
    await state.db.execute(
        "INSERT INTO traces (id, tenant_id, repository, base_commit, task, test_command) "
        "VALUES ($1, $2, $3, $4, $5, $6)", trace_id, tenant_id, body.repository, body.base_commit, body.task,
        command)
    return await get_trace(state, tenant_id, trace_id)


async def get_trace(state: AppState, tenant_id: UUID, trace_id: UUID) -> TraceRead:
    row = await state.db.fetchrow(f"SELECT {_COLUMNS} FROM traces t WHERE t.id = $1 AND t.tenant_id = $2",
                                  trace_id, tenant_id)
    if row is None:
        raise NotFound("no such trace")
    return (await _reads(state, tenant_id, [row]))[0]


async def list_traces(state: AppState, tenant_id: UUID, *, limit: int = 50, cursor: str | None = None,
                      status: str | None = None) -> TracePage:
    args: list[Any] = [tenant_id, limit + 1]
    where = ["t.tenant_id = $1"]
    if cursor:
        created, last_id = decode_cursor(cursor, datetime, str)
        args += [created, UUID(last_id)]
        where.append("(t.created_at, t.id) < ($3, $4)")
    if status:
        args.append(status)
        where.append(f"t.status = ${len(args)}")
    rows = await state.db.fetch(f"SELECT {_COLUMNS} FROM traces t WHERE {' AND '.join(where)} "
                                "ORDER BY t.created_at DESC, t.id DESC LIMIT $2", *args)
    items = await _reads(state, tenant_id, rows[:limit])
    more = len(rows) > limit
    return TracePage(items=items, next_cursor=encode_cursor(items[-1].created_at, str(items[-1].id)) if more else None)


async def _reads(state: AppState, tenant_id: UUID, rows: list) -> list[TraceRead]:
    scores: dict[UUID, list[Score]] = {}
    for s in await state.db.fetch(_SCORES, tenant_id, [r["id"] for r in rows]):
        scores.setdefault(s["trace_id"], []).append(Score(
            judge=s["judge"], rubric_version=s["rubric_version"], overall=s["overall"],
            dimensions=msgspec.convert(s["dimensions"], list[Dimension]), created_at=s["created_at"]))
    return [_read(r, scores.get(r["id"], [])) for r in rows]


def _read(row, scores: list[Score]) -> TraceRead:
    def j(value, typ):
        return None if value is None else msgspec.convert(value, typ)

    return TraceRead(
        id=row["id"], repository=row["repository"], base_commit=row["base_commit"], task=row["task"],
        test_command=j(row["test_command"], list[str]), status=row["status"], created_at=row["created_at"],
        finalized_at=row["finalized_at"], events=row["events"], chunks=row["chunks"],
        metrics=j(row["metrics"], Metrics), gaps=j(row["gaps"], list[Gap]) or [],
        workspace_sha256=row["workspace_sha256"], qa=j(row["qa"], QaResult), scores=scores,
        document_key=row["document_key"])
