"""Wraps a plugin's job function for ARQ: status rows, payload decoding, spans.

ARQ may run a job more than once (a worker killed mid-job is retried up to
`max_tries`), so the wrapper counts attempts and plugin jobs are idempotent.
A job that raises is recorded as failed with its error; it is not retried,
because an exception is a bug or bad input, not a lost worker.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
import structlog
from arq import cron
from arq.worker import func
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from flywheel.contracts.jobs import CronSpec, JobSpec
from flywheel.server.jobs.cancel import MARK_CANCELLED, JobCancelled
from flywheel.server.jobs.context import JobContext
from flywheel.server.jobs.logs import JobLog, capturing

if TYPE_CHECKING:
    from flywheel.server.state import AppState

log = structlog.get_logger("flywheel.jobs")
tracer = trace.get_tracer("flywheel.jobs")

JOBS_FINISHED = Counter("flywheel_jobs_total", "Jobs finished, by name and final state", ["name", "state"])
JOB_SECONDS = Histogram("flywheel_job_seconds", "Job run time", ["name"],
                        buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, 7200))


def error_text(exc: BaseException) -> str:
    """The error as stored on the job row: bounded, and without NUL bytes,
    which Postgres text cannot hold (a job failing on bad input must still be
    recorded as failed)."""
    return f"{type(exc).__name__}: {exc}".replace("\x00", "\\x00")[:4000]


def _result_dict(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    built = msgspec.to_builtins(value)
    return built if isinstance(built, dict) else {"value": built}


async def run_job(state: AppState, spec: JobSpec, job_id: UUID, payload: Any, *, attempt: int = 1) -> dict[str, Any]:
    """Run one job to completion, recording every transition in `jobs`."""
    row = await state.db.fetchrow(
        """UPDATE jobs SET state = 'running', started_at = now(), attempts = attempts + 1, error = NULL
           WHERE id = $1 AND state IN ('queued', 'running') RETURNING tenant_id, attempts""",
        job_id,
    )
    if row is None:  # already finished (a duplicate delivery): nothing to do
        return {"skipped": True}
    ctx = JobContext(state=state, job_id=job_id, name=spec.name, tenant_id=row["tenant_id"], attempt=row["attempts"])
    with capturing() as lines:
        try:
            return await _run(state, spec, job_id, payload, ctx)
        finally:
            await _keep_logs(state, job_id, lines)


async def _keep_logs(state: AppState, job_id: UUID, lines: JobLog) -> None:
    text = lines.text()
    if text is not None:
        try:
            await state.db.execute("UPDATE jobs SET logs = $2 WHERE id = $1", job_id, text)
        except Exception:  # the job's outcome is recorded already: a lost log must not change it
            log.warning("job log not stored", job_id=str(job_id))


async def _run(state: AppState, spec: JobSpec, job_id: UUID, payload: Any, ctx: JobContext) -> dict[str, Any]:
    started = time.perf_counter()
    with tracer.start_as_current_span(f"job {spec.name}", attributes={"flywheel.job_id": str(job_id)}) as span:
        try:
            args = [msgspec.convert(payload, spec.payload)] if spec.payload is not None else []
            result = _result_dict(await spec.func(ctx, *args))
        except (JobCancelled, asyncio.CancelledError) as exc:
            # A cancelled task is also how a worker shuts down: only a requested cancel is recorded,
            # anything else stays running for ARQ to retry.
            if await state.db.fetchval(MARK_CANCELLED, job_id) is not None:
                JOBS_FINISHED.labels(spec.name, "cancelled").inc()
                log.info("job cancelled", job=spec.name, job_id=str(job_id))
                if isinstance(exc, JobCancelled):
                    return {"ok": False, "cancelled": True}
            raise
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(trace.StatusCode.ERROR)
            log.exception("job failed", job=spec.name, job_id=str(job_id))
            await state.db.execute(
                "UPDATE jobs SET state = 'failed', error = $2, finished_at = now() WHERE id = $1",
                job_id, error_text(exc),
            )
            JOBS_FINISHED.labels(spec.name, "failed").inc()
            return {"ok": False}
        finally:
            JOB_SECONDS.labels(spec.name).observe(time.perf_counter() - started)
    # `state = 'running'`: a job cancelled while it was finishing is not marked as succeeded.
    await state.db.execute(
        "UPDATE jobs SET state = 'succeeded', result = $2, finished_at = now() WHERE id = $1 AND state = 'running'",
        job_id, result,
    )
    JOBS_FINISHED.labels(spec.name, "succeeded").inc()
    return {"ok": True}


def arq_function(spec: JobSpec, get_state) -> Any:
    """The ARQ function for one job spec; `get_state(ctx)` returns the AppState."""

    async def job(ctx: dict[str, Any], job_id: str, payload: Any = None) -> dict[str, Any]:
        return await run_job(get_state(ctx), spec, UUID(job_id), payload, attempt=ctx.get("job_try", 1))

    job.__qualname__ = job.__name__ = spec.name.replace(".", "_")
    return func(job, name=spec.name, timeout=spec.timeout_s, max_tries=spec.max_tries)


def arq_cron(cron_spec: CronSpec, spec: JobSpec, get_state) -> Any:
    """A cron entry that records a system job row and runs the job inline."""
    from flywheel.server.jobs.queue import create_job_row

    async def tick(ctx: dict[str, Any]) -> dict[str, Any]:
        state = get_state(ctx)
        job_id = await create_job_row(state, spec, None, cron_spec.payload)
        # ARQ's id of the tick (cron:<name>:<scheduled unix ms>) says which tick this worker runs.
        log.debug("cron tick", cron=cron_spec.name, tick=ctx.get("job_id"), job_id=str(job_id))
        return await run_job(state, spec, job_id, msgspec.to_builtins(cron_spec.payload))

    return cron(tick, name=f"cron:{cron_spec.name}", minute=cron_spec.minute, hour=cron_spec.hour,
                day=cron_spec.day, weekday=cron_spec.weekday, month=cron_spec.month,
                run_at_startup=cron_spec.run_at_startup, timeout=spec.timeout_s, unique=True,
                # The tick's result is kept for an hour: a worker that lags and queues a tick another
                # already ran finds the result under the tick's job id and does not run it again.
                keep_result=3600)
