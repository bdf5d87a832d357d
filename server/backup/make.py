"""Writing a backup: the database first, then the store's objects, the manifest last.

The dump is one snapshot. Objects are copied after it, so every object a row
of the dump names is there: objects are written before the rows that name
them (a model's files before its version row), and they are never changed in
place, only added or deleted. An object deleted while the backup runs (a
JSONL segment compacted into Parquet) is skipped; one added meanwhile is kept
and is harmless.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from flywheel.server import __version__
from flywheel.server.backup import postgres
from flywheel.server.backup.errors import BackupRefused
from flywheel.server.backup.locations import is_empty, open_location, overlap
from flywheel.server.backup.manifest import (
    DUMP_KEY,
    MANIFEST_KEY,
    OBJECTS_PREFIX,
    DatabaseDump,
    Manifest,
    PluginEntry,
    encode,
)
from flywheel.server.backup.objects import bounded, copy_object, sha256_of
from flywheel.server.backup.progress import Progress, Silent
from flywheel.server.backup.secret_check import seal_check
from flywheel.server.state import AppState
from flywheel.server.store import ObjectStore, open_store


async def make_backup(state: AppState, location: str, progress: Progress | None = None) -> Manifest:
    """Back up the database and store `state`'s settings name (state need not be started) to `location`."""
    progress = progress or Silent()
    settings = state.settings
    if overlap(location, state.store_url):
        raise BackupRefused(f"backup location {location} overlaps the object store ({state.store_url}): "
                            "choose a place outside it")
    target = open_location(location, settings)
    source = open_store(state.store_url, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
    try:
        if not await is_empty(target):
            raise BackupRefused(f"backup location {location} is not empty: give a new folder or prefix")
        with tempfile.TemporaryDirectory(prefix="flywheel-backup-") as scratch:
            database, migrations = await _dump(settings.database_url, target, Path(scratch), progress)
            objects = await _copy_objects(source, target, Path(scratch), progress)
        manifest = Manifest(
            flywheel_version=__version__, created_at=datetime.now(UTC),
            store_kind=urlsplit(state.store_url).scheme, migrations=migrations, database=database,
            plugins=[PluginEntry(p.name, p.version) for p in state.pm.describe()], objects=objects,
            secret_key_check=seal_check(settings))
        body = encode(manifest)
        progress.step("manifest", len(body))
        await target.put(MANIFEST_KEY, body, content_type="application/json")
        progress.advance(len(body))
    finally:
        await target.close()
        await source.close()
    progress.say(f"backed up the database ({database.size:,} bytes) and {len(objects):,} objects "
                 f"({manifest.object_bytes:,} bytes) to {location}")
    progress.say(manifest.secrets_note)
    return manifest


async def _dump(dsn: str, target: ObjectStore, scratch: Path, progress: Progress):
    conn = await asyncpg.connect(dsn)
    try:
        version = await postgres.server_version(conn)
        tool, tool_version = await postgres.find_tool("pg_dump", version)
        migrations = await postgres.applied_migrations(conn)
    finally:
        await conn.close()
    progress.step("database", None)
    out = scratch / DUMP_KEY
    await postgres.dump(dsn, tool, out)
    size = out.stat().st_size
    await target.put_file(DUMP_KEY, out)
    progress.advance(size)
    dump = DatabaseDump(key=DUMP_KEY, size=size, sha256=sha256_of(out), server_version=version,
                        pg_dump_version=tool_version)
    out.unlink()
    return dump, migrations


async def _copy_objects(source: ObjectStore, target: ObjectStore, scratch: Path, progress: Progress) -> list:
    listed = [info async for info in source.list("")]
    progress.step("objects", sum(info.size for info in listed))

    async def copy(info):
        entry = await copy_object(source, info.key, target, OBJECTS_PREFIX + info.key, scratch)
        progress.advance(info.size)
        return None if entry is None else type(entry)(key=info.key, size=entry.size, sha256=entry.sha256)

    return [entry for entry in await bounded(listed, copy) if entry is not None]
