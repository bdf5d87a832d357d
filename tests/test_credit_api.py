"""The credit API: uploads in every format, run specs refused with the field at fault, runs that are
cancelled or retried, and the demo."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from flywheel.plugins.credit.conversion import READ_BLOCK
from flywheel.plugins.credit.demo import DEMO_FEATURES, generate, seed_demo
from flywheel.server.testing import eventually


def csv_bytes(table) -> bytes:
    sink = io.BytesIO()
    pcsv.write_csv(table, sink)
    return sink.getvalue()


async def upload(client, headers, body, **params):
    return await client.post("/v1/credit/datasets", params={"target": "bad", **params}, content=body,
                             headers=headers)


async def streamed(data: bytes, piece: int = 1 << 16):
    for i in range(0, len(data), piece):
        yield data[i:i + piece]


async def define(client, headers, name="demo-set"):
    for f in DEMO_FEATURES:
        r = await client.post("/v1/credit/features", headers=headers, json={
            "name": f.name, "source_columns": f.source_columns, "transform": f.transform, "params": f.params,
            "monotone": f.monotone, "description": f.description})
        assert r.status_code in (201, 409), r.text
    r = await client.post("/v1/credit/feature-sets", headers=headers,
                          json={"name": name, "features": [f.name for f in DEMO_FEATURES]})
    assert r.status_code == 201, r.text
    return r.json()["versions"][0]


async def test_a_streamed_csv_larger_than_a_block_is_stored_as_parquet(client, tenant, state):
    body = csv_bytes(generate(40_000, seed=2))
    assert len(body) > 2 * READ_BLOCK  # several upload chunks and several CSV blocks
    r = await upload(client, tenant.headers, streamed(body), name="big")
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["rows"] == 40_000 and v["sha256"] == hashlib.sha256(body).hexdigest() and v["source_format"] == "csv"
    stored = pq.read_table(io.BytesIO(await state.tenant_store(tenant.id).get(v["store_key"])))
    assert stored.num_rows == 40_000 and stored.schema.field("region").type == "string"
    cols = {c["name"]: c for c in v["profile"]["columns"]}
    assert 0.03 < cols["income"]["missing_rate"] < 0.07 and cols["region"]["distinct"] == 5  # nulls not counted
    assert 0.01 < cols["region"]["missing_rate"] < 0.03 and cols["region"]["type"] == "string"
    assert cols["income"]["quantiles"]["p50"] > 0 and 0.05 < v["profile"]["target_rate"] < 0.6


async def test_gzip_and_parquet_uploads_and_versions(client, tenant):
    table = generate(500, seed=3)
    r1 = await upload(client, tenant.headers, gzip.compress(csv_bytes(table)), name="fmt")
    assert r1.status_code == 201 and r1.json()["source_format"] == "csv.gz" and r1.json()["version"] == 1
    sink = io.BytesIO()
    pq.write_table(table, sink)
    r2 = await upload(client, tenant.headers, sink.getvalue(), name="fmt")
    assert r2.status_code == 201 and r2.json()["source_format"] == "parquet" and r2.json()["version"] == 2
    again = await upload(client, tenant.headers, sink.getvalue(), name="fmt")
    assert again.json()["existing"] is True and again.json()["id"] == r2.json()["id"]
    listing = (await client.get("/v1/credit/datasets", headers=tenant.headers)).json()
    assert [d["name"] for d in listing["items"]] == ["fmt"] and len(listing["items"][0]["versions"]) == 2


@pytest.mark.parametrize(("body", "params", "field"), [
    (b"a,b\n1,2\n", {"target": "nope"}, "target"),
    (b"", {}, "body"),
    (b"\x1f\x8bnot gzip at all", {}, "body"),
    (b"bad,s\n1,x\n2,y\n", {}, "target"),  # 2 is neither 0 nor 1 and no bad_value is given
])
async def test_bad_uploads_are_refused_with_the_field(client, tenant, body, params, field):
    r = await client.post("/v1/credit/datasets", params={"name": "bad", "target": "bad", **params}, content=body,
                          headers=tenant.headers)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and set(r.json()) >= {"status", "code", "message", "field"}


@pytest.fixture(scope="module")
async def ready(client, make_tenant):
    t = await make_tenant()
    r = await upload(client, t.headers, csv_bytes(generate(3000, seed=4)), name="applicants")
    assert r.status_code == 201, r.text
    fsv = await define(client, t.headers)
    return t, r.json(), fsv


def spec_of(dataset, fsv, **extra) -> dict:
    return {"dataset_version_id": dataset["id"], "feature_set_version_id": fsv["id"], "model_family": "gbm",
            **extra}


@pytest.mark.parametrize(("change", "field"), [
    ({"feature_set_version_id": "00000000-0000-4000-8000-000000000000"}, "$.feature_set_version_id"),
    ({"dataset_version_id": "00000000-0000-4000-8000-000000000000"}, "$.dataset_version_id"),
    ({"model_params": {"num_leaves": 1}}, "$.model_params.num_leaves"),
    ({"model_params": {"tree_learner": "voting"}}, "$.model_params.tree_learner"),
    ({"model_family": "random_forest"}, "$.model_family"),
    ({"split_policy": {"kind": "time"}}, "$.split_policy.kind"),
    ({"split_policy": {"kind": "column", "column": "nope"}}, "$.split_policy.column"),
    ({"evaluation_policy": {"auc_min": 2}}, "$.evaluation_policy.auc_min"),
])
async def test_invalid_specs_are_refused_with_the_field_at_fault(client, ready, change, field):
    t, dataset, fsv = ready
    r = await client.post("/v1/credit/runs", headers=t.headers, json={**spec_of(dataset, fsv), **change})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field, r.json()


async def test_a_feature_on_a_missing_or_mistyped_column_is_refused(client, ready):
    t, dataset, _ = ready
    for name, column, transform in (("ghost", "no_such_column", "passthrough"), ("region_log", "region", "log1p")):
        r = await client.post("/v1/credit/features", headers=t.headers, json={
            "name": name, "source_columns": [column], "transform": transform, "description": name})
        assert r.status_code == 201, r.text
        fs = await client.post("/v1/credit/feature-sets", headers=t.headers, json={"name": name, "features": [name]})
        r = await client.post("/v1/credit/runs", headers=t.headers,
                              json=spec_of(dataset, fs.json()["versions"][0]))
        assert r.status_code == 422 and r.json()["field"] == "$.feature_set_version_id"
        assert r.json()["code"] == ("missing_column" if name == "ghost" else "wrong_type"), r.json()


async def test_bad_feature_definitions(client, ready):
    t, *_ = ready
    for body, field in (({"transform": "clip", "params": {"lower": 5, "upper": 1}}, "$.params"),
                        ({"transform": "ratio"}, "$.source_columns"),
                        ({"transform": "categorical", "monotone": 1}, "$.monotone"),
                        ({"name": "Bad Name"}, "$.name"),
                        ({"name": "split"}, "$.name")):
        r = await client.post("/v1/credit/features", headers=t.headers, json={
            "name": "f_x", "source_columns": ["age"], "description": "x", **body})
        assert r.status_code == 422 and r.json()["field"] == field, r.json()


async def test_a_queued_run_cancelled_never_runs(client, worker, ready):
    t, dataset, fsv = ready
    run = (await client.post("/v1/credit/runs", headers=t.headers, json=spec_of(dataset, fsv))).json()
    r = await client.post(f"/v1/jobs/{run['job_id']}/cancel", headers=t.headers)
    assert r.status_code == 200, r.text
    await worker()
    body = (await client.get(f"/v1/credit/runs/{run['id']}", headers=t.headers)).json()
    assert body["state"] == "cancelled" and body["model_version"] is None


async def test_a_running_run_is_cancelled_within_seconds(client, worker, make_tenant):
    t = await make_tenant()
    r = await upload(client, t.headers, csv_bytes(generate(60_000, seed=5)), name="slow")
    fsv = await define(client, t.headers)
    spec = spec_of(r.json(), fsv, model_params={"num_boost_round": 5000, "early_stopping_rounds": 0,
                                                "learning_rate": 0.001, "num_leaves": 63})
    run = (await client.post("/v1/credit/runs", headers=t.headers, json=spec)).json()
    working = asyncio.create_task(worker())

    async def training():
        job = (await client.get(f"/v1/jobs/{run['job_id']}", headers=t.headers)).json()
        return "boosting round" in (job["progress"].get("message") or "")

    await eventually(training, timeout=60, what="the run is training")
    asked = asyncio.get_running_loop().time()
    assert (await client.post(f"/v1/jobs/{run['job_id']}/cancel", headers=t.headers)).status_code == 200
    await working
    assert asyncio.get_running_loop().time() - asked < 10
    body = (await client.get(f"/v1/credit/runs/{run['id']}", headers=t.headers)).json()
    assert body["state"] == "cancelled" and body["model_version"] is None and body["passed"] is None
    job = (await client.get(f"/v1/jobs/{run['job_id']}", headers=t.headers)).json()
    assert job["state"] == "cancelled"


async def test_a_retried_run_registers_no_second_version(client, worker, ready, state):
    """A worker killed after registering the model: the job is delivered again with the same id."""
    from flywheel.plugins.credit.contracts import RunJob
    from flywheel.plugins.credit.runner import run_credit
    from flywheel.server.jobs.context import JobContext

    t, dataset, fsv = ready
    run = (await client.post("/v1/credit/runs", headers=t.headers, json=spec_of(dataset, fsv))).json()
    await worker()
    first = (await client.get(f"/v1/credit/runs/{run['id']}", headers=t.headers)).json()
    assert first["state"] == "succeeded", first
    before = await state.db.fetchval("SELECT count(*) FROM model_versions WHERE tenant_id = $1", t.id)
    await state.db.execute("UPDATE credit_runs SET state = 'running', finished_at = NULL WHERE id = $1", first["id"])
    await state.db.execute("UPDATE jobs SET state = 'running' WHERE id = $1", first["job_id"])
    ctx = JobContext(state=state, job_id=first["job_id"], name="credit.run", tenant_id=t.id, attempt=2)
    result = await run_credit(ctx, RunJob(run_id=first["id"]))
    assert result["model_version"] == first["model_version"]
    assert await state.db.fetchval("SELECT count(*) FROM model_versions WHERE tenant_id = $1", t.id) == before


async def test_a_runs_figures_are_the_registered_versions_scores_on_its_rows(client, worker, ready, state,
                                                                               monkeypatch):
    """The test split's figures come from the scores the core's parity check computed; they must
    be the registered version's on exactly those rows. The train side is a seeded sample past
    TRAIN_SCORED_ROWS (lowered here so 3,000 rows reach it)."""
    import numpy as np

    from flywheel.plugins.credit import evaluation as ev
    from flywheel.plugins.credit import runner
    from flywheel.server.plugin_api import score_table, tenant_store

    monkeypatch.setattr(runner, "TRAIN_SCORED_ROWS", 500)
    t, dataset, fsv = ready
    run = (await client.post("/v1/credit/runs", headers=t.headers,
                             json=spec_of(dataset, fsv, split_policy={"seed": 7}))).json()
    await worker()
    done = (await client.get(f"/v1/credit/runs/{run['id']}", headers=t.headers)).json()
    assert done["state"] == "succeeded", done
    m = done["metrics"]
    table = pq.read_table(io.BytesIO(await tenant_store(state, t.id).get(f"runs/{run['id']}/training.parquet")))
    _, p = await score_table(state, t.id, "credit.gbm", table, version=done["model_version"], monitor=False)
    y, part = table.column("bad").to_numpy(), table.column("split").to_numpy()
    train, test = np.nonzero(part == 0)[0], np.nonzero(part == 2)[0]
    sample = np.sort(np.random.default_rng(7).choice(train, 500, replace=False))
    assert m["rows"]["test"] == len(test) and m["rows"]["train"] == len(train) > 500
    assert m["rows"]["train_scored"] == 500
    report = await client.get(f"/v1/credit/runs/{run['id']}/report", headers=t.headers)
    assert "train rows scored" in report.text and ">500<" in report.text  # the report says it is a sample
    assert m["auc"] == pytest.approx(ev.ranking(y[test], p[test])["auc"], abs=1e-12)
    assert m["ks"] == pytest.approx(ev.ks_statistic(y[test], p[test]), abs=1e-12)
    assert m["train"]["auc"] == pytest.approx(ev.ranking(y[sample], p[sample])["auc"], abs=1e-12)
    assert m["score_psi"] == pytest.approx(ev.psi(p[sample], p[test]), abs=1e-9)
    assert m["feature_psi"]["utilization"] == pytest.approx(ev.psi(
        table.column("utilization").to_numpy(zero_copy_only=False).astype(float)[train],
        table.column("utilization").to_numpy(zero_copy_only=False).astype(float)[test]), abs=1e-12)


async def test_runs_list_and_keyset_pages(client, ready):
    t, *_ = ready
    page = (await client.get("/v1/credit/runs", headers=t.headers, params={"limit": 1})).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = (await client.get("/v1/credit/runs", headers=t.headers,
                             params={"limit": 200, "cursor": page["next_cursor"]})).json()
    assert page["items"][0]["id"] not in {r["id"] for r in rest["items"]} and rest["items"]
    r = await client.get("/v1/credit/runs", headers=t.headers, params={"cursor": "forged"})
    assert r.status_code == 422 and r.json()["field"] == "query.cursor"


async def test_the_demo_finishes_one_run_and_is_idempotent(state, make_tenant, client):
    t = await make_tenant()
    await seed_demo(state, t.id)
    await seed_demo(state, t.id)
    runs = (await client.get("/v1/credit/runs", headers=t.headers)).json()["items"]
    assert len(runs) == 1 and runs[0]["state"] == "succeeded", runs
    assert runs[0]["metrics"]["auc"] > 0.65
    sets = (await client.get("/v1/credit/feature-sets", headers=t.headers)).json()["items"]
    assert [s["name"] for s in sets] == ["demo-scorecard"]


async def test_the_upload_body_is_in_the_openapi_document(client, tenant):
    doc = (await client.get("/schema/openapi.json")).json()
    body = doc["paths"]["/v1/credit/datasets"]["post"]["requestBody"]
    assert body["required"] and {"text/csv", "application/gzip", "application/vnd.apache.parquet"} <= set(
        body["content"])
    assert all(m["schema"] == {"type": "string", "format": "binary"} for m in body["content"].values())
    assert "Parquet" in body["description"] and "gzip" in body["description"]
    # What it says is what the handler does: a gzipped CSV sent as application/gzip is read as CSV.
    data = gzip.compress(csv_bytes(generate(50, seed=3)))
    r = await client.post("/v1/credit/datasets", params={"target": "bad", "name": "openapi-doc"}, content=data,
                          headers={**tenant.headers, "Content-Type": "application/gzip"})
    assert r.status_code == 201 and r.json()["source_format"] == "csv.gz", r.text


async def test_a_file_that_is_not_a_table_is_refused(client, tenant):
    """Found by the OpenAPI fuzzer once the body was documented: a binary header row was a 500."""
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00:~\x9bU"
    r = await upload(client, tenant.headers, png, name="not-a-table")
    assert r.status_code == 422, r.text
    assert (r.json()["code"], r.json()["field"]) == ("unreadable_file", "body")
