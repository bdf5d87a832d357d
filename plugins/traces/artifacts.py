"""Artifacts: content-addressed blobs (`blobs/sha256/ab/abcd...`) in the tenant's store.

An upload streams to a temporary file while it is hashed, so a large
workspace tarball is never whole in memory; it is kept only when its
SHA-256 is the one the client named. The same bytes uploaded twice (or by
two traces) are stored once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

from flywheel.plugins.traces.contracts import ArtifactRead
from flywheel.server.plugin_api import AppState, InvalidInput, NotFound, tenant_store

SHA256 = re.compile(r"^[0-9a-f]{64}$")
KINDS = ("output", "report", "patch", "workspace", "log", "other")
_READ_CHUNK = 1 << 20


def blob_key(sha256: str) -> str:
    return f"blobs/sha256/{sha256[:2]}/{sha256}"


def check_sha(sha256: str) -> str:
    if not SHA256.match(sha256):
        raise InvalidInput("an artifact is named by its SHA-256: 64 lowercase hex digits", field="path.sha256")
    return sha256


async def _trace_exists(state: AppState, tenant_id: UUID, trace_id: UUID) -> None:
    if not await state.db.fetchval("SELECT true FROM traces WHERE id = $1 AND tenant_id = $2", trace_id, tenant_id):
        raise NotFound("no such trace")


async def put_artifact(state: AppState, tenant_id: UUID, trace_id: UUID, sha256: str, kind: str,
                       chunks: AsyncIterator[bytes], *, max_bytes: int) -> ArtifactRead:
    check_sha(sha256)
    if kind not in KINDS:
        raise InvalidInput(f"kind is one of {', '.join(KINDS)}", field="query.kind")
    await _trace_exists(state, tenant_id, trace_id)
    fd, name = tempfile.mkstemp(prefix="traces-upload-")
    try:
        size = await _spool(fd, chunks, sha256, max_bytes)
        store = tenant_store(state, tenant_id)
        if not await store.exists(blob_key(sha256)):
            await store.put_file(blob_key(sha256), Path(name), content_type="application/octet-stream")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
    await state.db.execute(
        "INSERT INTO traces_artifacts (tenant_id, trace_id, sha256, kind, size) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (trace_id, sha256) DO NOTHING", tenant_id, trace_id, sha256, kind, size)
    return ArtifactRead(sha256=sha256, size=size, kind=kind, key=blob_key(sha256))


async def _spool(fd: int, chunks: AsyncIterator[bytes], sha256: str, max_bytes: int) -> int:
    digest, size = hashlib.sha256(), 0
    with os.fdopen(fd, "wb") as out:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise InvalidInput(f"an artifact is at most {max_bytes} bytes", code="too_large")
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        raise InvalidInput("the bytes received do not have the SHA-256 named in the path",
                           field="path.sha256", code="sha256_mismatch")
    return size


async def put_bytes(state: AppState, tenant_id: UUID, trace_id: UUID, data: bytes, kind: str) -> str:
    """Store bytes the server made (QA logs, reports) as an artifact of the trace; returns the hash."""
    sha256 = hashlib.sha256(data).hexdigest()
    store = tenant_store(state, tenant_id)
    if not await store.exists(blob_key(sha256)):
        await store.put(blob_key(sha256), data, content_type="application/octet-stream")
    await state.db.execute(
        "INSERT INTO traces_artifacts (tenant_id, trace_id, sha256, kind, size) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (trace_id, sha256) DO NOTHING", tenant_id, trace_id, sha256, kind, len(data))
    return sha256


async def artifact(state: AppState, tenant_id: UUID, trace_id: UUID, sha256: str) -> ArtifactRead:
    check_sha(sha256)
    row = await state.db.fetchrow("SELECT kind, size FROM traces_artifacts WHERE tenant_id = $1 AND trace_id = $2 "
                                  "AND sha256 = $3", tenant_id, trace_id, sha256)
    if row is None:
        raise NotFound("no such artifact in this trace")
    return ArtifactRead(sha256=sha256, size=row["size"], kind=row["kind"], key=blob_key(sha256))


async def read_chunks(state: AppState, tenant_id: UUID, info: ArtifactRead) -> AsyncIterator[bytes]:
    """The blob in 1 MiB pieces (a download is never whole in memory either)."""
    store = tenant_store(state, tenant_id)
    for start in range(0, max(info.size, 1), _READ_CHUNK):
        piece = await store.get_range(info.key, start, min(start + _READ_CHUNK, info.size))
        if piece:
            yield piece


async def list_artifacts(state: AppState, tenant_id: UUID, trace_id: UUID) -> list[ArtifactRead]:
    rows = await state.db.fetch("SELECT sha256, kind, size FROM traces_artifacts WHERE tenant_id = $1 "
                                "AND trace_id = $2 ORDER BY created_at, sha256", tenant_id, trace_id)
    return [ArtifactRead(sha256=r["sha256"], size=r["size"], kind=r["kind"], key=blob_key(r["sha256"]))
            for r in rows]
