"""Jobs as the API shows them: queue a registered job, follow its progress."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from flywheel.contracts.jobs import JobPage, JobProgress, JobRead, JobState
from flywheel.server.auth.principal import Caller
from flywheel.server.errors import NotFound
from flywheel.server.jobs.queue import enqueue
from flywheel.server.pagination import decode_cursor, encode_cursor

_COLUMNS = "id, name, state, progress, attempts, created_at, started_at, finished_at, result, error"


class JobCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    payload: dict[str, Any] | None = None


def _job(row) -> JobRead:
    return JobRead(id=row["id"], name=row["name"], state=JobState(row["state"]),
                   progress=msgspec.convert(row["progress"], JobProgress), attempts=row["attempts"],
                   created_at=row["created_at"], started_at=row["started_at"],
                   finished_at=row["finished_at"], result=row["result"], error=row["error"])


async def fetch_job(db, tenant_id: UUID, job_id: FromPath[UUID]) -> JobRead:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM jobs WHERE id = $1 AND tenant_id = $2", job_id, tenant_id)
    if row is None:
        raise NotFound("no such job")
    return _job(row)


class JobController(Controller):
    path = "/v1/jobs"
    tags = ["jobs"]

    @post("/", operation_id="createJob", status_code=202)
    async def create_job(self, state: State, principal: Caller, data: JSONBody[JobCreate]) -> JobRead:
        """Queue a registered job for the caller's tenant."""
        job_id = await enqueue(state.flywheel, data.name, data.payload, tenant_id=principal.tenant_id)
        return await fetch_job(state.flywheel.db, principal.tenant_id, job_id)

    @get("/{job_id:uuid}", operation_id="getJob")
    async def get_job(self, state: State, principal: Caller, job_id: FromPath[UUID]) -> JobRead:
        return await fetch_job(state.flywheel.db, principal.tenant_id, job_id)

    @get("/", operation_id="listJobs")
    async def list_jobs(
        self, state: State, principal: Caller,
        name: FromQuery[str | None] = None,
        job_state: Annotated[JobState | None, QueryParameter(name="state")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> JobPage:
        """The tenant's jobs, newest first."""
        after = decode_cursor(cursor) if cursor else None
        rows = await state.flywheel.db.fetch(
            f"""SELECT {_COLUMNS} FROM jobs
                WHERE tenant_id = $1
                  AND ($2::text IS NULL OR name = $2)
                  AND ($3::text IS NULL OR state = $3)
                  AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
                ORDER BY created_at DESC, id DESC LIMIT $6""",
            principal.tenant_id, name, job_state.value if job_state else None,
            after[0] if after else None, after[1] if after else None, limit + 1,
        )
        items = [_job(r) for r in rows[:limit]]
        more = len(rows) > limit
        return JobPage(items=items, next_cursor=encode_cursor(items[-1].created_at, items[-1].id) if more else None)
