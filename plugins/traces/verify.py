"""`GET /v1/traces/{id}/verify`: recompute the chain from the stored events, report the first broken link.

Each stored hash is checked against HMAC(key of its version, the previous
stored hash + the stored body), so a change shows at the event changed; a
body whose seq or id differs from its row's is an event moved (reordered);
a missing seq is a deletion, and so is a chain that ends before the head
recorded on the trace.
"""

from __future__ import annotations

import hmac
from uuid import UUID

import msgspec

from flywheel.plugins.traces import chain
from flywheel.plugins.traces.contracts import ChainLink, ChainReport
from flywheel.plugins.traces.gaps import gaps_in
from flywheel.server.plugin_api import AppState, NotFound

_TRACE = "SELECT chained_through, chain_head FROM traces WHERE id = $1 AND tenant_id = $2"
_EVENTS = """SELECT event_id, seq, body, hash, key_version FROM traces_events
             WHERE trace_id = $1 AND tenant_id = $2 ORDER BY seq"""


class _Ids(msgspec.Struct):
    event_id: UUID
    seq: int


async def verify_chain(state: AppState, tenant_id: UUID, trace_id: UUID) -> ChainReport:
    async with state.db.acquire() as conn:
        trace = await conn.fetchrow(_TRACE, trace_id, tenant_id)
        if trace is None:
            raise NotFound("no such trace")
        rows = await conn.fetch(_EVENTS, trace_id, tenant_id)
        keys = await chain.all_keys(state, conn, tenant_id)
    previous, checked = chain.genesis(trace_id), 0
    for expected, row in enumerate(rows, start=1):
        if row["hash"] is None:
            break  # not chained yet: waits behind a missing seq
        problem = _problem(row, expected, previous, keys)
        if problem:
            return ChainReport(ok=False, checked=checked, gaps=gaps_in([r["seq"] for r in rows]),
                               first_broken=ChainLink(seq=row["seq"], event_id=row["event_id"], problem=problem))
        previous, checked = row["hash"], checked + 1
    tail = _tail_problem(trace, rows, checked, previous)
    if tail is not None:
        return ChainReport(ok=False, checked=checked, first_broken=tail, gaps=gaps_in([r["seq"] for r in rows]))
    return ChainReport(ok=True, checked=checked, gaps=gaps_in([r["seq"] for r in rows]))


def _problem(row, expected: int, previous: bytes, keys: dict[int, bytes]) -> str | None:
    if row["seq"] != expected:
        return f"events {expected}-{row['seq'] - 1} are missing (deleted)"
    try:
        ids = msgspec.json.decode(row["body"], type=_Ids)
    except msgspec.DecodeError:
        return "the stored event is not valid JSON (changed)"
    if ids.seq != row["seq"] or ids.event_id != row["event_id"]:
        return "the event is not where it was chained (reordered)"
    key = keys.get(row["key_version"])
    if key is None:
        return f"key version {row['key_version']} is unknown"
    if not hmac.compare_digest(chain.link(key, previous, bytes(row["body"])), row["hash"]):
        return "the hash does not match: this event, or the link to the one before it, changed"
    return None


def _tail_problem(trace, rows, checked: int, head: bytes) -> ChainLink | None:
    through = trace["chained_through"]
    if checked < through:
        last = rows[checked - 1] if checked else None
        return ChainLink(seq=checked + 1, event_id=last["event_id"] if last else UUID(int=0),
                         problem=f"events {checked + 1}-{through} were chained and are gone (deleted)")
    if through and not hmac.compare_digest(head, trace["chain_head"] or b""):
        return ChainLink(seq=through, event_id=rows[checked - 1]["event_id"],
                         problem="the chain's last hash is not the head recorded on the trace")
    return None
