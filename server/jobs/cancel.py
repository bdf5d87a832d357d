"""Cancelling a job: `POST /v1/jobs/{id}/cancel`, `flywheel jobs cancel`, the console's button.

A queued job is cancelled at once: its row says so, and ARQ drops it. A
running job is asked to stop in two ways, whichever comes first: ARQ's abort
set, which a worker turns into a cancelled task within its poll interval,
and the job's own next progress report (`JobContext.progress` raises
`JobCancelled`), which also reaches jobs run in-process (`run_here`). The
row records who asked (`cancelled_by`); a job that finishes before either
happens keeps its outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

import structlog
from arq.constants import abort_jobs_ss
from arq.utils import timestamp_ms

from flywheel.contracts.jobs import JobRead, JobState
from flywheel.server.errors import Conflict
from flywheel.server.jobs.status import FINISHED, job_status

if TYPE_CHECKING:
    from flywheel.server.state import AppState

log = structlog.get_logger("flywheel.jobs")

_REQUEST = """
UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, now()), cancelled_by = $3,
       state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,
       finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END
WHERE id = $1 AND tenant_id IS NOT DISTINCT FROM $2 AND state IN ('queued', 'running')
RETURNING state
"""
# What run_job records when a cancelled task or a JobCancelled ends the job.
MARK_CANCELLED = """
UPDATE jobs SET state = 'cancelled', finished_at = now(), error = 'cancelled by ' || coalesce(cancelled_by, 'request')
WHERE id = $1 AND state = 'running' AND cancel_requested_at IS NOT NULL
RETURNING id
"""


class JobCancelled(Exception):
    """Raised in a job at its next progress report after someone cancelled it."""


def is_cancellable(job: JobRead) -> bool:
    return job.state not in FINISHED


async def cancel_job(state: AppState, tenant_id: UUID | None, job_id: UUID, *, by: str) -> JobRead:
    """Cancel job `job_id` of `tenant_id` (404 for anyone else's; 409 once it has finished)."""
    job = await job_status(state.db, job_id, tenant_id)
    if not is_cancellable(job):
        raise Conflict(f"job {job.name} has already {job.state.value}; only a queued or running job can be "
                       "cancelled", code="job_finished")
    # The state check is in the UPDATE itself: a job that finished meanwhile keeps its outcome.
    now = await state.db.fetchval(_REQUEST, job_id, tenant_id, by[:200])
    if now is None:
        raise Conflict(f"job {job.name} finished before it could be cancelled", code="job_finished")
    if state.redis is not None:
        if now == JobState.CANCELLED.value:
            await state.redis.zrem(state.settings.queue_name, str(job_id))
        else:
            await state.redis.zadd(abort_jobs_ss, {str(job_id): timestamp_ms()})
    log.info("job cancel requested", job=job.name, job_id=str(job_id), by=by, was=job.state.value)
    return await job_status(state.db, job_id, tenant_id)
