"""Opening a store from a URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from flywheel.server.store.base import ObjectStore, StoreError


def open_store(url: str, *, endpoint_url: str | None = None, region: str | None = None) -> ObjectStore:
    """`file:///abs/path` or `s3://bucket/optional/prefix`.

    S3 credentials come from the usual AWS variables (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...); `endpoint_url` points at an
    S3-compatible server other than AWS.
    """
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise StoreError(f"store URL {url!r} has no path")
        from flywheel.server.store.local import LocalStore

        return LocalStore(Path(path))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise StoreError(f"store URL {url!r} has no bucket")
        from flywheel.server.store.s3 import S3Store

        return S3Store(parts.netloc, parts.path.strip("/"), endpoint_url=endpoint_url, region=region)
    raise StoreError(f"store URL {url!r}: scheme must be file:// or s3://")
