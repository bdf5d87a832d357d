"""Calling upstreams: one pooled aiohttp session per upstream base URL.

Connections are kept alive and reused across requests and tenants (a pool per
base URL, not per policy: ten policies on one vLLM server share its
connections). Only failures to connect are retried: a request that reached
the upstream may have been acted on. A stream is never buffered: `send(...,
stream=True)` hands back the response with its body unread, and the gateway
forwards chunks as they come.

Why aiohttp and not httpx: on the benchmark machine an httpx call to a local
upstream costs 1.40 ms of CPU, httpx on aiohttp's transport 0.85 ms, aiohttp
0.31 ms (`python -m benchmarks.gateway` measures the gateway; that was most of
its added latency). aiohttp is already installed with Flywheel (aiobotocore).

Host names are checked twice: when a policy is written (settings.py), and
here on every DNS answer (the plugin API's `GuardedResolver`), so a
public-looking name that resolves to a private, loopback or link-local
address (or is re-pointed there later) is refused unless
FLYWHEEL_RLAAS_UPSTREAM_HOSTS names it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from flywheel.plugins.rlaas.runtime import settings_of
from flywheel.server.plugin_api import GuardedResolver, PrivateAddress

CLIENTS = "rlaas.clients"
UPSTREAM_HOSTS = "FLYWHEEL_RLAAS_UPSTREAM_HOSTS"
# Response headers a client may use (rate limits, request ids); framing headers are each leg's
# own, and anything else an upstream sets (cookies, its server's name) stays behind.
_PASSED = ("retry-after", "x-request-id", "x-ratelimit-", "openai-")
BrokenStream = (aiohttp.ClientError, TimeoutError)


class UpstreamFailed(Exception):
    """The upstream could not be reached, or gave up, before its first byte."""


class UpstreamResponse:
    """An upstream's answer: `content` read whole, or the body left to `chunks()` for a stream."""

    def __init__(self, raw: aiohttp.ClientResponse, content: bytes = b"") -> None:
        self.raw = raw
        self.status_code = raw.status
        self.headers: CIMultiDictProxy[str] = raw.headers
        self.content = content

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, piece by piece (raises one of `BrokenStream` if it breaks off)."""
        async for chunk in self.raw.content.iter_any():
            yield chunk

    def close(self) -> None:
        self.raw.release()


def session_for(state: Any, base_url: str) -> aiohttp.ClientSession:
    sessions: dict[str, aiohttp.ClientSession] = state.extras.setdefault(CLIENTS, {})
    session = sessions.get(base_url)
    if session is None or session.closed:
        s = settings_of(state)
        session = sessions[base_url] = aiohttp.ClientSession(
            base_url=base_url + "/",
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=30, ttl_dns_cache=60,
                                           resolver=GuardedResolver(s.upstream_hosts,
                                                                    setting=UPSTREAM_HOSTS)),
            # A stream may run for minutes: bound the wait for each piece, not the whole.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=s.connect_timeout_s,
                                          sock_read=s.upstream_timeout_s),
            trust_env=False,  # never a proxy from the server's environment
            auto_decompress=True,
        )
    return session


async def close_all(state: Any) -> None:
    for session in state.extras.pop(CLIENTS, {}).values():
        await session.close()


async def send(state: Any, base_url: str, path: str, body: bytes, headers: dict[str, str],
               *, stream: bool = False) -> UpstreamResponse:
    """POST `body` to the upstream; with `stream`, the body is left unread (`close()` the response)."""
    session = session_for(state, base_url)
    headers = {**headers, "Content-Type": "application/json"}
    retries = settings_of(state).connect_retries
    for attempt in range(retries + 1):
        try:
            # No redirects: one could lead past the upstream allow-list.
            raw = await session.post(path, data=body, headers=headers, allow_redirects=False)
            break
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, PrivateAddress):
                raise UpstreamFailed(str(exc.os_error)) from None
            if attempt == retries:
                raise UpstreamFailed(f"the upstream could not be reached ({type(exc).__name__})") from None
        except TimeoutError:
            raise UpstreamFailed("the upstream timed out") from None
        except aiohttp.ClientError as exc:
            raise UpstreamFailed(f"the upstream failed before answering ({type(exc).__name__})") from None
    if stream and raw.status == 200:
        return UpstreamResponse(raw)
    try:
        content = await raw.read()
    except BrokenStream as exc:
        raw.release()
        raise UpstreamFailed(f"the upstream's answer broke off ({type(exc).__name__})") from None
    return UpstreamResponse(raw, content)


def passed_headers(response: UpstreamResponse) -> dict[str, str]:
    """The upstream's response headers worth passing to the client (rate limits, request ids)."""
    return {k: v for k, v in response.headers.items() if k.lower().startswith(_PASSED)}
