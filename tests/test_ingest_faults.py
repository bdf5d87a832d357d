"""Faults during ingestion: Postgres restarted under load, and a process
killed with events still in its spool. Every acknowledged event must end up
stored exactly once.

These tests run their own embedded Postgres, which they stop and start.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pytest
from ingest_helpers import batch

from flywheel.contracts.tenants import Scope
from flywheel.server.app import create_app
from flywheel.server.auth import service
from flywheel.server.embedded.postgres import EmbeddedPostgres
from flywheel.server.settings import load_settings
from flywheel.server.testing import eventually
from flywheel.server.testing.client import app_client
from flywheel.server.testing.live import free_port

FLYWHEEL = str(Path(sys.executable).parent / "flywheel")
pytestmark = pytest.mark.slow


@pytest.fixture
async def own_postgres(open_tmp):
    pg = EmbeddedPostgres(open_tmp / "services" / "postgres")
    (open_tmp / "services").mkdir()
    (open_tmp / "services").chmod(0o711)
    await asyncio.to_thread(pg.start)
    yield pg
    await asyncio.to_thread(pg.stop)


async def _stored_counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT event_id::text AS id, count(*) AS n FROM events GROUP BY 1")
    finally:
        await conn.close()
    return {r["id"]: r["n"] for r in rows}


async def test_postgres_restart_under_sustained_load(own_postgres, open_tmp, flywheel_settings):
    pg = own_postgres
    settings = load_settings({}, database_url=pg.dsn, redis_url=flywheel_settings.redis_url,
                             data_dir=str(open_tmp / "data"), store_url=f"file://{open_tmp / 'store'}",
                             queue_name=f"faults-{uuid.uuid4().hex[:6]}", allowed_hosts=["testserver"])
    app = create_app(settings, load_entrypoints=True)
    acknowledged: list[str] = []
    spooled_responses = 0
    statuses: dict[int, int] = {}
    stop = asyncio.Event()

    async with app_client(app) as client:
        state = app.state.flywheel
        tenant = await service.create_tenant(state.db, "load")
        key = (await service.create_key(state.db, tenant.id, "k", [Scope.INGEST])).secret
        headers = {"Authorization": f"Bearer {key}"}

        async def sender() -> None:
            nonlocal spooled_responses
            pending = batch(50)
            while not stop.is_set():
                r = await client.post("/v1/events", json=pending, headers=headers)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    body = r.json()
                    assert body["accepted"] + body["duplicate"] == len(pending), body
                    acknowledged.extend(e["event_id"] for e in pending)
                    spooled_responses += body["spooled"]
                    pending = batch(50)
                else:  # not acknowledged: retry the same events, as a client would
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0)

        senders = [asyncio.create_task(sender()) for _ in range(4)]
        await asyncio.sleep(1.0)
        before_outage = len(acknowledged)
        await asyncio.to_thread(pg.stop)
        await asyncio.sleep(1.5)
        during_outage = len(acknowledged) - before_outage
        await asyncio.to_thread(pg.start)
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*senders)
        await eventually(lambda: state.ingestor.engine.spool.files == 0, timeout=20,
                         what="the spool to drain once Postgres is back")

    assert before_outage > 0 and during_outage > 0, (before_outage, during_outage, statuses)
    assert spooled_responses > 0, "events acknowledged during the outage went through the spool"
    counts = await _stored_counts(pg.dsn.replace("/flywheel?", "/flywheel?"))
    missing = [e for e in acknowledged if e not in counts]
    assert not missing, f"{len(missing)} acknowledged events were lost"
    assert max(counts.values()) == 1, "no event is stored twice"
    assert len(set(acknowledged)) == len(acknowledged)


def _serve(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([FLYWHEEL, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _wait_healthy(url: str, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not start")


async def test_crash_with_a_non_empty_spool_replays_it(own_postgres, open_tmp, flywheel_settings):
    pg = own_postgres
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = open_tmp / "data"
    env = {**os.environ, "DATABASE_URL": pg.dsn, "REDIS_URL": flywheel_settings.redis_url,
           "FLYWHEEL_DATA_DIR": str(data_dir), "FLYWHEEL_STORE_URL": f"file://{open_tmp / 'store'}",
           "FLYWHEEL_PORT": str(port), "FLYWHEEL_QUEUE": f"crash-{uuid.uuid4().hex[:6]}"}
    proc = _serve(env)
    try:
        await asyncio.to_thread(_wait_healthy, url, proc)
        conn = await asyncpg.connect(pg.dsn)
        tenant = await service.create_tenant(conn, "crash")
        key = (await service.create_key(conn, tenant.id, "k", [Scope.INGEST])).secret
        await conn.close()
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as c:
            first = batch(10)
            assert (await c.post("/v1/events", json=first)).json()["accepted"] == 10
            await asyncio.to_thread(pg.stop)
            spooled = batch(30)
            r = await c.post("/v1/events", content=msgspec.json.encode(spooled),
                             headers={"Content-Type": "application/json"})
            assert r.status_code == 200 and r.json() == {"accepted": 30, "duplicate": 0, "rejected": 0,
                                                         "errors": [], "spooled": True}, r.text
    finally:
        proc.send_signal(signal.SIGKILL)  # a crash: no shutdown, no drain
        proc.wait()
    spool_files = list((data_dir / "spool" / "events").glob("*.batch"))
    assert spool_files, "the acknowledged events wait in the spool on disk"

    await asyncio.to_thread(pg.start)
    proc = _serve(env)
    try:
        await asyncio.to_thread(_wait_healthy, url, proc)
        async def replayed() -> dict[str, int] | None:
            counts = await _stored_counts(pg.dsn)
            return counts if len(counts) >= 40 else None

        counts = await eventually(replayed, timeout=10, what="the spool replayed")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert {e["event_id"] for e in first + spooled} == set(counts) and set(counts.values()) == {1}
    assert not list((data_dir / "spool" / "events").glob("*.batch")), "the spool is empty after the replay"
