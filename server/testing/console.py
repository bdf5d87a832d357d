"""An in-process client for console pages: its own cookies, a browser's Origin header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar


@asynccontextmanager
async def console_client(app: Litestar, key: str | None = None, *,
                         base_url: str = "http://testserver") -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling `app` (already started) with a cookie jar of its own.

    With `key`, it signs in to the console first. Like a browser, it sends
    ``Origin: <base_url>`` with every request, so console forms pass the
    same-origin check; it does not follow redirects.
    """
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base_url, headers={"Origin": base_url},
                                 follow_redirects=False) as client:
        if key is not None:
            r = await client.post("/console/login", data={"key": key})
            if r.status_code != 303:
                raise AssertionError(f"console sign-in failed: {r.status_code} {r.text[:300]}")
        yield client
