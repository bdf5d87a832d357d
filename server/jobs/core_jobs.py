"""The core's own jobs."""

from __future__ import annotations

from typing import Annotated

import msgspec

from flywheel.contracts.jobs import CronSpec, JobSpec


class PruneJobs(msgspec.Struct, forbid_unknown_fields=True):
    keep_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30


async def prune_jobs(ctx, payload: PruneJobs) -> dict:
    """Delete finished job rows (every tenant's) older than `keep_days`: a system job."""
    status = await ctx.db.execute(
        "DELETE FROM jobs WHERE state IN ('succeeded', 'failed') AND finished_at < now() - make_interval(days => $1)",
        payload.keep_days,
    )
    return {"deleted": int(status.split()[-1])}


CORE_JOBS = [JobSpec(name="core.prune_jobs", func=prune_jobs, payload=PruneJobs, max_tries=1, system=True)]
CORE_CRONS = [CronSpec(name="core.prune_jobs_daily", job="core.prune_jobs", hour=3, minute=17, payload=PruneJobs())]


def _ingest_jobs() -> tuple[list[JobSpec], list[CronSpec]]:
    from flywheel.server.ingest.jobs import INGEST_CRONS, INGEST_JOBS

    return INGEST_JOBS, INGEST_CRONS


CORE_JOBS += _ingest_jobs()[0]
CORE_CRONS += _ingest_jobs()[1]


def _model_jobs() -> list[JobSpec]:
    from flywheel.contracts.models import TrainModel
    from flywheel.server.models.training import train_model

    # Two tries: a worker killed mid-training retries (the version number is kept);
    # a training that raises is not retried (see runner.py).
    return [JobSpec(name="core.train_model", func=train_model, payload=TrainModel, timeout_s=6 * 3600,
                    max_tries=2, description="Train, export, check and register a model version")]


CORE_JOBS += _model_jobs()
