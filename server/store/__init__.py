"""The object store: one interface, a local-folder backend and an S3 backend.

`open_store(url)` picks the backend from the URL: `file:///path` or
`s3://bucket/prefix`. Everything above this package (archives, model
artifacts, plugins) talks to `ObjectStore` only.
"""

from flywheel.server.store.base import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StoreError,
    validate_key,
)
from flywheel.server.store.factory import open_store

__all__ = ["ObjectInfo", "ObjectNotFound", "ObjectStore", "StoreError", "open_store", "validate_key"]
