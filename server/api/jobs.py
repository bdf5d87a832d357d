"""Jobs as the API shows them: queue a registered job, follow its progress."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from flywheel.contracts.jobs import JobPage, JobRead, JobState
from flywheel.server.auth.principal import Caller
from flywheel.server.jobs.queue import enqueue
from flywheel.server.jobs.status import COLUMNS, job_read, job_status
from flywheel.server.pagination import decode_cursor, encode_cursor


class JobCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    payload: dict[str, Any] | None = None


class JobController(Controller):
    path = "/v1/jobs"
    tags = ["jobs"]

    @post("/", operation_id="createJob", status_code=202)
    async def create_job(self, state: State, principal: Caller, data: JSONBody[JobCreate]) -> JobRead:
        """Queue a registered job for the caller's tenant."""
        job_id = await enqueue(state.flywheel, data.name, data.payload, tenant_id=principal.tenant_id)
        return await job_status(state.flywheel.db, job_id, principal.tenant_id)

    @get("/{job_id:uuid}", operation_id="getJob")
    async def get_job(self, state: State, principal: Caller, job_id: FromPath[UUID]) -> JobRead:
        return await job_status(state.flywheel.db, job_id, principal.tenant_id)

    @get("/", operation_id="listJobs")
    async def list_jobs(
        self, state: State, principal: Caller,
        name: FromQuery[str | None] = None,
        job_state: Annotated[JobState | None, QueryParameter(name="state")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> JobPage:
        """The tenant's jobs, newest first."""
        after = decode_cursor(cursor, datetime, UUID) if cursor else None
        rows = await state.flywheel.db.fetch(
            f"""SELECT {COLUMNS} FROM jobs
                WHERE tenant_id = $1
                  AND ($2::text IS NULL OR name = $2)
                  AND ($3::text IS NULL OR state = $3)
                  AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
                ORDER BY created_at DESC, id DESC LIMIT $6""",
            principal.tenant_id, name, job_state.value if job_state else None,
            after[0] if after else None, after[1] if after else None, limit + 1,
        )
        items = [job_read(r) for r in rows[:limit]]
        more = len(rows) > limit
        return JobPage(items=items, next_cursor=encode_cursor(items[-1].created_at, items[-1].id) if more else None)
