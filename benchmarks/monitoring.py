"""Monitoring benchmark: the daily monitoring job over a month of a drive fleet.

    python -m benchmarks.monitoring [--quick] [--drives N] [--days D]

In one run, against one Postgres, through the paths production uses:
1. train a drive model (7-day horizon, so most monitored days have known
   outcomes) through `core.train_model` on a 3,000-drive, 90-day fleet (not timed);
2. load the benchmark fleet (N drives x D days, default 100,000 x 30; `--quick`
   10,000 x 30) through the import path, build its features, and score every
   day with `drives.score_fleet` (the core's batch scoring, which also counts
   what it scores for monitoring; not timed);
3. time `core.monitor_models` over the D days (a backfill: for each day, the
   drives' own rows by data day from the `monitoring_rows` hook binned into
   the version's training bins, PSI of 22 features and the score, the
   outcomes of the day's drives and calibration, operational counters,
   thresholds) -> `job_s`, `drive_days_per_s`;
4. time the daily run for the last day (one day, alerts raised) -> `daily_s`.
There is no peer: the system Flywheel replaces listed drift monitoring as a
next step and never built it. Prints a table, then one JSON object as the
last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import date, timedelta

from rich.console import Console
from rich.table import Table

from benchmarks.services import BenchServices, run_job_now
from flywheel.plugins.drives.features import build_features
from flywheel.plugins.drives.fleet import generate_fleet, load_fleet
from flywheel.server.app import build_state
from flywheel.server.auth import service
from flywheel.server.settings import load_settings

console = Console(stderr=True)
TRAIN_END = date(2026, 6, 30)
FAMILY = "drives.h30"


async def prepare(state, tenant_id, drives: int, days: int) -> tuple[date, date, float]:
    """A trained version, the fleet's days loaded, built and scored; (first day, last day, setup seconds)."""
    started = time.perf_counter()
    console.print("[bold]training[/] a 7-day-horizon model on a 3,000-drive, 90-day fleet (not timed) ...")
    await load_fleet(state.db, tenant_id, generate_fleet(drives=3000, days=90, end=TRAIN_END, seed=1))
    await build_features(state.db, tenant_id)
    await run_job_now(state, "core.train_model", {"family": FAMILY, "split": "time", "auto_activate": True,
                                                  "options": {"horizon": 7}}, tenant_id)
    last = TRAIN_END + timedelta(days=days)
    first = last - timedelta(days=days - 1)
    console.print(f"[bold]loading[/] {drives:,} drives x {days} days, building features (not timed) ...")
    await load_fleet(state.db, tenant_id, generate_fleet(drives=drives, days=days, end=last, seed=2))
    await build_features(state.db, tenant_id)
    await state.db.execute("ANALYZE")
    console.print("[bold]scoring[/] every day with drives.score_fleet (not timed) ...")
    for k in range(days):
        await run_job_now(state, "drives.score_fleet", {"day": (first + timedelta(days=k)).isoformat()}, tenant_id)
    await state.db.execute("ANALYZE")
    return first, last, time.perf_counter() - started


async def main_async(args) -> dict:
    svc = BenchServices()
    await svc.start()
    env = {"DATABASE_URL": svc.database_url, "REDIS_URL": svc.redis_url,
           "FLYWHEEL_DATA_DIR": str(svc.scratch / "data"), "FLYWHEEL_QUEUE": f"bench-monitoring-{os.getpid()}"}
    state = build_state(load_settings(env), load_entrypoints=True)
    await state.start()
    try:
        tenant = await service.create_tenant(state.db, "bench")
        first, last, setup_s = await prepare(state, tenant.id, args.drives, args.days)
        scored = await state.db.fetchval("SELECT count(*) FROM drives_risk WHERE tenant_id = $1 AND day >= $2",
                                         tenant.id, first)
        console.print(f"[bold]monitoring[/] core.monitor_models over {args.days} days ({scored:,} drive-days) ...")
        started = time.perf_counter()
        backfill = await run_job_now(state, "core.monitor_models", {
            "from": first.isoformat(), "to": last.isoformat(), "family": FAMILY}, tenant.id)
        job_s = time.perf_counter() - started
        console.print("[bold]daily[/] core.monitor_models for the last day, with alerts ...")
        started = time.perf_counter()
        daily = await run_job_now(state, "core.monitor_models", {"day": last.isoformat(), "family": FAMILY},
                                  tenant.id)
        daily_s = time.perf_counter() - started
        calibrated = await state.db.fetchval(
            "SELECT count(*) FROM model_monitoring_days WHERE tenant_id = $1 AND calibration_error IS NOT NULL",
            tenant.id)
    finally:
        await state.stop()
        await svc.stop()

    out = Table(title=f"Monitoring, {args.drives:,} drives x {args.days} days ({svc.where}, {os.cpu_count()} cores)")
    for col in ("step", "work", "seconds", "rate"):
        out.add_column(col, justify="right")
    out.add_row("setup: train, load, features, score (not timed)", f"{scored:,} drive-days", f"{setup_s:.0f}", "")
    out.add_row("core.monitor_models, backfill", f"{backfill['version_days']} days, {calibrated} calibrated",
                f"{job_s:.1f}", f"{scored / job_s:,.0f} drive-days/s")
    out.add_row("core.monitor_models, daily", f"1 day, {daily['alerts']} alert(s)", f"{daily_s:.2f}", "")
    console.print(out)
    return {"job_s": round(job_s, 2), "drive_days_per_s": round(scored / job_s), "daily_s": round(daily_s, 2),
            "drives": args.drives, "days": args.days, "drive_days": scored, "calibrated_days": calibrated,
            "breaches": backfill["breaches"], "setup_s": round(setup_s)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10,000 drives (a few minutes, mostly setup)")
    p.add_argument("--drives", type=int, default=None)
    p.add_argument("--days", type=int, default=30)
    args = p.parse_args()
    args.drives = args.drives or (10_000 if args.quick else 100_000)
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
