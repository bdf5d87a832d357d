"""A command that cannot start says why in one line and exits 2, never with a traceback.

Each case runs the real `flywheel` executable in a subprocess against real
addresses: a port nothing listens on, a database that does not exist, a
host name that does not resolve, a port another socket holds.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

FLYWHEEL = str(Path(sys.executable).parent / "flywheel")


def run(args: list[str], tmp_path: Path, timeout: float = 90, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FLYWHEEL_", "DATABASE_URL", "REDIS_URL"))}
    return subprocess.run([FLYWHEEL, *args], env={**base, "FLYWHEEL_DATA_DIR": str(tmp_path / "data"), **env},
                          capture_output=True, text=True, timeout=timeout)


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def busy_port():
    """A port a listening socket holds for the test."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.fixture
def services(flywheel_settings) -> dict[str, str]:
    return {"DATABASE_URL": flywheel_settings.database_url, "REDIS_URL": flywheel_settings.redis_url}


@pytest.mark.parametrize("command", [["migrate"], ["worker", "--burst"], ["serve"], ["tenants", "list"]])
def test_postgres_refusing_connections(command, tmp_path, services):
    line = one_line(run(command, tmp_path, **{**services, "DATABASE_URL": "postgresql://127.0.0.1:1/flywheel"}))
    assert line == "error: cannot connect to Postgres at 127.0.0.1:1/flywheel (DATABASE_URL): " \
                   "connection refused (is it running?)"


def test_a_database_that_does_not_exist(tmp_path, services):
    url = services["DATABASE_URL"].rsplit("/", 1)[0] + "/no_such_database_here"
    line = one_line(run(["migrate"], tmp_path, **{**services, "DATABASE_URL": url}))
    assert "(DATABASE_URL)" in line and 'database "no_such_database_here" does not exist' in line


def test_an_unknown_database_host(tmp_path, services):
    line = one_line(run(["migrate"], tmp_path, **{**services, "DATABASE_URL": "postgresql://nohost.invalid/x"}))
    assert line.startswith("error: cannot connect to Postgres at nohost.invalid/x (DATABASE_URL): unknown host")


@pytest.mark.parametrize("command", [["migrate"], ["serve"]])
def test_redis_refusing_connections(command, tmp_path, services):
    line = one_line(run(command, tmp_path, **{**services, "REDIS_URL": "redis://127.0.0.1:1"}))
    assert line == "error: cannot connect to Redis at 127.0.0.1:1 (REDIS_URL): connection refused (is it running?)"


@pytest.mark.parametrize("command", [["serve"], ["up"]])
def test_a_port_already_in_use(command, tmp_path, services, busy_port):
    """`up` is told before it starts embedded services, the worker or the demo."""
    env = services if command == ["serve"] else {}
    line = one_line(run(command, tmp_path, **env, FLYWHEEL_PORT=str(busy_port)))
    assert line == f"error: cannot listen on 127.0.0.1:{busy_port} (FLYWHEEL_PORT / --port): address already in use"
    assert not (tmp_path / "data" / "services").exists()  # nothing embedded was started


def test_a_bad_setting_names_it_and_help_still_works(tmp_path):
    line = one_line(run(["tenants", "list"], tmp_path, FLYWHEEL_PORT="abc"))
    assert line == "error: FLYWHEEL_PORT: expected a whole number, got 'abc'"
    helped = run(["--help"], tmp_path, FLYWHEEL_PORT="abc")
    assert helped.returncode == 0, helped.stderr
    assert "tenants" in helped.stdout and "drives" in helped.stdout  # plugins' commands are listed too


@pytest.mark.asyncio(loop_scope="session")
async def test_a_plugin_that_refuses_to_start_says_why_in_one_line(client, make_tenant, tmp_path, services):
    """rlaas refuses to start when policies hold sealed credentials and no key is configured."""
    import asyncio

    tenant = await make_tenant()
    r = await client.post("/v1/rlaas/policies", headers=tenant.headers, json={
        "route": "chat", "name": "sealed", "status": "active",
        "upstream": {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": "sk-sealed-here"}})
    assert r.status_code == 201, r.text
    result = await asyncio.to_thread(run, ["worker", "--burst"], tmp_path, **services)  # a data dir with no key
    line = one_line(result)
    assert "FLYWHEEL_SECRET_KEY is not set" in line and "plugin 'rlaas' failed in hook on_startup" in line
