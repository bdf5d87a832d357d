"""POST /v1/events and GET /v1/events: outcomes per event, content types,
duplicates, idempotency, limits, PII, archive and compaction."""

from __future__ import annotations

import asyncio
import gzip
import io
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pyarrow.parquet as pq
import pytest
from ingest_helpers import batch, event
from prometheus_client import REGISTRY

from flywheel.contracts.tenants import Scope
from flywheel.server.app import create_app
from flywheel.server.testing import eventually
from flywheel.server.testing.client import app_client


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    return body


async def stored(database, tenant_id, event_ids) -> dict[str, int]:
    rows = await database.fetch(
        "SELECT event_id::text AS id, count(*) AS n FROM events WHERE tenant_id = $1 AND event_id = ANY($2::uuid[]) "
        "GROUP BY 1", tenant_id, list(event_ids))
    return {r["id"]: r["n"] for r in rows}


async def test_mixed_batch_accepts_the_good_and_names_the_bad(client, tenant, database):
    good = batch(3)
    bad = [
        event(attributes={"ok": True}, subject_id=123),          # wrong type
        {"type": "nope.unknown", "event_id": str(uuid.uuid4()), "ts": datetime.now(UTC).isoformat()},
        event(event_id="not-a-uuid"),
        event(ts=datetime(2026, 1, 1)),                          # naive timestamp
        event(ts=datetime.now(UTC) + timedelta(days=3)),         # in the future
        {**event(), "surprise": 1},                              # unknown field
    ]
    body = [good[0], bad[0], good[1], bad[1], bad[2], good[2], bad[3], bad[4], bad[5]]
    r = await client.post("/v1/events", json=body, headers=tenant.headers)
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["accepted"], result["duplicate"], result["rejected"]) == (3, 0, 6)
    errors = {e["index"]: e for e in result["errors"]}
    assert errors[1]["code"] == "validation_error" and errors[1]["field"] == "$[1].subject_id"
    assert errors[3]["code"] == "unknown_type" and errors[3]["field"] == "$[3].type"
    assert errors[4]["field"] == "$[4].event_id"
    assert errors[6]["field"] == "$[6].ts" and "timezone" in errors[6]["message"]
    assert errors[7]["code"] == "out_of_range" and errors[7]["field"] == "$[7].ts"
    assert errors[8]["field"] == "$[8].surprise"
    counts = await stored(database, tenant.id, [e["event_id"] for e in good + bad if _is_uuid(e["event_id"])])
    assert counts == {e["event_id"]: 1 for e in good}, "only the valid events are stored"


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


async def test_every_content_type(client, tenant, database):
    sent = []
    events = batch(4)
    sent += events
    r = await client.post("/v1/events", content=b"\n".join(msgspec.json.encode(e) for e in events) + b"\n",
                          headers={**tenant.headers, "Content-Type": "application/x-ndjson"})
    assert r.json()["accepted"] == 4, r.text

    events = batch(4)
    sent += events
    r = await client.post("/v1/events", content=msgspec.msgpack.encode(events),
                          headers={**tenant.headers, "Content-Type": "application/msgpack"})
    assert r.json()["accepted"] == 4, r.text

    events = batch(4)
    sent += events
    r = await client.post("/v1/events", content=gzip.compress(msgspec.json.encode(events)),
                          headers={**tenant.headers, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.json()["accepted"] == 4, r.text

    events = batch(2)
    sent += events
    r = await client.post("/v1/events", content=gzip.compress(b"\n".join(msgspec.json.encode(e) for e in events)),
                          headers={**tenant.headers, "Content-Type": "application/x-ndjson; charset=utf-8",
                                   "Content-Encoding": "gzip"})
    assert r.json()["accepted"] == 2, r.text
    assert await stored(database, tenant.id, [e["event_id"] for e in sent]) == {e["event_id"]: 1 for e in sent}


async def test_ndjson_errors_carry_the_line(client, tenant):
    lines = [msgspec.json.encode(event()), b"{not json", b"", msgspec.json.encode(event(subject_id=[1]))]
    r = await client.post("/v1/events", content=b"\n".join(lines),
                          headers={**tenant.headers, "Content-Type": "application/x-ndjson"})
    result = r.json()
    assert result["accepted"] == 1 and result["rejected"] == 2
    assert [(e["index"], e["code"]) for e in result["errors"]] == [(1, "malformed_event"), (3, "validation_error")]


async def test_malformed_bodies(client, tenant):
    h = tenant.headers
    error_of(await client.post("/v1/events", content=b"{nope", headers={**h, "Content-Type": "application/json"}),
             400, "malformed_body")
    error_of(await client.post("/v1/events", json={"events": []}, headers=h), 400, "malformed_body")
    error_of(await client.post("/v1/events", content=b"\x00\x01", headers={**h, "Content-Type": "application/msgpack"}),
             400, "malformed_body")
    error_of(await client.post("/v1/events", content=b"[]", headers={**h, "Content-Type": "text/csv"}),
             415, "unsupported_media_type")
    error_of(await client.post("/v1/events", content=b"not gzip",
                               headers={**h, "Content-Type": "application/json", "Content-Encoding": "gzip"}),
             400, "malformed_body")
    r = await client.post("/v1/events", json=[], headers=h)
    assert r.status_code == 200 and r.json()["accepted"] == 0


async def test_duplicates_are_stored_once(client, tenant, database):
    events = batch(5)
    r = await client.post("/v1/events", json=events + [events[0], events[1]], headers=tenant.headers)
    assert (r.json()["accepted"], r.json()["duplicate"]) == (5, 2)
    r = await client.post("/v1/events", json=events[:3] + batch(1), headers=tenant.headers)
    assert (r.json()["accepted"], r.json()["duplicate"]) == (1, 3)
    # Concurrent requests carrying the same events: each event is accepted exactly once overall.
    shared = batch(20)
    results = await asyncio.gather(*(client.post("/v1/events", json=shared, headers=tenant.headers)
                                     for _ in range(5)))
    assert sum(r.json()["accepted"] for r in results) == 20
    assert sum(r.json()["duplicate"] for r in results) == 80
    counts = await stored(database, tenant.id, [e["event_id"] for e in events + shared])
    assert set(counts.values()) == {1} and len(counts) == 25


async def test_a_group_meeting_a_stored_event_falls_back_to_the_staging_path(app, client, tenant, database):
    """The plain COPY fails as a whole on a stored event; the group is then
    written through the staging table, with the same outcome per event."""

    engine = app.state.flywheel.ingestor.engine
    first = batch(4)
    engine.forget_conflicts()  # as after a quiet spell: the plain COPY is tried first
    r = await client.post("/v1/events", json=first, headers=tenant.headers)
    assert (r.json()["accepted"], r.json()["duplicate"]) == (4, 0)
    conflicts = _conflicts()

    engine.forget_conflicts()
    fresh = batch(3)
    r = await client.post("/v1/events", json=[*fresh, first[2]], headers=tenant.headers)
    assert (r.json()["accepted"], r.json()["duplicate"]) == (3, 1)
    assert _conflicts() == conflicts + 1, "the plain COPY met the stored event"
    assert engine.via_staging, "later groups skip the plain COPY for a while"
    counts = await stored(database, tenant.id, [e["event_id"] for e in first + fresh])
    assert set(counts.values()) == {1} and len(counts) == 7, "nothing of the failed COPY was kept"


def _conflicts() -> float:
    """flywheel_ingest_copy_conflicts_total, as /metrics reports it."""
    return REGISTRY.get_sample_value("flywheel_ingest_copy_conflicts_total") or 0.0


async def test_a_second_copy_starts_only_for_a_backlog(flywheel_settings, database):
    """While a group commit is in progress, requests queue behind it; a second
    COPY starts beside it only once the queue holds `ingest_parallel_flush_events`."""
    settings = msgspec.structs.replace(flywheel_settings, ingest_flushers=2, ingest_parallel_flush_events=250)
    app = create_app(settings, load_entrypoints=True)
    async with app_client(app) as c:
        from flywheel.server.auth import service

        t = await service.create_tenant(app.state.flywheel.db, f"par-{uuid.uuid4().hex[:6]}")
        key = (await service.create_key(app.state.flywheel.db, t.id, "k", [Scope.INGEST])).secret
        h = {"Authorization": f"Bearer {key}"}
        engine = app.state.flywheel.ingestor.engine
        sent = [batch(100) for _ in range(4)]
        # Another session holds a lock that every COPY into events waits for.
        async with database.acquire() as blocker:
            lock = blocker.transaction()
            await lock.start()
            await blocker.execute("LOCK TABLE events IN SHARE MODE")
            try:
                post = lambda events: asyncio.create_task(c.post("/v1/events", json=events, headers=h))  # noqa: E731
                tasks = [post(sent[0])]
                await eventually(lambda: engine.copies_in_progress == 1, what="the first group being copied")
                tasks += [post(sent[1]), post(sent[2])]
                await eventually(lambda: engine.queued_events == 200, what="two more requests queued")
                await asyncio.sleep(0.3)
                assert engine.copies_in_progress == 1, "200 queued rows are not worth a COPY of their own"
                tasks.append(post(sent[3]))
                await eventually(lambda: engine.copies_in_progress == 2, what="a second COPY for the backlog")
                assert engine.queued_events == 0, "the second COPY took the whole backlog"
            finally:
                await lock.rollback()
        responses = await asyncio.gather(*tasks)
    assert [r.json()["accepted"] for r in responses] == [100] * 4
    counts = await stored(database, t.id, [e["event_id"] for events in sent for e in events])
    assert len(counts) == 400 and set(counts.values()) == {1}


async def test_idempotency_key_replays_and_refuses_reuse(client, tenant, database):
    events = batch(3)
    headers = {**tenant.headers, "Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await client.post("/v1/events", json=events, headers=headers)
    assert first.json()["accepted"] == 3
    again = await client.post("/v1/events", json=events, headers=headers)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    # A re-run would say "3 duplicates"; a replay says what the first answer said.
    assert again.json() == first.json()
    error_of(await client.post("/v1/events", json=batch(1), headers=headers), 422, "idempotency_key_reused")

    # Every write endpoint honours it: the same job request queues one job.
    job_headers = {**tenant.headers, "Idempotency-Key": f"job-{uuid.uuid4()}"}
    a = await client.post("/v1/jobs", json={"name": "example.count_notes"}, headers=job_headers)
    b = await client.post("/v1/jobs", json={"name": "example.count_notes"}, headers=job_headers)
    assert a.status_code == b.status_code == 202 and a.json()["id"] == b.json()["id"]
    assert await database.fetchval("SELECT count(*) FROM jobs WHERE tenant_id = $1 AND name = 'example.count_notes'",
                                    tenant.id) == 1
    error_of(await client.post("/v1/events", json=[], headers={**tenant.headers, "Idempotency-Key": "has space"}),
             400, "invalid_idempotency_key")


async def test_idempotency_keys_are_per_tenant(client, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    key = f"shared-{uuid.uuid4()}"
    ra = await client.post("/v1/events", json=batch(2), headers={**a.headers, "Idempotency-Key": key})
    rb = await client.post("/v1/events", json=batch(3), headers={**b.headers, "Idempotency-Key": key})
    assert ra.json()["accepted"] == 2 and rb.json()["accepted"] == 3 and "idempotent-replayed" not in rb.headers


async def test_limits(flywheel_settings, make_tenant):
    settings = msgspec.structs.replace(flywheel_settings, max_body_bytes=20_000)
    app = create_app(settings, load_entrypoints=True)
    async with app_client(app) as c:
        from flywheel.server.auth import service

        t = await service.create_tenant(app.state.flywheel.db, f"lim-{uuid.uuid4().hex[:6]}")
        key = (await service.create_key(app.state.flywheel.db, t.id, "k", [Scope.INGEST])).secret
        h = {"Authorization": f"Bearer {key}"}
        error_of(await c.post("/v1/events", json=batch(300), headers=h), 413, "body_too_large")
        bomb = gzip.compress(b"[" + b" " * 5_000_000 + b"]")
        assert len(bomb) < 20_000
        error_of(await c.post("/v1/events", content=bomb,
                              headers={**h, "Content-Type": "application/json", "Content-Encoding": "gzip"}),
                 413, "body_too_large")
        error_of(await c.post("/v1/events", json=batch(300), headers={**h, "Idempotency-Key": "big"}),
                 413, "body_too_large")


async def test_batches_hold_at_most_ten_thousand_events(client, tenant):
    body = b"\n".join([b'{}'] * 10_001)
    error_of(await client.post("/v1/events", content=body,
                               headers={**tenant.headers, "Content-Type": "application/x-ndjson"}),
             413, "body_too_large")


async def test_scopes(client, make_tenant):
    reader = await make_tenant(scopes=[Scope.READ])
    ingester = await make_tenant(scopes=[Scope.INGEST])
    error_of(await client.post("/v1/events", json=batch(1), headers=reader.headers), 403, "forbidden")
    error_of(await client.get("/v1/events", headers=ingester.headers), 403, "forbidden")
    assert (await client.post("/v1/events", json=batch(1), headers=ingester.headers)).json()["accepted"] == 1


async def test_query_filters_and_pages(client, tenant):
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    events = [event("core.generic", ts=base + timedelta(minutes=i), session_id=f"s{i % 2}",
                    subject_id="drive-1" if i < 3 else "drive-2", attributes={"i": i}) for i in range(7)]
    assert (await client.post("/v1/events", json=events, headers=tenant.headers)).json()["accepted"] == 7
    page = (await client.get("/v1/events", params={"session_id": "s0"}, headers=tenant.headers)).json()
    assert [e["event"]["attributes"]["i"] for e in page["items"]] == [6, 4, 2, 0]
    page = (await client.get("/v1/events", params={"subject_id": "drive-1", "type": "core.generic"},
                             headers=tenant.headers)).json()
    assert sorted(e["event"]["attributes"]["i"] for e in page["items"]) == [0, 1, 2]
    window = {"since": (base + timedelta(minutes=2)).isoformat(), "until": (base + timedelta(minutes=5)).isoformat()}
    page = (await client.get("/v1/events", params=window, headers=tenant.headers)).json()
    assert [e["event"]["attributes"]["i"] for e in page["items"]] == [4, 3, 2]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/events", params=params, headers=tenant.headers)).json()
        seen += [e["event_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [e["event_id"] for e in reversed(events)]
    error_of(await client.get("/v1/events", params={"since": "2026-01-01T00:00:00"}, headers=tenant.headers),
             422, "validation_error")


async def test_tenants_see_only_their_events(client, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    mine = batch(3, session_id="shared-session")
    await client.post("/v1/events", json=mine, headers=a.headers)
    theirs = (await client.get("/v1/events", params={"session_id": "shared-session"}, headers=b.headers)).json()
    assert theirs["items"] == []
    ours = (await client.get("/v1/events", params={"session_id": "shared-session"}, headers=a.headers)).json()
    assert len(ours["items"]) == 3
    # The same event ids sent by another tenant are that tenant's own events, not duplicates.
    r = await client.post("/v1/events", json=mine, headers=b.headers)
    assert r.json()["accepted"] == 3


async def test_pii_is_scrubbed_before_storage_with_tenant_exceptions(client, tenant, database):
    e = event(subject_id="jane.doe@example.org",
              attributes={"note": "call me at (415) 555-0100 or mail jane.doe@example.org",
                          "support": "help@flywheel.dev", "nested": [{"card": "4111 1111 1111 1111"}]})
    await client.post("/v1/events", json=[e], headers=tenant.headers)
    body = await database.fetchval("SELECT body::text FROM events WHERE tenant_id = $1 AND event_id = $2",
                                   tenant.id, uuid.UUID(e["event_id"]))
    for secret in ("jane.doe@example.org", "555-0100", "4111 1111 1111 1111", "help@flywheel.dev"):
        assert secret not in body, body
    subject = await database.fetchval("SELECT subject_id FROM events WHERE tenant_id = $1 AND event_id = $2",
                                      tenant.id, uuid.UUID(e["event_id"]))
    assert "@" not in subject

    allow = {"paths": ["$.attributes.support"], "patterns": [r".*@example\.org"]}
    r = await client.put("/v1/pii/allow-list", json=allow, headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert (await client.get("/v1/pii/allow-list", headers=tenant.headers)).json() == allow
    e2 = {**e, "event_id": str(uuid.uuid4())}
    await client.post("/v1/events", json=[e2], headers=tenant.headers)
    body = await database.fetchval("SELECT body::text FROM events WHERE tenant_id = $1 AND event_id = $2",
                                   tenant.id, uuid.UUID(e2["event_id"]))
    assert "help@flywheel.dev" in body and "jane.doe@example.org" in body, "allowed by path and by pattern"
    assert "4111 1111 1111 1111" not in body and "555-0100" not in body, "everything else still scrubbed"
    bad = await client.put("/v1/pii/allow-list", json={"patterns": ["(unclosed"]}, headers=tenant.headers)
    assert error_of(bad, 422, "validation_error")["field"] == "$.patterns[0]"


async def test_archive_and_compaction(client, tenant, state):
    day = datetime.now(UTC).date() - timedelta(days=1)
    ts = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    events = [event(ts=ts + timedelta(seconds=i), attributes={"i": i}) for i in range(50)]
    assert (await client.post("/v1/events", json=events, headers=tenant.headers)).json()["accepted"] == 50
    store = state.tenant_store(tenant.id)
    async def archived() -> list[str]:  # the JSONL archive is written off the request path, within about a second
        return [i.key async for i in store.list(f"events/jsonl/dt={day.isoformat()}/")]

    jsonl = await eventually(archived, what="the JSONL archive")
    lines = b"".join([await store.get(k) for k in jsonl]).splitlines()
    assert sorted(msgspec.json.decode(line)["event_id"] for line in lines) == sorted(e["event_id"] for e in events)

    from flywheel.server.ingest.archive import compact_day

    result = await compact_day(state, tenant.id, day)
    assert result["rows"] == 50
    data = await store.get(result["key"])
    table = pq.read_table(io.BytesIO(data))
    assert table.num_rows == 50 and table.schema.field("ts").type.tz == "UTC"
    assert table.column("event_id").to_pylist() == [e["event_id"] for e in events], "sorted by time"
    again = await compact_day(state, tenant.id, day)
    assert again == result and await store.get(result["key"]) == data, "compaction is idempotent"
    meta = pq.read_metadata(io.BytesIO(data))
    assert meta.row_group(0).column(0).compression == "ZSTD"


async def test_compaction_job_through_the_worker(client, tenant, worker, state):
    day = datetime.now(UTC).date() - timedelta(days=2)
    ts = datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
    await client.post("/v1/events", json=[event(ts=ts + timedelta(minutes=i)) for i in range(5)],
                      headers=tenant.headers)
    r = await client.post("/v1/jobs", json={"name": "core.compact_events", "payload": {"day": day.isoformat()}},
                          headers=tenant.headers)
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=tenant.headers)).json()
    assert job["state"] == "succeeded" and job["result"]["rows"] == 5, job
    assert await state.tenant_store(tenant.id).exists(f"events/parquet/dt={day.isoformat()}/part-00000.parquet")


async def test_metrics_count_events(client, tenant):
    await client.post("/v1/events", json=batch(2) + [{"type": "x"}], headers=tenant.headers)
    text = (await client.get("/metrics")).text
    assert 'flywheel_events_total{outcome="accepted",type="core.generic"}' in text
    assert 'flywheel_events_total{outcome="rejected",type="*"}' in text
    assert "flywheel_ingest_flush_seconds_bucket" in text and "flywheel_ingest_spool_bytes" in text


async def test_cli_compacts_a_day(client, tenant, flywheel_settings, state):
    from click.testing import CliRunner

    from flywheel.server.cli.main import cli

    day = datetime.now(UTC).date() - timedelta(days=3)
    ts = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
    await client.post("/v1/events", json=[event(ts=ts + timedelta(minutes=i)) for i in range(7)],
                      headers=tenant.headers)
    env = {"DATABASE_URL": flywheel_settings.database_url, "REDIS_URL": flywheel_settings.redis_url,
           "FLYWHEEL_STORE_URL": flywheel_settings.store_url, "FLYWHEEL_DATA_DIR": flywheel_settings.data_dir}
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["events", "compact", "--date", day.isoformat(),
                                                               "--tenant", tenant.name], env=env)
    assert result.exit_code == 0, result.output
    assert "compacted 7 events" in result.output
    data = await state.tenant_store(tenant.id).get(f"events/parquet/dt={day.isoformat()}/part-00000.parquet")
    assert pq.read_table(io.BytesIO(data)).num_rows == 7
    bad = await asyncio.to_thread(CliRunner().invoke, cli, ["events", "compact", "--date", "yesterday"], env=env)
    assert bad.exit_code == 2 and "--date" in bad.output


@pytest.mark.parametrize("one_bad", [False, True], ids=["all-valid", "one-invalid"])
async def test_more_than_10000_events_in_a_batch_is_a_413(client, tenant, database, one_bad):
    events = [event() for _ in range(10_001)]
    if one_bad:
        events[5]["subject_id"] = 7  # decoded event by event: the count is checked there too
    r = await client.post("/v1/events", json=events, headers=tenant.headers)
    error_of(r, 413, "body_too_large")
    assert await stored(database, tenant.id, [events[0]["event_id"]]) == {}, "nothing of the batch was stored"
