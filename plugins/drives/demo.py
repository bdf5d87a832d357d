"""The demo fleet `flywheel up --demo` starts with, built through the real jobs.

Each step checks whether it is done, so a demo interrupted half-way (Ctrl-C
during the first start) completes on the next start instead of stopping
with a half-populated fleet.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from flywheel.plugins.drives.fleet import generate_fleet, load_fleet
from flywheel.server.plugin_api import active_version, job_status, run_here

log = structlog.get_logger("flywheel.drives")
DEMO_DRIVES = 2000
DEMO_DAYS = 120
DEMO_SCORED_DAYS = 30


async def seed_demo(state, tenant_id) -> None:
    db = state.db
    try:
        if not await db.fetchval("SELECT EXISTS (SELECT 1 FROM drives_inventory WHERE tenant_id = $1)", tenant_id):
            log.info("drives demo: generating a fleet", drives=DEMO_DRIVES, days=DEMO_DAYS)
            # Generated in a thread: the server answers meanwhile.
            fleet = await asyncio.to_thread(generate_fleet, drives=DEMO_DRIVES, days=DEMO_DAYS, seed=42)
            await load_fleet(db, tenant_id, fleet)
        # The same jobs a real deployment runs, recorded in the jobs table (visible at /v1/jobs).
        if not await run(state, tenant_id, "drives.build_features", {}):
            return
        if await active_version(state, tenant_id, "drives.h30") is None:
            if not await run(state, tenant_id, "core.train_model",
                             {"family": "drives.h30", "split": "time", "auto_activate": True}):
                return
        # The last DEMO_SCORED_DAYS days, oldest first, so a drive's risk history is a trend, not one dot.
        last = await db.fetchval("SELECT max(day) FROM drives_features WHERE tenant_id = $1", tenant_id)
        scored = {r["day"] for r in await db.fetch("SELECT DISTINCT day FROM drives_risk WHERE tenant_id = $1",
                                                   tenant_id)}
        for back in range(DEMO_SCORED_DAYS - 1, -1, -1):
            day = last - timedelta(days=back)
            if day not in scored and not await run(state, tenant_id, "drives.score_fleet", {"day": day.isoformat()}):
                return
        log.info("drives demo ready")
    except Exception:
        log.exception("drives demo failed")


async def run(state, tenant_id, name: str, payload: dict) -> bool:
    job_id, task = await run_here(state, name, payload, tenant_id=tenant_id)
    await task
    status = await job_status(state, job_id, tenant_id=tenant_id)
    if status.state.value != "succeeded":
        log.error("drives demo step failed", job=name, error=status.error)
    return status.state.value == "succeeded"
