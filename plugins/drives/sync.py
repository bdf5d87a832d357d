"""Reconcile streamed records from the events table (`drives.sync_events`).

`on_events_committed` is best effort: under backpressure the core drops
notifications rather than slow intake. The events themselves are always in
the `events` table, so this job re-reads the recent `drives.smart_daily`
events and writes any record the subscriber missed (a record already stored
is left alone, so running it twice changes nothing).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec

from flywheel.contracts.jobs import JobSpec
from flywheel.plugins.drives.contracts import SmartDaily
from flywheel.plugins.drives.daily import event_rows, write_rows
from flywheel.server.plugin_api import stored_events, tenant_ids

BATCH = 5000


class SyncEvents(msgspec.Struct, forbid_unknown_fields=True):
    # How far back to look (by event time); events older than a year are past the ingest window anyway.
    hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 366)] = 48


async def sync_events(state, tenant_id, since: datetime) -> dict:
    added = seen = 0
    # One drive-day per event: two days of a 100,000-drive fleet is ~200,000 small rows, read in batches.
    async for events in stored_events(state, tenant_id, SmartDaily, since, batch=BATCH):
        seen += len(events)
        async with state.db.acquire() as conn, conn.transaction():
            added += await write_rows(conn, event_rows(events, tenant_id))
    return {"events": seen, "added": added}


async def sync_events_job(ctx, payload: SyncEvents) -> dict:
    since = datetime.now(UTC) - timedelta(hours=payload.hours)
    tenants = [ctx.tenant_id] if ctx.tenant_id is not None else await tenant_ids(ctx.state)
    out = {"tenants": len(tenants), "events": 0, "added": 0}
    for tenant_id in tenants:
        r = await sync_events(ctx.state, tenant_id, since)
        out["events"] += r["events"]
        out["added"] += r["added"]
    return out


JOBS = [JobSpec(name="drives.sync_events", func=sync_events_job, payload=SyncEvents, timeout_s=3600,
                description="Write streamed daily records the subscriber missed (from the events table)")]
