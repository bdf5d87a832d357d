"""The local-folder backend: one file per object under a root folder.

Writes go to a temporary file in the same folder, are fsync'd, then renamed
over the target, so a reader never sees half an object and a crash never
leaves one. File I/O runs in threads so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from flywheel.server.store.base import ObjectInfo, ObjectNotFound, ObjectStore, validate_key

_TMP_SUFFIX = ".fw-partial"


class LocalStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _info(self, key: str, st: os.stat_result) -> ObjectInfo:
        return ObjectInfo(key=key, size=st.st_size, modified=datetime.fromtimestamp(st.st_mtime, UTC),
                          etag=f"{st.st_mtime_ns:x}-{st.st_size:x}")

    def _write(self, key: str, write) -> ObjectInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self._info(key, path.stat())

    async def put(self, key: str, data: bytes, *, content_type: str | None = None) -> ObjectInfo:
        return await asyncio.to_thread(self._write, key, lambda f: f.write(data))

    async def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> ObjectInfo:
        def copy(f):
            with open(path, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)

        return await asyncio.to_thread(self._write, key, copy)

    def _read(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                f.seek(start)
                return f.read() if end is None else f.read(max(0, end - start))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._read, key)

    async def get_range(self, key: str, start: int, end: int | None = None) -> bytes:
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad range {start}..{end}")
        return await asyncio.to_thread(self._read, key, start, end)

    async def get_file(self, key: str, path: Path) -> Path:
        src = self._path(key)
        path = Path(path)

        def copy():
            if not src.is_file():
                raise ObjectNotFound(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, path)
            return path

        return await asyncio.to_thread(copy)

    async def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = await asyncio.to_thread(path.stat)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        if not path.is_file():
            raise ObjectNotFound(key)
        return self._info(key, st)

    def _list(self, prefix: str) -> list[ObjectInfo]:
        # Walk only the deepest folder the prefix names, then filter by prefix.
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / base if base else self.root
        if not start.is_dir():
            return []
        out = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames.sort()
            for name in filenames:
                if name.endswith(_TMP_SUFFIX):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    try:
                        out.append(self._info(key, full.stat()))
                    except FileNotFoundError:  # deleted while listing
                        pass
        out.sort(key=lambda i: i.key)
        return out

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        if prefix:
            validate_key(prefix, allow_empty=True)
        for info in await asyncio.to_thread(self._list, prefix):
            yield info

    async def delete(self, key: str) -> None:
        path = self._path(key)

        def remove():
            try:
                path.unlink()
            except (FileNotFoundError, IsADirectoryError):
                return
            # Prune folders left empty, never the root itself.
            parent = path.parent
            while parent != self.root:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

        await asyncio.to_thread(remove)

    async def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise OSError(f"store folder {self.root} is not writable")
