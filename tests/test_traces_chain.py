"""The hash chain: verified when intact; an edited, deleted or reordered stored event is found, by seq."""

from __future__ import annotations

import uuid

import pytest
from traces_helpers import event, new_trace, send

from flywheel.contracts.tenants import Scope


@pytest.fixture
async def chained(client, tenant):
    tid = await new_trace(client, tenant)
    await send(client, tenant, tid, 2, [event(i) for i in range(4, 7)])
    await send(client, tenant, tid, 1, [event(i) for i in range(1, 4)])
    return tid


async def verify(client, tenant, tid):
    r = await client.get(f"/v1/traces/{tid}/verify", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_an_intact_chain_verifies(client, tenant, chained):
    report = await verify(client, tenant, chained)
    assert report == {"ok": True, "checked": 6, "first_broken": None, "gaps": []}
    events = (await client.get(f"/v1/traces/{chained}/events", headers=tenant.headers)).json()
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6] and all(len(e["hash"]) == 64 for e in events)


async def test_an_edited_event_is_found(client, tenant, chained, database):
    edit = "convert_to(replace(convert_from(body, 'UTF8'), 'note 4', 'note X'), 'UTF8')"
    await database.execute(f"UPDATE traces_events SET body = {edit} WHERE trace_id = $1 AND seq = 4",
                           uuid.UUID(chained))
    report = await verify(client, tenant, chained)
    assert not report["ok"] and report["first_broken"]["seq"] == 4 and report["checked"] == 3
    assert "hash does not match" in report["first_broken"]["problem"]


async def test_a_deleted_event_is_found(client, tenant, chained, database):
    await database.execute("DELETE FROM traces_events WHERE trace_id = $1 AND seq = 3", uuid.UUID(chained))
    report = await verify(client, tenant, chained)
    assert not report["ok"] and report["first_broken"]["seq"] == 4
    assert "missing" in report["first_broken"]["problem"] and report["gaps"] == [{"first": 3, "last": 3}]


async def test_a_deleted_last_event_is_found(client, tenant, chained, database):
    await database.execute("DELETE FROM traces_events WHERE trace_id = $1 AND seq = 6", uuid.UUID(chained))
    report = await verify(client, tenant, chained)
    assert not report["ok"] and report["first_broken"]["seq"] == 6 and "gone" in report["first_broken"]["problem"]


async def test_reordered_events_are_found(client, tenant, chained, database):
    tid = uuid.UUID(chained)
    async with database.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE traces_events SET seq = -2 WHERE trace_id = $1 AND seq = 2", tid)
        await conn.execute("UPDATE traces_events SET seq = 2 WHERE trace_id = $1 AND seq = 5", tid)
        await conn.execute("UPDATE traces_events SET seq = 5 WHERE trace_id = $1 AND seq = -2", tid)
    report = await verify(client, tenant, chained)
    assert not report["ok"] and report["first_broken"]["seq"] == 2
    assert "reordered" in report["first_broken"]["problem"]


async def test_swapping_whole_rows_breaks_the_hashes(client, tenant, chained, database):
    """Moving bodies and hashes together still fails: each hash is bound to the one before it."""
    tid = uuid.UUID(chained)
    rows = {r["seq"]: r for r in await database.fetch(
        "SELECT seq, event_id, body, hash FROM traces_events WHERE trace_id = $1", tid)}
    async with database.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM traces_events WHERE trace_id = $1 AND seq IN (2, 3)", tid)
        for new_seq, old in ((2, rows[3]), (3, rows[2])):
            body = bytes(old["body"]).replace(f'"seq":{old["seq"]}'.encode(), f'"seq":{new_seq}'.encode())
            await conn.execute("INSERT INTO traces_events (tenant_id, trace_id, event_id, seq, kind, ts, body, hash, "
                               "key_version) SELECT tenant_id, id, $2, $3, $6, now(), $4, $5, 1 "
                               "FROM traces WHERE id = $1", tid, old["event_id"], new_seq, body, old["hash"],
                               "rationale_note")
    report = await verify(client, tenant, chained)
    assert not report["ok"] and report["first_broken"]["seq"] == 2


async def test_rotated_keys_keep_old_events_verifiable(client, tenant, chained, database):
    r = await client.post("/v1/traces/chain-keys/rotate", headers=tenant.headers)
    assert r.status_code == 200 and r.json()["version"] == 2
    await send(client, tenant, chained, 3, [event(7), event(8)])
    versions = [v for (v,) in await database.fetch(
        "SELECT key_version FROM traces_events WHERE trace_id = $1 ORDER BY seq", uuid.UUID(chained))]
    assert versions == [1] * 6 + [2, 2]
    assert (await verify(client, tenant, chained))["ok"]
    sealed = await database.fetch("SELECT sealed FROM traces_chain_keys WHERE tenant_id = $1", tenant.id)
    assert len(sealed) == 2 and all(s["sealed"].startswith("gAAAA") for s in sealed), "keys are stored sealed"


async def test_rotation_needs_admin(client, make_tenant):
    t = await make_tenant(scopes=[Scope.INGEST, Scope.READ, Scope.WRITE])
    r = await client.post("/v1/traces/chain-keys/rotate", headers=t.headers)
    assert r.status_code == 403
