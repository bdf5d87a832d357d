"""The `ObjectStore` interface every backend implements.

Keys are relative, `/`-separated paths such as
`tenants/<id>/models/credit/3/model.onnx`. They never start with `/`, never
contain `.` or `..` segments, empty segments or backslashes, so that a key
cannot escape its prefix on any backend (the local backend maps keys to
files; a `..` there would leave the store folder).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import msgspec


class StoreError(Exception):
    """A store operation failed (bad key, backend refused, ...)."""


class ObjectNotFound(StoreError, KeyError):
    """No object under that key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no object {self.key!r}"


class ObjectInfo(msgspec.Struct, frozen=True):
    key: str
    size: int
    modified: datetime
    etag: str | None = None


def validate_key(key: str, *, allow_empty: bool = False) -> str:
    """Return `key` if it is a safe relative key, else raise StoreError."""
    if not isinstance(key, str):
        raise StoreError(f"object key must be a string, got {type(key).__name__}")
    if key == "" and allow_empty:
        return key
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise StoreError(f"invalid object key {key!r}: must be a non-empty relative path")
    parts = key.rstrip("/").split("/") if allow_empty else key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise StoreError(f"invalid object key {key!r}: empty, '.' or '..' segment")
    return key


class ObjectStore(abc.ABC):
    """Async blob storage. All methods are safe to call concurrently."""

    @abc.abstractmethod
    async def put(self, key: str, data: bytes, *, content_type: str | None = None) -> ObjectInfo:
        """Write `data` under `key`, replacing any object there. Readers see the
        old or the new object, never a partial one."""

    async def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> ObjectInfo:
        """Upload a local file (backends stream big files instead of reading them whole)."""
        return await self.put(key, Path(path).read_bytes(), content_type=content_type)

    @abc.abstractmethod
    async def get(self, key: str) -> bytes:
        """The whole object; ObjectNotFound if there is none."""

    @abc.abstractmethod
    async def get_range(self, key: str, start: int, end: int | None = None) -> bytes:
        """Bytes `start` up to, not including, `end` (to the end when None)."""

    async def get_file(self, key: str, path: Path) -> Path:
        """Download to a local file (for libraries that want a path)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(await self.get(key))
        return path

    @abc.abstractmethod
    async def head(self, key: str) -> ObjectInfo:
        """Size and modification time; ObjectNotFound if there is none."""

    async def exists(self, key: str) -> bool:
        try:
            await self.head(key)
        except ObjectNotFound:
            return False
        return True

    @abc.abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in key order."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix`; returns how many."""
        if not prefix.endswith("/"):
            raise StoreError("delete_prefix needs a prefix ending in '/'")
        keys = [info.key async for info in self.list(prefix)]
        for key in keys:
            await self.delete(key)
        return len(keys)

    async def presigned_url(self, key: str, *, expires_s: int = 3600, method: str = "GET") -> str | None:
        """A URL a third party can use without credentials, or None where the
        backend has no such thing (the local folder)."""
        return None

    async def close(self) -> None:  # noqa: B027 - optional for backends
        """Release connections."""

    def for_prefix(self, prefix: str) -> ObjectStore:
        """A view of this store in which every key lives under `prefix`."""
        from flywheel.server.store.prefixed import PrefixedStore

        return PrefixedStore(self, prefix)

    async def check(self) -> None:
        """Raise if the backend cannot be reached (used by /readyz)."""
        async for _ in self.list("__readyz__/"):
            break
