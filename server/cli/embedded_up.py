"""Filling unset DATABASE_URL / REDIS_URL with embedded servers."""

from __future__ import annotations

import asyncio

import msgspec
import structlog

from flywheel.server.settings import Settings

log = structlog.get_logger("flywheel.embedded")


async def start_embedded(settings: Settings):
    """Start embedded Postgres and/or Redis under the data directory; returns
    settings pointing at them and the running services (to stop later)."""
    from flywheel.server.embedded import EmbeddedServices
    from flywheel.server.secrets import ensure_key_file

    if not settings.secret_key:
        ensure_key_file(settings.data_path)  # embedded: secrets need no setup (server/secrets.py)

    services = EmbeddedServices(settings.data_path / "services",
                                postgres=not settings.database_url, redis=not settings.redis_url)
    await asyncio.to_thread(services.start)
    updated = msgspec.structs.replace(
        settings,
        database_url=settings.database_url or services.postgres.dsn,
        redis_url=settings.redis_url or services.redis.url,
    )
    return updated, services
