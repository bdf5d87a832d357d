"""A trace's events in seq order, as the API and the console show them."""

from __future__ import annotations

from uuid import UUID

import msgspec

from flywheel.plugins.traces.contracts import EventRead
from flywheel.server.plugin_api import AppState

_EVENTS = """SELECT seq, event_id, kind, ts, body, hash FROM traces_events
             WHERE tenant_id = $1 AND trace_id = $2 ORDER BY seq LIMIT $3"""


async def trace_events(state: AppState, tenant_id: UUID, trace_id: UUID, *, limit: int = 10_000) -> list[EventRead]:
    rows = await state.db.fetch(_EVENTS, tenant_id, trace_id, limit)
    return [EventRead(seq=r["seq"], event_id=r["event_id"], kind=r["kind"], ts=r["ts"],
                      event=msgspec.json.decode(r["body"]), hash=r["hash"].hex() if r["hash"] else None)
            for r in rows]
