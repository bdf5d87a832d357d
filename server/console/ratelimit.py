"""A limit on failed console sign-ins, kept in Redis so that every API replica shares it.

Two counters per attempt: the client's address (10 failures a minute) and
the key prefix it names (5 a minute, whatever the address: guessing one
key's secret from many addresses). Over either, the sign-in is answered 429
without the key being checked at all, so even the right key is refused while
limited: that is what makes guessing pointless. A key that is right does not
count.

Counting is reserve-then-settle: each attempt takes its place in the counters
before the key is checked, and a right key gives it back. Counting only after
a wrong key (test, check, then hit) would let a burst of parallel attempts
all pass the test before the first failure is counted.

The counters are `limits` fixed windows (a Redis INCRBY with a TTL set when
the window opens, in one Lua script), on the app's own redis-py pool.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from redis.exceptions import RedisError

from flywheel.server.auth.keys import parse_key

if TYPE_CHECKING:
    from flywheel.server.state import AppState

log = structlog.get_logger("flywheel.console")

PER_ADDRESS = RateLimitItemPerMinute(10)
PER_KEY_PREFIX = RateLimitItemPerMinute(5)
# Redis answers in well under a millisecond; past this it is treated as down.
REDIS_TIMEOUT_S = 0.5
# Redis errors, a dropped connection, a slow answer: the limit is skipped.
_UNAVAILABLE = (RedisError, OSError, TimeoutError)

Bucket = tuple[RateLimitItem, tuple[str, ...]]


def client_address(host: str | None) -> str:
    """The counter name for a client: its IPv4 address, or its IPv6 /64.

    One IPv6 subscriber gets a whole /64 (2^64 addresses): counting single
    addresses there would limit nothing. No address (an ASGI server that does
    not say) shares one counter rather than escaping the limit.
    """
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return host or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # an IPv4 client on a dual-stack socket
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass
class Attempt:
    """One sign-in attempt's places in the counters (none when it was refused or Redis is away)."""

    limiter: SignInLimiter
    held: list[Bucket] = field(default_factory=list)
    retry_after: int | None = None  # seconds; set when the attempt is refused

    async def release(self) -> None:
        """The key was right: give the places back, so that this attempt does not count."""
        if self.held:
            await self.limiter.give_back(self.held)
            self.held = []


class SignInLimiter:
    """Failed console sign-ins per client address and per key prefix, in Redis."""

    def __init__(self, redis: Any, namespace: str) -> None:
        # The app's redis-py pool, not a client of limits' own (its default is coredis).
        self._storage = RedisStorage("async+redis://", implementation="redispy",
                                     connection_pool=redis.connection_pool,
                                     key_prefix=f"{namespace}:console-sign-in")
        self._limiter = FixedWindowRateLimiter(self._storage)

    @staticmethod
    def buckets(address: str, key: str) -> list[Bucket]:
        """The counters an attempt from `address` with `key` goes into."""
        out: list[Bucket] = [(PER_ADDRESS, ("address", address))]
        parsed = parse_key(key)
        if parsed is not None:  # a key of the wrong shape names no prefix to guard
            out.append((PER_KEY_PREFIX, ("prefix", parsed[0])))
        return out

    async def begin(self, address: str, key: str) -> Attempt:
        """Reserve this attempt's places; `retry_after` is set when a counter is full.

        Fails open: with Redis away, sign-in works unlimited (and it is
        logged). Failing closed would lock every operator out of the console
        while Redis is down, when they need it most; open, it loses only the
        brake on guessing, and a key's 256-bit secret cannot be guessed online
        anyway: the limit stops the load and the noise of trying.
        """
        held: list[Bucket] = []
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                for item, ids in self.buckets(address, key):
                    allowed = await self._limiter.hit(item, *ids)
                    held.append((item, ids))  # counted even when refused: given back below
                    if not allowed:
                        stats = await self._limiter.get_window_stats(item, *ids)
                        await self.give_back(held)
                        wait = max(1, math.ceil(stats.reset_time - time.time()))
                        return Attempt(self, retry_after=wait)
        except _UNAVAILABLE as exc:
            log.warning("console.sign_in_limit_unavailable", error=repr(exc))
            return Attempt(self)
        return Attempt(self, held)

    async def give_back(self, held: list[Bucket]) -> None:
        """Undo the reservations in `held` (a refused or a successful attempt does not count)."""
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                for item, ids in held:
                    # The fixed window is a counter: a negative increment takes one back.
                    # Should the window have closed meanwhile, the -1 expires with the new one.
                    await self._storage.incr(item.key_for(*ids), item.get_expiry(), amount=-1)
        except _UNAVAILABLE as exc:  # the attempt stays counted: the safe side
            log.warning("console.sign_in_limit_unavailable", error=repr(exc))

    async def clear(self, address: str, key: str) -> None:
        """Forget the counters of `address` and of `key`'s prefix (tests, an operator's reset)."""
        for item, ids in self.buckets(address, key):
            await self._limiter.clear(item, *ids)


# One limiter per Redis client: the app's, or a test app's.
_LIMITERS: weakref.WeakKeyDictionary[Any, SignInLimiter] = weakref.WeakKeyDictionary()


def sign_in_limiter(state: AppState) -> SignInLimiter:
    """The limiter on `state`'s Redis; counters are named after the deployment's queue.

    Replicas of one deployment share the queue name, so they share the
    counters; two deployments (or two test sessions) on one Redis do not.
    """
    limiter = _LIMITERS.get(state.redis)
    if limiter is None:
        limiter = _LIMITERS[state.redis] = SignInLimiter(state.redis, state.settings.queue_name)
    return limiter
