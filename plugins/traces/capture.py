"""Chunks: numbered, in any order; a retried chunk changes nothing; events deduplicated by id.

Each chunk is one transaction holding the trace's row lock, so chunks of one
trace apply one at a time and the chain advances without races. Events are
stored as canonical bytes; the chain covers every event from seq 1 up to the
first missing one, hashed as they become contiguous (a chunk that fills a
gap chains the events that waited behind it). Once committed, the events go
on to the core's events table as well (publish.py).
"""

from __future__ import annotations

import hashlib
from uuid import UUID

from flywheel.plugins.traces import chain
from flywheel.plugins.traces.contracts import Chunk, ChunkResult
from flywheel.plugins.traces.events import KIND
from flywheel.plugins.traces.publish import publish
from flywheel.server.plugin_api import AppState, Conflict, InvalidInput, NotFound

_LOCK = "SELECT status, chained_through, chain_head FROM traces WHERE id = $1 AND tenant_id = $2 FOR UPDATE"
_PRIOR = "SELECT digest, accepted, duplicate FROM traces_chunks WHERE trace_id = $1 AND chunk_no = $2"
_TAKEN = """SELECT event_id, seq FROM traces_events
            WHERE trace_id = $1 AND (event_id = ANY($2::uuid[]) OR seq = ANY($3::int[]))"""
_WAITING = "SELECT event_id, seq, body FROM traces_events WHERE trace_id = $1 AND seq > $2 ORDER BY seq"
_COLUMNS = ["tenant_id", "trace_id", "event_id", "seq", "kind", "ts", "body", "hash", "key_version"]
MAX_CHUNK_NO = 1_000_000


async def add_chunk(state: AppState, tenant_id: UUID, trace_id: UUID, chunk_no: int, chunk: Chunk) -> ChunkResult:
    if not 1 <= chunk_no <= MAX_CHUNK_NO:
        raise InvalidInput(f"chunk numbers run from 1 to {MAX_CHUNK_NO}", field="path.chunk_no")
    events = _unique(chunk)
    bodies = {e.event_id: chain.canonical(e) for e in events}
    digest = hashlib.sha256(b"".join(bodies[e.event_id] for e in events)).hexdigest()
    result, new = await _commit(state, tenant_id, trace_id, chunk_no, events, bodies, digest)
    # After the commit: the events table must never hold an event the trace refused.
    result.events_table, result.events_table_refused = await publish(
        state, tenant_id, events if result.replayed else new)
    return result


async def _commit(state, tenant_id: UUID, trace_id: UUID, chunk_no: int, events: list, bodies: dict,
                  digest: str) -> tuple[ChunkResult, list]:
    """The chunk applied in one transaction under the trace's lock; with the events it stored."""
    async with state.db.acquire() as conn, conn.transaction():
        trace = await conn.fetchrow(_LOCK, trace_id, tenant_id)
        if trace is None:
            raise NotFound("no such trace")
        prior = await conn.fetchrow(_PRIOR, trace_id, chunk_no)
        if prior is not None:
            if prior["digest"] != digest:
                raise Conflict(f"chunk {chunk_no} was received before with other events", field="path.chunk_no")
            return ChunkResult(chunk=chunk_no, accepted=prior["accepted"], duplicate=prior["duplicate"],
                               replayed=True, chained_through=trace["chained_through"]), []
        if trace["status"] != "open":
            raise Conflict("the trace is finalized: it takes no more chunks", code="trace_finalized")
        fresh = await _fresh(conn, trace_id, events)
        through, _ = await _store(state, conn, tenant_id, trace_id, trace, fresh, bodies)
        await conn.execute("INSERT INTO traces_chunks (tenant_id, trace_id, chunk_no, digest, accepted, duplicate) "
                           "VALUES ($1, $2, $3, $4, $5, $6)", tenant_id, trace_id, chunk_no, digest, len(fresh),
                           len(events) - len(fresh))
    return ChunkResult(chunk=chunk_no, accepted=len(fresh), duplicate=len(events) - len(fresh),
                       chained_through=through), fresh


def _unique(chunk: Chunk) -> list:
    """The chunk's events, each id once; two different events claiming one seq are refused."""
    by_id, by_seq = {}, {}
    for i, event in enumerate(chunk.events):
        if event.event_id in by_id:
            continue
        other = by_seq.get(event.seq)
        if other is not None:
            raise InvalidInput(f"events {other} and {i} both have seq {event.seq}", field=f"$.events[{i}].seq")
        by_id[event.event_id] = event
        by_seq[event.seq] = i
    return list(by_id.values())


async def _fresh(conn, trace_id: UUID, events: list) -> list:
    taken = await conn.fetch(_TAKEN, trace_id, [e.event_id for e in events], [e.seq for e in events])
    known_ids = {r["event_id"] for r in taken}
    seq_owner = {r["seq"]: r["event_id"] for r in taken}
    fresh = []
    for event in events:
        if event.event_id in known_ids:
            continue  # stored before: once is enough
        if event.seq in seq_owner:
            raise Conflict(f"seq {event.seq} already belongs to another event", field="$.events",
                           code="seq_taken")
        fresh.append(event)
    return fresh


async def _store(state, conn, tenant_id, trace_id, trace, fresh, bodies) -> tuple[int, bytes]:
    """Insert the new events, hashing those that extend the chain; returns the new (through, head)."""
    through = trace["chained_through"]
    head = trace["chain_head"] or chain.genesis(trace_id)
    version, key = await chain.active_key(state, conn, tenant_id)
    waiting = {r["seq"]: (r["event_id"], r["body"]) for r in await conn.fetch(_WAITING, trace_id, through)}
    new = {e.seq: e for e in fresh}
    hashes: dict[int, bytes] = {}
    while (nxt := through + 1) in new or nxt in waiting:
        body = bodies[new[nxt].event_id] if nxt in new else waiting[nxt][1]
        head = hashes[nxt] = chain.link(key, head, body)
        through = nxt
    await conn.copy_records_to_table("traces_events", columns=_COLUMNS, records=[
        (tenant_id, trace_id, e.event_id, e.seq, KIND[type(e)], e.ts, bodies[e.event_id], hashes.get(e.seq),
         version if e.seq in hashes else None) for e in fresh])
    earlier = [(trace_id, waiting[s][0], h, version) for s, h in hashes.items() if s in waiting]
    if earlier:
        await conn.executemany("UPDATE traces_events SET hash = $3, key_version = $4 "
                               "WHERE trace_id = $1 AND event_id = $2", earlier)
    await conn.execute("UPDATE traces SET chained_through = $2, chain_head = $3 WHERE id = $1",
                       trace_id, through, head)
    return through, head
