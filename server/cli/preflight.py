"""One clear line instead of a traceback when a command cannot start.

A dead `DATABASE_URL` used to print 84 lines of asyncpg traceback, `flywheel
serve` an ExceptionGroup from every worker's lifespan, and a busy port showed
only after the worker had started and run a cron job. Each case is checked
here, before anything else starts, and named: which service, at which
address, through which setting, and why.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

import asyncpg
from redis import exceptions as redis_errors

from flywheel.server.settings import Settings, redact_url

# What a failed connection raises: the network (refused, unknown host, timed out) or the server
# itself (wrong password, no such database).
CONNECT_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                  redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.AuthenticationError,
                  redis_errors.ResponseError)


class StartupProblem(Exception):
    """What stops a command from starting, in one line."""


def service_problem(settings: Settings, failed_at: str, exc: BaseException) -> StartupProblem | None:
    """The line for a connection that failed at `failed_at` ("postgres" or "redis"), if `exc` is one."""
    if not isinstance(exc, CONNECT_ERRORS):
        return None
    if failed_at == "postgres":
        where, variable, name = settings.database_url or "", "DATABASE_URL", "Postgres"
    else:
        where, variable, name = settings.redis_url or "", "REDIS_URL", "Redis"
    return StartupProblem(f"cannot connect to {name} at {_address(where)} ({variable}): {_reason(exc)}")


def port_problem(host: str, port: int) -> StartupProblem | None:
    """Why the server could not listen on host:port, checked by binding it for a moment."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return StartupProblem(f"cannot listen on {host}:{port} (FLYWHEEL_HOST / --host): {exc.strerror}")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn binds: SO_REUSEADDR, so a port in TIME_WAIT is free, a listening one is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return StartupProblem(f"cannot listen on {host}:{port} (FLYWHEEL_PORT / --port): "
                                  f"{(exc.strerror or str(exc)).lower()}")
    return None


async def check_services(settings: Settings, timeout: float = 10.0) -> None:
    """Connect to Postgres and Redis once each (for `flywheel serve`, before its workers start)."""
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=timeout)
    except Exception as exc:
        raise service_problem(settings, "postgres", exc) or exc from None
    await conn.close()
    from redis.asyncio import Redis

    client = Redis.from_url(settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        await client.ping()
    except Exception as exc:
        raise service_problem(settings, "redis", exc) or exc from None
    finally:
        await client.aclose()


def _address(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return redact_url(url) if not parts.hostname else (
        f"{parts.hostname}:{parts.port or ''}".rstrip(":") + (parts.path if parts.path not in ("", "/") else ""))


def _reason(exc: BaseException) -> str:
    text = str(exc).lower()
    if isinstance(exc, ConnectionRefusedError) or "refused" in text or "connect call failed" in text:
        return "connection refused (is it running?)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, asyncio.TimeoutError | redis_errors.TimeoutError):
        return "no answer in time"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
