"""Credit benchmark: a run spec end to end against the bare LightGBM script a data scientist would write.

    python -m benchmarks.credit [--quick] [--rows N] [--repeat K]

On a generated applicant table (default 1,000,000 rows x 40 columns; `--quick`
50,000 rows, under a minute):
1. upload it as a dataset and define 40 features (not timed);
2. time the `credit.run` job end to end: features, training through the core
   lifecycle (ONNX export and parity check included), scoring the rows,
   AUC / KS / PSI / calibration, the HTML report -> `runner_seconds` (runs
   after the first, as a worker that has trained before runs them; the first,
   which also imports the ONNX converters, is `runner_cold_seconds`);
3. the peer: read the same Parquet, compute the same features with numpy,
   train LightGBM with the same parameters and split, AUC on the test rows
   -> `bare_seconds`; `overhead_ratio` = runner / bare (target: at most 1.3).
   Steps 2 and 3 alternate `--repeat` times (default 3; `--quick` 1) and the
   medians are compared: one fit's time varies by seconds on a shared machine;
4. `POST /v1/credit/score` with four reasons, one applicant a request, through
   the app in-process (httpx over ASGI: no socket) -> p50 / p99 latency.
Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import lightgbm as lgb
import msgspec
import numpy as np
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from benchmarks.services import BenchServices, run_job_now
from flywheel.contracts.tenants import Scope
from flywheel.plugins.credit import catalog, datasets, runs
from flywheel.plugins.credit.contracts import FeatureCreate, RunJob, RunSpec
from flywheel.plugins.credit.demo import DEMO_FEATURES, generate, parquet_bytes
from flywheel.server.app import build_state, create_app
from flywheel.server.auth import service
from flywheel.server.settings import load_settings
from flywheel.server.testing.client import app_client

console = Console(stderr=True)
EXTRA = 33  # 7 generated columns + 33 noise columns = 40 features
PARAMS = {"num_leaves": 31, "learning_rate": 0.1, "min_child_samples": 20}
ROUNDS, STOPPING, TEST_SHARE, SEED = 300, 30, 0.3, 0


def features() -> list[FeatureCreate]:
    noise = [FeatureCreate(name=f"x{j:02d}", source_columns=[f"x{j:02d}"], description=f"noise {j}")
             for j in range(EXTRA)]
    return [*DEMO_FEATURES, *noise]


async def _chunks(data: bytes):
    for i in range(0, len(data), 1 << 20):
        yield data[i:i + (1 << 20)]


def bare_script(path) -> float:
    """What a data scientist writes: pandas-free numpy features, a stratified split, LightGBM, AUC."""
    from sklearn.metrics import roc_auc_score

    t = pq.read_table(path)
    col = {n: t.column(n).to_numpy(zero_copy_only=False).astype(np.float64) if n != "region" else
           np.asarray(t.column(n).to_pylist(), dtype=object) for n in t.column_names}
    with np.errstate(divide="ignore", invalid="ignore"):
        dti = col["debt"] / col["income"]
    region = np.unique(col["region"][col["region"] != None], return_inverse=False)  # noqa: E711
    codes = np.array([np.searchsorted(region, r) if r is not None else np.nan for r in col["region"]], float)
    X = np.column_stack([np.log1p(np.maximum(col["income"], 0)), dti, np.clip(col["delinquencies_12m"], 0, 10),
                         col["utilization"], np.digitize(col["age"], [25, 35, 50, 65]).astype(float),
                         np.isnan(col["income"]).astype(float), codes,
                         *(col[f"x{j:02d}"] for j in range(EXTRA))])
    y = col["bad"].astype(int)
    rng = np.random.default_rng(SEED)
    test = np.concatenate([rng.permutation(np.nonzero(y == c)[0])[:int(round((y == c).sum() * TEST_SHARE))]
                           for c in (0, 1)])
    mask = np.zeros(len(y), bool)
    mask[test] = True
    train = np.nonzero(~mask)[0]
    valid = rng.permutation(train)[:len(train) // 5]
    fit = np.setdiff1d(train, valid)
    model = lgb.LGBMClassifier(n_estimators=ROUNDS, verbose=-1, **PARAMS)
    model.fit(X[fit], y[fit], eval_set=[(X[valid], y[valid])], categorical_feature=[6],
              callbacks=[lgb.early_stopping(STOPPING, verbose=False)])
    return float(roc_auc_score(y[mask], model.predict_proba(X[mask])[:, 1]))


async def score_latency(app, headers: dict, row: dict, n: int) -> list[float]:
    out = []
    async with app_client(app) as client:
        for i in range(n + 20):
            started = time.perf_counter()
            r = await client.post("/v1/credit/score", headers=headers, json={"row": row})
            if i >= 20:  # the first requests load the model
                out.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 200, r.text
    return out


async def timed_run(state, tenant_id, spec: RunSpec) -> tuple[float, dict, object]:
    """(seconds, result, run id) of one `credit.run` job run to the end in this process."""
    run = await runs.create(state, tenant_id, spec, queue=False)
    started = time.perf_counter()
    result = await run_job_now(state, "credit.run", RunJob(run_id=run.id), tenant_id)
    return time.perf_counter() - started, result, run.id


async def main_async(args) -> dict:
    svc = BenchServices()
    await svc.start()
    env = {"DATABASE_URL": svc.database_url, "REDIS_URL": svc.redis_url,
           "FLYWHEEL_DATA_DIR": str(svc.scratch / "data"), "FLYWHEEL_QUEUE": f"bench-credit-{os.getpid()}",
           "FLYWHEEL_ALLOWED_HOSTS": "testserver"}  # the in-process client's Host
    settings = load_settings(env)
    state = build_state(settings, load_entrypoints=True)
    await state.start()
    try:
        tenant = await service.create_tenant(state.db, "bench")
        key = await service.create_key(state.db, tenant.id, "bench", [Scope.ADMIN])
        console.print(f"[bold]generating[/] {args.rows:,} applicants x 40 columns and uploading (not timed) ...")
        table = generate(args.rows, seed=1, extra_columns=EXTRA)
        data = parquet_bytes(table)
        path = svc.scratch / "applicants.parquet"
        path.write_bytes(data)
        version = await datasets.upload(state, tenant.id, _chunks(data), name="bench", target="bad",
                                        bad_value=None, time_column=None)
        for f in features():
            await catalog.create_feature(state.db, tenant.id, f)
        set_id = await catalog.create_feature_set(state.db, tenant.id, "bench", "")
        fsv = await catalog.create_set_version(state.db, tenant.id, set_id, [f.name for f in features()], "$")
        params = {**PARAMS, "num_boost_round": ROUNDS, "early_stopping_rounds": STOPPING}
        spec = msgspec.convert({"dataset_version_id": str(version.id), "feature_set_version_id": str(fsv),
                                "model_params": params, "split_policy": {"test_share": TEST_SHARE, "seed": SEED}},
                               RunSpec)
        # The first run in a fresh process also imports the ONNX converters (skl2onnx, onnxmltools: a few
        # seconds); a worker that has trained once no longer pays that. It is reported on its own.
        console.print("[bold]runner[/] credit.run end to end (cold process) ...")
        cold_s, result, _ = await timed_run(state, tenant.id, spec)
        # Then runner and bare script by turns, `--repeat` times each: on a shared machine one LightGBM
        # fit varies by a few seconds from one minute to the next; the medians are compared.
        runner_times, bare_times = [], []
        for i in range(args.repeat):
            console.print(f"[bold]runner[/] credit.run end to end (warm, {i + 1} of {args.repeat}) ...")
            seconds, result, run_id = await timed_run(state, tenant.id, spec)
            runner_times.append(seconds)
            # Where the run spent its time: its own log, one line per step with the time since it started.
            for line in (await runs.get(state.db, tenant.id, run_id)).logs:
                console.print(f"  {line}")
            console.print(f"[bold]bare[/] the same features and parameters in a plain LightGBM script "
                          f"({i + 1} of {args.repeat}) ...")
            started = time.perf_counter()
            bare_auc = await asyncio.to_thread(bare_script, path)
            bare_times.append(time.perf_counter() - started)
        runner_s, bare_s = float(np.median(runner_times)), float(np.median(bare_times))

        console.print("[bold]scoring[/] POST /v1/credit/score with reasons ...")
        row = {k: v[0] for k, v in table.slice(0, 1).drop(["bad"]).to_pydict().items()}
        app = create_app(settings, load_entrypoints=True)
        latencies = await score_latency(app, {"Authorization": f"Bearer {key.secret}"}, row, args.requests)
    finally:
        await state.stop()
        await svc.stop()
    p50, p99 = float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))
    out = Table(title=f"Credit, {args.rows:,} rows x 40 columns ({svc.where}, {os.cpu_count()} cores)")
    for c in ("step", "seconds", "AUC"):
        out.add_column(c, justify="right")
    out.add_row("runner, first run in a fresh process", f"{cold_s:.1f}", "")
    out.add_row(f"runner (credit.run, report included), median of {len(runner_times)}", f"{runner_s:.1f}",
                f"{result['auc']:.4f}")
    out.add_row(f"bare LightGBM script, median of {len(bare_times)}", f"{bare_s:.1f}", f"{bare_auc:.4f}")
    console.print(out)
    console.print(f"score with reasons: p50 {p50:.2f} ms, p99 {p99:.2f} ms over {len(latencies)} requests")
    return {"runner_seconds": round(runner_s, 2), "runner_cold_seconds": round(cold_s, 2),
            "bare_seconds": round(bare_s, 2), "runner_runs": [round(t, 2) for t in runner_times],
            "bare_runs": [round(t, 2) for t in bare_times],
            "overhead_ratio": round(runner_s / bare_s, 2), "score_p50_ms": round(p50, 2),
            "score_p99_ms": round(p99, 2), "rows": args.rows, "runner_auc": result["auc"], "bare_auc": bare_auc}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a run under a minute (50,000 rows)")
    p.add_argument("--rows", type=int, default=None)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--repeat", type=int, default=None,
                   help="warm runner runs and bare runs, by turns; medians compared (default 3, --quick 1)")
    args = p.parse_args()
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.rows = args.rows or (50_000 if args.quick else 1_000_000)
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
