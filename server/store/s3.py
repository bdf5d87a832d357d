"""The S3 backend, on aiobotocore.

One client per store, created on first use inside the running event loop
and kept until `close()`. Credentials come from botocore's usual chain (the
AWS_* variables, profiles, instance roles); they are never logged.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from flywheel.server.store.base import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StoreError,
    validate_key,
)

# Files above this size are uploaded in parts, so memory stays bounded.
MULTIPART_THRESHOLD = 64 << 20
PART_SIZE = 16 << 20
_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Store(ObjectStore):
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None) -> None:
        self.bucket = bucket
        self.base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        if self.base:
            validate_key(self.base, allow_empty=True)
        self.endpoint_url = endpoint_url
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.base!r}, endpoint={self.endpoint_url!r})"

    async def _c(self):
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    stack = AsyncExitStack()
                    config = AioConfig(retries={"max_attempts": 5, "mode": "standard"},
                                       s3={"addressing_style": "path"} if self.endpoint_url else None)
                    self._client = await stack.enter_async_context(get_session().create_client(
                        "s3", region_name=self.region, endpoint_url=self.endpoint_url, config=config))
                    self._stack = stack
        return self._client

    def _k(self, key: str) -> str:
        return self.base + validate_key(key)

    def _info(self, key: str, size: int, modified, etag: str | None) -> ObjectInfo:
        return ObjectInfo(key=key, size=size, modified=modified, etag=(etag or "").strip('"') or None)

    async def put(self, key: str, data: bytes, *, content_type: str | None = None) -> ObjectInfo:
        client = await self._c()
        extra = {"ContentType": content_type} if content_type else {}
        await client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data, **extra)
        return await self.head(key)

    async def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> ObjectInfo:
        size = Path(path).stat().st_size
        if size <= MULTIPART_THRESHOLD:
            data = await asyncio.to_thread(Path(path).read_bytes)
            return await self.put(key, data, content_type=content_type)
        client = await self._c()
        full = self._k(key)
        extra = {"ContentType": content_type} if content_type else {}
        upload = await client.create_multipart_upload(Bucket=self.bucket, Key=full, **extra)
        upload_id, parts = upload["UploadId"], []
        try:
            with open(path, "rb") as f:
                number = 1
                while chunk := await asyncio.to_thread(f.read, PART_SIZE):
                    r = await client.upload_part(Bucket=self.bucket, Key=full, UploadId=upload_id,
                                                 PartNumber=number, Body=chunk)
                    parts.append({"ETag": r["ETag"], "PartNumber": number})
                    number += 1
            await client.complete_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id,
                                                   MultipartUpload={"Parts": parts})
        except BaseException:
            await client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
            raise
        return await self.head(key)

    async def _get(self, key: str, range_header: str | None) -> bytes:
        client = await self._c()
        extra = {"Range": range_header} if range_header else {}
        try:
            r = await client.get_object(Bucket=self.bucket, Key=self._k(key), **extra)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in _MISSING:
                raise ObjectNotFound(key) from None
            if e.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""
            raise StoreError(f"S3 get {key!r} failed: {e.response.get('Error', {}).get('Code')}") from e
        async with r["Body"] as stream:
            return await stream.read()

    async def get(self, key: str) -> bytes:
        return await self._get(key, None)

    async def get_range(self, key: str, start: int, end: int | None = None) -> bytes:
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad range {start}..{end}")
        if end is not None and end == start:
            await self.head(key)  # still say when the object is missing
            return b""
        # HTTP ranges are inclusive; ours exclude `end`, like Python slices.
        return await self._get(key, f"bytes={start}-" + ("" if end is None else str(end - 1)))

    async def get_file(self, key: str, path: Path) -> Path:
        client = await self._c()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            r = await client.get_object(Bucket=self.bucket, Key=self._k(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in _MISSING:
                raise ObjectNotFound(key) from None
            raise
        async with r["Body"] as stream:
            with open(path, "wb") as f:
                while chunk := await stream.read(1 << 20):
                    await asyncio.to_thread(f.write, chunk)
        return path

    async def head(self, key: str) -> ObjectInfo:
        client = await self._c()
        try:
            r = await client.head_object(Bucket=self.bucket, Key=self._k(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in _MISSING:
                raise ObjectNotFound(key) from None
            raise
        return self._info(key, r["ContentLength"], r["LastModified"], r.get("ETag"))

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        if prefix:
            validate_key(prefix, allow_empty=True)
        client = await self._c()
        paginator = client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.base + prefix):
            for item in page.get("Contents", []):
                yield self._info(item["Key"][len(self.base):], item["Size"], item["LastModified"], item.get("ETag"))

    async def delete(self, key: str) -> None:
        client = await self._c()
        await client.delete_object(Bucket=self.bucket, Key=self._k(key))

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix.endswith("/"):
            raise StoreError("delete_prefix needs a prefix ending in '/'")
        client = await self._c()
        keys = [info.key async for info in self.list(prefix)]
        for i in range(0, len(keys), 1000):  # DeleteObjects takes up to 1,000 keys
            batch = [{"Key": self._k(k)} for k in keys[i:i + 1000]]
            await client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    async def presigned_url(self, key: str, *, expires_s: int = 3600, method: str = "GET") -> str | None:
        client = await self._c()
        op = {"GET": "get_object", "PUT": "put_object"}.get(method.upper())
        if op is None:
            raise StoreError(f"presigned URLs support GET and PUT, not {method}")
        return await client.generate_presigned_url(op, Params={"Bucket": self.bucket, "Key": self._k(key)},
                                                   ExpiresIn=expires_s)

    async def check(self) -> None:
        client = await self._c()
        await client.head_bucket(Bucket=self.bucket)

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack, self._client = None, None
