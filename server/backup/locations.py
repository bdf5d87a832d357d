"""Where a backup lives: a folder (a path or file://) or an S3 prefix (s3://bucket/prefix).

Both open as an ObjectStore, so a backup is written and read the same way
wherever it is; an S3 location uses the deployment's S3 endpoint and
credentials (FLYWHEEL_S3_ENDPOINT_URL, the AWS_* variables).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flywheel.server.backup.errors import BackupRefused
from flywheel.server.settings import Settings
from flywheel.server.store import ObjectStore, StoreError, open_store


def location_url(where: str) -> str:
    """`s3://...` and `file://...` as given; a plain path as an absolute file:// URL."""
    if urlsplit(where).scheme in ("s3", "file"):
        return where
    if "://" in where:
        raise BackupRefused(f"backup location {where!r}: give a folder or s3://BUCKET/PREFIX")
    return f"file://{Path(where).expanduser().resolve()}"


def open_location(where: str, settings: Settings) -> ObjectStore:
    try:
        return open_store(location_url(where), endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
    except StoreError as exc:
        raise BackupRefused(str(exc)) from None


def overlap(location: str, store_url: str) -> bool:
    """True when the backup would sit inside the store or hold it (copying it into itself)."""
    a, b = urlsplit(location_url(location)), urlsplit(store_url)
    if a.scheme != b.scheme or a.netloc != b.netloc:
        return False
    left, right = a.path.strip("/") + "/", b.path.strip("/") + "/"
    return left.startswith(right) or right.startswith(left) or left == "/" or right == "/"


async def is_empty(store: ObjectStore) -> bool:
    async for _ in store.list(""):
        return False
    return True
