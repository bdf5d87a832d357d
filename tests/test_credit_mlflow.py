"""Credit runs in a real MLflow tracking server, started by the test (`make test` installs it
in .venv-mlflow: the server's own dependencies stay out of Flywheel's environment)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from test_credit_api import csv_bytes, define, generate, spec_of, upload

from flywheel.plugins.credit.tracking import ENV, experiment_name

REPO = Path(__file__).resolve().parents[1]
MLFLOW = REPO / ".venv-mlflow" / "bin" / "mlflow"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    if not MLFLOW.exists():
        pytest.fail(f"{MLFLOW} is missing: `make install-test` installs the MLflow tracking server there")
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    proc = subprocess.Popen(
        [str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts")],
        stdout=open(root / "server.log", "wb"), stderr=subprocess.STDOUT, env={**os.environ, "NO_PROXY": "*"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited: {(root / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"mlflow server did not answer: {(root / 'server.log').read_text()[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


async def _finished_run(client, worker, make_tenant):
    t = await make_tenant()
    r = await upload(client, t.headers, csv_bytes(generate(2000, seed=9)), name="tracked")
    assert r.status_code == 201, r.text
    fsv = await define(client, t.headers)
    run = (await client.post("/v1/credit/runs", headers=t.headers,
                             json=spec_of(r.json(), fsv, evaluation_policy={"auc_min": 0.99}))).json()
    await worker()
    body = (await client.get(f"/v1/credit/runs/{run['id']}", headers=t.headers)).json()
    assert body["state"] == "succeeded", body
    return t, body


async def test_a_run_is_logged_with_params_metrics_tags_and_artifacts(client, worker, make_tenant, mlflow_server,
                                                                      monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv(ENV, mlflow_server)
    t, run = await _finished_run(client, worker, make_tenant)
    ml = MlflowClient(tracking_uri=mlflow_server)
    experiment = ml.get_experiment_by_name(experiment_name(t.id))
    assert experiment is not None
    [logged] = ml.search_runs([experiment.experiment_id])
    assert logged.info.run_name == run["id"] and logged.info.status == "FINISHED"
    assert logged.data.params["model_version"] == str(run["model_version"])
    assert logged.data.params["evaluation_policy.auc_min"] == "0.99"
    assert logged.data.metrics["auc"] == pytest.approx(run["metrics"]["auc"])
    assert logged.data.metrics["ks"] == pytest.approx(run["metrics"]["ks"])
    assert logged.data.tags["flywheel.passed"] == "false"  # an AUC of 0.99 is out of reach
    assert "auc_min" in logged.data.tags["flywheel.failed_thresholds"]
    names = sorted(a.path for a in ml.list_artifacts(logged.info.run_id))
    assert names == ["metrics.json", "report.html"]
    report = Path(ml.download_artifacts(logged.info.run_id, "report.html", dst_path=str(Path(os.environ.get(
        "TMPDIR", "/tmp")))))
    assert "<svg" in report.read_text()
    assert any(f"logged to MLflow run {logged.info.run_id}" in line for line in run["logs"]), run["logs"]


async def test_a_tracking_server_that_is_down_costs_a_log_line_not_the_run(client, worker, make_tenant,
                                                                           monkeypatch):
    monkeypatch.setenv(ENV, f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    _, run = await _finished_run(client, worker, make_tenant)
    assert run["model_version"] is not None
    assert any(line.startswith("MLflow logging failed") or "MLflow logging failed" in line
               for line in run["logs"]), run["logs"]
