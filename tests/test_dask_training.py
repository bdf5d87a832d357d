"""Training on a Dask cluster (FLYWHEEL_DASK_SCHEDULER): lightgbm.dask on Parquet partitions.

A family that provides its data as Parquet partitions (`TrainingData(parquet_prefix=...)`)
is trained twice on the same files: by an app without a scheduler (the partitions read into
one table, LightGBM on the worker) and by one pointed at a `distributed.LocalCluster` of two
worker processes. Both versions go through the same export, parity check, metrics and registry.
"""

from __future__ import annotations

import io
import types
import uuid

import msgspec
import numpy as np
import onnx as onnx_lib
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flywheel.contracts.models import DynamicFeatures, ModelFamily, TrainingData
from flywheel.server.app import create_app
from flywheel.server.plugin_api import hookimpl, job_status, run_here
from flywheel.server.settings import SettingsError, load_settings
from flywheel.server.testing.client import app_client
from flywheel_example.model import NoteFeatures, make_training_table

FAMILY = "parquetnotes.reopen"
DYNAMIC = "parquetnotes.dynamic"  # its features chosen per training, one a categorical
PREFIX = "datasets/notes/"
ROWS, PARTITIONS = 4000, 4


async def load_training_data(ctx, request) -> TrainingData:
    return TrainingData(parquet_prefix=PREFIX)


async def load_dynamic(ctx, request) -> TrainingData:
    return TrainingData(parquet_prefix=PREFIX, features=["views_7d", "edits", "age_days", "channel"])


@hookimpl
def register_model_families():
    return [ModelFamily(name=FAMILY, features=NoteFeatures, label="reopened", split_column="split",
                        params={"num_leaves": 15, "min_child_samples": 20}, load_training_data=load_training_data),
            ModelFamily(name=DYNAMIC, features=DynamicFeatures, label="reopened", split_column="split",
                        params={"num_leaves": 15, "min_child_samples": 20}, load_training_data=load_dynamic)]


# A plugin as a third party's module would be: named by its module name.
PLUGIN = types.ModuleType("parquetnotes")
PLUGIN.register_model_families = register_model_families


@pytest.fixture(scope="module")
def cluster(s3_server):
    from distributed import LocalCluster

    # The workers' own credentials for an s3:// store, as a deployment's workers would have them.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit="1GiB", env=s3_server.env) as c:
        yield c


async def write_partitions(state, tenant_id) -> pa.Table:
    """The example's notes with a fixed split column (so both trainings split alike), in PARTITIONS files."""
    table = make_training_table(ROWS, seed=3)
    split = np.random.default_rng(3).choice([0, 1, 2], size=ROWS, p=[0.7, 0.15, 0.15]).astype(np.int8)
    table = table.append_column("split", pa.array(split))
    # A categorical: how the note came in, with a few rare values (and some missing).
    channel = np.random.default_rng(4).choice(["web", "mail", "api", "import", ""], size=ROWS,
                                              p=[0.5, 0.3, 0.15, 0.04, 0.01])
    table = table.append_column("channel", pa.array(channel.tolist(), mask=channel == "import"))
    store = state.tenant_store(tenant_id)
    for i, part in enumerate(np.array_split(np.arange(ROWS), PARTITIONS)):
        sink = io.BytesIO()
        pq.write_table(table.take(pa.array(part)), sink)
        await store.put(f"{PREFIX}part-{i}.parquet", sink.getvalue())
    return table


async def train(app, tenant_id, family: str = FAMILY, **request) -> dict:
    st = app.state.flywheel
    job_id, task = await run_here(st, "core.train_model", {"family": family, **request}, tenant_id=tenant_id)
    await task
    return msgspec.to_builtins(await job_status(st, job_id, tenant_id=tenant_id))


async def metrics_of(app, tenant_id, version: int, family: str = FAMILY) -> dict:
    row = await app.state.flywheel.db.fetchrow(
        "SELECT metrics, info, features FROM model_versions WHERE tenant_id = $1 AND family = $2 AND version = $3",
        tenant_id, family, version)
    return {"metrics": row["metrics"], "info": row["info"], "features": row["features"]}


async def test_dask_training_matches_local_training_and_is_checked(flywheel_settings, state, make_tenant, cluster):
    t = await make_tenant()
    await write_partitions(state, t.id)
    local_settings = msgspec.structs.replace(flywheel_settings, queue_name="flywheel:queue:dask-local")
    dask_settings = msgspec.structs.replace(flywheel_settings, queue_name="flywheel:queue:dask",
                                            dask_scheduler=cluster.scheduler_address)
    local_app, dask_app = create_app(local_settings, [PLUGIN]), create_app(dask_settings, [PLUGIN])
    request = {"num_boost_round": 60, "early_stopping_rounds": 0, "seed": 1}
    async with app_client(local_app), app_client(dask_app):
        local_job = await train(local_app, t.id, **request)
        dask_job = await train(dask_app, t.id, **request)
        assert local_job["state"] == "succeeded", local_job
        assert dask_job["state"] == "succeeded", dask_job
        assert dask_job["result"]["dask_workers"] == 2 and "dask_workers" not in local_job["result"]
        local = await metrics_of(local_app, t.id, local_job["result"]["version"])
        dask = await metrics_of(dask_app, t.id, dask_job["result"]["version"])

        # Same rows in each part: the split column decides, on the cluster as locally.
        assert dask["metrics"]["rows"] == local["metrics"]["rows"]
        assert dask["metrics"]["rows"]["train"] + dask["metrics"]["rows"]["valid"] + \
            dask["metrics"]["rows"]["test"] == ROWS
        assert dask["info"]["dask"]["partitions"] == PARTITIONS and dask["info"]["dask"]["workers"] == 2
        # lightgbm.dask trains data-parallel: a feature's bin boundaries come from one worker's
        # rows, not all of them, and the workers' histograms are summed over LightGBM's
        # network, so splits, and so scores, differ slightly from one-machine training. Measured on
        # this data: ROC-AUC 0.8156 vs 0.8142, PR-AUC 0.7449 vs 0.7464, log loss 0.51108 vs 0.51115.
        # Allowed: 0.02 on the ranking metrics, 0.01 on log loss and Brier: ten times what was seen,
        # and far below a broken model's gap (one that learned nothing has ROC-AUC 0.5; this 0.81).
        tolerance = {"roc_auc": 0.02, "pr_auc": 0.02, "log_loss": 0.01, "brier": 0.01}
        for name, allowed in tolerance.items():
            assert abs(dask["metrics"][name] - local["metrics"][name]) <= allowed, \
                (name, dask["metrics"][name], local["metrics"][name])
        assert dask["metrics"]["roc_auc"] > 0.7
        # ONNX parity, as for every version: checked on the whole test part at the default tolerance.
        assert dask["metrics"]["parity_max_abs_diff"] <= 1e-4
        assert dask["metrics"]["trees"] == 60

        # Early stopping applies on the cluster too (on the validation part, after training).
        stopped = await train(dask_app, t.id, num_boost_round=400, early_stopping_rounds=5, seed=1,
                              params={"learning_rate": 0.3})
        assert stopped["state"] == "succeeded", stopped
        assert stopped["result"]["trees"] < 400

        # Parity is enforced: a tolerance no float32 model meets fails the version, saying why.
        strict = await train(dask_app, t.id, num_boost_round=20, early_stopping_rounds=0, parity_tolerance=0)
        assert strict["state"] == "failed" and "ONNX and LightGBM disagree" in strict["error"], strict
        version = await dask_app.state.flywheel.db.fetchrow(
            "SELECT state, error FROM model_versions WHERE tenant_id = $1 AND family = $2 ORDER BY version DESC "
            "LIMIT 1", t.id, FAMILY)
        assert version["state"] == "failed" and "disagree" in version["error"]


async def test_categories_are_counted_on_the_cluster_as_locally(flywheel_settings, make_tenant, state, cluster):
    t = await make_tenant()
    await write_partitions(state, t.id)
    local_app = create_app(msgspec.structs.replace(flywheel_settings, queue_name="flywheel:queue:dask-local"),
                           [PLUGIN])
    dask_app = create_app(msgspec.structs.replace(flywheel_settings, queue_name="flywheel:queue:dask",
                                                  dask_scheduler=cluster.scheduler_address), [PLUGIN])
    request = {"num_boost_round": 30, "early_stopping_rounds": 0}
    async with app_client(local_app), app_client(dask_app):
        local_job = await train(local_app, t.id, DYNAMIC, **request)
        dask_job = await train(dask_app, t.id, DYNAMIC, **request)
        assert local_job["state"] == dask_job["state"] == "succeeded", (local_job, dask_job)
        local = await metrics_of(local_app, t.id, local_job["result"]["version"], DYNAMIC)
        dask = await metrics_of(dask_app, t.id, dask_job["result"]["version"], DYNAMIC)
    channel = next(f for f in dask["features"] if f["name"] == "channel")
    # Most frequent first; the empty string and the nulls are missing, not categories.
    assert channel["type"] == "category" and channel["categories"] == ["web", "mail", "api"]
    assert dask["features"] == local["features"]
    assert dask["metrics"]["parity_max_abs_diff"] <= 1e-4
    assert abs(dask["metrics"]["roc_auc"] - local["metrics"]["roc_auc"]) <= 0.02  # as in the test above


async def test_another_tenants_prefix_is_not_read(flywheel_settings, state, make_tenant, cluster):
    owner, other = await make_tenant(), await make_tenant()
    await write_partitions(state, owner.id)
    settings = msgspec.structs.replace(flywheel_settings, queue_name="flywheel:queue:dask",
                                       dask_scheduler=cluster.scheduler_address)
    app = create_app(settings, [PLUGIN])
    async with app_client(app):
        job = await train(app, other.id, num_boost_round=10)
    # The same prefix names the other tenant's (empty) folder: nothing of the owner's is read.
    assert job["state"] == "failed" and f"no Parquet files under {PREFIX!r}" in job["error"], job


async def test_dask_reads_partitions_from_an_s3_store(flywheel_settings, make_tenant, cluster, s3_server, monkeypatch):
    from s3_server import BUCKET

    for name, value in s3_server.env.items():  # this process's S3 client (the app's store) too
        monkeypatch.setenv(name, value)
    settings = msgspec.structs.replace(
        flywheel_settings, queue_name="flywheel:queue:dask", dask_scheduler=cluster.scheduler_address,
        store_url=f"s3://{BUCKET}/dask-{uuid.uuid4().hex[:8]}", s3_endpoint_url=s3_server.endpoint_url)
    t = await make_tenant()
    app = create_app(settings, [PLUGIN])
    async with app_client(app):
        await write_partitions(app.state.flywheel, t.id)
        job = await train(app, t.id, num_boost_round=20, early_stopping_rounds=0)
        assert job["state"] == "succeeded", job
        saved = await metrics_of(app, t.id, job["result"]["version"])
        onnx = await app.state.flywheel.tenant_store(t.id).get(f"models/{FAMILY}/{job['result']['version']}/model.onnx")
    assert saved["info"]["dask"]["partitions"] == PARTITIONS and saved["metrics"]["roc_auc"] > 0.7
    assert saved["metrics"]["parity_max_abs_diff"] <= 1e-4
    assert onnx_lib.load_from_string(onnx).graph.input[0].name == "features"


def test_scheduler_setting_is_validated():
    assert load_settings({"FLYWHEEL_DASK_SCHEDULER": "tcp://10.0.0.5:8786"}).dask_scheduler == "tcp://10.0.0.5:8786"
    assert load_settings({}).dask_scheduler is None
    for bad in ("10.0.0.5:8786", "http://h:8786", "tcp://h", "tcp://h:99999", "tcp://h:8786/x"):
        with pytest.raises(SettingsError) as err:
            load_settings({"FLYWHEEL_DASK_SCHEDULER": bad})
        assert err.value.variable == "FLYWHEEL_DASK_SCHEDULER"
