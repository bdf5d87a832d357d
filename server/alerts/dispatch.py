"""Handing an alert to channels: one delivery row per (alert, channel, event), one ARQ job
per attempt.

Each attempt is its own job (`core.deliver_alert`), queued with ARQ's defer
for the backoff: the job runner records an exception as a failure and never
retries it, and a retry that waits minutes should not hold a worker slot.
Every attempt shows in `/v1/jobs` and in the delivery's log.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec
import structlog

from flywheel.server.alerts.contracts import DeliverAlert
from flywheel.server.jobs.queue import create_job_row

if TYPE_CHECKING:
    from flywheel.server.state import AppState

log = structlog.get_logger("flywheel.alerts")
DELIVER_JOB = "core.deliver_alert"

_NEW_DELIVERIES = """
    INSERT INTO alert_deliveries (id, tenant_id, alert_id, channel_id, event)
    SELECT gen_random_uuid(), $1, $2, c.id, $4 FROM alert_channels c
    WHERE c.tenant_id = $1 AND c.id = ANY($3::uuid[]) AND c.enabled
    ON CONFLICT (alert_id, channel_id, event) DO NOTHING
    RETURNING id"""


async def dispatch(state: AppState, tenant_id: UUID, alert_id: UUID, channel_ids: list[UUID], event: str) -> int:
    """Create the deliveries of `event` for the tenant's enabled channels among `channel_ids`
    and queue their first attempts; returns how many were created (a repeat creates none)."""
    rows = await state.db.fetch(_NEW_DELIVERIES, tenant_id, alert_id, channel_ids, event)
    for row in rows:
        await schedule_attempt(state, tenant_id, row["id"], 1)
    return len(rows)


async def schedule_attempt(state: AppState, tenant_id: UUID, delivery_id: UUID, attempt: int,
                           delay_s: float = 0.0) -> UUID | None:
    """Queue attempt `attempt` of a delivery, `delay_s` from now; the job id, or None when the
    queue is down (the delivery stays pending, its log says why)."""
    spec = state.contributions.jobs[DELIVER_JOB][1]
    payload = DeliverAlert(delivery_id=delivery_id, attempt=attempt)
    job_id = await create_job_row(state, spec, tenant_id, payload)
    try:
        await state.redis.enqueue_job(DELIVER_JOB, str(job_id), msgspec.to_builtins(payload), _job_id=str(job_id),
                                      _defer_by=timedelta(seconds=delay_s) if delay_s > 0 else None)
    except Exception as exc:  # Redis down: raising the alert must still succeed
        log.warning("alert delivery not queued", delivery_id=str(delivery_id), error=type(exc).__name__)
        await state.db.execute("UPDATE jobs SET state = 'failed', error = $2, finished_at = now() WHERE id = $1",
                               job_id, f"could not queue: {type(exc).__name__}")
        await state.db.execute(
            """INSERT INTO alert_delivery_attempts (delivery_id, tenant_id, attempt, started_at, duration_ms, error)
               VALUES ($1, $2, $3, now(), 0, $4)""",
            delivery_id, tenant_id, attempt, f"not queued: the job queue is unavailable ({type(exc).__name__})")
        return None
    return job_id
