"""`flywheel credit ...` against the test services: upload with a progress bar, a YAML run spec, lists."""

from __future__ import annotations

import asyncio
import io
import json

import pyarrow.csv as pcsv
import yaml
from click.testing import CliRunner

from flywheel.plugins.credit.cli import UPLOAD_CHUNK
from flywheel.plugins.credit.demo import DEMO_FEATURES, generate
from flywheel.server.cli.main import cli


def env_of(settings) -> dict:
    return {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
            "FLYWHEEL_STORE_URL": settings.store_url, "FLYWHEEL_DATA_DIR": settings.data_dir}


async def invoke(args: list[str], settings):
    return await asyncio.to_thread(CliRunner().invoke, cli, ["credit", *args], env=env_of(settings))


async def test_upload_run_and_list_from_the_cli(client, make_tenant, flywheel_settings, open_tmp):
    t = await make_tenant()
    path = open_tmp / "applicants.csv"
    sink = io.BytesIO()
    pcsv.write_csv(generate(20_000, seed=6), sink)
    path.write_bytes(sink.getvalue())
    assert path.stat().st_size > UPLOAD_CHUNK  # read and sent in several chunks

    up = await invoke(["datasets", "upload", str(path), "--name", "cli-set", "--target", "bad", "--tenant", t.name],
                      flywheel_settings)
    assert up.exit_code == 0, up.output
    assert "dataset 'cli-set' version 1" in up.output and "20,000 rows" in up.output
    listed = await invoke(["datasets", "list", "--tenant", t.name, "--json"], flywheel_settings)
    [dataset] = json.loads(listed.output)
    version_id = dataset["versions"][0]["id"]

    for f in DEMO_FEATURES:
        r = await client.post("/v1/credit/features", headers=t.headers, json={
            "name": f.name, "source_columns": f.source_columns, "transform": f.transform, "params": f.params,
            "monotone": f.monotone, "description": f.description})
        assert r.status_code == 201, r.text
    fs = await client.post("/v1/credit/feature-sets", headers=t.headers,
                           json={"name": "cli-fs", "features": [f.name for f in DEMO_FEATURES]})
    spec = {"dataset_version_id": version_id, "feature_set_version_id": fs.json()["versions"][0]["id"],
            "model_family": "gbm", "model_params": {"num_leaves": 15, "num_boost_round": 200},
            "split_policy": {"kind": "random_stratified", "test_share": 0.25, "seed": 1},
            "evaluation_policy": {"auc_min": 0.6, "psi_max": 0.25}, "artifact_policy": {"report": True}}
    spec_file = open_tmp / "runspec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    ran = await invoke(["run", "--spec", str(spec_file), "--tenant", t.name], flywheel_settings)
    assert ran.exit_code == 0, ran.output
    assert "PASSED the evaluation policy" in ran.output and "AUC 0." in ran.output
    assert "report: reports/" in ran.output and "/report.html" in ran.output

    runs = json.loads((await invoke(["runs", "--tenant", t.name, "--json"], flywheel_settings)).output)
    assert len(runs) == 1 and runs[0]["state"] == "succeeded" and runs[0]["passed"] is True
    sets = json.loads((await invoke(["feature-sets", "--tenant", t.name, "--json"], flywheel_settings)).output)
    assert [s["name"] for s in sets] == ["cli-fs"]

    spec_file.write_text(yaml.safe_dump({**spec, "model_params": {"num_leaves": 1}}))
    bad = await invoke(["run", "--spec", str(spec_file), "--tenant", t.name], flywheel_settings)
    assert bad.exit_code == 1 and "$.model_params.num_leaves" in bad.output
