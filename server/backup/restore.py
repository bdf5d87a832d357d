"""Restoring a backup into an empty database and an empty store, verified against its manifest.

Order matters for what a failure leaves behind: everything is checked before
anything is written (the manifest against this release, this server's secret
key against the one the backup's secrets were sealed with, the targets being
empty, the dump's checksum); objects are copied next, each checked before it
is written, and removed again if one fails; the database comes last, in one
transaction. A refused or failed restore leaves both targets empty.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import asyncpg

from flywheel.server.backup import postgres
from flywheel.server.backup.errors import BackupCorrupt, BackupRefused
from flywheel.server.backup.locations import is_empty, open_location, overlap
from flywheel.server.backup.manifest import MANIFEST_KEY, OBJECTS_PREFIX, Manifest, ObjectEntry, decode
from flywheel.server.backup.objects import bounded, copy_object, hash_object, sha256_of
from flywheel.server.backup.progress import Progress, Silent
from flywheel.server.backup.secret_check import check_key
from flywheel.server.backup.versions import check_release
from flywheel.server.state import AppState
from flywheel.server.store import ObjectNotFound, ObjectStore, open_store


async def restore_backup(state: AppState, location: str, progress: Progress | None = None, *,
                         without_secrets: bool = False) -> Manifest:
    """Restore the backup at `location` into the database and store `state`'s settings name.

    Refused when this server's secret key does not open the backup's sealed secrets, unless
    `without_secrets` (they are restored, and stay unreadable until entered again)."""
    progress = progress or Silent()
    settings = state.settings
    if overlap(location, state.store_url):
        raise BackupRefused(f"backup location {location} overlaps the object store ({state.store_url})")
    backup = open_location(location, settings)
    store = open_store(state.store_url, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
    try:
        manifest = await _manifest(backup, location)
        for line in check_release(manifest, state):
            progress.say(line)
        key_line = check_key(settings, manifest, without_secrets=without_secrets)
        if key_line:
            progress.say(key_line)
        conn = await asyncpg.connect(settings.database_url)
        try:
            tool = await _preflight(conn, store, state, manifest)
            with tempfile.TemporaryDirectory(prefix="flywheel-restore-") as scratch:
                dump = await _fetch_dump(backup, manifest, Path(scratch), progress)
                written = await _copy_objects(backup, store, manifest, Path(scratch), progress)
                try:
                    progress.step("database", manifest.database.size)
                    await postgres.restore(settings.database_url, tool, dump)
                    progress.advance(manifest.database.size)
                except BaseException:
                    await _remove(store, written)
                    raise
                await _check_migrations(conn, manifest)
                await _verify(store, manifest, Path(scratch), progress)
        finally:
            await conn.close()
    finally:
        await backup.close()
        await store.close()
    progress.say(f"restored the database and {len(manifest.objects):,} objects "
                 f"({manifest.object_bytes:,} bytes), every one verified against {MANIFEST_KEY}")
    if key_line is None:  # nothing to check the key on: say what it is for
        progress.say(manifest.secrets_note)
    return manifest


async def _manifest(backup: ObjectStore, location: str) -> Manifest:
    try:
        return decode(await backup.get(MANIFEST_KEY))
    except ObjectNotFound:
        raise BackupRefused(f"no {MANIFEST_KEY} at {location}: not a complete Flywheel backup") from None


async def _preflight(conn: asyncpg.Connection, store: ObjectStore, state: AppState, manifest: Manifest) -> str:
    """The pg_restore to use, once the targets are known to be empty."""
    found = await postgres.relations(conn)
    if found:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise BackupRefused(f"the database (DATABASE_URL) is not empty ({shown}): restore needs an empty "
                            "database; create a new one")
    if not await is_empty(store):
        raise BackupRefused(f"the object store ({state.store_url}) is not empty: restore needs an empty store")
    version = await postgres.server_version(conn)
    tool, tool_version = await postgres.find_tool("pg_restore", version)
    made_by = manifest.database.pg_dump_version.split(".")[0]
    if made_by.isdigit() and int(made_by) > int(tool_version.split(".")[0]):
        raise BackupRefused(f"the backup was dumped by pg_dump {manifest.database.pg_dump_version}, newer than "
                            f"this server's Postgres {version}: restore into Postgres {made_by} or newer")
    return tool


async def _fetch_dump(backup: ObjectStore, manifest: Manifest, scratch: Path, progress: Progress) -> Path:
    expected = manifest.database
    progress.step("fetching the dump", expected.size)
    path = scratch / "database.dump"
    try:
        await backup.get_file(expected.key, path)
    except ObjectNotFound:
        raise BackupCorrupt(f"{expected.key} is missing from the backup") from None
    if path.stat().st_size != expected.size or sha256_of(path) != expected.sha256:
        raise BackupCorrupt(f"{expected.key} does not match its SHA-256 in {MANIFEST_KEY}: the backup is damaged")
    progress.advance(expected.size)
    return path


async def _copy_objects(backup: ObjectStore, store: ObjectStore, manifest: Manifest, scratch: Path,
                        progress: Progress) -> list[str]:
    progress.step("objects", manifest.object_bytes)
    written: list[str] = []

    async def copy(entry: ObjectEntry) -> None:
        def check(found: ObjectEntry) -> None:
            if (found.size, found.sha256) != (entry.size, entry.sha256):
                sizes = "" if found.size == entry.size else f" (size {found.size:,}, expected {entry.size:,})"
                raise BackupCorrupt(f"object {entry.key} does not match its SHA-256 in {MANIFEST_KEY}{sizes}: "
                                    "the backup is damaged")

        copied = await copy_object(backup, OBJECTS_PREFIX + entry.key, store, entry.key, scratch, check)
        if copied is None:
            raise BackupCorrupt(f"object {entry.key} is listed in {MANIFEST_KEY} but missing from the backup")
        written.append(entry.key)
        progress.advance(entry.size)

    try:
        await bounded(manifest.objects, copy)
    except BaseException:
        await _remove(store, written)
        raise
    return written


async def _remove(store: ObjectStore, keys: list[str]) -> None:
    for key in keys:
        await store.delete(key)


async def _check_migrations(conn: asyncpg.Connection, manifest: Manifest) -> None:
    restored = await postgres.applied_migrations(conn)
    if sorted(restored, key=_mkey) != sorted(manifest.migrations, key=_mkey):
        raise BackupCorrupt(f"the restored database's migrations differ from those in {MANIFEST_KEY}")


def _mkey(m) -> tuple[str, int]:
    return m.namespace, m.version


async def _verify(store: ObjectStore, manifest: Manifest, scratch: Path, progress: Progress) -> None:
    """Read every object back from the store: what is there is what was backed up."""
    progress.step("verifying", manifest.object_bytes)

    async def verify(entry: ObjectEntry) -> None:
        found = await hash_object(store, entry.key, scratch)
        if found is None or (found.size, found.sha256) != (entry.size, entry.sha256):
            raise BackupCorrupt(f"object {entry.key} in the store does not match {MANIFEST_KEY} after the copy")
        progress.advance(entry.size)

    await bounded(manifest.objects, verify)
