"""Operator commands: `flywheel jobs`, `flywheel models`, `flywheel keys revoke`; tables and `--json`.

The commands run through click's runner against the test database; the
model versions they list were trained through the API and the worker.
"""

from __future__ import annotations

import json

import pytest
import pytest_asyncio
from click.testing import CliRunner

from flywheel.server.cli.main import cli
from tests.test_models import FAMILY, train


@pytest.fixture
def env(flywheel_settings):
    return {"DATABASE_URL": flywheel_settings.database_url, "REDIS_URL": flywheel_settings.redis_url,
            "FLYWHEEL_STORE_URL": flywheel_settings.store_url, "FLYWHEEL_DATA_DIR": flywheel_settings.data_dir}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def two_versions(client, worker, make_tenant):
    """A tenant with versions 1 (active) and 2 of the example family, and its training jobs."""
    t = await make_tenant()
    first = await train(client, worker, t.headers, auto_activate=True, options={"rows": 2000})
    second = await train(client, worker, t.headers, options={"rows": 2000, "seed": 7})
    assert first["state"] == second["state"] == "succeeded", (first, second)
    return t, first, second


def invoke(env, *args: str):
    result = CliRunner().invoke(cli, list(args), env=env)
    return result


def test_jobs_list_show_as_table_and_json(env, two_versions):
    t, first, _ = two_versions
    table = invoke(env, "jobs", "list", "--tenant", t.name)
    assert table.exit_code == 0, table.output
    assert "core.train_model" in table.output and "succeeded" in table.output and first["id"] in table.output
    listed = json.loads(invoke(env, "jobs", "list", "--tenant", t.name, "--json").stdout)
    assert {j["id"] for j in listed} >= {first["id"]} and all(j["name"] == "core.train_model" for j in listed)
    assert json.loads(invoke(env, "jobs", "list", "--tenant", t.name, "--state", "failed", "--json").stdout) == []
    shown = json.loads(invoke(env, "jobs", "show", first["id"], "--json").stdout)
    assert shown["result"]["version"] == 1 and shown["state"] == "succeeded"
    assert f"id: {first['id']}" in invoke(env, "jobs", "show", first["id"]).output


def test_jobs_cancel_and_its_errors(env, two_versions, flywheel_settings):
    import asyncio
    import uuid

    import asyncpg

    t, first, _ = two_versions
    finished = invoke(env, "jobs", "cancel", first["id"])
    assert finished.exit_code == 1 and "already succeeded" in finished.output
    missing = invoke(env, "jobs", "cancel", "00000000-0000-0000-0000-000000000001")
    assert missing.exit_code == 1 and "no job" in missing.output

    queued = uuid.uuid4()

    async def insert() -> None:  # a queued row no worker has picked up
        conn = await asyncpg.connect(flywheel_settings.database_url)
        await conn.execute("INSERT INTO jobs (id, tenant_id, name) VALUES ($1, $2, 'core.train_model')", queued, t.id)
        await conn.close()

    asyncio.run(insert())
    cancelled = json.loads(invoke(env, "jobs", "cancel", str(queued), "--json").stdout)
    assert cancelled["state"] == "cancelled" and cancelled["started_at"] is None
    waited = invoke(env, "jobs", "wait", str(queued), "--json")
    assert waited.exit_code == 1 and json.loads(waited.stdout)["state"] == "cancelled"  # ended, not succeeded


def test_jobs_wait_for_a_finished_job(env, two_versions):
    _, first, _ = two_versions
    waited = invoke(env, "jobs", "wait", first["id"], "--json")
    assert waited.exit_code == 0, waited.output
    assert json.loads(waited.stdout)["result"]["version"] == 1


def test_models_list_show_activate(env, two_versions):
    t, _, _ = two_versions
    listed = json.loads(invoke(env, "models", "list", "--tenant", t.name, "--json").stdout)
    assert [(v["family"], v["version"], v["active"]) for v in listed] == [(FAMILY, 2, False), (FAMILY, 1, True)]
    table = invoke(env, "models", "list", "--tenant", t.name).output
    assert FAMILY in table and "roc_auc" in table and "yes" in table
    shown = json.loads(invoke(env, "models", "show", FAMILY, "2", "--tenant", t.name, "--json").stdout)
    assert shown["state"] == "ready" and shown["metrics"]["roc_auc"] > 0.5
    activated = invoke(env, "models", "activate", FAMILY, "2", "--tenant", t.name, "--json")
    assert activated.exit_code == 0, activated.output
    listed = json.loads(invoke(env, "models", "list", "--tenant", t.name, "--json").stdout)
    assert [v["active"] for v in listed] == [True, False]
    unknown = invoke(env, "models", "activate", "no.such", "1", "--tenant", t.name)
    assert unknown.exit_code == 1 and "no model family named 'no.such'" in unknown.output
    none = invoke(env, "models", "show", FAMILY, "99", "--tenant", t.name)
    assert none.exit_code == 1


def test_keys_revoke_and_list_as_table(env, two_versions):
    t, _, _ = two_versions
    created = json.loads(invoke(env, "keys", "create", "--tenant", t.name, "--scopes", "read").output)
    key_id = created["key"]["id"]
    table = invoke(env, "keys", "list", "--tenant", t.name).output
    assert key_id in table and created["secret"] not in table
    revoked = json.loads(invoke(env, "keys", "revoke", key_id, "--tenant", t.name, "--json").stdout)
    assert revoked["id"] == key_id and revoked["revoked_at"]
    keys = json.loads(invoke(env, "keys", "list", "--tenant", t.name, "--json").stdout)
    assert next(k for k in keys if k["id"] == key_id)["revoked_at"] == revoked["revoked_at"]
    other = invoke(env, "keys", "revoke", key_id, "--tenant", "nobody-here")
    assert other.exit_code == 1
