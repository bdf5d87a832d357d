"""What a job function receives: connections, its tenant, and a progress reporter."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from flywheel.contracts.jobs import JobProgress

if TYPE_CHECKING:
    from flywheel.server.state import AppState

# Progress writes are throttled: a tight loop reporting every row must not
# turn into a write per row.
PROGRESS_INTERVAL_S = 0.5


@dataclass
class JobContext:
    """Passed to every job function as its first argument.

    `tenant_id` is None for system jobs (cron). Use `store` (the tenant's view
    of the object store) rather than `state.store` so keys stay tenant-scoped.
    """

    state: AppState
    job_id: UUID
    name: str
    tenant_id: UUID | None
    attempt: int
    _last_progress: float = field(default=0.0, repr=False)

    @property
    def db(self) -> Any:
        return self.state.db

    @property
    def store(self) -> Any:
        if self.tenant_id is None:
            return self.state.store
        return self.state.tenant_store(self.tenant_id)

    async def progress(self, current: float, total: float | None = None, message: str | None = None,
                       *, force: bool = False) -> None:
        """Record how far the job has got; visible at `GET /v1/jobs/{id}`.

        Raises `JobCancelled` when the job has been cancelled meanwhile: let it
        propagate (clean up in `finally`), and the job is recorded as cancelled.
        """
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        progress = msgspec.to_builtins(JobProgress(current=current, total=total, message=message))
        cancelled = await self.state.db.fetchval(
            "UPDATE jobs SET progress = $2 WHERE id = $1 RETURNING cancel_requested_at IS NOT NULL",
            self.job_id, progress)
        if cancelled:  # someone cancelled the job (server/jobs/cancel.py): stop here
            from flywheel.server.jobs.cancel import JobCancelled

            raise JobCancelled(f"job {self.name} was cancelled")
