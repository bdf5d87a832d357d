"""Embedded Postgres and Redis: what `flywheel up` uses on a bare machine."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
import redis.asyncio as aioredis

from flywheel.server.embedded import EmbeddedError, EmbeddedRedis, EmbeddedServices, outside, runas
from flywheel.server.embedded._proc import Owner, start_time
from flywheel.server.embedded.postgres import EmbeddedPostgres
from flywheel.server.embedded.runas import NOBODY
from flywheel.server.settings import SettingsError
from flywheel.server.testing.live import free_port
from tests.up_process import start_up

FLYWHEEL = str(Path(sys.executable).parent / "flywheel")


async def _roundtrip(services: EmbeddedServices, value: str | None = None) -> str | None:
    conn = await asyncpg.connect(services.postgres.dsn)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS kept (v text)")
        if value is not None:
            await conn.execute("INSERT INTO kept VALUES ($1)", value)
        stored = await conn.fetchval("SELECT string_agg(v, ',') FROM kept")
    finally:
        await conn.close()
    r = aioredis.from_url(services.redis.url)
    try:
        if value is not None:
            await r.set("kept", value)
        assert stored == (await r.get("kept")).decode()
    finally:
        await r.aclose()
    return stored


def _uid_in_its_namespace(pid: int) -> int:
    """The uid `pid` runs as, as it sees itself (in a user namespace of its own, say)."""
    status = Path(f"/proc/{pid}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])  # as we see it
    for line in Path(f"/proc/{pid}/uid_map").read_text().splitlines():
        inside, outside, count = map(int, line.split())
        if outside <= uid < outside + count:
            return inside + uid - outside
    raise AssertionError(f"uid {uid} of {pid} is not mapped")


def _assert_postgres_is_not_root(pgdata: Path) -> None:
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    assert _uid_in_its_namespace(pid) != 0, "Postgres must not run as root"
    cap_eff = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("CapEff:"))
    assert int(cap_eff.split()[1], 16) == 0, "and holds no capabilities"


async def test_services_start_keep_data_and_stop(open_tmp):
    root = open_tmp / "services"
    services = EmbeddedServices(root)
    await asyncio.to_thread(services.start)
    try:
        assert await _roundtrip(services, "one") == "one"
        _assert_postgres_is_not_root(root / "postgres" / "data")
    finally:
        await asyncio.to_thread(services.stop)
    assert not (root / "postgres" / "data" / "postmaster.pid").exists(), "Postgres stopped cleanly"

    again = EmbeddedServices(root)
    await asyncio.to_thread(again.start)
    try:
        assert await _roundtrip(again) == "one", "a second start reuses the data (Postgres and the Redis AOF)"
    finally:
        await asyncio.to_thread(again.stop)
    # Everything stays in the data folder: nothing was put beside it.
    assert sorted(p.name for p in open_tmp.iterdir()) == ["services"]


async def test_a_killed_owner_leaves_nothing_unusable(open_tmp):
    """The owning process died without stopping the services: the next start recovers."""
    root = open_tmp / "services"
    first = EmbeddedServices(root)
    await asyncio.to_thread(first.start)
    await _roundtrip(first, "before")
    first.redis.proc.kill()  # Redis dies with its owner; Postgres (its own session) keeps running
    first.redis.proc.wait()
    second = EmbeddedServices(root)
    await asyncio.to_thread(second.start)
    try:
        # Its owner (this process) is alive, so the running Postgres is shared, not adopted.
        assert not second.postgres.started_here
        assert await _roundtrip(second) == "before"
    finally:
        await asyncio.to_thread(second.stop)
        assert (root / "postgres" / "data" / "postmaster.pid").exists(), "a shared server is left running"
        await asyncio.to_thread(first.postgres.stop)
    assert not (root / "postgres" / "data" / "postmaster.pid").exists()


async def test_a_server_left_by_a_dead_process_is_adopted(open_tmp):
    root = open_tmp / "services"
    first = EmbeddedServices(root, redis=False)
    await asyncio.to_thread(first.start)
    (root / "postgres.owner").write_text("999999999")  # an owner that no longer exists
    second = EmbeddedServices(root, redis=False)
    await asyncio.to_thread(second.start)
    assert second.postgres.started_here, "an orphan is adopted"
    await asyncio.to_thread(second.stop)
    assert not (root / "postgres" / "data" / "postmaster.pid").exists(), "and stopped with its new owner"


@pytest.fixture
def private_home(tmp_path) -> Path:
    """A folder like root's home (0700): as root, uid 65534 cannot enter it."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return home


@pytest.fixture
def var_lib(open_tmp, monkeypatch) -> Path:
    """Stands in for /var/lib/flywheel, so that tests leave nothing there."""
    (open_tmp / "var-lib").mkdir(mode=0o755)
    base = open_tmp / "var-lib" / "flywheel"
    monkeypatch.setattr(outside, "bases", lambda: [base])
    return base


def _no_user_namespaces(monkeypatch) -> None:
    """As in a Docker container with the default seccomp profile."""
    monkeypatch.setattr(runas, "userns_works", lambda: False)


async def _kept(pg: EmbeddedPostgres, value: str | None = None) -> str | None:
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS kept (v text)")
        if value is not None:
            await conn.execute("INSERT INTO kept VALUES ($1)", value)
        return await conn.fetchval("SELECT string_agg(v, ',') FROM kept")
    finally:
        await conn.close()


def _start_stop_restart(home: Path) -> EmbeddedPostgres:
    """A server in `home`, stopped, then started again on the same data: the second one, stopped."""
    first = EmbeddedPostgres(home / "services" / "postgres")
    first.start()
    try:
        _assert_postgres_is_not_root(first.pgdata)
        assert asyncio.run(_kept(first, "kept")) == "kept"
    finally:
        first.stop()
    second = EmbeddedPostgres(home / "services" / "postgres")
    second.start()
    try:
        assert asyncio.run(_kept(second)) == "kept", "a second start finds the same cluster"
    finally:
        second.stop()
    assert not (second.pgdata / "postmaster.pid").exists()
    return second


def test_a_private_home_folder_works(private_home, var_lib):
    """A checkout in root's home: in a user namespace, the cluster stays in the data directory."""
    pg = _start_stop_restart(private_home)
    if os.geteuid() == 0 and not runas.userns_works():
        assert pg.root.parent == var_lib, "without user namespaces, the cluster lives outside"
        return
    assert pg.root == pg.home and pg.runas.way == ("userns" if os.geteuid() == 0 else "self")
    assert pg.pgdata.stat().st_uid == os.geteuid(), "its files are ours on disk"
    assert not var_lib.exists()
    assert oct(private_home.stat().st_mode & 0o777) == "0o700", "and no permissions were opened"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs Postgres as another user")
def test_without_user_namespaces_the_cluster_lives_outside(private_home, var_lib, monkeypatch):
    _no_user_namespaces(monkeypatch)
    pg = _start_stop_restart(private_home)
    assert pg.runas.way == "setpriv" and pg.root.parent == var_lib and pg.root.name.startswith("pg-")
    assert outside.recorded(pg.home) == pg.root, "recorded in the data directory"
    assert pg.root.stat().st_uid == NOBODY and oct(pg.root.stat().st_mode & 0o777) == "0o700"
    assert var_lib.stat().st_uid == 0 and oct(var_lib.stat().st_mode & 0o777) == "0o711"
    assert oct(private_home.stat().st_mode & 0o777) == "0o700", "no permissions opened on the way"


@pytest.mark.skipif(os.geteuid() != 0 or not runas.userns_works(), reason="needs root and user namespaces")
def test_a_cluster_keeps_its_way_until_that_way_cannot_reach_it(open_tmp, monkeypatch):
    """Made as uid 65534 (by an older Flywheel, or without user namespaces), it stays so; moved
    under a 0700 folder, it is handed to root for a user namespace; and back. The data is kept."""
    folder = open_tmp / "moved"
    folder.mkdir(mode=0o711)
    steps = [(0o711, False, "setpriv"), (0o711, True, "setpriv"), (0o700, True, "userns"), (0o711, False, "setpriv")]
    for runs, (mode, userns, way) in enumerate(steps):
        folder.chmod(mode)
        monkeypatch.setattr(runas, "userns_works", lambda userns=userns: userns)
        pg = EmbeddedPostgres(folder / "services" / "postgres")
        pg.start()
        try:
            assert (pg.runas.way, pg.root) == (way, pg.home)
            assert pg.pgdata.stat().st_uid == pg.runas.uid
            assert asyncio.run(_kept(pg, way)).count(",") == runs, "the rows of the earlier runs are kept"
        finally:
            pg.stop()


@pytest.mark.skipif(os.geteuid() != 0 or not runas.userns_works(), reason="needs root and user namespaces")
def test_a_cluster_no_way_can_reach_is_not_replaced_by_an_empty_one(private_home, var_lib, monkeypatch):
    pg = EmbeddedPostgres(private_home / "services" / "postgres")
    pg.start()  # in a user namespace, in place
    pg.stop()
    _no_user_namespaces(monkeypatch)  # then the checkout is used in a container, say
    with pytest.raises(EmbeddedError, match="FLYWHEEL_DATA_DIR"):
        EmbeddedPostgres(private_home / "services" / "postgres").start()
    assert not var_lib.exists(), "no second cluster made outside"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs Postgres as another user")
def test_with_no_way_left_the_error_is_one_clear_line(private_home, monkeypatch):
    _no_user_namespaces(monkeypatch)
    monkeypatch.setattr(outside, "bases", lambda: [Path("/proc/flywheel")])  # nothing can be made there
    pg = EmbeddedPostgres(private_home / "data" / "services" / "postgres")
    with pytest.raises(EmbeddedError, match="FLYWHEEL_DATA_DIR.*DATABASE_URL") as raised:
        pg.start()
    assert isinstance(raised.value, SettingsError), "so `flywheel up` ends with it alone, exit code 2"
    assert "\n" not in str(raised.value)
    assert not (private_home / "data").exists(), "nothing created when refusing"
    assert oct(private_home.stat().st_mode & 0o777) == "0o700", "and no permissions opened"


def test_long_paths_fall_back_to_tcp_with_a_password(open_tmp):
    deep = open_tmp / ("d" * 100)
    deep.mkdir()
    deep.chmod(0o711)
    services = EmbeddedServices(deep / "services")
    services.start()
    try:
        assert not services.postgres.use_socket and not services.redis.use_socket
        assert "@127.0.0.1:" in services.postgres.dsn and ":" in services.redis.url.split("@")[0]
        asyncio.run(_roundtrip(services, "tcp"))

        async def refused_without_password():
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(f"postgresql://postgres:wrong@127.0.0.1:{services.postgres.port}/flywheel")

        asyncio.run(refused_without_password())
    finally:
        services.stop()


def test_an_owner_is_one_process_not_just_a_pid():
    me = os.getpid()
    assert Owner(me, start_time(me)).alive
    assert Owner(me, None).alive, "files without a start time: the pid alone"
    assert not Owner(me, start_time(me) + 1).alive, "a reused pid is not the owner"
    assert not Owner(999_999_999, None).alive


def test_a_redis_server_whose_owner_died_is_replaced(open_tmp):
    first = EmbeddedRedis(open_tmp / "redis")
    first.start()
    try:
        redis.Redis.from_url(first.url).set("kept", "yes")
        (open_tmp / "redis" / "redis.owner").write_text("999999999\n")  # an owner that died
        second = EmbeddedRedis(open_tmp / "redis")
        second.start()
        try:
            assert not second.reused
            # Stopped with SIGTERM (it exits 0), so it saved its data first.
            assert first.proc.wait(timeout=20) == 0, "the stale server was stopped"
            assert redis.Redis.from_url(second.url).get("kept") == b"yes", "data kept"
        finally:
            second.stop()
    finally:
        first.stop()


def test_a_redis_server_whose_owner_runs_is_shared(open_tmp):
    first = EmbeddedRedis(open_tmp / "redis")
    first.start()
    try:
        second = EmbeddedRedis(open_tmp / "redis")
        second.start()
        assert second.reused and second.proc is None
        second.stop()
        assert first.proc.poll() is None, "a shared server is never stopped by the one sharing it"
        assert redis.Redis.from_url(first.url).ping()
    finally:
        first.stop()


def _processes_of(data_dir: Path) -> dict[int, str]:
    """Live processes whose command line or working directory is in `data_dir`, by pid.

    redis-server and Postgres' children rewrite their titles; the working
    directory still tells (their data folders)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z" and (str(data_dir) in args or cwd.startswith(str(data_dir))):
            found[int(entry.name)] = args
    return found


def _program(args: str) -> str:
    return Path(args.split()[0]).name if args else ""


def _servers(data_dir: Path) -> dict[str, list[int]]:
    procs = _processes_of(data_dir)
    return {
        "redis": sorted(p for p, args in procs.items() if _program(args) == "redis-server"),
        "postgres": sorted(p for p, args in procs.items()
                           if _program(args) == "postgres" and " -D " in args),  # the postmaster
    }


def _start_up(data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "FLYWHEEL_STORE_URL")}
    env.update(FLYWHEEL_DATA_DIR=str(data_dir), FLYWHEEL_PORT=str(port))
    return start_up([FLYWHEEL, "up"], f"http://127.0.0.1:{port}", log, env)


@pytest.mark.slow
def test_sigkill_of_up_leaves_no_second_server(open_tmp):
    """SIGKILL runs no cleanup: the servers outlive `flywheel up`. The next start
    replaces the stale redis-server and adopts Postgres: one of each, then none."""
    data_dir, port, log = open_tmp / "data", free_port(), open_tmp / "up.log"
    url = f"http://127.0.0.1:{port}"
    first = _start_up(data_dir, port, log)
    try:
        orphans = _servers(data_dir)
        assert len(orphans["redis"]) == 1 and len(orphans["postgres"]) == 1, orphans
        sock = data_dir / "services" / "redis" / "redis.sock"
        redis.Redis.from_url(f"unix://{sock}").set("kept", "before")
    finally:
        first.kill()
        first.wait()
    assert _servers(data_dir) == orphans, "both servers outlived the killed process"

    second = _start_up(data_dir, port, log)
    try:
        now = _servers(data_dir)
        assert len(now["redis"]) == 1 and now["redis"] != orphans["redis"], now
        assert now["postgres"] == orphans["postgres"], "Postgres is adopted, not started twice"
        assert httpx.get(f"{url}/healthz").status_code == 200
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 200, ready.text
        assert redis.Redis.from_url(f"unix://{sock}").get("kept") == b"before", "data kept"
    finally:
        second.send_signal(signal.SIGINT)
        try:
            code = second.wait(timeout=60)
        finally:
            if second.poll() is None:
                second.kill()
    assert code == 0, log.read_text()[-3000:]
    assert "stopping a stale embedded redis-server" in log.read_text()
    assert "adopting an embedded Postgres" in log.read_text()
    deadline = time.monotonic() + 10  # the last Postgres children may take a moment to exit
    while _processes_of(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_of(data_dir), "nothing of it is left running"
