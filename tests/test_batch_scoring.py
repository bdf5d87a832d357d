"""Batch scoring fanned out over Parquet partitions (`POST /v1/models/{family}/batch_score`).

The example family is trained once; a table written as several Parquet files is scored
by `core.score_partitions` and its per-partition jobs on a burst worker, and the scores
are compared with `score_table` on the whole table.
"""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from flywheel.server.cli.main import cli
from flywheel.server.models.runtime import score_table
from flywheel_example.model import make_training_table

FAMILY = "example.note_reopen"
PREFIX = "tables/notes/"
PARTITIONS, ROWS = 5, 2500


@pytest.fixture(scope="module")
async def scored_tenant(client, worker, make_tenant, state):
    """A tenant with an active version and a table of PARTITIONS Parquet files under PREFIX."""
    t = await make_tenant()
    r = await client.post(f"/v1/models/{FAMILY}/train", headers=t.headers,
                          json={"num_boost_round": 40, "auto_activate": True, "options": {"rows": 2000}})
    assert r.status_code == 202, r.text
    await worker()
    table = make_training_table(ROWS, seed=7)
    table = table.append_column("note_id", pa.array([f"n{i}" for i in range(ROWS)]))
    store = state.tenant_store(t.id)
    for i, rows in enumerate(np.array_split(np.arange(ROWS), PARTITIONS)):
        sink = io.BytesIO()
        pq.write_table(table.take(pa.array(rows)), sink)
        await store.put(f"{PREFIX}day={i}/part.parquet", sink.getvalue())
    return t, table


async def run(client, worker, headers, **body) -> dict:
    r = await client.post(f"/v1/models/{FAMILY}/batch_score", json={"input_prefix": PREFIX, **body}, headers=headers)
    assert r.status_code == 202, r.text
    await worker()
    return (await client.get(f"/v1/jobs/{r.json()['id']}", headers=headers)).json()


async def outputs(state, tenant_id, prefix: str) -> dict[str, tuple]:
    return {i.key: (i.size, i.etag) async for i in state.tenant_store(tenant_id).list(prefix)}


async def test_scores_match_score_table_and_a_rerun_scores_nothing(client, worker, state, scored_tenant):
    t, table = scored_tenant
    job = await run(client, worker, t.headers, keep_columns=["note_id"])
    assert job["state"] == "succeeded", job
    result = job["result"]
    assert result["partitions"] == PARTITIONS and result["already_scored"] == 0
    # Every partition scored exactly once, by the parent or by its partition jobs.
    assert result["scored_here"] + result["scored_by_partition_jobs"] == PARTITIONS
    assert job["progress"]["current"] == job["progress"]["total"] == PARTITIONS
    out_prefix = result["output_prefix"]
    assert out_prefix == f"batch_scores/{FAMILY}/v{result['version']}/{PREFIX}"
    written = await outputs(state, t.id, out_prefix)
    assert sorted(written) == [f"{out_prefix}day={i}/part.parquet" for i in range(PARTITIONS)]

    store = state.tenant_store(t.id)
    parts = [pq.read_table(io.BytesIO(await store.get(key))) for key in sorted(written)]
    scored = pa.concat_tables(parts)
    assert scored.column_names == ["note_id", "score", "margin"]
    assert scored.column("note_id").to_pylist() == table.column("note_id").to_pylist()  # row for row
    version, margins = await score_table(state, t.id, FAMILY, table, margin=True)
    _, scores = await score_table(state, t.id, FAMILY, table)
    assert version == result["version"]
    # The same ONNX sessions: the same numbers, not merely close ones.
    np.testing.assert_array_equal(scored.column("margin").to_numpy(), margins)
    np.testing.assert_allclose(scored.column("score").to_numpy(), scores, rtol=1e-15, atol=0)

    again = await run(client, worker, t.headers, keep_columns=["note_id"])
    assert again["state"] == "succeeded", again
    assert again["result"]["already_scored"] == PARTITIONS
    assert again["result"]["scored_here"] == again["result"]["scored_by_partition_jobs"] == 0
    assert await outputs(state, t.id, out_prefix) == written  # no duplicate, none rewritten


async def test_a_partition_job_run_twice_writes_once(client, worker, state, scored_tenant):
    t, _ = scored_tenant
    body = {"name": "core.score_partition", "payload": {
        "family": FAMILY, "version": 1, "input_key": f"{PREFIX}day=0/part.parquet",
        "output_key": "batch_scores/twice/part.parquet"}}
    first = (await client.post("/v1/jobs", json=body, headers=t.headers)).json()
    second = (await client.post("/v1/jobs", json=body, headers=t.headers)).json()
    await worker()
    outcomes = sorted([(await client.get(f"/v1/jobs/{j['id']}", headers=t.headers)).json()["result"]["outcome"]
                       for j in (first, second)])
    # Run together, one claims and scores; the other finds the claim or the output.
    assert outcomes[-1] == "scored" and outcomes[0] in ("busy", "done"), outcomes
    assert list(await outputs(state, t.id, "batch_scores/twice/")) == ["batch_scores/twice/part.parquet"]
    # Outputs go under batch_scores/ only: a partition job cannot write among the tenant's models.
    body["payload"]["output_key"] = f"models/{FAMILY}/1/model.onnx"
    r = await client.post("/v1/jobs", json=body, headers=t.headers)
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=t.headers)).json()
    assert job["state"] == "failed" and "batch_scores/" in job["error"], job


async def test_another_tenant_cannot_read_this_tenants_input(client, worker, make_tenant, state, scored_tenant):
    owner, _ = scored_tenant
    other = await make_tenant()
    r = await client.post(f"/v1/models/{FAMILY}/batch_score", json={"input_prefix": PREFIX}, headers=other.headers)
    assert r.status_code == 404 and r.json()["field"] == "$.input_prefix", r.text
    # Queued as a job directly, the same prefix is the other tenant's (empty) folder.
    r = await client.post("/v1/jobs", json={"name": "core.score_partitions", "payload": {
        "family": FAMILY, "input_prefix": PREFIX}}, headers=other.headers)
    assert r.status_code == 202, r.text
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=other.headers)).json()
    assert job["state"] == "failed" and "no Parquet files" in job["error"], job
    assert await outputs(state, other.id, "") == {}
    # And the owner's job is not visible to the other tenant.
    assert (await client.get(f"/v1/jobs/{r.json()['id']}", headers=owner.headers)).status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"input_prefix": "../x/"}, "$.input_prefix"),
    ({"input_prefix": "a//b"}, "$.input_prefix"),
    ({"input_prefix": PREFIX, "output_prefix": "/abs"}, "$.output_prefix"),
    ({"input_prefix": PREFIX, "keep_columns": ["score"]}, "$.keep_columns[0]"),
    ({"input_prefix": PREFIX, "version": 999}, None),
])
async def test_bad_requests_name_the_field(client, scored_tenant, body, field):
    t, _ = scored_tenant
    r = await client.post(f"/v1/models/{FAMILY}/batch_score", json=body, headers=t.headers)
    assert r.status_code in (404, 422), r.text
    if field is not None:
        assert r.json()["field"] == field, r.json()


async def test_the_cli_queues_a_batch_score(client, worker, state, flywheel_settings, scored_tenant):
    t, _ = scored_tenant
    env = {"DATABASE_URL": flywheel_settings.database_url, "REDIS_URL": flywheel_settings.redis_url,
           "FLYWHEEL_STORE_URL": flywheel_settings.store_url, "FLYWHEEL_DATA_DIR": flywheel_settings.data_dir,
           "FLYWHEEL_QUEUE": flywheel_settings.queue_name}
    args = ["models", "batch-score", FAMILY, PREFIX, "--tenant", t.name, "--output-prefix", "cli-scores/",
            "--keep", "note_id", "--json"]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert result.exit_code == 0, result.output
    queued = json.loads(result.output)
    await worker()
    job = (await client.get(f"/v1/jobs/{queued['id']}", headers=t.headers)).json()
    assert job["state"] == "succeeded" and job["result"]["output_prefix"] == "batch_scores/cli-scores/", job
    assert len(await outputs(state, t.id, "batch_scores/cli-scores/")) == PARTITIONS

    bad = await asyncio.to_thread(CliRunner().invoke, cli, [*args[:3], "nothing/here/", "--tenant", t.name], env=env)
    assert bad.exit_code == 1 and "no Parquet files under 'nothing/here/'" in bad.output
