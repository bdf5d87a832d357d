"""Drives benchmark: the feature job and the daily scoring job on a generated fleet.

    python -m benchmarks.drives [--quick] [--drives N]

In one run, against one Postgres:
1. train an H30 model through `core.train_model` on a separate 90-day
   training fleet (not timed);
2. load the benchmark fleet (N drives x 30 days, default 100,000; `--quick`
   20,000) through the import path, and time the feature job over its 30
   days -> `feature_drive_days_per_s`;
3. time the scoring job for the last day (every active drive, through the
   core's batch helper, with reasons for the riskiest) -> `score_drives_per_s`;
4. the peer, the same job as the replaced system ran it: read the day's
   features, one LightGBM `predict` call per drive (one thread), store the
   risks -> `ratio_vs_peer` = Flywheel's drives/s over the peer's.
Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import date, timedelta

import lightgbm as lgb
import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.services import BenchServices, run_job_now
from flywheel.contracts.tenants import Scope
from flywheel.plugins.drives.features import build_features
from flywheel.plugins.drives.fleet import generate_fleet, load_fleet
from flywheel.plugins.drives.model import FEATURE_NAMES, day_features
from flywheel.plugins.drives.scoring import score_day, store_risks
from flywheel.server.app import build_state
from flywheel.server.auth import service
from flywheel.server.settings import load_settings

console = Console(stderr=True)
TRAIN_END = date(2026, 6, 30)
DAYS = 30


async def peer_score_day(state, tenant_id, day, booster, version) -> dict:
    """The replaced system's scoring job: read the day's features, one `predict` call per drive, store.

    Generous to the peer: it writes through Flywheel's COPY path (the original
    inserted row by row) and computes no reasons.
    """
    table = await day_features(state.db, tenant_id, day)
    X = np.column_stack([table.column(n).to_numpy(zero_copy_only=False).astype(np.float64) for n in FEATURE_NAMES])
    risk = np.array([booster.predict(X[i:i + 1])[0] for i in range(len(X))])
    await store_risks(state.db, tenant_id, day, table.column("serial_number").to_pylist(), risk, version, {})
    return {"drives": len(X)}


async def main_async(args) -> dict:
    svc = BenchServices()
    await svc.start()
    env = {"DATABASE_URL": svc.database_url, "REDIS_URL": svc.redis_url,
           "FLYWHEEL_DATA_DIR": str(svc.scratch / "data"), "FLYWHEEL_QUEUE": f"bench-drives-{os.getpid()}"}
    state = build_state(load_settings(env), load_entrypoints=True)
    await state.start()
    try:
        tenant = await service.create_tenant(state.db, "bench")
        await service.create_key(state.db, tenant.id, "bench", [Scope.ADMIN])
        console.print("[bold]training[/] an H30 model on a 3,000-drive, 90-day training fleet (not timed) ...")
        await load_fleet(state.db, tenant.id, generate_fleet(drives=3000, days=90, end=TRAIN_END, seed=1))
        await build_features(state.db, tenant.id)
        await run_job_now(state, "core.train_model", {"family": "drives.h30", "split": "time",
                                                      "auto_activate": True}, tenant.id)

        end = TRAIN_END + timedelta(days=DAYS)
        console.print(f"[bold]loading[/] {args.drives:,} drives x {DAYS} days ...")
        fleet = generate_fleet(drives=args.drives, days=DAYS, end=end, seed=2)
        started = time.perf_counter()
        await load_fleet(state.db, tenant.id, fleet)
        load_s = time.perf_counter() - started

        console.print("[bold]features[/] drives.build_features over the new 30 days ...")
        started = time.perf_counter()
        built = await build_features(state.db, tenant.id)
        feature_s = time.perf_counter() - started
        assert built["days"] == DAYS and built["drive_days"] == fleet.num_rows, built

        console.print("[bold]scoring[/] drives.score_fleet for the last day ...")
        await state.db.execute("ANALYZE drives_features")
        started = time.perf_counter()
        scored = await score_day(state, tenant.id, end)
        score_s = time.perf_counter() - started

        console.print("[bold]peer[/] the same job, one LightGBM predict call per drive ...")
        version = scored["model_version"]
        text = await state.tenant_store(tenant.id).get(f"models/drives.h30/{version}/model.txt")
        booster = lgb.Booster(model_str=text.decode(), params={"num_threads": 1})
        started = time.perf_counter()
        peer = await peer_score_day(state, tenant.id, end, booster, version)
        peer_s = time.perf_counter() - started
        sample = peer["drives"]
    finally:
        await state.stop()
        await svc.stop()

    feature_rate = fleet.num_rows / feature_s
    score_rate = scored["drives"] / score_s
    peer_rate = sample / peer_s
    out = Table(title=f"Drives, {args.drives:,} drives x {DAYS} days ({svc.where}, {os.cpu_count()} cores)")
    for col in ("step", "work", "seconds", "rate"):
        out.add_column(col, justify="right")
    out.add_row("load (COPY, not a target)", f"{fleet.num_rows:,} drive-days", f"{load_s:.1f}",
                f"{fleet.num_rows / load_s:,.0f} drive-days/s")
    out.add_row("features (drives.build_features)", f"{fleet.num_rows:,} drive-days", f"{feature_s:.1f}",
                f"{feature_rate:,.0f} drive-days/s")
    out.add_row("scoring (drives.score_fleet)", f"{scored['drives']:,} drives, {scored['explained']:,} explained",
                f"{score_s:.2f}", f"{score_rate:,.0f} drives/s")
    out.add_row("peer: same job, predict per drive", f"{sample:,} drives (no reasons)", f"{peer_s:.2f}",
                f"{peer_rate:,.0f} drives/s")
    console.print(out)
    return {
        "feature_drive_days_per_s": round(feature_rate),
        "score_drives_per_s": round(score_rate),
        "peer_score_drives_per_s": round(peer_rate),
        "ratio_vs_peer": round(score_rate / peer_rate, 1),
        "load_drive_days_per_s": round(fleet.num_rows / load_s),
        "drives": args.drives,
        "drive_days": fleet.num_rows,
        "scored_drives": scored["drives"],
        "explained_drives": scored["explained"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a run under a minute (20,000 drives)")
    p.add_argument("--drives", type=int, default=None)
    args = p.parse_args()
    args.drives = args.drives or (20_000 if args.quick else 100_000)
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
