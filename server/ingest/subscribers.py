"""Passing committed events to plugins (`on_events_committed`), off the request path.

The engine hands every committed group to `offer()`, which only enqueues.
One task decodes the stored bodies back into events (as stored: PII already
scrubbed) and calls the hook, tenant by tenant. An implementation marked
with `@subscribe(...)` gets only the types it named, and only those types
are decoded at all: decoding every event again for a subscriber that wants
one type would cost as much as the intake's own decoding. When subscribers
fall behind and the queue fills, groups are dropped and counted: plugins
must be able to rebuild their state from the `events` table, which always
has everything.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import operator
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from flywheel.server.hooks import call_impl, implementations
from flywheel.server.ingest import metrics as m
from flywheel.server.ingest.rows import EventRow

if TYPE_CHECKING:
    from flywheel.server.state import AppState

log = structlog.get_logger("flywheel.ingest")
QUEUE_GROUPS = 256


class Subscribers:
    def __init__(self, state: AppState, event_types: list[type]) -> None:
        self.state = state
        union: Any = functools.reduce(operator.or_, event_types)
        self.decoder = msgspec.json.Decoder(union)
        self.queue: asyncio.Queue[list[EventRow]] = asyncio.Queue(maxsize=QUEUE_GROUPS)
        # (implementation, the event tags it wants or None for all)
        self.impls = [(impl, getattr(impl.function, "flywheel_event_types", None))
                      for impl in implementations(state.pm, "on_events_committed")]
        wanted = [tags for _, tags in self.impls]
        self.wanted: frozenset[str] | None = None if None in wanted else frozenset().union(*wanted)
        self.enabled = bool(self.impls)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await self.queue.join()  # hand over what was committed before stopping
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def offer(self, rows: list[EventRow]) -> None:
        if not self.enabled:
            return
        if self.wanted is not None:
            rows = [row for row in rows if row.type in self.wanted]
            if not rows:
                return
        try:
            self.queue.put_nowait(rows)
        except asyncio.QueueFull:
            m.DROPPED_NOTIFICATIONS.inc()
            log.warning("on_events_committed subscribers are behind; dropped a group", events=len(rows))

    async def _run(self) -> None:
        while True:
            rows = await self.queue.get()
            try:
                await self._dispatch(rows)
            except Exception:
                log.exception("on_events_committed dispatch failed")
            finally:
                self.queue.task_done()

    async def _dispatch(self, rows: list[EventRow]) -> None:
        by_tenant: dict[Any, list] = collections.defaultdict(list)
        for row in rows:
            by_tenant[row.tenant_id].append((row.type, self.decoder.decode(row.body)))
        trace = self.state.settings.trace_hooks
        for tenant_id, typed in by_tenant.items():
            for impl, tags in self.impls:
                events = [e for t, e in typed if t in tags] if tags is not None else [e for _, e in typed]
                if events:
                    # isolate: a failing plugin is logged and skipped, never retried into a loop
                    await call_impl(impl, "on_events_committed", {"state": self.state, "tenant_id": tenant_id,
                                                                  "events": events}, isolate=True, trace_calls=trace)
