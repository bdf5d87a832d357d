"""The `credit.run` job: check the spec, materialize features, train through the core, evaluate,
report, register, and pass or fail the run by its evaluation policy.

Idempotent: a retried job (worker killed) re-runs the same steps, and the
core gives the job its model version back, so no second version appears. A
cancelled job (`POST /v1/jobs/{id}/cancel`) stops at its next progress report
and leaves the run `cancelled` with no model version.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.contracts.jobs import JobSpec
from flywheel.contracts.models import TrainingParams, TrainModel
from flywheel.plugins.credit import catalog, datasets, runs, runspec, splits, tracking
from flywheel.plugins.credit.assessment import Scored, assess, feature_psi
from flywheel.plugins.credit.contracts import RunJob, RunSpec
from flywheel.plugins.credit.evaluation import apply_policy
from flywheel.plugins.credit.family import FAMILY_NAME, LABEL, SPLIT, handed_over, training_key
from flywheel.plugins.credit.profile import target_labels
from flywheel.plugins.credit.report import render_report
from flywheel.plugins.credit.transforms import materialize
from flywheel.server.plugin_api import (
    ApiError,
    JobCancelled,
    model_version,
    score_table,
    tenant_store,
    train_version,
)

FINAL = ("succeeded", "failed", "cancelled")
# The train side of the score's PSI, the score bands and the train ranking: a seeded sample of a
# larger train split. Two samples of one distribution differ by a PSI of about 9 (1/n + 1/m) over
# ten bins, ~1e-4 here, so the sample changes no figure a policy reads; scoring every train row
# instead was ~40% of a 1M-row run's evaluation.
TRAIN_SCORED_ROWS = 200_000


async def run_credit(ctx, payload: RunJob) -> dict:
    run = await runs.get(ctx.db, ctx.tenant_id, payload.run_id)
    if run.state in FINAL:  # a duplicate delivery of a finished run changes nothing
        return {"run_id": str(run.id), "state": run.state}
    await runs.mark_running(ctx.db, ctx.tenant_id, run.id)
    try:
        return await _execute(ctx, run.id, run.spec)
    except (JobCancelled, asyncio.CancelledError):
        await runs.finish(ctx.db, ctx.tenant_id, run.id, "cancelled", error="cancelled")
        raise
    except Exception as exc:
        message = exc.message if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
        await runs.finish(ctx.db, ctx.tenant_id, run.id, "failed", error=message[:4000])
        raise


async def _step(ctx, run_id, step: int, message: str, started: float) -> None:
    # The log line carries the time since the run started: where a run spends its time, per run.
    await runs.log(ctx.db, ctx.tenant_id, run_id, f"[{time.monotonic() - started:7.2f} s] {message}")
    await ctx.progress(step, 6, message, force=True)  # raises JobCancelled once cancelled


async def _execute(ctx, run_id, spec: RunSpec) -> dict:
    started = time.monotonic()
    await _step(ctx, run_id, 0, "checking the spec", started)
    checked = await runspec.check(ctx.db, ctx.tenant_id, spec)
    defs = checked.feature_set.features
    async with ctx.db.acquire() as conn, conn.transaction():
        await catalog.mark_used(conn, ctx.tenant_id, checked.dataset.id, checked.feature_set.id,
                                [f.name for f in defs])
    folder = Path(tempfile.mkdtemp(prefix="flywheel-credit-run-"))
    try:
        await _step(ctx, run_id, 1, f"reading dataset version {checked.dataset.version} "
                    f"({checked.dataset.rows} rows)", started)
        raw = await datasets.read_table(ctx.state, ctx.tenant_id, checked.dataset, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    await _step(ctx, run_id, 2, f"materializing {len(defs)} features", started)
    y = target_labels(raw.column(checked.dataset.target), checked.dataset.bad_value, checked.dataset.target)
    part = splits.assign(raw, y, spec.split_policy, checked.dataset.time_column)
    features = await asyncio.to_thread(materialize, raw, defs)
    training = features.append_column(LABEL, pa.array(y, pa.int8())).append_column(SPLIT, pa.array(part, pa.int8()))
    store = tenant_store(ctx.state, ctx.tenant_id)

    await _step(ctx, run_id, 3, "training LightGBM through the model lifecycle", started)
    result = await _train(ctx, store, run_id, spec, defs, training)
    version = int(result["version"])

    await _step(ctx, run_id, 4, f"evaluating model version {version}", started)
    # The rows' scores and the features' PSI (which needs no model) side by side: two cores busy.
    scored, drift = await asyncio.gather(_scored(ctx, features, version, part, result, spec.split_policy.seed),
                                         asyncio.to_thread(feature_psi, features, defs, part))
    core = await model_version(ctx.state, ctx.tenant_id, FAMILY_NAME, version)
    metrics = await asyncio.to_thread(assess, y, scored, drift, part, spec.evaluation_policy,
                                      (core.metrics or {}).get("feature_importance", []))
    metrics["trees"] = result.get("trees")
    metrics["parity_max_abs_diff"] = result.get("parity_max_abs_diff")
    failures = apply_policy(spec.evaluation_policy, metrics)

    await _step(ctx, run_id, 5, "writing metrics and the report", started)
    artifacts = await _write_artifacts(store, run_id, spec, metrics, failures, defs, version, checked)
    await _track(ctx, run_id, spec, version, metrics, failures, artifacts, started)
    metrics["seconds"] = round(time.monotonic() - started, 3)
    await runs.finish(ctx.db, ctx.tenant_id, run_id, "succeeded", model_family=FAMILY_NAME, model_version=version,
                      passed=not failures, failures=msgspec.to_builtins(failures), metrics=_scalars(metrics),
                      artifacts=artifacts)
    await _step(ctx, run_id, 6, "passed" if not failures else
                "failed the evaluation policy: " + ", ".join(f.threshold for f in failures), started)
    return {"run_id": str(run_id), "model_version": version, "passed": not failures, "auc": metrics["auc"],
            "ks": metrics["ks"], "gini": metrics["gini"], "report": artifacts.get("report")}


async def _train(ctx, store, run_id, spec: RunSpec, defs, training: pa.Table) -> dict:
    """Train on the table just materialized, handed to the family's loader in memory, while the
    table is written to the store (the run's training data artifact) alongside."""
    saving = asyncio.create_task(_save(store, training_key(run_id), training))
    try:
        with handed_over(ctx.tenant_id, run_id, training):
            result = await train_version(ctx, _train_request(run_id, spec, defs), holdout_scores=True)
    except BaseException:
        await asyncio.gather(saving, return_exceptions=True)  # the run's own error is the one to report
        raise
    await saving
    return result


async def _save(store, key: str, table: pa.Table) -> None:
    await store.put(key, await asyncio.to_thread(_parquet, table), content_type="application/vnd.apache.parquet")


async def _scored(ctx, features: pa.Table, version: int, part: np.ndarray, trained: dict, seed: int) -> Scored:
    """Every test row's probability under the new version (the scores its parity check computed,
    when the core returned them for these rows), and those of the train rows the train-side
    figures use: all of them up to TRAIN_SCORED_ROWS, a seeded sample of a larger split."""
    train, test = np.nonzero(part == 0)[0], np.nonzero(part == 2)[0]
    if len(train) > TRAIN_SCORED_ROWS:
        train = np.sort(np.random.default_rng(seed).choice(train, TRAIN_SCORED_ROWS, replace=False))
    held = trained.get("holdout_scores")
    if held is not None and np.array_equal(held["rows"], test):
        return Scored(train_rows=train, p_train=await _score_rows(ctx, features, train, version),
                      test_rows=test, p_test=held["probabilities"])
    p = await _score_rows(ctx, features, np.concatenate([train, test]), version)
    return Scored(train_rows=train, p_train=p[:len(train)], test_rows=test, p_test=p[len(train):])


async def _score_rows(ctx, features: pa.Table, rows: np.ndarray, version: int) -> np.ndarray:
    """These rows' probabilities under the new version, in one part per core scored at once.

    A scoring session runs on one thread (what `/score` wants); each part's
    chunks run in threads of their own, so the parts overlap. Rows are
    independent, so the scores are the same as in one part.
    """
    table = features.take(pa.array(rows))
    parts = max(1, min(os.cpu_count() or 1, table.num_rows // 50_000))
    bounds = np.linspace(0, table.num_rows, parts + 1).astype(int)
    scored = await asyncio.gather(*(score_table(ctx.state, ctx.tenant_id, FAMILY_NAME, table.slice(a, b - a),
                                                version=version, monitor=False)  # an evaluation, not traffic
                                   for a, b in zip(bounds, bounds[1:])))
    return np.concatenate([p for _, p in scored]) if scored else np.empty(0)


async def _track(ctx, run_id, spec: RunSpec, version: int, metrics, failures, artifacts, started: float) -> None:
    """MLflow, when configured: a failure there is a line in the run's log, not a failed run."""
    try:
        mlflow_run = await tracking.log_run(tenant_store(ctx.state, ctx.tenant_id), ctx.tenant_id, run_id, spec,
                                            version, metrics, failures, artifacts)
    except Exception as exc:  # the tracking server is secondary: the run is stored either way
        await runs.log(ctx.db, ctx.tenant_id, run_id, f"MLflow logging failed: {type(exc).__name__}: {exc}"[:2000])
        return
    if mlflow_run is not None:
        await _step(ctx, run_id, 5, f"logged to MLflow run {mlflow_run} ({tracking.experiment_name(ctx.tenant_id)})",
                    started)


def _train_request(run_id, spec: RunSpec, defs) -> TrainModel:
    params = msgspec.to_builtins(spec.model_params)
    rounds = params.pop("num_boost_round", 500)
    stopping = params.pop("early_stopping_rounds", 50)
    return TrainModel(family=FAMILY_NAME, params=msgspec.convert(params, TrainingParams), num_boost_round=rounds,
                      early_stopping_rounds=stopping, seed=spec.split_policy.seed,
                      options={"run_id": str(run_id), "features": [f.name for f in defs],
                               "monotone": {f.name: f.monotone for f in defs if f.monotone}})


async def _write_artifacts(store, run_id, spec: RunSpec, metrics, failures, defs, version, checked) -> dict:
    artifacts = {"metrics": f"runs/{run_id}/metrics.json", "training_data": training_key(run_id),
                 "model": f"models/{FAMILY_NAME}/{version}/"}
    body = {"run_id": str(run_id), "model_version": version, "passed": not failures,
            "failures": msgspec.to_builtins(failures), "metrics": metrics}
    await store.put(artifacts["metrics"], msgspec.json.format(msgspec.json.encode(body)),
                    content_type="application/json")
    if spec.artifact_policy.report:
        html = render_report(run_id=run_id, metrics=metrics, failures=failures, features=defs, version=version,
                             dataset=checked.dataset, feature_set=checked.feature_set)
        artifacts["report"] = f"reports/{run_id}/report.html"
        await store.put(artifacts["report"], html.encode(), content_type="text/html")
    return artifacts


def _scalars(metrics: dict) -> dict:
    """What the run row keeps: the figures and tables, not the curves (those are in metrics.json)."""
    return {k: v for k, v in metrics.items() if k not in ("roc", "ks_curve", "score_distribution")}


def _parquet(table: pa.Table) -> bytes:
    # Dictionary pages only for text: on 40 float columns, trying (and abandoning) a dictionary per
    # column made this write 5-9x slower (zstd: 1.1-1.8 s against 0.2 s at 200k rows), and the file
    # came out larger (64.6 MB against 58.7 MB).
    text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy", use_dictionary=text)
    return sink.getvalue()


JOBS = [JobSpec(name="credit.run", func=run_credit, payload=RunJob, timeout_s=3 * 3600, max_tries=3,
                description="Execute a credit run spec: features, training, evaluation, report, policy.")]
