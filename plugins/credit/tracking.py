"""Credit runs logged to MLflow, when `MLFLOW_TRACKING_URI` is set.

The replaced platform kept its experiments in MLflow, and teams that have a
tracking server keep using it: each finished run becomes an MLflow run in the
experiment `flywheel-credit/<tenant id>` (one experiment per tenant, so two
tenants' runs never share a page), with

- params: the run spec's model parameters, split and evaluation policies,
  the dataset and feature-set versions, and the model version it registered;
- metrics: every scalar figure of the run (AUC, Gini, KS, PSI, Brier, ...);
- tags: the Flywheel run id, pass or fail, and the thresholds that failed;
- artifacts: metrics.json and the HTML report, as the run stored them.

MLflow is optional (`pip install 'flywheel[credit-mlflow]'`: the
`mlflow-skinny` client) and secondary: the run is already stored and
registered when it is logged, so a tracking server that is down or refuses
the run costs a log line on the run, never the run.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec

ENV = "MLFLOW_TRACKING_URI"


def tracking_uri() -> str | None:
    return os.environ.get(ENV) or None


def experiment_name(tenant_id: UUID) -> str:
    return f"flywheel-credit/{tenant_id}"


def run_params(spec: Any, version: int) -> dict[str, str]:
    """The spec flattened into MLflow's string params (`model_params.num_leaves`, ...)."""
    body = msgspec.to_builtins(spec)
    params = {name: str(body[name]) for name in ("dataset_version_id", "feature_set_version_id", "model_family")}
    params["model_version"] = str(version)
    for group in ("model_params", "split_policy", "evaluation_policy"):
        for key, value in (body.get(group) or {}).items():
            if value is not None:
                params[f"{group}.{key}"] = str(value)
    return params


def run_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar figures only: curves and tables are in the metrics.json artifact."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


async def log_run(store: Any, tenant_id: UUID, run_id: UUID, spec: Any, version: int, metrics: dict[str, Any],
                  failures: list[Any], artifacts: dict[str, str]) -> str | None:
    """Log one finished run; returns the MLflow run id (None when no tracking server is set)."""
    uri = tracking_uri()
    if uri is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="flywheel-credit-mlflow-"))
    try:
        files = []
        for name in ("metrics", "report"):
            if name in artifacts:
                files.append(await store.get_file(artifacts[name], folder / Path(artifacts[name]).name))
        tags = {"flywheel.run_id": str(run_id), "flywheel.passed": str(not failures).lower(),
                "flywheel.failed_thresholds": ",".join(f.threshold for f in failures)}
        return await asyncio.to_thread(_log, uri, experiment_name(tenant_id), str(run_id), run_params(spec, version),
                                       run_metrics(metrics), tags, files)
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


def _log(uri: str, experiment: str, run_name: str, params: dict[str, str], metrics: dict[str, float],
         tags: dict[str, str], files: list[Path]) -> str:
    """The blocking MLflow client calls (run in a thread): one batch of params, metrics and tags."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run = client.create_run(experiment_id, run_name=run_name)
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                     params=[Param(k, v) for k, v in params.items()], tags=[RunTag(k, v) for k, v in tags.items()])
    for path in files:
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED")
    return run_id
