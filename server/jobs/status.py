"""A job's status as its row in `jobs` records it, and following one until it ends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import msgspec

from flywheel.contracts.jobs import JobProgress, JobRead, JobState
from flywheel.server.errors import NotFound

COLUMNS = "id, name, state, progress, attempts, created_at, started_at, finished_at, result, error"
FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


def job_read(row: Any) -> JobRead:
    return JobRead(id=row["id"], name=row["name"], state=JobState(row["state"]),
                   progress=msgspec.convert(row["progress"], JobProgress), attempts=row["attempts"],
                   created_at=row["created_at"], started_at=row["started_at"],
                   finished_at=row["finished_at"], result=row["result"], error=row["error"],
                   logs=row["logs"] if "logs" in row.keys() else None)


async def job_status(db: Any, job_id: UUID, tenant_id: UUID | None) -> JobRead:
    """The job `job_id` of `tenant_id` (None: a system job), or 404."""
    row = await db.fetchrow(f"SELECT {COLUMNS}, logs FROM jobs WHERE id = $1 AND tenant_id IS NOT DISTINCT FROM $2",
                            job_id, tenant_id)
    if row is None:
        raise NotFound("no such job")
    return job_read(row)


async def list_jobs(db: Any, tenant_id: UUID | None, *, name: str | None = None, state: JobState | None = None,
                    limit: int = 50, after: tuple[Any, UUID] | None = None, every_tenant: bool = False
                    ) -> list[JobRead]:
    """Up to `limit` jobs of `tenant_id` (with `every_tenant`: of all, for operators), newest first,
    after the (created_at, id) cursor position `after`."""
    rows = await db.fetch(
        f"""SELECT {COLUMNS} FROM jobs
            WHERE ($7 OR tenant_id IS NOT DISTINCT FROM $1)
              AND ($2::text IS NULL OR name = $2)
              AND ($3::text IS NULL OR state = $3)
              AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
            ORDER BY created_at DESC, id DESC LIMIT $6""",
        tenant_id, name, state.value if state else None, after[0] if after else None, after[1] if after else None,
        limit, every_tenant,
    )
    return [job_read(r) for r in rows]


async def follow_job(db: Any, job_id: UUID, tenant_id: UUID | None,
                     on_progress: Callable[[JobRead], Awaitable[None] | None] | None = None, *,
                     interval: float = 0.2) -> JobRead:
    """Wait until the job has finished (succeeded, failed or cancelled); `on_progress(status)` sees each poll."""
    while True:
        status = await job_status(db, job_id, tenant_id)
        if on_progress is not None:
            result = on_progress(status)
            if asyncio.iscoroutine(result):
                await result
        if status.state in FINISHED:
            return status
        await asyncio.sleep(interval)
