"""Runs in Postgres: created from a checked spec, queued as `credit.run`, and their states.

A run's state is its own (queued, running, succeeded, failed, cancelled); the
job that executes it is linked by `job_id`, whose progress the CLI follows.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import msgspec

from flywheel.plugins.credit import runspec
from flywheel.plugins.credit.contracts import PolicyFailure, RunJob, RunRead, RunSpec
from flywheel.server.plugin_api import NotFound, enqueue, job_status

_COLUMNS = ("id, state, spec, job_id, model_family, model_version, passed, failures, metrics, logs, error, "
            "artifacts, created_at, started_at, finished_at")


def _run(row) -> RunRead:
    fields = dict(row)
    fields["spec"] = msgspec.convert(fields["spec"], RunSpec)
    fields["failures"] = msgspec.convert(fields["failures"], list[PolicyFailure])
    return RunRead(**fields)


async def create(state, tenant_id: UUID, spec: RunSpec, *, queue: bool = True) -> RunRead:
    """A checked run, queued for a worker (or, `queue=False`, for the caller to run: `link_job`)."""
    checked = await runspec.check(state.db, tenant_id, spec)
    run_id = uuid.uuid4()
    await state.db.execute(
        """INSERT INTO credit_runs (id, tenant_id, spec, dataset_version_id, feature_set_version_id)
           VALUES ($1, $2, $3, $4, $5)""",
        run_id, tenant_id, msgspec.to_builtins(spec), checked.dataset.id, checked.feature_set.id)
    if queue:
        job_id = await enqueue(state, "credit.run", RunJob(run_id=run_id), tenant_id=tenant_id)
        await link_job(state.db, tenant_id, run_id, job_id)
    return await get(state.db, tenant_id, run_id)


async def link_job(db, tenant_id: UUID, run_id: UUID, job_id: UUID) -> None:
    await db.execute("UPDATE credit_runs SET job_id = $3 WHERE tenant_id = $1 AND id = $2", tenant_id, run_id, job_id)


async def get(db, tenant_id: UUID, run_id: UUID) -> RunRead:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM credit_runs WHERE tenant_id = $1 AND id = $2",
                            tenant_id, run_id)
    if row is None:
        raise NotFound("no such run", field="path.run_id")
    return _run(row)


async def reconciled(state, tenant_id: UUID, run: RunRead) -> RunRead:
    """The run, with the outcome of a job that ended without the runner recording it: a job
    cancelled while queued never runs, and a job that ran out of time or tries stops mid-way."""
    if run.state not in ("queued", "running") or run.job_id is None:
        return run
    job = await job_status(state, run.job_id, tenant_id=tenant_id)
    if job.state not in ("cancelled", "failed"):
        return run
    outcome = getattr(job.state, "value", job.state)
    await finish(state.db, tenant_id, run.id, outcome, error=job.error or outcome)
    return await get(state.db, tenant_id, run.id)


async def list_runs(db, tenant_id: UUID, after: tuple | None, limit: int, state: str | None = None) -> list[RunRead]:
    rows = await db.fetch(
        f"""SELECT {_COLUMNS} FROM credit_runs WHERE tenant_id = $1
            AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) AND ($5::text IS NULL OR state = $5)
            ORDER BY created_at DESC, id DESC LIMIT $4""", tenant_id, *(after or (None, None)), limit, state)
    return [_run(r) for r in rows]


async def latest_passed(db, tenant_id: UUID) -> RunRead | None:
    row = await db.fetchrow(
        f"""SELECT {_COLUMNS} FROM credit_runs WHERE tenant_id = $1 AND state = 'succeeded' AND passed
            ORDER BY finished_at DESC LIMIT 1""", tenant_id)
    return None if row is None else _run(row)


async def log(db, tenant_id: UUID, run_id: UUID, line: str) -> None:
    await db.execute("UPDATE credit_runs SET logs = logs || to_jsonb($3::text) WHERE tenant_id = $1 AND id = $2",
                     tenant_id, run_id, line)


async def mark_running(db, tenant_id: UUID, run_id: UUID) -> None:
    await db.execute(
        """UPDATE credit_runs SET state = 'running', started_at = coalesce(started_at, now()), error = NULL
           WHERE tenant_id = $1 AND id = $2""", tenant_id, run_id)


async def finish(db, tenant_id: UUID, run_id: UUID, state: str, **fields: Any) -> None:
    """Record the outcome; `fields` among model_family, model_version, passed, failures, metrics,
    error, artifacts."""
    allowed = ("model_family", "model_version", "passed", "failures", "metrics", "error", "artifacts")
    names = [n for n in allowed if n in fields]
    sets = "".join(f", {n} = ${i + 4}" for i, n in enumerate(names))
    await db.execute(f"UPDATE credit_runs SET state = $3, finished_at = now(){sets} WHERE tenant_id = $1 AND id = $2",
                     tenant_id, run_id, state, *(fields[n] for n in names))
