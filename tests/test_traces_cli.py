"""`flywheel traces submit-example`, `list` and `show`: the whole path from the command line."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from flywheel.server.cli.main import cli
from flywheel.server.sandbox.bubblewrap import bwrap_path


@pytest.fixture
def cli_env(flywheel_settings, state):
    return {"DATABASE_URL": flywheel_settings.database_url, "REDIS_URL": flywheel_settings.redis_url,
            "FLYWHEEL_STORE_URL": flywheel_settings.store_url, "FLYWHEEL_DATA_DIR": flywheel_settings.data_dir}


def flywheel(env, *args, code=0) -> str:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == code, result.output
    return result.output


@pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")
def test_submit_example_runs_qa_and_prints_the_scores(cli_env):
    tenant = json.loads(flywheel(cli_env, "tenants", "create", f"cli-{uuid.uuid4().hex[:8]}"))["name"]
    out = flywheel(cli_env, "traces", "submit-example", "--tenant", tenant)
    assert "9 events in 3 chunks, finalized; chain ok (9 links)" in out
    assert "QA (bubblewrap): passed: 2 passed, 0 failed, 0 errors" in out
    assert "score by deterministic-1 (traces-rubric-1):" in out and "root_cause" in out

    listed = json.loads(flywheel(cli_env, "traces", "list", "--tenant", tenant, "--json"))["items"]
    assert len(listed) == 1 and listed[0]["status"] == "judged"
    trace_id = listed[0]["id"]
    shown = json.loads(flywheel(cli_env, "traces", "show", trace_id, "--tenant", tenant, "--json"))
    assert shown["qa"]["status"] == "passed" and shown["scores"][0]["overall"] >= 4
    assert "example/stats" in flywheel(cli_env, "traces", "show", trace_id, "--tenant", tenant)
    missing = flywheel(cli_env, "traces", "show", str(uuid.uuid4()), "--tenant", tenant, code=1)
    assert "no trace" in missing
