"""Spans for requests, queries, jobs and hook calls; structured logs."""

from __future__ import annotations

import json

import pytest

from flywheel.server.app import build_state
from flywheel.server.settings import load_settings


async def test_request_and_query_spans(client, tenant, spans):
    r = await client.get("/v1/tenant", headers=tenant.headers)
    assert r.status_code == 200
    finished = spans.get_finished_spans()
    requests = [s for s in finished if s.kind.name == "SERVER" and "/v1/tenant" in s.name]
    assert requests, [s.name for s in finished]
    queries = [s for s in finished if s.name == "db.query" and "FROM tenants" in s.attributes["db.statement"]]
    assert queries, "the tenant lookup must be traced"
    assert queries[0].end_time >= queries[0].start_time


async def test_job_spans(client, tenant, worker, spans):
    r = await client.post("/v1/jobs", json={"name": "example.count_notes"}, headers=tenant.headers)
    await worker()
    jobs = [s for s in spans.get_finished_spans() if s.name == "job example.count_notes"]
    # The burst worker may also run jobs other tests queued; ours must be among them.
    assert r.json()["id"] in {s.attributes["flywheel.job_id"] for s in jobs}


def test_hook_spans_name_the_plugin(spans):
    build_state(load_settings({}), load_entrypoints=True)
    hooks = [s for s in spans.get_finished_spans() if s.name == "hook register_routes"]
    assert any(s.attributes["flywheel.plugin"] == "example" for s in hooks)


def test_json_logs_carry_fields_and_never_the_password(capsys):
    import structlog

    from flywheel.server.telemetry import configure_logging

    settings = load_settings({"FLYWHEEL_LOG_JSON": "1", "DATABASE_URL": "postgresql://u:hunter2@db/x"})
    configure_logging(settings)
    structlog.get_logger("t").info("settings loaded", settings=settings.redacted())
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "settings loaded" and record["level"] == "info" and "timestamp" in record
    assert "hunter2" not in line and "u:***@db" in line
    structlog.reset_defaults()


@pytest.mark.parametrize("as_json", ["0", "1"])
def test_logged_tracebacks_carry_no_local_values(as_json, capsys):
    """A frame's locals may hold a key or customer data: tracebacks in logs show code, not values."""
    import structlog

    from flywheel.server.settings import load_settings
    from flywheel.server.telemetry import configure_logging

    before = structlog.get_config()
    configure_logging(load_settings({"FLYWHEEL_LOG_JSON": as_json}))
    try:
        def fail(secret_key: str) -> None:
            raise ValueError("boom")

        try:
            fail("fw_" + "local_secret_value")  # built at run time: the source line must not give it away
        except ValueError:
            structlog.get_logger("t").exception("failed")
        err = capsys.readouterr().err
        assert "boom" in err and "fail" in err
        assert "fw_local_secret_value" not in err
    finally:
        structlog.configure(**before)
