"""Copying objects between stores through a temporary file, hashing each on the way.

Objects go through a file (get_file / put_file) rather than memory, so a
model or a Parquet partition of any size copies in bounded memory; a few run
at once because S3 latency, not bandwidth, bounds a copy of many small objects.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from flywheel.server.backup.manifest import ObjectEntry
from flywheel.server.store import ObjectNotFound, ObjectStore

PARALLEL = 8
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


async def copy_object(source: ObjectStore, source_key: str, target: ObjectStore, target_key: str,
                      scratch: Path, check: Callable[[ObjectEntry], None] | None = None) -> ObjectEntry | None:
    """Copy one object; its entry (size, SHA-256 of what was read), or None if it vanished meanwhile.

    `check` sees the entry before anything is written, and raises to stop a bad object there.
    """
    with tempfile.NamedTemporaryFile(dir=scratch, delete=True) as tmp:
        path = Path(tmp.name)
        try:
            await source.get_file(source_key, path)
        except ObjectNotFound:
            return None
        size, sha = path.stat().st_size, await asyncio.to_thread(sha256_of, path)
        entry = ObjectEntry(key=target_key, size=size, sha256=sha)
        if check is not None:
            check(entry)
        await target.put_file(target_key, path)
        return entry


async def hash_object(store: ObjectStore, key: str, scratch: Path) -> ObjectEntry | None:
    """The object's size and SHA-256 as the store gives it back (None when it is missing)."""
    with tempfile.NamedTemporaryFile(dir=scratch, delete=True) as tmp:
        path = Path(tmp.name)
        try:
            await store.get_file(key, path)
        except ObjectNotFound:
            return None
        return ObjectEntry(key=key, size=path.stat().st_size, sha256=await asyncio.to_thread(sha256_of, path))


async def bounded(items: list, work: Callable[..., Awaitable], parallel: int = PARALLEL) -> list:
    """`work(item)` for every item, at most `parallel` at once, results in item order.

    A few workers take items in turn (not one task per object: a store may hold millions).
    After a failure no worker takes another item, and the ones in flight finish rather than
    being cancelled: a file write runs in a thread that cancelling would not stop, and a
    restore must know every object it wrote to remove them again. The first failure is raised.
    """
    results: list = [None] * len(items)
    queue = iter(enumerate(items))
    failed: list[Exception] = []

    async def worker() -> None:
        for i, item in queue:
            if failed:
                return
            try:
                results[i] = await work(item)
            except Exception as exc:
                failed.append(exc)
                return

    await asyncio.gather(*(worker() for _ in range(min(parallel, len(items)))))
    if failed:
        raise failed[0]
    return results
