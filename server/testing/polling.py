"""Waiting for something a test cannot await directly (a drain, a subscriber, a job)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(check: Callable[[], Any | Awaitable[Any]], *, timeout: float = 30.0,
                     interval: float = 0.05, what: str | None = None) -> Any:
    """Call `check` (sync or async) until it returns something truthy; return that.

    Raises AssertionError after `timeout` seconds, saying `what` was awaited
    and what `check` returned last. Exceptions from `check` propagate: a
    check that cannot run is a failing test, not a reason to keep waiting.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout:g} s (last: {result!r})")
        await asyncio.sleep(interval)
