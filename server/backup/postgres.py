"""pg_dump and pg_restore: finding tools of the server's major version, running them.

pg_dump refuses a server newer than itself and a dump from a newer pg_dump
may not restore with an older pg_restore, so both must be of the server's
major version: the machine's (PATH, /usr/lib/postgresql/N/bin) or the ones
bundled with the pgserver wheel that embedded Postgres runs on.
"""

from __future__ import annotations

import asyncio
import glob
import importlib.util
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from flywheel.server.backup.errors import BackupError, BackupRefused
from flywheel.server.backup.manifest import MigrationEntry

# Schemas Postgres owns; anything else holding a relation makes a database "not empty".
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


def _candidates(name: str) -> list[str]:
    found = [shutil.which(name)]
    found += sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    spec = importlib.util.find_spec("pgserver")  # its files only, not imported
    if spec is not None and spec.submodule_search_locations:
        found.append(str(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name))
    return [p for p in dict.fromkeys(found) if p and os.access(p, os.X_OK)]


async def tool_version(path: str) -> str:
    """`15.20` for `pg_dump (PostgreSQL) 15.20 (Debian ...)`."""
    proc = await asyncio.create_subprocess_exec(path, "--version", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    match = re.search(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)?)", out.decode(errors="replace"))
    return match.group(1) if match else "unknown"


async def find_tool(name: str, server_version: str) -> tuple[str, str]:
    """(path, version) of `name` whose major version is the server's; BackupRefused naming both otherwise."""
    major = server_version.split(".")[0]
    seen = []
    for path in _candidates(name):
        version = await tool_version(path)
        if version.split(".")[0] == major:
            return path, version
        seen.append(f"{path} is {version}")
    where = "; ".join(seen) if seen else f"no {name} found"
    raise BackupRefused(f"{name} must be of Postgres {major} (the server runs {server_version}): {where}. "
                        f"Install the PostgreSQL {major} client tools (e.g. postgresql-client-{major})")


async def server_version(conn: asyncpg.Connection) -> str:
    number = int(await conn.fetchval("SHOW server_version_num"))  # 150020 -> 15.20
    return f"{number // 10000}.{number % 10000}"


def libpq_target(dsn: str) -> tuple[str, dict[str, str]]:
    """The URL for libpq without its password, and the environment carrying it (PGPASSWORD),
    so the password never shows in the process list."""
    parts = urlsplit(dsn)
    env = {**os.environ}
    if parts.password:
        env["PGPASSWORD"] = parts.password
        netloc = (parts.username or "") + "@" + (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        dsn = urlunsplit(parts._replace(netloc=netloc))
    return dsn, env


async def _run(args: list[str], env: dict[str, str], what: str) -> None:
    proc = await asyncio.create_subprocess_exec(*args, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        raise BackupError(f"{what} failed (exit {proc.returncode}): " + " | ".join(lines[-5:]))


async def dump(dsn: str, tool: str, out: Path) -> None:
    """The whole database in pg_dump's custom format: one snapshot, so every table is as of one moment."""
    target, env = libpq_target(dsn)
    await _run([tool, "--format=custom", "--no-owner", "--no-privileges", f"--file={out}", f"--dbname={target}"],
               env, "pg_dump")


async def restore(dsn: str, tool: str, dump_file: Path) -> None:
    """In one transaction: a failure leaves the database as empty as it was."""
    target, env = libpq_target(dsn)
    await _run([tool, "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges",
                f"--dbname={target}", str(dump_file)], env, "pg_restore")


async def relations(conn: asyncpg.Connection) -> list[str]:
    """Tables, views and sequences outside Postgres's own schemas (none in an empty database)."""
    rows = await conn.fetch(
        """SELECT n.nspname || '.' || c.relname AS name FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname <> ALL($1::text[])
             AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
           ORDER BY 1""", list(_SYSTEM_SCHEMAS))
    return [r["name"] for r in rows]


async def applied_migrations(conn: asyncpg.Connection) -> list[MigrationEntry]:
    if not await conn.fetchval("SELECT to_regclass('flywheel_migrations') IS NOT NULL"):
        return []
    rows = await conn.fetch("SELECT namespace, version, name, checksum FROM flywheel_migrations "
                            "ORDER BY namespace, version")
    return [MigrationEntry(r["namespace"], r["version"], r["name"], r["checksum"]) for r in rows]
