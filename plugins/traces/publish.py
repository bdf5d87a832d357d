"""A trace's events in the core's events table too: `GET /v1/events`, the archive, Parquet, subscribers.

A chunk is committed to the trace's own tables first (they hold the chain,
the record of the trace); its new events are then handed to `ingest_events`,
which scrubs PII and stores each event id once. A chunk retried after its
commit (the process died, or the ingestion queue answered 503) is answered
as a replay and hands all its events on again, so every event reaches the
events table at least once and is stored there once.
"""

from __future__ import annotations

from uuid import UUID

from flywheel.server.plugin_api import AppState, Unavailable, ingest_events


async def publish(state: AppState, tenant_id: UUID, events: list) -> tuple[int | None, int]:
    """(events the events table now holds of these, events it refused); (None, 0) where this
    process has no ingestion engine (a CLI command, a worker): the trace alone keeps them."""
    if not events:
        return 0, 0
    try:
        result = await ingest_events(state, tenant_id, events)
    except Unavailable as exc:
        if exc.code != "ingest_unavailable":
            raise  # a full queue or Postgres away: 503, and the client's retry hands them on again
        return None, 0
    # Events are valid Structs already: the only refusal left is a timestamp outside the
    # partitions the events table keeps (FLYWHEEL_EVENTS_MAX_AGE_DAYS, a day ahead).
    return result.accepted + result.duplicate, result.rejected
