"""Slow clients are timed out (server/http_timeouts.py), over real sockets to a real uvicorn.

The servers' timeouts are 1 s; a close must come within a generous 10 s
(BOUND; 6 s where the 10 s default must be told apart).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from litestar import Litestar, Request, get, post

from flywheel.server import http_timeouts
from flywheel.server.testing.live import LiveServer, free_port

BOUND = 10.0  # seconds: a server-side close must come within this
TIMEOUT = 1.0  # the header and body timeouts of the servers under test


@get("/")
async def hello() -> str:
    return "hello"


@post("/count")
async def count(request: Request) -> dict:
    return {"bytes": len(await request.body())}


APP = Litestar([hello, count])
PROTOCOLS = [http_timeouts.HttpProtocol, http_timeouts.H11TimeoutProtocol]


@pytest.fixture(params=PROTOCOLS, ids=lambda cls: cls.__name__)
def live(request):
    server = LiveServer(APP, http_header_timeout_s=TIMEOUT, http_body_timeout_s=TIMEOUT)
    # The same timeouts on the protocol under test (uvicorn loads it when serving starts).
    server.server.config.http = type("Proto", (request.param,), {
        "header_timeout_s": TIMEOUT, "body_timeout_s": TIMEOUT})
    with server:
        with _connect(server):  # the server's connections are of the protocol under test
            deadline = time.monotonic() + BOUND
            while not server.server.server_state.connections and time.monotonic() < deadline:
                time.sleep(0.01)
            protocols = {type(c) for c in server.server.server_state.connections}
            assert protocols and all(issubclass(t, request.param) for t in protocols), protocols
        yield server


def _connect(live: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", live.port))
    sock.settimeout(BOUND)
    return sock


def _read_to_eof(sock: socket.socket, deadline: float) -> bytes:
    """Everything the server sends until it closes; fails past `deadline`."""
    data = b""
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # not a close the server chose: say so
            return data + b"<reset>"
        except TimeoutError:
            raise AssertionError(f"still open at the deadline; got {data[:80]!r}") from None
        if not chunk:
            return data
        data += chunk


def _read_response(sock: socket.socket) -> bytes:
    """One complete response with a content-length (the connection stays open)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _timed_out(data: bytes) -> bool:
    return data == b"" or data.startswith(b"HTTP/1.1 408 ")


def test_half_a_request_line_is_closed(live):
    with _connect(live) as sock:
        sock.sendall(b"GET / HT")
        started = time.monotonic()
        data = _read_to_eof(sock, started + BOUND)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert time.monotonic() - started > TIMEOUT * 0.9, "not before the timeout"


def test_a_connection_that_sends_nothing_is_closed(live):
    with _connect(live) as sock:
        assert _read_to_eof(sock, time.monotonic() + BOUND) == b"", "closed, without a 408"


def test_a_kept_alive_connection_cannot_dribble_its_next_request(live):
    with _connect(live) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
        deadline = time.monotonic() + BOUND
        closed = False
        # A byte every 0.2 s: never idle (the keep-alive timeout), never done.
        for byte in b"GET / HTTP/1.1\r\nHost: " + b"t" * 100:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sock.settimeout(0.2)
            try:
                if _timed_out(sock.recv(65536)):
                    closed = True
                    break
            except TimeoutError:
                pass
            assert time.monotonic() < deadline, "the dribbling client was not closed"
        assert closed


def test_a_stalled_body_gets_408(live):
    with _connect(live) as sock:
        sock.sendall(b"POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        data = _read_to_eof(sock, time.monotonic() + BOUND)
    assert data.startswith(b"HTTP/1.1 408 "), data


def test_a_slow_but_steady_body_goes_through(live):
    chunks = [b"x" * 100] * 10  # 3 s in all: longer than either timeout
    with _connect(live) as sock:
        sock.sendall(b"POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                     % sum(map(len, chunks)))
        for chunk in chunks:
            time.sleep(0.3)
            sock.sendall(chunk)
        response = _read_response(sock)
    assert response.startswith(b"HTTP/1.1 201 "), response
    assert response.endswith(b'{"bytes":1000}')


def test_many_slow_header_connections_are_all_closed(live):
    socks = [_connect(live) for _ in range(200)]
    try:
        for sock in socks:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        deadline = time.monotonic() + BOUND
        answers = [_read_to_eof(sock, deadline) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert sum(_timed_out(a) for a in answers) == 200
    assert sum(a.startswith(b"HTTP/1.1 408 ") for a in answers) == 200
    assert not live.server.server_state.connections, "the server holds none of them"
    assert httpx.get(f"{live.url}/").text == "hello", "and still serves"


def test_defaults_come_from_the_settings():
    from flywheel.server.settings import load_settings

    settings = load_settings({"FLYWHEEL_HTTP_HEADER_TIMEOUT_S": "3",
                              "FLYWHEEL_HTTP_BODY_TIMEOUT_S": "4"})
    cls = http_timeouts.protocol_class(settings.http_header_timeout_s, settings.http_body_timeout_s)
    assert (cls.header_timeout_s, cls.body_timeout_s) == (3.0, 4.0)
    assert issubclass(cls, http_timeouts.HttpProtocol)
    live = LiveServer(APP)  # the settings' defaults unless told
    http = live.server.config.http
    assert (http.header_timeout_s, http.body_timeout_s) == (10.0, 30.0)


async def _ensure_partitions(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        today = date.today()
        await conn.fetchval("SELECT flywheel_ensure_event_partitions($1, $2)",
                            today - timedelta(days=1), today + timedelta(days=8))
    finally:
        await conn.close()


@pytest.mark.slow
def test_flywheel_serve_workers_use_the_timeouts(flywheel_settings, tmp_path):
    """`flywheel serve --workers 2`: spawned workers import the protocol by name and set
    its timeouts from the environment."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": flywheel_settings.database_url,
           "REDIS_URL": flywheel_settings.redis_url,
           "FLYWHEEL_STORE_URL": flywheel_settings.store_url,
           "FLYWHEEL_DATA_DIR": flywheel_settings.data_dir, "FLYWHEEL_PORT": str(port),
           "FLYWHEEL_HTTP_HEADER_TIMEOUT_S": "1"}
    flywheel = str(Path(sys.executable).parent / "flywheel")
    # Workers starting at once on a database without this week's event partitions race
    # to create them (a startup failure, not this test's subject): make them first.
    subprocess.run([flywheel, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    asyncio.run(_ensure_partitions(flywheel_settings.database_url))
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([flywheel, "serve", "--workers", "2"], env=env, stdout=out,
                                stderr=out)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"flywheel serve exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "flywheel serve did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        # Several connections, so that both workers most likely take some.
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        # 6 s: five times the 1 s asked for, and short of the 10 s default a worker
        # that missed the setting would use.
        deadline = time.monotonic() + 6
        answers = [_read_to_eof(sock, deadline) for sock in socks]
        for sock in socks:
            sock.close()
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), (answers, log.read_text())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
