"""Assembling the ARQ worker from every plugin's jobs and cron jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arq.connections import RedisSettings
from arq.worker import Worker

from flywheel.server.jobs.runner import arq_cron, arq_function
from flywheel.server.jobs.serializer import job_deserializer, job_serializer

if TYPE_CHECKING:
    from flywheel.server.state import AppState

STATE_KEY = "flywheel_state"


def _state_of(ctx: dict[str, Any]) -> Any:
    return ctx[STATE_KEY]


def build_worker(state: AppState, *, burst: bool = False, handle_signals: bool = True, max_jobs: int = 4,
                 poll_delay: float = 0.5) -> Worker:
    """One ARQ worker for all registered jobs.

    It shares `state`'s Postgres pool and store but opens its own Redis pool:
    ARQ closes its pool when the worker stops, and the API may still need one.
    """
    jobs = state.contributions.jobs
    functions = [arq_function(spec, _state_of) for _, spec in jobs.values()]
    crons = [arq_cron(spec, jobs[spec.job][1], _state_of) for _, spec in state.contributions.cron_jobs.values()]
    return Worker(
        functions=functions,
        cron_jobs=crons,
        redis_settings=RedisSettings.from_dsn(state.settings.redis_url),
        queue_name=state.settings.queue_name,
        ctx={STATE_KEY: state},
        burst=burst,
        handle_signals=handle_signals,
        max_jobs=max_jobs,
        poll_delay=poll_delay,
        keep_result=60,
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        log_results=False,
    )
