"""The core's own jobs."""

from __future__ import annotations

import msgspec

from flywheel.contracts.jobs import CronSpec, JobSpec


class PruneJobs(msgspec.Struct):
    keep_days: int = 30


async def prune_jobs(ctx, payload: PruneJobs) -> dict:
    """Delete finished job rows older than `keep_days`."""
    status = await ctx.db.execute(
        "DELETE FROM jobs WHERE state IN ('succeeded', 'failed') AND finished_at < now() - make_interval(days => $1)",
        payload.keep_days,
    )
    return {"deleted": int(status.split()[-1])}


CORE_JOBS = [JobSpec(name="core.prune_jobs", func=prune_jobs, payload=PruneJobs, max_tries=1)]
CORE_CRONS = [CronSpec(name="core.prune_jobs_daily", job="core.prune_jobs", hour=3, minute=17, payload=PruneJobs())]


def _ingest_jobs() -> tuple[list[JobSpec], list[CronSpec]]:
    from flywheel.server.ingest.jobs import INGEST_CRONS, INGEST_JOBS

    return INGEST_JOBS, INGEST_CRONS


CORE_JOBS += _ingest_jobs()[0]
CORE_CRONS += _ingest_jobs()[1]
