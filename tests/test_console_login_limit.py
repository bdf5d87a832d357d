"""Failed console sign-ins are limited per client address and per key prefix, in real Redis.

Each test signs in from client addresses of its own (the ASGI scope's
`client`, never a real network address) with fresh tenants' keys, and clears
the counters it used, so no test sees another's failures.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import socket
from contextlib import asynccontextmanager

import httpx
import pytest
import redis.asyncio
import structlog

from flywheel.server.console.ratelimit import (
    PER_ADDRESS,
    PER_KEY_PREFIX,
    client_address,
    sign_in_limiter,
)


def new_address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def wrong_key(prefix: str | None = None) -> str:
    """A key of the right shape: an unknown prefix, or `prefix` with a wrong secret."""
    return f"fw_{prefix or secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def prefix_of(key: str) -> str:
    return key.split("_")[1]


@pytest.fixture
async def sign_in(app, state, monkeypatch):
    """``await sign_in(address, key)``: POST the form from that client address.

    The counters of every address and key used are cleared after the test. The limiter
    waits up to 5 s for Redis here, not 0.5 s: one slow call on a loaded machine would
    fail open and let one attempt more through than the limit these tests count.
    """
    from flywheel.server.console import ratelimit

    monkeypatch.setattr(ratelimit, "REDIS_TIMEOUT_S", 5.0)
    used: list[tuple[str, str]] = []

    async def post(address: str, key: str) -> httpx.Response:
        used.append((address, key))
        async with _client(app, address) as c:
            return await c.post("/console/login", data={"key": key, "next": "/console/"})

    yield post
    limiter = sign_in_limiter(state)
    for address, key in used:
        await limiter.clear(address, key)


@asynccontextmanager
async def _client(app, address: str):
    transport = httpx.ASGITransport(app=app, client=(address, 123))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 headers={"Origin": "http://testserver"}) as c:
        yield c


def assert_limited(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= 60 and "set-cookie" not in r.headers
    assert "Too many sign-in attempts failed" in r.text and f"Wait {wait} seconds" in r.text
    assert 'role="alert"' in r.text and 'name="key"' in r.text, "the sign-in page, with the message"
    return wait


async def test_the_eleventh_failure_from_one_address_is_refused(client, console_client, sign_in,
                                                                tenant):
    address, other = new_address(), new_address()
    for _ in range(PER_ADDRESS.amount):
        r = await sign_in(address, wrong_key())  # each a different prefix: only the address fills
        assert r.status_code == 401, r.text
    assert_limited(await sign_in(address, wrong_key()))
    # Limited means the key is not even checked: the right one is refused too.
    assert_limited(await sign_in(address, tenant.key))
    # Another address is not affected.
    r = await sign_in(other, tenant.key)
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    async with console_client(tenant.key) as c:  # 127.0.0.1, the other tests' address
        assert (await c.get("/console/")).status_code == 200


async def test_guessing_one_key_from_many_addresses_is_refused(client, sign_in, tenant,
                                                               make_tenant):
    prefix = prefix_of(tenant.key)
    for _ in range(PER_KEY_PREFIX.amount):
        assert (await sign_in(new_address(), wrong_key(prefix))).status_code == 401
    assert_limited(await sign_in(new_address(), wrong_key(prefix)))
    address = new_address()
    assert_limited(await sign_in(address, tenant.key))
    # The address is not limited by that (and the refusals did not count for it).
    other = await make_tenant()
    assert (await sign_in(address, other.key)).status_code == 303


async def test_successful_sign_ins_do_not_count(client, sign_in, tenant):
    address, prefix = new_address(), prefix_of(tenant.key)
    for _ in range(PER_ADDRESS.amount - 1):
        assert (await sign_in(address, wrong_key())).status_code == 401
    for _ in range(PER_KEY_PREFIX.amount - 1):
        assert (await sign_in(new_address(), wrong_key(prefix))).status_code == 401
    for _ in range(3):  # a shared office address signing in all morning
        assert (await sign_in(address, tenant.key)).status_code == 303
    # The last failure each counter allows, then nothing more.
    assert (await sign_in(address, wrong_key(prefix))).status_code == 401
    assert_limited(await sign_in(address, tenant.key))
    assert_limited(await sign_in(new_address(), tenant.key))


async def test_a_parallel_burst_gets_no_more_than_the_limit(client, sign_in):
    address = new_address()
    answers = await asyncio.gather(*(sign_in(address, wrong_key()) for _ in range(30)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [401] * PER_ADDRESS.amount + [429] * (30 - PER_ADDRESS.amount)


def test_ipv6_clients_are_counted_by_their_64():
    assert client_address("2001:db8:1:2:aaaa::1") == client_address("2001:db8:1:2:ffff::9") \
        == "2001:db8:1:2::/64"
    assert client_address("2001:db8:1:3::1") != client_address("2001:db8:1:2::1")
    assert client_address("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_address("192.0.2.7") == "192.0.2.7" and client_address(None) == "unknown"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_sign_in_works_while_redis_is_away(client, sign_in, state, tenant, monkeypatch):
    # A real client to a port nothing listens on: every command fails to connect.
    away = redis.asyncio.Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=0.2)
    monkeypatch.setattr(state, "redis", away)
    address = new_address()
    with structlog.testing.capture_logs() as logs:
        for _ in range(PER_ADDRESS.amount + 2):
            assert (await sign_in(address, wrong_key())).status_code == 401
        r = await sign_in(address, tenant.key)
    assert r.status_code == 303, "fail open: no limit, but sign-in works"
    assert any(e["event"] == "console.sign_in_limit_unavailable" and e["log_level"] == "warning"
               for e in logs)
    monkeypatch.undo()
    await away.aclose()
