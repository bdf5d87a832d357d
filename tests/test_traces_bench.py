"""benchmarks.traces' own parts: its chunks are valid for Flywheel and for the peer alike, and its load
generator counts what the server stored (the README's figures rest on those counts)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import msgspec
from traces_helpers import new_trace

from benchmarks.traces import EVENTS, chunk_body
from flywheel.plugins.traces.contracts import Chunk

ROOT = Path(__file__).resolve().parents[1]


def test_a_chunk_is_valid_for_flywheel_and_the_peer():
    from benchmarks.peers.traces_fastapi.app import Chunk as PeerChunk

    body = chunk_body(11, 10)
    ours = msgspec.json.decode(body, type=Chunk)
    assert [e.seq for e in ours.events] == list(range(11, 21))
    assert {type(e).__struct_config__.tag for e in ours.events} == {f"traces.{kind}" for kind, _ in EVENTS}
    peer = PeerChunk.model_validate_json(body)
    assert [str(e.event_id) for e in peer.events] == [str(e.event_id) for e in ours.events]


async def test_the_load_generator_counts_what_was_stored(live_server, tenant, client, database):
    traces = [await new_trace(client, tenant) for _ in range(2)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.traces", "--loadgen", live_server.url, json.dumps(traces), "20", "1",
        f"Authorization: Bearer {tenant.key}", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    result = json.loads(lines[-1])
    assert lines[0] == "load started" and result["statuses"] == {"200": result["chunks"]} and result["chunks"] > 0
    assert result["events"] == result["chunks"] * 20
    stored = await database.fetchval("SELECT count(*) FROM traces_events WHERE tenant_id = $1", tenant.id)
    in_table = await database.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", tenant.id)
    assert stored == in_table == result["events"], "each acknowledged event stored once, in both places"
    for tid in traces:
        report = (await client.get(f"/v1/traces/{tid}/verify", headers=tenant.headers)).json()
        assert report["ok"] and report["gaps"] == []
