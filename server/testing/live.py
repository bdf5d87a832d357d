"""Serve an app over real HTTP from a background thread (for tools that need a URL)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from flywheel.server.http_timeouts import protocol_class
from flywheel.server.settings import Settings


def free_port() -> int:
    """A port free a moment ago: for a server in another process. In this one, `bound_socket`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bound_socket() -> socket.socket:
    """A socket bound to a free port of 127.0.0.1, for ``uvicorn.Server.serve(sockets=[sock])``:
    the port is ours from the moment it is picked, where `free_port`'s may be taken before use."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serving(app, **config) -> AsyncIterator[int]:
    """``async with serving(app) as port:`` uvicorn serving an ASGI app on this event loop (a fake
    upstream, a webhook receiver), on a port bound here; it is stopped when the block ends."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on",
                                           **config))
    server.install_signal_handlers = lambda: None
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done():
            task.result()  # it could not start: say why
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start in 30 s")
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


class LiveServer:
    """``with LiveServer(app) as live: ...`` runs uvicorn (lifespan included) on a free port.

    It serves with Flywheel's slow-client timeouts (server/http_timeouts.py),
    the settings' defaults unless `http_header_timeout_s` / `http_body_timeout_s` say.
    """

    def __init__(self, app, port: int | None = None, *, http_header_timeout_s: float | None = None,
                 http_body_timeout_s: float | None = None) -> None:
        self.sock = bound_socket() if port is None else None
        self.port = port or self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        defaults = Settings()
        http = protocol_class(http_header_timeout_s or defaults.http_header_timeout_s,
                              http_body_timeout_s or defaults.http_body_timeout_s)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                access_log=False, lifespan="on", http=http)
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # not the main thread
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve(sockets=[self.sock] if self.sock is not None else None)

    def run(self, coro, timeout: float = 30):
        """Run `coro` on the server's event loop (where the app's pools live)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
