"""Recording gateway calls as `rlaas.interaction` events, off the answer's path.

The gateway hands each finished call to `record`, which only appends to a
list; one task sends what has gathered to the ingestion engine every
`FLUSH_S` (or at `BATCH` events), so the answer never waits on storage. The
engine then does what it does for `POST /v1/events`: scrubs PII, spools to
disk when Postgres is down, and calls the projection. What is still in the
list when the process stops is flushed by `stop`. A process killed with
SIGKILL loses at most the last `FLUSH_S` of records (the answers were sent).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from uuid import UUID

import structlog

from flywheel.plugins.rlaas.contracts import Interaction
from flywheel.server.plugin_api import ingest_events

log = structlog.get_logger("flywheel.rlaas")
RECORDER = "rlaas.recorder"
FLUSH_S = 0.05
BATCH = 500


class Recorder:
    def __init__(self, state: Any) -> None:
        self.state = state
        self.pending: dict[UUID, list[Interaction]] = {}
        self.count = 0
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.failed = 0

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    def record(self, tenant_id: UUID, event: Interaction) -> None:
        self.pending.setdefault(tenant_id, []).append(event)
        self.count += 1
        if self.count >= BATCH:
            self.wake.set()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.flush()

    async def flush(self) -> None:
        pending, self.pending, self.count = self.pending, {}, 0
        for tenant_id, events in pending.items():
            try:
                result = await ingest_events(self.state, tenant_id, events)
            except Exception:
                self.failed += len(events)
                log.exception("interactions not recorded", tenant_id=str(tenant_id), events=len(events))
                continue
            if result.rejected:
                self.failed += result.rejected
                log.warning("interactions refused", tenant_id=str(tenant_id), rejected=result.rejected,
                            first=result.errors[0].message if result.errors else None)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), FLUSH_S)
            self.wake.clear()
            if self.count:
                await self.flush()
