"""Outbound connections to addresses a tenant chose: refused when they lead inside.

Anything Flywheel calls on a tenant's behalf (an rlaas upstream, an alert
webhook, an SMTP server) is checked twice: the URL or host when it is
written (`url_problem`, `host_problem`), and every DNS answer when it is
used (`GuardedResolver` for aiohttp, `connect_guarded` for raw sockets),
so a public-looking name that resolves to a private, loopback or
link-local address, or is re-pointed there later, is refused. The
operator lets such a host through by naming it in an allow-list setting
(each caller has its own: FLYWHEEL_RLAAS_UPSTREAM_HOSTS,
FLYWHEEL_ALERTS_HOSTS), whose `*` patterns admit public hosts only.

aiohttp skips the resolver for an IP literal, so URLs must pass
`url_problem` again right before each call, not only when written.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult


class PrivateAddress(OSError):
    """A host name resolved only to addresses Flywheel may not call."""


def is_private_host(host: str) -> bool:
    """True for names and addresses that stay inside (loopback, private, link-local, .internal)."""
    host = host.lower().strip("[]")
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: only DNS can tell (GuardedResolver)
    return not address.is_global


def host_problem(host: str, allowed: list[str], *, setting: str) -> str | None:
    """Why `host` may not be called under the allow-list `allowed`, or None."""
    host = host.lower()
    if not host:
        return "no host is named"
    if host in allowed:
        return None
    if is_private_host(host):
        return f"{host} is a private, loopback or link-local address: name it in {setting} to allow it"
    if any(pattern != host and fnmatchcase(host, pattern) for pattern in allowed):
        return None
    return f"{host} is not in {setting}"


def url_problem(url: str, allowed: list[str], *, setting: str) -> str | None:
    """Why Flywheel may not call `url` (scheme, credentials, host), or None when it may."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return "the URL is not valid (a port is a number from 1 to 65535)"
    if parts.scheme not in ("http", "https"):
        return "the URL starts with http:// or https://"
    if parts.username or parts.password:
        return "the URL holds no credentials"
    if parts.fragment:
        return "the URL has no fragment"
    return host_problem(parts.hostname or "", allowed, setting=setting)


def _allowed_answers(host: str, addresses: list[str], named: set[str], setting: str) -> list[str]:
    if host.lower() in named:
        return addresses
    public = [a for a in addresses if ipaddress.ip_address(a).is_global]
    if not public:
        raise PrivateAddress(f"{host} resolves to a private, loopback or link-local address: "
                             f"name it in {setting} to allow it")
    return public


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for tenant-chosen hosts: the system's DNS answers without private,
    loopback and link-local addresses, unless the name is listed (without `*`) in `allowed`.
    A name with no other answer raises `PrivateAddress` (an OSError: aiohttp reports it as
    `ClientConnectorError` with it as `os_error`)."""

    def __init__(self, allowed: list[str], *, setting: str = "the allow-list") -> None:
        self.inner = aiohttp.ThreadedResolver()
        self.named = {host.lower() for host in allowed if "*" not in host}
        self.setting = setting

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        answers = await self.inner.resolve(host, port, family)
        kept = set(_allowed_answers(host, [a["host"] for a in answers], self.named, self.setting))
        return [a for a in answers if a["host"] in kept]

    async def close(self) -> None:
        await self.inner.close()


async def connect_guarded(host: str, port: int, allowed: list[str], *, setting: str,
                          timeout: float) -> socket.socket:
    """A connected non-blocking TCP socket to `host`, over an address the guard allows
    (for clients that take a socket, such as aiosmtplib)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    named = {h.lower() for h in allowed if "*" not in h}
    addresses = _allowed_answers(host, list(dict.fromkeys(info[4][0] for info in infos)), named, setting)
    last: OSError | None = None
    for info in infos:
        if info[4][0] not in addresses:
            continue
        sock = socket.socket(info[0], info[1], info[2])
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, info[4]), timeout)
            return sock
        except (OSError, TimeoutError) as exc:
            sock.close()
            last = exc if isinstance(exc, OSError) else OSError(f"connecting to {host}:{port} timed out")
    raise last or OSError(f"{host} has no address to connect to")
