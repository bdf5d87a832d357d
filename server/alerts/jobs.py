"""The alert jobs: evaluating conditions (cron, every tenant; or one tenant on request)
and delivering (one job per attempt, see dispatch.py)."""

from __future__ import annotations

from typing import Any

from flywheel.contracts.jobs import CronSpec, JobSpec
from flywheel.server.alerts.conditions import evaluate_tenant
from flywheel.server.alerts.contracts import DeliverAlert
from flywheel.server.alerts.delivery import deliver_alert
from flywheel.server.alerts.dispatch import DELIVER_JOB

EVALUATE_JOB = "core.evaluate_alerts"


async def evaluate_alerts(ctx: Any) -> dict[str, Any]:
    """Evaluate every alert condition for the job's tenant, or for every tenant (cron)."""
    from flywheel.server.auth.service import list_tenants

    if ctx.tenant_id is not None:
        return await evaluate_tenant(ctx.state, ctx.tenant_id)
    tenants = [t.id for t in await list_tenants(ctx.db)]
    totals: dict[str, Any] = {"tenants": len(tenants), "found": 0, "raised": 0, "resolved": 0, "failed": 0}
    for done, tenant_id in enumerate(tenants, 1):
        result = await evaluate_tenant(ctx.state, tenant_id)
        for key in ("found", "raised", "resolved"):
            totals[key] += result[key]
        totals["failed"] += len(result["failed"])
        await ctx.progress(done, len(tenants), f"evaluated {done:,} of {len(tenants):,} tenants")
    return totals


ALERT_JOBS = [
    JobSpec(name=EVALUATE_JOB, func=evaluate_alerts, timeout_s=1800, max_tries=1,
            description="Evaluate the plugins' alert conditions: raise what they find, resolve what cleared"),
    # A worker lost mid-attempt repeats that attempt (ARQ's second try); a failed attempt queues the
    # next one itself, after its backoff.
    JobSpec(name=DELIVER_JOB, func=deliver_alert, payload=DeliverAlert, timeout_s=120, max_tries=2,
            description="One attempt to deliver an alert to a channel (queued by the alerts, not by hand)"),
]
# Hourly, after the drives plugin's hourly feature build (:40); its daily scoring runs at 05:10.
ALERT_CRONS = [CronSpec(name="core.evaluate_alerts_hourly", job=EVALUATE_JOB, minute=50)]
