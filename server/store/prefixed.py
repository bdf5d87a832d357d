"""A view of a store under a key prefix (one tenant's objects, say).

Keys given to the view are validated before the prefix is added, so a view
can never read or write outside its prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec

from flywheel.server.store.base import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StoreError,
    validate_key,
)


class PrefixedStore(ObjectStore):
    def __init__(self, inner: ObjectStore, prefix: str) -> None:
        if not prefix.endswith("/"):
            raise StoreError(f"prefix {prefix!r} must end with '/'")
        validate_key(prefix, allow_empty=True)
        self.inner, self.prefix = inner, prefix

    def _k(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _strip(self, info: ObjectInfo) -> ObjectInfo:
        return msgspec.structs.replace(info, key=info.key[len(self.prefix):])

    async def put(self, key: str, data: bytes, *, content_type: str | None = None) -> ObjectInfo:
        return self._strip(await self.inner.put(self._k(key), data, content_type=content_type))

    async def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> ObjectInfo:
        return self._strip(await self.inner.put_file(self._k(key), path, content_type=content_type))

    async def get(self, key: str) -> bytes:
        try:
            return await self.inner.get(self._k(key))
        except ObjectNotFound:
            raise ObjectNotFound(key) from None

    async def get_range(self, key: str, start: int, end: int | None = None) -> bytes:
        try:
            return await self.inner.get_range(self._k(key), start, end)
        except ObjectNotFound:
            raise ObjectNotFound(key) from None

    async def get_file(self, key: str, path: Path) -> Path:
        try:
            return await self.inner.get_file(self._k(key), path)
        except ObjectNotFound:
            raise ObjectNotFound(key) from None

    async def head(self, key: str) -> ObjectInfo:
        try:
            return self._strip(await self.inner.head(self._k(key)))
        except ObjectNotFound:
            raise ObjectNotFound(key) from None

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        if prefix:
            validate_key(prefix, allow_empty=True)
        async for info in self.inner.list(self.prefix + prefix):
            yield self._strip(info)

    async def delete(self, key: str) -> None:
        await self.inner.delete(self._k(key))

    async def presigned_url(self, key: str, *, expires_s: int = 3600, method: str = "GET") -> str | None:
        return await self.inner.presigned_url(self._k(key), expires_s=expires_s, method=method)

    async def close(self) -> None:
        """The view does not own the inner store's connections."""

    def for_prefix(self, prefix: str) -> ObjectStore:
        validate_key(prefix, allow_empty=True)
        return PrefixedStore(self.inner, self.prefix + prefix)

    async def check(self) -> None:
        await self.inner.check()
