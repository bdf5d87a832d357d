"""An in-process HTTP client for a Flywheel app, on the caller's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar


@asynccontextmanager
async def app_client(app: Litestar, *, timeout: float = 60) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's startup, yield an httpx client that calls it, then shut it down.

    Unlike Litestar's AsyncTestClient, which runs the app in a thread of its
    own, requests run on the current event loop, so a test can use the app's
    database pool and Redis connections between requests.
    """
    # The lifespan runs in a task of its own: it must be entered and exited in
    # the same task, while a session fixture's setup and teardown run in two.
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # raises the startup error
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=timeout) as client:
            yield client
    finally:
        stop.set()
        await task
