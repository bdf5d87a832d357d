"""Plain SQL migrations in namespaces: the core's, then each plugin's.

Files are ``NNNN_description.sql``. Each file runs in its own transaction and
is recorded in `flywheel_migrations` keyed by (namespace, version). An
advisory lock keeps replicas that start together from racing. A database
holding versions this code does not know (a newer release ran against it) is
refused rather than guessed at.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from flywheel.contracts.plugins import MigrationSource

log = structlog.get_logger("flywheel.migrations")

CORE_SOURCE = MigrationSource(namespace="core", package="flywheel.migrations")
_LOCK_KEY = 0x466C7977  # "Flyw": one advisory lock for every Flywheel replica
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """Migrations cannot be applied safely; the message says why."""


@dataclass(frozen=True)
class Migration:
    namespace: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def read_source(source: MigrationSource) -> list[Migration]:
    """The migrations of one namespace, in order."""
    if source.package:
        folder = importlib.resources.files(source.package)
    elif source.path:
        folder = Path(source.path)
    else:
        raise MigrationError(f"migration namespace {source.namespace!r} names neither a package nor a path")
    found = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE.match(entry.name)
        if not match:
            raise MigrationError(f"{source.namespace}: bad migration file name {entry.name!r} (want NNNN_name.sql)")
        found.append(Migration(source.namespace, int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{source.namespace}: two migration files share a version number")
    return found


async def migrate(conn: asyncpg.Connection, sources: list[MigrationSource]) -> list[Migration]:
    """Apply pending migrations of every source; returns what was applied."""
    plans = [(source, read_source(source)) for source in sources]
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS flywheel_migrations (
                namespace  text        NOT NULL,
                version    integer     NOT NULL,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (namespace, version)
            )"""
        )
        rows = await conn.fetch("SELECT namespace, version, checksum FROM flywheel_migrations")
        applied = {(r["namespace"], r["version"]): r["checksum"] for r in rows}
        _refuse_unknown(applied, plans)
        done = []
        for _, migrations in plans:
            for m in migrations:
                key = (m.namespace, m.version)
                if key in applied:
                    if applied[key] != m.checksum:
                        raise MigrationError(
                            f"migration {m.namespace}/{m.version:04d}_{m.name}.sql was changed after it was applied"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute(
                        "INSERT INTO flywheel_migrations (namespace, version, name, checksum) VALUES ($1, $2, $3, $4)",
                        m.namespace, m.version, m.name, m.checksum,
                    )
                log.info("migration applied", namespace=m.namespace, version=m.version, name=m.name)
                done.append(m)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


def _refuse_unknown(applied: dict[tuple[str, int], str], plans: list) -> None:
    known = {(m.namespace, m.version) for _, ms in plans for m in ms}
    namespaces = {source.namespace for source, _ in plans}
    unknown = sorted(k for k in applied if k[0] in namespaces and k not in known)
    if unknown:
        names = ", ".join(f"{ns}/{v:04d}" for ns, v in unknown)
        raise MigrationError(
            f"the database has migrations this version of Flywheel does not know ({names}); "
            "it was migrated by a newer release: upgrade Flywheel instead of starting this one"
        )


async def pending(conn: asyncpg.Connection, sources: list[MigrationSource]) -> list[Migration]:
    """Migrations not yet applied (for `flywheel migrate --check`)."""
    exists = await conn.fetchval("SELECT to_regclass('flywheel_migrations') IS NOT NULL")
    applied = set()
    if exists:
        applied = {(r["namespace"], r["version"]) for r in await conn.fetch(
            "SELECT namespace, version FROM flywheel_migrations")}
    return [m for s in sources for m in read_source(s) if (m.namespace, m.version) not in applied]
