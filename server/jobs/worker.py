"""Assembling the ARQ worker from every plugin's jobs and cron jobs."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.worker import Worker
from redis.asyncio import ConnectionPool

from flywheel.server.jobs.runner import arq_cron, arq_function
from flywheel.server.jobs.serializer import job_deserializer, job_serializer

if TYPE_CHECKING:
    from flywheel.server.state import AppState

STATE_KEY = "flywheel_state"


def _state_of(ctx: dict[str, Any]) -> Any:
    return ctx[STATE_KEY]


class _WorkerRedis(ArqRedis):
    """The worker's Redis pool. ARQ 0.28's `Worker.close()` calls redis-py's
    `close()`, deprecated since redis 5.0.1 (a warning on every stop); this is
    the same thing under its current name."""

    async def close(self, close_connection_pool: bool | None = None) -> None:  # type: ignore[override]
        await self.aclose(close_connection_pool=close_connection_pool)


class LeasedWorker(Worker):
    """ARQ's worker with short, renewed claims on the jobs it runs.

    ARQ's own claim lasts the longest job timeout plus 10 s (6 h here, for training), so a job
    whose worker was killed waited that long for another worker. Here a claim lasts `lease_s`
    (FLYWHEEL_JOB_LEASE_S) and a live worker renews its claims every third of that.
    """

    def __init__(self, *args: Any, lease_s: float = 30.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lease_s = lease_s
        self.in_progress_timeout_s = lease_s

    async def main(self) -> None:
        renewing = asyncio.create_task(self._renew_claims())
        try:
            await super().main()
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    async def _renew_claims(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            running = [job_id for job_id, task in self.tasks.items() if not task.done()]
            if not running:
                continue
            try:
                async with self.pool.pipeline(transaction=False) as pipe:
                    for job_id in running:
                        pipe.pexpire(in_progress_key_prefix + job_id, int(self.lease_s * 1000))
                    await pipe.execute()
            except Exception:  # Redis away for a moment: the next round renews, within the lease
                continue


def _worker_redis(state: AppState) -> ArqRedis:
    return _WorkerRedis(connection_pool=ConnectionPool.from_url(state.settings.redis_url),
                        job_serializer=job_serializer, job_deserializer=job_deserializer,
                        default_queue_name=state.settings.queue_name)


def build_worker(state: AppState, *, burst: bool = False, handle_signals: bool = True, max_jobs: int = 4,
                 poll_delay: float = 0.5) -> Worker:
    """One ARQ worker for all registered jobs.

    It shares `state`'s Postgres pool and store but opens its own Redis pool:
    ARQ closes its pool when the worker stops, and the API may still need one.
    """
    jobs = state.contributions.jobs
    functions = [arq_function(spec, _state_of) for _, spec in jobs.values()]
    crons = [arq_cron(spec, jobs[spec.job][1], _state_of) for _, spec in state.contributions.cron_jobs.values()]
    return LeasedWorker(
        lease_s=state.settings.job_lease_s,
        functions=functions,
        cron_jobs=crons,
        redis_pool=_worker_redis(state),
        queue_name=state.settings.queue_name,
        ctx={STATE_KEY: state},
        burst=burst,
        handle_signals=handle_signals,
        max_jobs=max_jobs,
        poll_delay=poll_delay,
        keep_result=60,
        allow_abort_jobs=True,  # cancelling a running job (server/jobs/cancel.py)
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        log_results=False,
    )
