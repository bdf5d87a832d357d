"""Trace capture through the API: chunks in any order and retried, duplicates, gaps, artifacts, finalize."""

from __future__ import annotations

import hashlib

import msgspec
from traces_helpers import event, new_trace, send, story_json, upload, workspace_tarball

from flywheel.server.plugin_api import tenant_store


async def test_chunks_in_any_order_retried_and_duplicated(client, tenant):
    tid = await new_trace(client, tenant)
    events = [event(i) for i in range(1, 7)]
    r = await send(client, tenant, tid, 2, events[3:])
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 3 and r.json()["chained_through"] == 0  # waits behind seq 1-3
    r = await send(client, tenant, tid, 1, events[:3])
    assert r.json()["chained_through"] == 6, "the chunk that fills the gap chains the events behind it"
    again = await send(client, tenant, tid, 1, events[:3])
    assert again.status_code == 200 and again.json()["replayed"] is True
    other = await send(client, tenant, tid, 1, [event(7)])
    assert other.status_code == 409 and other.json()["field"] == "path.chunk_no"
    dup = await send(client, tenant, tid, 3, [events[0], event(7)])
    assert dup.json() | {} == {**dup.json(), "accepted": 1, "duplicate": 1}
    taken = await send(client, tenant, tid, 4, [event(2)])  # a new event id claiming seq 2
    assert taken.status_code == 409 and taken.json()["code"] == "seq_taken"
    trace = (await client.get(f"/v1/traces/{tid}", headers=tenant.headers)).json()
    assert (trace["events"], trace["chunks"], trace["status"]) == (7, 3, "open")


async def test_events_are_validated_strictly(client, tenant):
    tid = await new_trace(client, tenant)
    cases = [
        event(1, smuggled="x"),
        event(1, "file_edit", path="../../etc/passwd"),
        event(1, "file_edit", path="/abs"),
        event(1, "commit", sha="not-a-sha"),
        event(1, "rationale_note", kind="gossip"),
        {**event(1), "ts": "2026-11-30T09:00:00"},  # no timezone
        event(0),
        {**event(1), "type": "traces.unknown"},
    ]
    for bad in cases:
        r = await send(client, tenant, tid, 1, [bad])
        body = r.json()
        assert r.status_code == 422, (bad, r.text)
        assert set(body) >= {"status", "code", "message"} and body["status"] == 422
    assert (await client.get(f"/v1/traces/{tid}", headers=tenant.headers)).json()["events"] == 0
    same_seq = await send(client, tenant, tid, 1, [event(1), event(1)])
    assert same_seq.status_code == 422 and same_seq.json()["field"] == "$.events[1].seq"
    bad_command = await client.post("/v1/traces", headers=tenant.headers, json={
        "repository": "x/y", "base_commit": "abcdef1", "task": "t", "test_command": ["rm", "-rf", "/"]})
    assert bad_command.status_code == 422 and bad_command.json()["field"] == "$.test_command"


async def test_gaps_are_reported_as_ranges_then_finalize(client, tenant, state):
    tid = await new_trace(client, tenant)
    events = story_json()
    await send(client, tenant, tid, 1, events[:2])
    await send(client, tenant, tid, 3, events[5:7])
    r = await client.post(f"/v1/traces/{tid}/finalize", json={"expected_events": 9}, headers=tenant.headers)
    assert r.status_code == 422 and r.json()["code"] == "sequence_gaps"
    assert [d["message"] for d in r.json()["details"]] == ["3-5", "8-9"]
    assert (await client.get(f"/v1/traces/{tid}", headers=tenant.headers)).json()["gaps"] == [
        {"first": 3, "last": 5}, {"first": 8, "last": 9}]
    await send(client, tenant, tid, 2, events[2:5])
    await send(client, tenant, tid, 4, events[7:])
    r = await client.post(f"/v1/traces/{tid}/finalize", json={"expected_events": 9}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    trace = r.json()
    assert trace["status"] == "finalized" and trace["gaps"] == []
    m = trace["metrics"]
    assert (m["events"], m["edits"], m["files_touched"], m["commands"], m["test_runs"]) == (9, 1, 1, 2, 2)
    assert m["fail_to_pass"] == 1 and m["time_to_first_green_s"] == 306.0 and m["duration_s"] == 390.0
    doc = msgspec.json.decode(await tenant_store(state, tenant.id).get(trace["document_key"]))
    assert len(doc["events"]) == 9 and doc["chained_through"] == 9
    late = await send(client, tenant, tid, 5, [event(10)])
    assert late.status_code == 409 and late.json()["code"] == "trace_finalized"
    twice = await client.post(f"/v1/traces/{tid}/finalize", json={}, headers=tenant.headers)
    assert twice.status_code == 200 and twice.json()["finalized_at"] == trace["finalized_at"]


async def test_artifacts_are_checked_against_their_hash_and_streamed_back(client, tenant, state):
    tid = await new_trace(client, tenant)
    data = b"0123456789abcdef" * 300_000  # 4.8 MB, several pieces each way
    wrong = await upload(client, tenant, tid, data, sha=hashlib.sha256(b"other").hexdigest())
    assert wrong.status_code == 422 and wrong.json()["code"] == "sha256_mismatch"
    assert not [o async for o in tenant_store(state, tenant.id).list("blobs/")], "nothing kept"
    bad_name = await upload(client, tenant, tid, data, sha="ABC")
    assert bad_name.status_code == 422 and bad_name.json()["field"] == "path.sha256"
    ok = await upload(client, tenant, tid, data, kind="output")
    assert ok.status_code == 201, ok.text
    sha = hashlib.sha256(data).hexdigest()
    assert ok.json() == {"sha256": sha, "size": len(data), "kind": "output", "key": f"blobs/sha256/{sha[:2]}/{sha}"}
    again = await upload(client, tenant, tid, data, kind="output")
    assert again.status_code == 201
    got = await client.get(f"/v1/traces/{tid}/artifacts/{sha}", headers=tenant.headers)
    assert got.status_code == 200 and got.content == data
    listed = (await client.get(f"/v1/traces/{tid}/artifacts", headers=tenant.headers)).json()
    assert [a["sha256"] for a in listed] == [sha]


async def test_idempotency_key_replays_a_create(client, tenant):
    body = {"repository": "x/y", "base_commit": "abcdef1", "task": "t"}
    headers = {**tenant.headers, "Idempotency-Key": "create-trace-1"}
    first = await client.post("/v1/traces", json=body, headers=headers)
    second = await client.post("/v1/traces", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("idempotent-replayed") == "true" and second.json()["id"] == first.json()["id"]


async def test_finalize_needs_events_and_a_known_workspace(client, tenant):
    tid = await new_trace(client, tenant)
    r = await client.post(f"/v1/traces/{tid}/finalize", json={}, headers=tenant.headers)
    assert r.status_code == 422 and r.json()["code"] == "no_events"
    await send(client, tenant, tid, 1, [event(1)])
    r = await client.post(f"/v1/traces/{tid}/finalize", json={"workspace_sha256": "0" * 64}, headers=tenant.headers)
    assert r.status_code == 422 and r.json()["field"] == "$.workspace_sha256"
    ws = workspace_tarball()
    assert (await upload(client, tenant, tid, ws)).status_code == 201
    r = await client.post(f"/v1/traces/{tid}/finalize", json={}, headers=tenant.headers)
    assert r.json()["workspace_sha256"] == hashlib.sha256(ws).hexdigest()
