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
from flywheel.server.jobs.cancel import cancel_job
from flywheel.server.jobs.queue import enqueue
from flywheel.server.jobs.status import job_status, list_jobs
from flywheel.server.pagination import decode_cursor, encode_cursor


class JobCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    payload: dict[str, Any] | None = None


class JobController(Controller):
    path = "/v1/jobs"
    tags = ["jobs"]

    @post("/", operation_id="createJob", status_code=202, opt={"errors": {404: "no job of that name"}})
    async def create_job(self, state: State, principal: Caller, data: JSONBody[JobCreate]) -> JobRead:
        """Queue a registered job for the caller's tenant."""
        job_id = await enqueue(state.flywheel, data.name, data.payload, tenant_id=principal.tenant_id)
        return await job_status(state.flywheel.db, job_id, principal.tenant_id)

    @post("/{job_id:uuid}/cancel", operation_id="cancelJob", status_code=200)
    async def cancel(self, state: State, principal: Caller, job_id: FromPath[UUID]) -> JobRead:
        """Cancel a queued or running job (409 `job_finished` once it has finished).

        A queued job is cancelled at once; a running one stops when its worker
        cancels it or at its next progress report, and then shows `cancelled`.
        """
        return await cancel_job(state.flywheel, principal.tenant_id, job_id, by=f"key {principal.key_id}")

    @get("/{job_id:uuid}", operation_id="getJob")
    async def get_job(self, state: State, principal: Caller, job_id: FromPath[UUID]) -> JobRead:
        """One job of the tenant: its state, progress, result or error."""
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
        rows = await list_jobs(state.flywheel.db, principal.tenant_id, name=name, state=job_state, limit=limit + 1,
                               after=after)
        items = rows[:limit]
        more = len(rows) > limit
        return JobPage(items=items, next_cursor=encode_cursor(items[-1].created_at, items[-1].id) if more else None)
