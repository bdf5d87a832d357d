"""Finding Postgres and Redis for tests: the machine's if they answer, else embedded.

`FLYWHEEL_TEST_DATABASE_URL` / `FLYWHEEL_TEST_REDIS_URL` name servers
explicitly. Otherwise 127.0.0.1:5432 (database `test`) and 127.0.0.1:6379
are used when they answer, and embedded servers start when they do not. Each
test session gets a database of its own, dropped at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def answers(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class TestServices:
    """Postgres and Redis URLs for one test session, starting embedded ones if needed."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.embedded = None
        self.admin_dsn: str | None = None
        self.database_url: str | None = None
        self.redis_url: str | None = None
        self.db_name = f"flywheel_test_{uuid.uuid4().hex[:10]}"

    async def start(self) -> None:
        admin = os.environ.get("FLYWHEEL_TEST_DATABASE_URL")
        redis = os.environ.get("FLYWHEEL_TEST_REDIS_URL")
        local = os.environ.get("FLYWHEEL_TEST_EMBEDDED") != "1"
        want_pg = admin is None and not (local and answers("127.0.0.1", 5432))
        want_redis = redis is None and not (local and answers("127.0.0.1", 6379))
        if admin is None and not want_pg:
            admin = LOCAL_POSTGRES
        if redis is None and not want_redis:
            redis = LOCAL_REDIS
        if want_pg or want_redis:
            import asyncio

            from flywheel.server.embedded import EmbeddedServices

            self.embedded = EmbeddedServices(self._embedded_root(), postgres=want_pg, redis=want_redis)
            await asyncio.to_thread(self.embedded.start)
            admin = admin or self.embedded.postgres.dsn
            redis = redis or self.embedded.redis.url
        self.admin_dsn, self.redis_url = admin, redis
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{self.db_name}"')
        finally:
            await conn.close()
        self.database_url = with_database(admin, self.db_name)

    def _embedded_root(self) -> Path:
        # As root without user namespaces, embedded Postgres runs as uid 65534,
        # which cannot enter pytest's private temp folders (mode 0700) and would
        # keep its cluster outside them: a folder of our own under the system
        # temp dir keeps it in place, and stop() removes it.
        self._own_scratch = Path(tempfile.mkdtemp(prefix="flywheel-test-"))
        self._own_scratch.chmod(0o711)
        return self._own_scratch / "services"

    async def new_database(self) -> str:
        """Another empty database (for migration tests); dropped with the rest."""
        name = f"{self.db_name}_{uuid.uuid4().hex[:6]}"
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self._extra = getattr(self, "_extra", []) + [name]
        return with_database(self.admin_dsn, name)

    async def stop(self) -> None:
        if self.admin_dsn:
            conn = await asyncpg.connect(self.admin_dsn)
            try:
                for name in [self.db_name, *getattr(self, "_extra", [])]:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()
        if self.embedded is not None:
            import asyncio

            await asyncio.to_thread(self.embedded.stop)
            shutil.rmtree(self._own_scratch, ignore_errors=True)


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))
