"""Poison records and a hung Postgres: nothing acknowledged is lost, one bad
event costs only itself, and no tenant waits behind another's bad data.

- A spool file holding rows Postgres refuses (as an earlier release could
  have spooled them) is drained but for those rows, which go to the
  dead-letter folder; the files after it are drained too; /readyz says
  degraded until the dead letters are removed.
- A NUL event sent while Postgres is down is rejected on its own; the rest
  of its batch and other tenants' events are spooled and stored once.
- Postgres stopped with SIGSTOP (it accepts connections but never answers):
  requests are answered from the spool within the flush deadline.
- A group commit refused for one request's data fails only that request.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import msgspec
import pytest
from ingest_helpers import batch, event

from flywheel.contracts.tenants import Scope
from flywheel.server.app import create_app
from flywheel.server.auth import service
from flywheel.server.embedded.postgres import EmbeddedPostgres
from flywheel.server.ingest.engine import Unstorable
from flywheel.server.ingest.rows import EventRow
from flywheel.server.ingest.spool import Spool
from flywheel.server.settings import load_settings
from flywheel.server.testing import eventually
from flywheel.server.testing.client import app_client

pytestmark = pytest.mark.slow


@pytest.fixture
async def own_postgres(open_tmp):
    (open_tmp / "services").mkdir()
    (open_tmp / "services").chmod(0o711)
    pg = EmbeddedPostgres(open_tmp / "services" / "postgres")
    await asyncio.to_thread(pg.start)
    yield pg
    _signal_postgres(pg, signal.SIGCONT)  # never leave it stopped
    await asyncio.to_thread(pg.stop)


def _settings(dsn: str, data_dir: Path, redis_url: str, **overrides):
    return load_settings({}, database_url=dsn, redis_url=redis_url, data_dir=str(data_dir),
                         store_url=f"file://{data_dir / 'store'}", queue_name=f"poison-{uuid.uuid4().hex[:6]}",
                         allowed_hosts=["testserver"], **overrides)


async def _ingest_key(db, name: str) -> tuple[uuid.UUID, dict[str, str]]:
    tenant = await service.create_tenant(db, f"{name}-{uuid.uuid4().hex[:6]}")
    key = (await service.create_key(db, tenant.id, "k", [Scope.INGEST])).secret
    return tenant.id, {"Authorization": f"Bearer {key}"}


async def _stored(dsn: str, tenant_id: uuid.UUID) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT event_id::text AS id, count(*) AS n FROM events WHERE tenant_id = $1 "
                                "GROUP BY 1", tenant_id)
    finally:
        await conn.close()
    return {r["id"]: r["n"] for r in rows}


def _rows(tenant_id: uuid.UUID, n: int, *, subject: str = "s", body: bytes = b'{"ok":true}') -> list[EventRow]:
    now = datetime.now(UTC) - timedelta(minutes=1)
    return [EventRow(tenant_id, uuid.uuid4(), now.date(), now, "core.generic", subject, None, body, now)
            for _ in range(n)]


async def test_a_poison_spool_file_is_quarantined_and_everything_else_is_stored(flywheel_settings, open_tmp,
                                                                                  database):
    a, _ = await _ingest_key(database, "victim-a")
    b, _ = await _ingest_key(database, "victim-b")
    # Spooled as a release without decode-time checks could have: a NUL in a
    # text column and a \u0000 escape in jsonb, between other tenants' rows.
    good_a, good_b = _rows(a, 300), _rows(b, 200)
    nul_text = _rows(b, 1, subject="bad\x00subject")
    nul_json = _rows(a, 1, body=b'{"attributes":{"x":"bad\\u0000"}}')
    spool = Spool(open_tmp / "data" / "spool" / "events", 1 << 30)
    spool.open()
    await spool.write([*good_a[:150], *nul_text, *good_b[:100], *nul_json, *good_a[150:]])
    await spool.write(good_b[100:])  # a later file: must not wait behind the first

    app = create_app(_settings(flywheel_settings.database_url, open_tmp / "data", flywheel_settings.redis_url))
    async with app_client(app) as client:
        stored_a = await eventually(lambda: _full(flywheel_settings.database_url, a, 300), what="A's rows")
        stored_b = await eventually(lambda: _full(flywheel_settings.database_url, b, 200), what="B's rows")
        assert set(stored_a) == {str(r.event_id) for r in good_a} and set(stored_a.values()) == {1}
        assert set(stored_b) == {str(r.event_id) for r in good_b} and set(stored_b.values()) == {1}
        await eventually(lambda: not spool.pending(), what="the spool to empty")

        dead = spool.dead_letters()
        assert len(dead) == 1, dead
        lines = [msgspec.json.decode(line) for line in dead[0].read_bytes().splitlines()]
        assert {line["event_id"] for line in lines} == {str(nul_text[0].event_id), str(nul_json[0].event_id)}
        assert all(line["reason"] for line in lines)

        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded", ready.text
        assert "dead-letter" in ready.json()["checks"]["spool"]
        metrics = (await client.get("/metrics")).text
        assert "flywheel_ingest_quarantine_files 1.0" in metrics

        dead[0].unlink()  # what an operator does once the events are dealt with
        ready = await client.get("/readyz")
        assert ready.json()["status"] == "ok" and ready.json()["checks"]["spool"] == "ok"


async def _full(dsn: str, tenant_id: uuid.UUID, n: int) -> dict[str, int] | None:
    stored = await _stored(dsn, tenant_id)
    return stored if len(stored) >= n else None


async def test_an_unreadable_spool_file_is_set_aside(flywheel_settings, open_tmp, database):
    a, _ = await _ingest_key(database, "unreadable")
    spool = Spool(open_tmp / "data" / "spool" / "events", 1 << 30)
    spool.open()
    folder = spool.folder
    (folder / f"{1:020d}-1.batch").write_bytes(b"\xc1 not msgpack")
    good = _rows(a, 50)
    await spool.write(good)

    app = create_app(_settings(flywheel_settings.database_url, open_tmp / "data", flywheel_settings.redis_url))
    async with app_client(app):
        stored = await eventually(lambda: _full(flywheel_settings.database_url, a, 50), what="the good file")
        assert set(stored) == {str(r.event_id) for r in good}
        await eventually(lambda: not spool.pending(), what="the spool to empty")
        names = sorted(p.name for p in spool.dead_letter_folder.iterdir())
        assert names == [f"{1:020d}-1.batch", f"{1:020d}-1.batch.reason.txt"], names


async def test_a_nul_event_sent_during_an_outage_rejects_only_itself(own_postgres, open_tmp, flywheel_settings):
    pg = own_postgres
    app = create_app(_settings(pg.dsn, open_tmp / "data", flywheel_settings.redis_url))
    async with app_client(app) as client:
        db = app.state.flywheel.db
        a, headers_a = await _ingest_key(db, "outage-a")
        b, headers_b = await _ingest_key(db, "outage-b")
        warm = await client.post("/v1/events", json=batch(1), headers=headers_a)  # keys known before the outage
        assert warm.status_code == 200
        assert (await client.post("/v1/events", json=batch(1), headers=headers_b)).status_code == 200
        await asyncio.to_thread(pg.stop)

        mixed = [*batch(20), event(attributes={"note": "bad\x00"}), *batch(20)]
        r = await client.post("/v1/events", json=mixed, headers=headers_a)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["spooled"] and body["accepted"] == 40 and body["rejected"] == 1, body
        assert body["errors"][0]["index"] == 20 and body["errors"][0]["field"] == "$[20].attributes.note"
        others = batch(500)
        r = await client.post("/v1/events", json=others, headers=headers_b)
        assert r.status_code == 200 and r.json()["accepted"] == 500 and r.json()["spooled"], r.text

        await asyncio.to_thread(pg.start)
        engine = app.state.flywheel.ingestor.engine
        await eventually(lambda: not engine.spool.pending(), timeout=60, what="the spool to drain")
        assert not engine.spool.dead_letters(), "nothing poisonous reached the spool"
    stored_a, stored_b = await _stored(pg.dsn, a), await _stored(pg.dsn, b)
    assert {e["event_id"] for e in mixed} - {mixed[20]["event_id"]} <= set(stored_a)
    assert mixed[20]["event_id"] not in stored_a and len(stored_a) == 41
    assert {e["event_id"] for e in others} <= set(stored_b)
    assert set(stored_a.values()) == set(stored_b.values()) == {1}


def _postgres_pids(pg: EmbeddedPostgres) -> list[int]:
    """The postmaster and its children (backends, checkpointer...)."""
    try:
        postmaster = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return []
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                children.append(int(entry.name))
    return [postmaster, *children]


def _signal_postgres(pg: EmbeddedPostgres, sig: int) -> None:
    for pid in _postgres_pids(pg):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


# The flush deadline in this test, and how long a request may take at most
# with it: the deadline, a connection acquire and the spool's fsync, with
# room to spare on a loaded 2-core machine (before the fix: 40 s and more).
FLUSH_DEADLINE_S = 1.0
ANSWER_BOUND_S = 10.0


async def test_a_hung_postgres_sends_events_to_the_spool_within_the_deadline(own_postgres, open_tmp,
                                                                                 flywheel_settings):
    pg = own_postgres
    app = create_app(_settings(pg.dsn, open_tmp / "data", flywheel_settings.redis_url,
                               ingest_flush_timeout_s=FLUSH_DEADLINE_S))
    acknowledged: list[str] = []
    async with app_client(app) as client:
        tenant_id, headers = await _ingest_key(app.state.flywheel.db, "hung")
        first = batch(10)
        assert (await client.post("/v1/events", json=first, headers=headers)).json()["accepted"] == 10
        acknowledged += [e["event_id"] for e in first]

        _signal_postgres(pg, signal.SIGSTOP)
        try:
            for _ in range(3):
                events = batch(50)
                loop = asyncio.get_running_loop()
                started = loop.time()
                r = await asyncio.wait_for(client.post("/v1/events", json=events, headers=headers),
                                           ANSWER_BOUND_S)
                took = loop.time() - started
                assert r.status_code == 200 and r.json()["spooled"], (r.status_code, r.text)
                assert took < ANSWER_BOUND_S
                acknowledged += [e["event_id"] for e in events]
            assert "flywheel_ingest_flush_timeouts_total 1.0" in (await client.get("/metrics")).text
        finally:
            _signal_postgres(pg, signal.SIGCONT)

        engine = app.state.flywheel.ingestor.engine
        await eventually(lambda: not engine.spool.pending(), timeout=60, what="the spool to drain")
    stored = await _stored(pg.dsn, tenant_id)
    assert set(acknowledged) == set(stored) and set(stored.values()) == {1}


async def test_a_group_refused_for_one_request_fails_only_that_request(state, make_tenant, client):
    """Requests of different tenants sharing one COPY: only the unstorable one fails."""
    a, b = await make_tenant(), await make_tenant()
    engine = state.ingestor.engine
    good_a, poison_b, good_b = _rows(a.id, 30), _rows(b.id, 1, subject="x\x00y"), _rows(b.id, 5)
    # Queued in one turn of the event loop: the next flush takes them as one group.
    futures = [engine.enqueue(good_a), engine.enqueue(poison_b), engine.enqueue(good_b)]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert results[0].accepted == 30 and results[2].accepted == 5, results
    assert isinstance(results[1], Unstorable) and results[1].status == 422
    stored = {r["event_id"] for r in await state.db.fetch(
        "SELECT event_id FROM events WHERE tenant_id = ANY($1::uuid[])", [a.id, b.id])}
    assert stored == {r.event_id for r in [*good_a, *good_b]}
    assert "flywheel_ingest_split_groups_total" in (await client.get("/metrics")).text
