"""Demo data for `flywheel up --demo`: the example trace, QA'd and judged (once per tenant)."""

from __future__ import annotations

from uuid import UUID

from flywheel.plugins.traces.example import REPOSITORY, submit_example
from flywheel.plugins.traces.jobs_payload import TraceJob
from flywheel.server.plugin_api import AppState, follow_job, run_here


async def seed_demo(state: AppState, tenant_id: UUID) -> None:
    if await state.db.fetchval("SELECT true FROM traces WHERE tenant_id = $1 AND repository = $2 LIMIT 1",
                               tenant_id, REPOSITORY):
        return
    trace = await submit_example(state, tenant_id, queue_qa=False)
    for name in ("traces.qa", "traces.judge"):
        job_id, _ = await run_here(state, name, TraceJob(trace_id=trace.id, judge=False), tenant_id=tenant_id)
        await follow_job(state, job_id, tenant_id=tenant_id)
