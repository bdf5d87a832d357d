"""Console pages for jobs: the tenant's jobs with filters and paging, one job, cancelling one."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from flywheel.contracts.jobs import JobRead, JobState
from flywheel.server.auth.principal import Caller
from flywheel.server.console.api_reads import list_jobs
from flywheel.server.console.templating import console_session
from flywheel.server.jobs.cancel import cancel_job, is_cancellable
from flywheel.server.jobs.status import job_status

PAGE_SIZE = 25
StateFilter = Literal["queued", "running", "succeeded", "failed", "cancelled", ""]


def progress_percent(job: JobRead) -> float | None:
    """How far a job is, 0-100, when it says of how much (None: unknown)."""
    total = job.progress.total
    if not total or total <= 0:
        return None
    return max(0.0, min(100.0, job.progress.current / total * 100))


class JobPages(Controller):
    path = "/jobs"

    @get("/", name="console:jobs")
    async def jobs(
        self, state: State, principal: Caller,
        name: Annotated[str | None, QueryParameter(max_length=200)] = None,
        job_state: Annotated[StateFilter | None, QueryParameter(name="state")] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
    ) -> Template:
        # An HTML form sends its empty fields as "" (meaning "any").
        page = await list_jobs(state, principal, name=name or None,
                               job_state=JobState(job_state) if job_state else None, limit=PAGE_SIZE,
                               cursor=cursor or None)
        filters = {"name": name or "", "state": job_state or ""}
        query = {k: v for k, v in filters.items() if v}
        names = sorted(n for n, (_, spec) in state.flywheel.contributions.jobs.items() if not spec.system)
        return Template("console/jobs.html", context={
            "page": page, "filters": filters, "query": query, "names": names, "states": [s.value for s in JobState],
            "percent": progress_percent,
            "next_url": f"?{urlencode({**query, 'cursor': page.next_cursor})}" if page.next_cursor else None,
            "first_url": f"?{urlencode(query)}" if cursor else None,
        })

    @get("/{job_id:uuid}", name="console:job")
    async def job(self, request: Request, state: State, principal: Caller, job_id: FromPath[UUID]) -> Template:
        db = state.flywheel.db
        job = await job_status(db, job_id, principal.tenant_id)
        # The API's job view leaves these out; the console shows them, for the same tenant only.
        extra = await db.fetchrow("SELECT payload, cancel_requested_at, cancelled_by FROM jobs "
                                  "WHERE id = $1 AND tenant_id = $2", job_id, principal.tenant_id)
        return Template("console/job.html", context={
            "job": job, "payload": extra["payload"], "percent": progress_percent(job),
            "cancellable": is_cancellable(job), "cancelled_by": extra["cancelled_by"],
            # The redirect after the form says "cancelled=1"; the page says so only if the row agrees.
            "cancel_requested": request.query_params.get("cancelled") == "1"
            and extra["cancel_requested_at"] is not None})

    @post("/{job_id:uuid}/cancel", name="console:job-cancel", status_code=303)
    async def cancel(self, request: Request, state: State, principal: Caller, job_id: FromPath[UUID]) -> Redirect:
        """As `POST /v1/jobs/{id}/cancel` (the `write` scope, as any POST)."""
        session = console_session(request)
        by = f"key {session.key_name} ({session.key_prefix}) in the console" if session else "the console"
        await cancel_job(state.flywheel, principal.tenant_id, job_id, by=by)
        return Redirect(f"/console/jobs/{job_id}?cancelled=1", status_code=303)
