"""The two ingestion hooks end to end, through POST /v1/events on an app with
in-process plugins: `register_scrubbers` (a custom scrubber applied before
storage) and `on_events_committed` (what subscribers receive, and that a
failing or slow one never touches intake)."""

from __future__ import annotations

import asyncio
import collections
import types
import uuid
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec
import pytest
import pytest_asyncio
from ingest_helpers import batch, event

from flywheel.contracts.events import Event, GenericEvent
from flywheel.contracts.pii import Scrubber
from flywheel.server import hookimpl, subscribe
from flywheel.server.app import create_app
from flywheel.server.testing.client import app_client


def plugin(name: str, version: str = "1.0", **hooks) -> types.SimpleNamespace:
    """A plugin object with the given hook implementations (as in test_plugin_manager)."""
    ns = types.SimpleNamespace(__flywheel_plugin_name__=name, __version__=version)
    for hook, fn in hooks.items():
        setattr(ns, hook, hookimpl(fn))
    return ns


def _employee_check(value: str) -> bool:
    d = [int(c) for c in value[-6:]]
    return sum(d[:5]) % 10 == d[5]


# EMP- and six digits, the last the sum of the first five mod 10: EMP-123455 is
# an employee id, EMP-123456 is not and stays as sent.
EMPLOYEE = Scrubber(name="employee_id", pattern=r"\bEMP-\d{6}\b", replacement="[EMPLOYEE]", validate=_employee_check)


@dataclass
class Recorder:
    """What the subscriber plugins saw, and how they behave, per tenant."""

    calls: list[tuple[UUID, list[Any]]] = field(default_factory=list)
    fail_for: set[UUID] = field(default_factory=set)  # the "flaky" plugin raises for these tenants
    gates: dict[UUID, asyncio.Event] = field(default_factory=dict)  # "audit" waits on these
    entered: dict[UUID, asyncio.Event] = field(default_factory=dict)  # set when "audit" starts waiting
    flaky_raised: collections.Counter = field(default_factory=collections.Counter)
    picky: list[tuple[UUID, list[Any]]] = field(default_factory=list)  # what "picky" (only Ping) received

    def delivered(self, tenant_id: UUID) -> list[str]:
        return [str(e.event_id) for t, events in self.calls if t == tenant_id for e in events]


class Ping(Event, tag="picky.ping"):
    """The one type the "picky" plugin subscribes to."""


@dataclass
class Hooked:
    app: Any
    client: Any
    recorder: Recorder


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def hooked(flywheel_settings, tmp_path_factory):
    recorder = Recorder()

    async def on_events_committed(tenant_id, events):
        gate = recorder.gates.get(tenant_id)
        if gate is not None:
            recorder.entered.setdefault(tenant_id, asyncio.Event()).set()
            await gate.wait()
        recorder.calls.append((tenant_id, list(events)))

    @subscribe(Ping)
    def picky_on_events_committed(tenant_id, events):
        recorder.picky.append((tenant_id, list(events)))

    def failing_on_events_committed(state, tenant_id, events):
        if tenant_id in recorder.fail_for:
            recorder.flaky_raised[tenant_id] += 1
            raise RuntimeError("flaky subscriber")

    plugins = [
        plugin("hr", register_scrubbers=lambda: [EMPLOYEE]),
        plugin("audit", on_events_committed=on_events_committed),
        plugin("picky", register_event_types=lambda: [Ping], on_events_committed=picky_on_events_committed),
        # Registered last, so called first: its failure must not keep "audit" from its events.
        plugin("flaky", on_events_committed=failing_on_events_committed),
    ]
    # A data folder of its own: this app's spool must not be the session app's.
    settings = msgspec.structs.replace(flywheel_settings, data_dir=str(tmp_path_factory.mktemp("hooked-data")))
    app = create_app(settings, plugins)
    async with app_client(app) as client:
        try:
            yield Hooked(app, client, recorder)
        finally:
            for gate in recorder.gates.values():  # never leave a subscriber blocked at shutdown
                gate.set()


async def until(predicate, what: str, timeout: float = 20.0) -> None:
    """Wait for something the subscriber task does (a bound on waiting, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def post(client, tenant, events):
    r = await client.post("/v1/events", json=events, headers=tenant.headers)
    assert r.status_code in (200, 202), r.text
    return r.json()


async def stored_bodies(database, tenant_id) -> dict[str, dict]:
    rows = await database.fetch("SELECT event_id::text AS id, body::text AS body FROM events WHERE tenant_id = $1",
                                tenant_id)
    return {r["id"]: msgspec.json.decode(r["body"]) for r in rows}


def as_json(e: Any) -> dict:
    return msgspec.json.decode(msgspec.json.encode(e))


def test_the_plugins_are_loaded(hooked):
    hooks = {p.name: p.hooks for p in hooked.app.state.flywheel.pm.describe()}
    assert hooks == {"hr": ["register_scrubbers"], "audit": ["on_events_committed"],
                     "picky": ["on_events_committed", "register_event_types"], "flaky": ["on_events_committed"]}


async def test_a_plugin_scrubber_applies_before_storage(hooked, make_tenant, database):
    tenant = await make_tenant()
    e = event(subject_id="EMP-123455", attributes={
        "note": "escalated by EMP-123455 to jane@example.com",
        "deep": [{"badge": "EMP-000000"}],
        "not_an_id": "EMP-123456",  # fails the plugin's check: left alone
    })
    assert (await post(hooked.client, tenant, [e]))["accepted"] == 1
    row = await database.fetchrow("SELECT subject_id, body::text AS body FROM events "
                                  "WHERE tenant_id = $1 AND event_id = $2", tenant.id, uuid.UUID(e["event_id"]))
    body = msgspec.json.decode(row["body"])
    assert row["subject_id"] == "[EMPLOYEE]" and body["subject_id"] == "[EMPLOYEE]"
    assert body["attributes"]["note"] == "escalated by [EMPLOYEE] to [EMAIL]", "plugin and built-ins together"
    assert body["attributes"]["deep"] == [{"badge": "[EMPLOYEE]"}]
    assert body["attributes"]["not_an_id"] == "EMP-123456"

    # The plugin's pattern feeds the fast trigger: a string no built-in kind would look at is still scrubbed.
    e2 = event(attributes={"badge": "EMP-111115"})
    await post(hooked.client, tenant, [e2])
    assert (await stored_bodies(database, tenant.id))[e2["event_id"]]["attributes"] == {"badge": "[EMPLOYEE]"}

    # The tenant's allow-list exempts the plugin's kind like any other.
    r = await hooked.client.put("/v1/pii/allow-list", json={"paths": ["$.attributes.badge"]}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    e3 = event(attributes={"badge": "EMP-111115", "other": "EMP-111115"})
    await post(hooked.client, tenant, [e3])
    assert (await stored_bodies(database, tenant.id))[e3["event_id"]]["attributes"] == {
        "badge": "EMP-111115", "other": "[EMPLOYEE]"}


async def test_subscribers_get_exactly_the_committed_events_as_stored(hooked, make_tenant, database):
    rec = hooked.recorder
    a, b = await make_tenant(), await make_tenant()
    events_a = batch(3)
    events_a[0]["attributes"] = {"who": "EMP-123455", "mail": "jane@example.com"}
    invalid = event(subject_id=123)  # rejected: never committed, never delivered
    events_b = batch(2)
    ra, rb = await asyncio.gather(post(hooked.client, a, [*events_a, invalid, events_a[1]]),
                                  post(hooked.client, b, events_b))
    assert (ra["accepted"], ra["duplicate"], ra["rejected"]) == (3, 1, 1)
    assert rb["accepted"] == 2
    ids_a, ids_b = {e["event_id"] for e in events_a}, {e["event_id"] for e in events_b}
    await until(lambda: set(rec.delivered(a.id)) == ids_a and set(rec.delivered(b.id)) == ids_b, "delivery")

    # Grouped by tenant: every call carries one tenant's events only.
    for tenant_id, events in rec.calls:
        if tenant_id in (a.id, b.id):
            assert {str(e.event_id) for e in events} <= (ids_a if tenant_id == a.id else ids_b)
            assert all(isinstance(e, GenericEvent) for e in events)
    # Each committed event once, as stored (already scrubbed).
    assert sorted(rec.delivered(a.id)) == sorted(ids_a) and sorted(rec.delivered(b.id)) == sorted(ids_b)
    stored = await stored_bodies(database, a.id)
    delivered = {str(e.event_id): e for t, events in rec.calls if t == a.id for e in events}
    assert {i: as_json(e) for i, e in delivered.items()} == stored
    assert delivered[events_a[0]["event_id"]].attributes == {"who": "[EMPLOYEE]", "mail": "[EMAIL]"}

    # Sent again with one new event: only the new one is delivered. The new one
    # is in the same commit as the duplicates would be, so once it has arrived
    # nothing else from this request can still come.
    again = [*events_a, event(attributes={"i": 99})]
    r = await post(hooked.client, a, again)
    assert (r["accepted"], r["duplicate"]) == (1, 3)
    await until(lambda: again[-1]["event_id"] in rec.delivered(a.id), "the new event")
    assert sorted(rec.delivered(a.id)) == sorted(ids_a | {again[-1]["event_id"]})

    # The same event ids from another tenant are that tenant's own events, and delivered to it.
    r = await post(hooked.client, b, events_a)
    assert r["accepted"] == 3
    await until(lambda: set(rec.delivered(b.id)) == ids_b | ids_a, "tenant b's copies")
    assert all(t == b.id for t, events in rec.calls for e in events if str(e.event_id) in ids_b)


async def test_a_failing_subscriber_is_skipped_and_intake_goes_on(hooked, make_tenant, database):
    rec = hooked.recorder
    tenant, other = await make_tenant(), await make_tenant()
    rec.fail_for.add(tenant.id)
    sent = []
    for _ in range(3):
        events = batch(4)
        sent += events
        r = await post(hooked.client, tenant, events)
        assert (r["accepted"], r["rejected"]) == (4, 0), "the response does not depend on subscribers"
    ids = {e["event_id"] for e in sent}
    # The raising plugin ("flaky", registered last, so called first) did not keep the other from any event.
    await until(lambda: set(rec.delivered(tenant.id)) == ids, "delivery past the failing plugin")
    assert rec.flaky_raised[tenant.id] >= 1
    assert set(await stored_bodies(database, tenant.id)) == ids
    # The subscriber task survived: another tenant's events still arrive.
    events = batch(2)
    assert (await post(hooked.client, other, events))["accepted"] == 2
    await until(lambda: set(rec.delivered(other.id)) == {e["event_id"] for e in events}, "later deliveries")
    assert rec.flaky_raised[other.id] == 0


async def test_a_slow_subscriber_never_delays_intake(hooked, make_tenant, database):
    rec = hooked.recorder
    tenant = await make_tenant()
    gate = rec.gates[tenant.id] = asyncio.Event()
    try:
        first = batch(2)
        r = await post(hooked.client, tenant, first)
        assert r["accepted"] == 2
        # The subscriber now holds this tenant's events and waits on a gate we have not opened.
        await until(lambda: tenant.id in rec.entered and rec.entered[tenant.id].is_set(), "the subscriber to block")

        # While it is blocked, requests are answered and their events are stored.
        later = [batch(3) for _ in range(3)]
        results = await asyncio.gather(*(post(hooked.client, tenant, events) for events in later))
        assert [res["accepted"] for res in results] == [3, 3, 3]
        assert not gate.is_set() and rec.delivered(tenant.id) == [], "still blocked, nothing delivered yet"
        all_ids = {e["event_id"] for e in first} | {e["event_id"] for events in later for e in events}
        assert set(await stored_bodies(database, tenant.id)) == all_ids
    finally:
        gate.set()
    del rec.gates[tenant.id]
    await until(lambda: set(rec.delivered(tenant.id)) == all_ids, "delivery once unblocked")
    assert sorted(rec.delivered(tenant.id)) == sorted(all_ids), "each event once"


async def test_a_subscriber_marked_with_subscribe_gets_only_its_types(hooked, make_tenant):
    rec = hooked.recorder
    tenant = await make_tenant()
    generic = batch(3)
    pings = [event("picky.ping") for _ in range(2)]
    assert (await post(hooked.client, tenant, [generic[0], pings[0], generic[1], pings[1]]))["accepted"] == 4
    last = event(attributes={"after": True})
    assert (await post(hooked.client, tenant, [generic[2], last]))["accepted"] == 2  # no ping: picky is not called
    everything = {e["event_id"] for e in [*generic, *pings, last]}
    await until(lambda: set(rec.delivered(tenant.id)) == everything, "delivery to the unfiltered subscriber")

    picky = [(t, events) for t, events in rec.picky if t == tenant.id]
    assert picky, "the filtered subscriber was called"
    assert all(events and all(isinstance(e, Ping) for e in events) for _, events in picky), \
        "never called with other types, never called empty"
    assert sorted(str(e.event_id) for _, events in picky for e in events) == sorted(e["event_id"] for e in pings)
    # The unfiltered subscriber saw the pings too, as Ping instances.
    assert {str(e.event_id) for t, events in rec.calls if t == tenant.id for e in events
            if isinstance(e, Ping)} == {e["event_id"] for e in pings}
