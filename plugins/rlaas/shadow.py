"""Shadow calls: a mirrored copy of a request to each shadow policy, in the background.

The answer never waits for them and never changes because of them. They are
bounded: at most `shadow_concurrency` run at once, and a request that finds
the pool full is dropped for that shadow and counted
(`flywheel_rlaas_shadow_dropped_total`), because a slow shadow upstream must
not pile up tasks and memory until the server falls over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import structlog
from prometheus_client import Counter

log = structlog.get_logger("flywheel.rlaas")
SHADOWS = "rlaas.shadows"
DROPPED = Counter("flywheel_rlaas_shadow_dropped_total", "Shadow calls dropped because the shadow pool was full")
STARTED = Counter("flywheel_rlaas_shadow_started_total", "Shadow calls started")


class ShadowPool:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.tasks: set[asyncio.Task] = set()
        self.dropped = 0
        self.started = 0

    def offer(self, call: Coroutine[Any, Any, None]) -> bool:
        """Run `call` in the background if there is room; else close it unrun and count the drop."""
        if len(self.tasks) >= self.limit:
            call.close()
            self.dropped += 1
            DROPPED.inc()
            return False
        task = asyncio.create_task(self._guarded(call))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        self.started += 1
        STARTED.inc()
        return True

    async def _guarded(self, call: Coroutine[Any, Any, None]) -> None:
        try:
            await call
        except Exception:
            log.exception("shadow call failed")

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self.tasks, return_exceptions=True)
