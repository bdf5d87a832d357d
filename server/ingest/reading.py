"""Reading a tenant's stored events back, for plugins' jobs (the public `stored_events`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

import msgspec
import structlog

from flywheel.contracts.events import Event

if TYPE_CHECKING:
    from flywheel.server.state import AppState

log = structlog.get_logger("flywheel.ingest")
E = TypeVar("E", bound=Event)

# `day` bounds the scan to the partitions in range; `ts` is the exact bound.
_QUERY = """
SELECT body::text FROM events
WHERE tenant_id = $1 AND type = $2
  AND ts >= $3 AND day >= ($3 AT TIME ZONE 'UTC')::date
  AND ($4::timestamptz IS NULL OR (ts < $4 AND day <= ($4 AT TIME ZONE 'UTC')::date))
ORDER BY ts, event_id"""


async def stored_events(state: AppState, tenant_id: UUID, event_type: type[E], since: datetime,
                        until: datetime | None = None, *, batch: int = 5000) -> AsyncIterator[list[E]]:
    """The tenant's events of `event_type` with `since <= ts < until`, oldest first, in lists
    of at most `batch`, decoded into `event_type` (PII already scrubbed, as stored).

    Read through a server-side cursor: memory stays bounded by `batch`,
    whatever the range holds. A stored body that no longer decodes (the type
    changed since) is skipped and counted in a warning.
    """
    tag = event_type.__struct_config__.tag
    decode = msgspec.json.Decoder(event_type).decode
    skipped = 0
    async with state.db.acquire() as conn, conn.transaction():
        out: list[E] = []
        async for record in conn.cursor(_QUERY, tenant_id, tag, since, until, prefetch=batch):
            try:
                out.append(decode(record[0]))
            except (msgspec.ValidationError, msgspec.DecodeError):
                skipped += 1
                continue
            if len(out) >= batch:
                yield out
                out = []
        if out:
            yield out
    if skipped:
        log.warning("stored events skipped: they no longer decode as their type", type=tag, events=skipped)
