"""`rlaas.rebuild_interactions`: the interaction tables rebuilt from the stored events.

The tables are a projection of `rlaas.*` events, written after each commit
(projection.py). A process killed between the commit and the projection, or
a projection that failed, leaves events stored but not projected; this job
replays a time range of the tenant's stored events through the same
projection. Every insert is ON CONFLICT DO NOTHING, so replaying what is
already there changes nothing, and the job can run any number of times.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec

from flywheel.contracts.jobs import JobSpec
from flywheel.plugins.rlaas.contracts import Feedback, Interaction, TaskResult
from flywheel.plugins.rlaas.projection import project
from flywheel.server.plugin_api import stored_events

JOB = "rlaas.rebuild_interactions"
BATCH = 2000


class Rebuild(msgspec.Struct, forbid_unknown_fields=True):
    """Replay events with `since <= ts < until` (default: the last `days` days up to now)."""

    since: datetime | None = None
    until: datetime | None = None
    days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 7


async def rebuild_job(ctx, payload: Rebuild) -> dict:
    until = payload.until or datetime.now(UTC)
    since = payload.since or until - timedelta(days=payload.days)
    replayed: dict[str, int] = {}
    # Interactions first: feedback and task results refer to them.
    for kind, step in ((Interaction, 0), (Feedback, 1), (TaskResult, 2)):
        count = 0
        async for events in stored_events(ctx.state, ctx.tenant_id, kind, since, until, batch=BATCH):
            await project(ctx.state, ctx.tenant_id, events)
            count += len(events)
            await ctx.progress(step, 3, f"{kind.__struct_config__.tag}: {count} replayed")
        replayed[kind.__struct_config__.tag] = count
    await ctx.progress(3, 3, "done", force=True)
    return {"since": since.isoformat(), "until": until.isoformat(), "replayed": replayed}


SPEC = JobSpec(name=JOB, func=rebuild_job, payload=Rebuild, timeout_s=3600,
               description="Rebuild the rlaas interaction tables from the stored events (idempotent)")
