"""Calling upstreams: one pooled httpx client per upstream base URL.

Connections are kept alive and reused across requests and tenants (a pool per
base URL, not per policy: ten policies on one vLLM server share its
connections). Only connection failures are retried (httpx's transport retries
connecting, never a request that reached the upstream, which may have acted
on it). A stream is never buffered: `open_stream` hands back the upstream's
response with its body unread, and the gateway forwards chunks as they come.
"""

from __future__ import annotations

from typing import Any

import httpx

from flywheel.plugins.rlaas.runtime import settings_of

CLIENTS = "rlaas.clients"
# Response headers a client may use (rate limits, request ids); framing headers are each leg's
# own, and anything else an upstream sets (cookies, its server's name) stays behind.
_PASSED = ("retry-after", "x-request-id", "x-ratelimit-", "openai-")


class UpstreamFailed(Exception):
    """The upstream could not be reached, or gave up, before its first byte."""


def client_for(state: Any, base_url: str) -> httpx.AsyncClient:
    clients: dict[str, httpx.AsyncClient] = state.extras.setdefault(CLIENTS, {})
    client = clients.get(base_url)
    if client is None:
        s = settings_of(state)
        client = clients[base_url] = httpx.AsyncClient(
            base_url=base_url + "/",
            timeout=httpx.Timeout(s.upstream_timeout_s, connect=s.connect_timeout_s),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30),
            transport=httpx.AsyncHTTPTransport(retries=s.connect_retries),
            follow_redirects=False,  # a redirect could lead past the upstream allow-list
            trust_env=False,  # never a proxy from the server's environment
        )
    return client


async def close_all(state: Any) -> None:
    for client in state.extras.pop(CLIENTS, {}).values():
        await client.aclose()


async def send(state: Any, base_url: str, path: str, body: bytes, headers: dict[str, str],
               *, stream: bool = False) -> httpx.Response:
    """POST `body` to the upstream; with `stream`, the body is left unread (close the response)."""
    client = client_for(state, base_url)
    request = client.build_request("POST", path, content=body,
                                   headers={**headers, "content-type": "application/json"})
    try:
        return await client.send(request, stream=stream)
    except httpx.TimeoutException as exc:
        raise UpstreamFailed(f"the upstream timed out ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise UpstreamFailed(f"the upstream could not be reached ({type(exc).__name__})") from None


def passed_headers(response: httpx.Response) -> dict[str, str]:
    """The upstream's response headers worth passing to the client (rate limits, request ids)."""
    return {k: v for k, v in response.headers.items() if k.lower().startswith(_PASSED)}
