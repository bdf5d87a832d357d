"""The example plugin, tested the way a third-party author tests theirs: with
the fixtures Flywheel ships (app, client, database, worker, tenant), against
real Postgres and Redis, with the plugin pip-installed and found through its
entry point."""

from __future__ import annotations

from click.testing import CliRunner

from flywheel.server.plugin_api import job_status, run_here
from flywheel.server.testing import cli


async def test_plugin_is_loaded_from_its_entry_point(client, tenant):
    plugins = {p["name"]: p for p in (await client.get("/v1/plugins", headers=tenant.headers)).json()}
    assert plugins["example"]["version"] == "0.1.0"
    assert {"register_routes", "register_migrations", "register_jobs", "register_cron_jobs",
            "register_cli_commands", "register_event_types", "on_demo"} <= set(plugins["example"]["hooks"])


async def test_migrations_ran_in_their_own_namespace(database):
    rows = await database.fetch("SELECT version, name FROM flywheel_migrations WHERE namespace = 'example'")
    assert [(r["version"], r["name"]) for r in rows] == [(1, "notes")]
    assert await database.fetchval("SELECT to_regclass('example_notes') IS NOT NULL")


async def test_notes_round_trip(client, tenant):
    r = await client.post("/v1/example/notes", json={"title": "hello", "body": "world"}, headers=tenant.headers)
    assert r.status_code == 201, r.text
    note = r.json()
    got = await client.get(f"/v1/example/notes/{note['id']}", headers=tenant.headers)
    assert got.json() == note
    listed = (await client.get("/v1/example/notes", headers=tenant.headers)).json()
    assert [n["id"] for n in listed] == [note["id"]]
    assert (await client.delete(f"/v1/example/notes/{note['id']}", headers=tenant.headers)).status_code == 204
    missing = await client.get(f"/v1/example/notes/{note['id']}", headers=tenant.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_bad_note_is_rejected_with_the_field(client, tenant):
    r = await client.post("/v1/example/notes", json={"title": ""}, headers=tenant.headers)
    assert r.status_code in (400, 422) and r.json()["field"] == "$.title"


async def test_job_counts_notes_and_is_idempotent(client, tenant, worker):
    for title in ("a1", "a2", "b1"):
        await client.post("/v1/example/notes", json={"title": title}, headers=tenant.headers)
    for _ in range(2):  # running twice leaves the same state
        r = await client.post("/v1/jobs", json={"name": "example.count_notes", "payload": {"note_prefix": "a"}},
                              headers=tenant.headers)
        await worker()
        job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=tenant.headers)).json()
        assert job["state"] == "succeeded" and job["result"] == {"tenants": 1, "notes": 2}
    stats = (await client.get("/v1/example/stats", headers=tenant.headers)).json()
    assert stats["notes"] == 2 and stats["counted_at"]


async def test_cron_job_counts_every_tenant(state, make_tenant, client):
    cron_plugin, cron = state.contributions.cron_jobs["example.count_notes_hourly"]
    assert cron_plugin == "example" and cron.minute == 5
    t = await make_tenant()
    await client.post("/v1/example/notes", json={"title": "x"}, headers=t.headers)
    job_id, task = await run_here(state, cron.job, cron.payload, tenant_id=None)  # as a cron tick runs it
    await task
    status = await job_status(state, job_id, tenant_id=None)
    assert status.state.value == "succeeded" and status.result["tenants"] >= 1
    assert await state.db.fetchval("SELECT notes FROM example_stats WHERE tenant_id = $1", t.id) == 1


def test_event_type_is_registered(state):
    plugin, cls = state.contributions.event_types["example.note_viewed"]
    assert plugin == "example" and "note_id" in cls.__struct_fields__


def test_cli_command(flywheel_settings, state):
    env = {"DATABASE_URL": flywheel_settings.database_url, "REDIS_URL": flywheel_settings.redis_url,
           "FLYWHEEL_STORE_URL": flywheel_settings.store_url, "FLYWHEEL_DATA_DIR": flywheel_settings.data_dir}
    runner = CliRunner()
    created = runner.invoke(cli, ["tenants", "create", "cli-example-tenant"], env=env)
    assert created.exit_code == 0, created.output
    result = runner.invoke(cli, ["example", "count", "--tenant", "cli-example-tenant"], env=env)
    assert result.exit_code == 0, result.output
    assert "cli-example-tenant: 0 notes" in result.output
    unknown = runner.invoke(cli, ["example", "count", "--tenant", "nobody-here"], env=env)
    assert unknown.exit_code != 0
