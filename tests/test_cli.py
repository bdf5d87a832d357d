"""The `flywheel` command: settings errors, admin commands, and `up` end to end."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from flywheel.server.cli.main import cli
from flywheel.server.testing.live import free_port

FLYWHEEL = str(Path(sys.executable).parent / "flywheel")


@pytest.fixture
def env(flywheel_settings):
    return {"DATABASE_URL": flywheel_settings.database_url, "REDIS_URL": flywheel_settings.redis_url,
            "FLYWHEEL_STORE_URL": flywheel_settings.store_url, "FLYWHEEL_DATA_DIR": flywheel_settings.data_dir}


@pytest.mark.parametrize("var,value", [("FLYWHEEL_PORT", "eighty"), ("FLYWHEEL_PORT", "0"),
                                       ("DATABASE_URL", "mysql://x/y"), ("FLYWHEEL_STORE_URL", "ftp://x"),
                                       ("FLYWHEEL_TRACE_HOOKS", "perhaps")])
def test_bad_settings_exit_2_naming_the_variable(var, value):
    result = subprocess.run([FLYWHEEL, "plugins"], env={**os.environ, var: value}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    assert var in result.stderr and "Traceback" not in result.stderr


def test_unknown_plugin_in_allow_list_exits_2():
    result = subprocess.run([FLYWHEEL, "plugins"], env={**os.environ, "FLYWHEEL_PLUGINS": "example,ghost"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "ghost" in result.stderr


def test_plugins_lists_the_example(env):
    result = CliRunner().invoke(cli, ["plugins", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert "example" in {p["name"] for p in json.loads(result.output)}


def test_tenants_and_keys(env, state):
    runner = CliRunner()
    tenant = json.loads(runner.invoke(cli, ["tenants", "create", "cli-acme"], env=env).output)
    assert tenant["name"] == "cli-acme"
    again = runner.invoke(cli, ["tenants", "create", "cli-acme"], env=env)
    assert again.exit_code == 1 and "already exists" in again.output
    created = runner.invoke(cli, ["keys", "create", "--tenant", "cli-acme", "--scopes", "ingest,read"], env=env)
    assert created.exit_code == 0, created.output
    key = json.loads(created.output)
    assert key["secret"].startswith("fw_") and sorted(key["key"]["scopes"]) == ["ingest", "read"]
    listed = runner.invoke(cli, ["keys", "list", "--tenant", tenant["id"]], env=env)
    assert key["key"]["id"] in listed.output and key["secret"] not in listed.output
    bad = runner.invoke(cli, ["keys", "create", "--tenant", "cli-acme", "--scopes", "root"], env=env)
    assert bad.exit_code == 2 and "--scopes" in bad.output


def test_migrate_check(env, state):
    result = CliRunner().invoke(cli, ["migrate", "--check"], env=env)
    assert result.exit_code == 0 and "pending" not in result.output


async def test_migrate_on_an_empty_database_runs_no_plugin_startup_first(env, flywheel_services, tmp_path):
    """Plugins' on_startup may read their tables (rlaas reseals its policies' secrets when a
    key is set up anew): `flywheel migrate` must create them first, in a new deployment."""
    fresh = {**env, "DATABASE_URL": await flywheel_services.new_database(), "FLYWHEEL_DATA_DIR": str(tmp_path)}
    result = await asyncio.to_thread(
        subprocess.run, [FLYWHEEL, "migrate"], env={**os.environ, **fresh}, capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 0, result.stderr
    assert "applied" in result.stdout and "error" not in result.stderr.lower()
    check = await asyncio.to_thread(CliRunner().invoke, cli, ["migrate", "--check"], env=fresh)
    assert check.exit_code == 0 and "pending" not in check.output


def test_openapi_and_schemas(env, tmp_path):
    runner = CliRunner()
    out = tmp_path / "openapi.json"
    assert runner.invoke(cli, ["openapi", "-o", str(out)], env=env).exit_code == 0
    doc = json.loads(out.read_text())
    assert "/v1/example/notes" in doc["paths"] and doc["info"]["title"] == "Flywheel"
    result = runner.invoke(cli, ["schemas", "-o", str(tmp_path / "schemas")], env=env)
    assert result.exit_code == 0, result.output
    names = {p.stem for p in (tmp_path / "schemas").glob("*.json")}
    assert {"ErrorBody", "JobRead", "ApiKeyCreate", "event.example.note_viewed", "event.core.generic"} <= names
    assert {"credit.RunSpec", "credit.FeatureCreate"} <= names  # plugins' own objects (register_contracts)
    schema = json.loads((tmp_path / "schemas" / "event.example.note_viewed.json").read_text())
    assert "note_id" in json.dumps(schema)


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"flywheel up exited early: {proc.stderr.read()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("flywheel up did not become ready")


def _up(data_dir: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "FLYWHEEL_STORE_URL")}
    env.update(FLYWHEEL_DATA_DIR=str(data_dir), FLYWHEEL_PORT=str(port))
    return subprocess.Popen([FLYWHEEL, "up", "--demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _stop(proc: subprocess.Popen, sig: int = signal.SIGINT) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_up_with_everything_embedded(open_tmp):
    """A fresh machine: no DATABASE_URL, REDIS_URL or store; demo data; Ctrl-C; second start reuses it;
    SIGTERM; nothing left running."""
    data_dir = open_tmp / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _up(data_dir, port)
    try:
        _wait_ready(url, proc)
        creds = json.loads((data_dir / "demo-credentials.json").read_text())
        assert oct((data_dir / "demo-credentials.json").stat().st_mode & 0o777) == "0o600"
        # Embedded, secrets need no setup: the key that seals them was made beside the data, private.
        assert oct((data_dir / "secret.key").stat().st_mode & 0o777) == "0o600"
        headers = {"Authorization": f"Bearer {creds['api_key']}"}
        plugins = httpx.get(f"{url}/v1/plugins", headers=headers).json()
        assert "example" in {p["name"] for p in plugins}
        notes = httpx.get(f"{url}/v1/example/notes", headers=headers).json()
        assert [n["title"] for n in notes] == ["Welcome to Flywheel"]
        # The worker runs in the same process: a queued job completes.
        job = httpx.post(f"{url}/v1/jobs", json={"name": "example.count_notes"}, headers=headers).json()
        for _ in range(100):
            state = httpx.get(f"{url}/v1/jobs/{job['id']}", headers=headers).json()["state"]
            if state in ("succeeded", "failed"):
                break
            time.sleep(0.1)
        assert state == "succeeded"
        assert httpx.get(f"{url}/readyz").json()["checks"] == {"database": "ok", "redis": "ok", "store": "ok",
                                                                 "spool": "ok"}
    finally:
        code = _stop(proc)
    assert code == 0, proc.stderr.read()

    proc = _up(data_dir, port)
    try:
        _wait_ready(url, proc)
        again = json.loads((data_dir / "demo-credentials.json").read_text())
        assert again["tenant_id"] == creds["tenant_id"] and again["api_key"] == creds["api_key"]
        notes = httpx.get(f"{url}/v1/example/notes", headers=headers).json()
        assert len(notes) == 1, "the demo must not duplicate its data"
        assert httpx.get(f"{url}/v1/jobs/{job['id']}", headers=headers).json()["state"] == "succeeded"
    finally:
        assert _stop(proc, signal.SIGTERM) == 0, "SIGTERM (docker stop, systemd) stops it as cleanly as Ctrl-C"
    leftovers = subprocess.run(["pgrep", "-f", str(data_dir)], capture_output=True, text=True).stdout.strip()
    assert not leftovers, f"processes left running: {leftovers}"
