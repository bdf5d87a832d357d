"""Finalization: check continuity, compute metrics, write the trace document, queue QA.

Gaps are reported as ranges (and kept on the trace) and the trace stays
open, so the missing chunks can still be sent. Finalizing twice answers the
finalized trace again without queueing QA a second time.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from flywheel.contracts.errors import ErrorDetail
from flywheel.plugins.traces.contracts import Finalize, TraceRead
from flywheel.plugins.traces.events import TraceEvent
from flywheel.plugins.traces.gaps import gaps_in
from flywheel.plugins.traces.jobs_payload import TraceJob
from flywheel.plugins.traces.metrics import compute_metrics
from flywheel.plugins.traces.traces import get_trace
from flywheel.server.plugin_api import AppState, InvalidInput, NotFound, enqueue, tenant_store

_decode_event = msgspec.json.Decoder(TraceEvent).decode
_LOCK = "SELECT status, chain_head, chained_through FROM traces WHERE id = $1 AND tenant_id = $2 FOR UPDATE"
_EVENTS = "SELECT seq, body FROM traces_events WHERE trace_id = $1 AND tenant_id = $2 ORDER BY seq"


def document_key(trace_id: UUID) -> str:
    return f"traces/{trace_id}/trace.json"


async def finalize(state: AppState, tenant_id: UUID, trace_id: UUID, body: Finalize, *,
                   queue_qa: bool = True) -> TraceRead:
    """`queue_qa=False`: the caller runs QA itself (the CLI, with `run_here`)."""
    async with state.db.acquire() as conn, conn.transaction():
        trace = await conn.fetchrow(_LOCK, trace_id, tenant_id)
        if trace is None:
            raise NotFound("no such trace")
        if trace["status"] != "open":
            return await get_trace(state, tenant_id, trace_id)
        rows = await conn.fetch(_EVENTS, trace_id, tenant_id)
        gaps = gaps_in([r["seq"] for r in rows], body.expected_events)
        if not gaps and rows:
            workspace = await _workspace(conn, tenant_id, trace_id, body.workspace_sha256)
            events = [_decode_event(r["body"]) for r in rows]
            metrics = compute_metrics(events)
            await _write_document(state, tenant_id, trace_id, trace, events, metrics)
            await conn.execute(
                "UPDATE traces SET status = 'finalized', finalized_at = now(), metrics = $3, gaps = '[]', "
                "workspace_sha256 = $4, document_key = $5 WHERE id = $1 AND tenant_id = $2", trace_id, tenant_id,
                metrics, workspace, document_key(trace_id))
    if not rows:
        raise InvalidInput("the trace has no events yet", code="no_events")
    if gaps:
        await state.db.execute("UPDATE traces SET gaps = $3 WHERE id = $1 AND tenant_id = $2", trace_id, tenant_id,
                               gaps)
        ranges = ", ".join(f"{g.first}-{g.last}" if g.first != g.last else str(g.first) for g in gaps)
        raise InvalidInput(f"events are missing: seq {ranges}", code="sequence_gaps", field="$.events",
                           details=[ErrorDetail(code="gap", message=f"{g.first}-{g.last}") for g in gaps])
    if queue_qa:
        await enqueue(state, "traces.qa", TraceJob(trace_id=trace_id), tenant_id=tenant_id)
    return await get_trace(state, tenant_id, trace_id)


async def _workspace(conn, tenant_id: UUID, trace_id: UUID, named: str | None) -> str | None:
    """The workspace tarball QA runs: the one named, else the last one uploaded (or none)."""
    rows = await conn.fetch("SELECT sha256 FROM traces_artifacts WHERE tenant_id = $1 AND trace_id = $2 "
                            "AND kind = 'workspace' ORDER BY created_at DESC", tenant_id, trace_id)
    found = [r["sha256"] for r in rows]
    if named is None:
        return found[0] if found else None
    if named not in found:
        raise InvalidInput("no workspace artifact with that SHA-256 was uploaded to this trace",
                           field="$.workspace_sha256")
    return named


async def _write_document(state, tenant_id, trace_id, trace, events, metrics) -> None:
    document = {"trace_id": str(trace_id), "chain_head": (trace["chain_head"] or b"").hex(),
                "chained_through": trace["chained_through"], "metrics": metrics, "events": events}
    await tenant_store(state, tenant_id).put(document_key(trace_id), msgspec.json.encode(document),
                                             content_type="application/json")
