"""Embedded Postgres and Redis: what `flywheel up` uses on a bare machine."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest
import redis.asyncio as aioredis

from flywheel.server.embedded import EmbeddedError, EmbeddedServices
from flywheel.server.embedded.postgres import EmbeddedPostgres


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


async def test_services_start_keep_data_and_stop(open_tmp):
    root = open_tmp / "services"
    services = EmbeddedServices(root)
    await asyncio.to_thread(services.start)
    try:
        assert await _roundtrip(services, "one") == "one"
        if os.geteuid() == 0:
            pid = int((root / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
            status = open(f"/proc/{pid}/status").read()
            uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
            assert uid_line.split()[1:] == ["65534"] * 4, "Postgres must not run as root"
            cap_eff = next(line for line in status.splitlines() if line.startswith("CapEff:"))
            assert int(cap_eff.split()[1], 16) == 0, "and holds no capabilities"
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


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs Postgres under another uid")
def test_unreachable_data_dir_gets_a_clear_error(tmp_path):
    # pytest's temp folders are 0700 root: the unprivileged Postgres user cannot enter them.
    pg = EmbeddedPostgres(tmp_path / "services" / "postgres")
    with pytest.raises(EmbeddedError, match="FLYWHEEL_DATA_DIR"):
        pg.start()
    assert not (tmp_path / "services").exists(), "nothing created when refusing"
    assert oct(tmp_path.parent.stat().st_mode & 0o777) == "0o700", "and no permissions opened"


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
