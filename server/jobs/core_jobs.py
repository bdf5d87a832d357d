"""The core's own jobs and their schedules, in one place."""

from __future__ import annotations

from typing import Annotated

import msgspec

from flywheel.contracts.jobs import CronSpec, JobSpec
from flywheel.contracts.models import ScorePartition, ScorePartitions, TrainModel
from flywheel.server.alerts.jobs import ALERT_CRONS, ALERT_JOBS
from flywheel.server.ingest.jobs import CompactPayload, compact_events, maintain_events
from flywheel.server.models import batch_scoring
from flywheel.server.monitoring import jobs as monitoring


class PruneJobs(msgspec.Struct, forbid_unknown_fields=True):
    keep_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30


async def prune_jobs(ctx, payload: PruneJobs) -> dict:
    """Delete finished job rows (every tenant's) older than `keep_days`: a system job."""
    status = await ctx.db.execute(
        """DELETE FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled')
           AND finished_at < now() - make_interval(days => $1)""",
        payload.keep_days,
    )
    return {"deleted": int(status.split()[-1])}


async def train_model(ctx, payload: TrainModel) -> dict:
    """Train, export, check and register a model version (server/models/training.py)."""
    # Imported here: training pulls in scikit-learn and LightGBM (about a second), which a CLI
    # command or an API process that never trains should not wait for.
    from flywheel.server.models.training import train_model as train

    return await train(ctx, payload)


CORE_JOBS = [
    JobSpec(name="core.prune_jobs", func=prune_jobs, payload=PruneJobs, max_tries=1, system=True),
    JobSpec(name="core.compact_events", func=compact_events, payload=CompactPayload, timeout_s=3600),
    JobSpec(name="core.maintain_events", func=maintain_events, timeout_s=600, system=True),
    # Two tries: a worker killed mid-training retries (the version number is kept);
    # a training that raises is not retried (see runner.py).
    JobSpec(name="core.train_model", func=train_model, payload=TrainModel, timeout_s=6 * 3600, max_tries=2,
            description="Train, export, check and register a model version"),
    *monitoring.JOBS,
    *ALERT_JOBS,  # evaluating conditions, delivering to channels (server/alerts/jobs.py)
    # Batch scoring fanned out over partitions (server/models/batch_scoring.py); both are idempotent:
    # a partition's output is written once, so a retried or duplicated job skips it.
    JobSpec(name="core.score_partitions", func=batch_scoring.score_partitions, payload=ScorePartitions,
            timeout_s=6 * 3600, max_tries=2, description="Score every Parquet partition under a prefix"),
    JobSpec(name="core.score_partition", func=batch_scoring.score_partition, payload=ScorePartition,
            timeout_s=3600, max_tries=3, description="Score one Parquet partition of a batch scoring job"),
]
CORE_CRONS = [
    CronSpec(name="core.prune_jobs_daily", job="core.prune_jobs", hour=3, minute=17, payload=PruneJobs()),
    CronSpec(name="core.compact_events_daily", job="core.compact_events", hour=0, minute=30,
             payload=CompactPayload()),
    CronSpec(name="core.maintain_events_daily", job="core.maintain_events", hour=0, minute=5, run_at_startup=True),
    *monitoring.CRONS,
    *ALERT_CRONS,
]
