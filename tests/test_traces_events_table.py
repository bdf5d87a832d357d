"""Trace events reach the core's events table too (`ingest_events`): stored once, retries included,
subscribers see them, and the trace's own record and chain are unchanged by it."""

from __future__ import annotations

import types
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest_asyncio
from traces_helpers import event, new_trace, send

from flywheel.contracts.events import Event
from flywheel.plugins.traces import capture
from flywheel.plugins.traces.contracts import Chunk
from flywheel.server import hookimpl, subscribe
from flywheel.server.app import build_state, create_app
from flywheel.server.secrets import new_key
from flywheel.server.testing.client import app_client
from flywheel.server.testing.polling import eventually


def recent(seq: int, type_name: str = "rationale_note", **fields) -> dict:
    """An event stamped a minute ago (the events table keeps a bounded window of days)."""
    ts = datetime.now(UTC) - timedelta(minutes=1) + timedelta(milliseconds=seq)
    return {**event(seq, type_name, **fields), "ts": ts.isoformat()}


async def in_events_table(client, tenant, type_name: str | None = None) -> list[dict]:
    params = {"limit": 1000} | ({"type": f"traces.{type_name}"} if type_name else {})
    r = await client.get("/v1/events", params=params, headers=tenant.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_chunk_events_are_stored_once_in_the_events_table(client, tenant):
    tid = await new_trace(client, tenant)
    events = [recent(1), recent(2, "cmd_run", output="mail me at ada@example.com"), recent(3, "file_edit")]
    r = await send(client, tenant, tid, 1, events)
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["events_table"], r.json()["events_table_refused"]) == (3, 3, 0)
    stored = {e["event_id"]: e for e in await in_events_table(client, tenant)}
    assert set(stored) == {e["event_id"] for e in events}
    assert {e["type"] for e in stored.values()} == {"traces.rationale_note", "traces.cmd_run", "traces.file_edit"}
    # Like any event: PII scrubbed in the events table, while the trace keeps what was sent (the chain's bytes).
    assert "ada@example.com" not in stored[events[1]["event_id"]]["event"]["output"]
    timeline = (await client.get(f"/v1/traces/{tid}/events", headers=tenant.headers)).json()
    assert timeline[1]["event"]["output"] == "mail me at ada@example.com"

    again = await send(client, tenant, tid, 1, events)  # a retried chunk
    assert again.json()["replayed"] is True and again.json()["events_table"] == 3
    dup = await send(client, tenant, tid, 2, [events[0], recent(4)])  # one event seen before, one new
    assert (dup.json()["accepted"], dup.json()["duplicate"], dup.json()["events_table"]) == (1, 1, 1)
    assert len(await in_events_table(client, tenant)) == 4, "every event id stored once"
    report = (await client.get(f"/v1/traces/{tid}/verify", headers=tenant.headers)).json()
    assert (report["ok"], report["checked"]) == (True, 4)


async def test_a_chunk_committed_without_the_events_table_gets_there_on_its_retry(client, tenant,
                                                                                  flywheel_settings):
    """A process with no ingestion engine (a CLI command; or one that died after the trace's commit)
    stores the chunk in the trace only; the client's retry through the API hands its events on."""
    tid = await new_trace(client, tenant)
    events = [recent(1), recent(2, "test_run")]
    cli = build_state(flywheel_settings, load_entrypoints=True)
    await cli.start(run_migrations=False)
    try:
        first = await capture.add_chunk(cli, tenant.id, uuid.UUID(tid), 1,
                                        msgspec.convert({"events": events}, Chunk))
    finally:
        await cli.stop()
    assert (first.accepted, first.events_table) == (2, None)
    assert await in_events_table(client, tenant) == []
    retry = await send(client, tenant, tid, 1, events)
    assert (retry.json()["replayed"], retry.json()["events_table"]) == (True, 2)
    assert {e["event_id"] for e in await in_events_table(client, tenant)} == {e["event_id"] for e in events}
    assert (await client.get(f"/v1/traces/{tid}/verify", headers=tenant.headers)).json()["ok"] is True


async def test_events_outside_the_tables_window_stay_in_the_trace(client, tenant):
    tid = await new_trace(client, tenant)
    old, new = {**event(1), "ts": (datetime.now(UTC) - timedelta(days=400)).isoformat()}, recent(2)
    r = await send(client, tenant, tid, 1, [old, new])
    assert (r.json()["accepted"], r.json()["events_table"], r.json()["events_table_refused"]) == (2, 1, 1)
    assert [e["event_id"] for e in await in_events_table(client, tenant)] == [new["event_id"]]
    trace = (await client.get(f"/v1/traces/{tid}", headers=tenant.headers)).json()
    assert trace["events"] == 2


# -- subscribers -------------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def subscribed(flywheel_settings, tmp_path_factory):
    """An app with the traces plugin and one that subscribes to file edits."""
    seen: list[tuple[uuid.UUID, Event]] = []

    @subscribe("traces.file_edit")
    def on_events_committed(tenant_id, events):
        seen.extend((tenant_id, e) for e in events)

    watcher = types.SimpleNamespace(__flywheel_plugin_name__="watcher", __version__="1.0",
                                    on_events_committed=hookimpl(on_events_committed))
    settings = msgspec.structs.replace(flywheel_settings, plugins=["traces"], secret_key=new_key(),
                                       data_dir=str(tmp_path_factory.mktemp("subscribed-data")))
    app = create_app(settings, [watcher], load_entrypoints=True)
    async with app_client(app) as c:
        yield c, seen


async def test_subscribers_see_trace_events(subscribed, tenant):
    client, seen = subscribed
    tid = await new_trace(client, tenant)
    edit = recent(2, "file_edit", path="src/stats.py")
    r = await send(client, tenant, tid, 1, [recent(1), edit])
    assert r.status_code == 200 and r.json()["events_table"] == 2, r.text
    await eventually(lambda: [e for t, e in seen if t == tenant.id])
    [(_, got)] = [(t, e) for t, e in seen if t == tenant.id]  # only the file edit: the note is not subscribed
    assert (str(got.event_id), got.path, got.seq) == (edit["event_id"], "src/stats.py", 2)
