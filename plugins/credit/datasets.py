"""Datasets and their versions: an upload streamed to disk, converted, profiled and stored.

A version is stored as `datasets/{id}/{version}/data.parquet` in the tenant's
store, with its SHA-256, columns and profile in `credit_dataset_versions`.
Uploading identical content (same digest, target and time column) answers
with the version already there instead of making another.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import msgspec
import pyarrow.parquet as pq

from flywheel.plugins.credit.contracts import (
    DatasetProfile,
    DatasetRead,
    DatasetVersionRead,
    DatasetVersionSummary,
)
from flywheel.plugins.credit.conversion import sha256_of, to_parquet
from flywheel.plugins.credit.profile import profile_file
from flywheel.server.plugin_api import Conflict, InvalidInput, NotFound, tenant_store

MAX_UPLOAD_BYTES = 2 * 1024**3

_VERSION_COLUMNS = """v.id, v.dataset_id, d.name, v.version, v.sha256, v.target, v.bad_value, v.time_column,
    v.source_format, v.rows, v.bytes, v.profile, v.created_at, v.used_at IS NOT NULL AS used, v.store_key"""


def data_key(dataset_id: UUID, version: int) -> str:
    return f"datasets/{dataset_id}/{version}/data.parquet"


async def spool(chunks: AsyncIterator[bytes], folder: Path) -> Path:
    """Write the request body to a file chunk by chunk; the body never sits in memory whole."""
    path = folder / "upload"
    written = 0
    with path.open("wb") as f:
        async for chunk in chunks:
            written += len(chunk)
            if written > MAX_UPLOAD_BYTES:
                raise InvalidInput(f"uploads are at most {MAX_UPLOAD_BYTES // 1024**2} MiB", field="body",
                                   code="too_large")
            f.write(chunk)
    if written == 0:
        raise InvalidInput("the body is empty: send the file's bytes", field="body")
    return path


async def upload(state, tenant_id: UUID, chunks: AsyncIterator[bytes], *, name: str, target: str,
                 bad_value: str | None, time_column: str | None) -> DatasetVersionRead:
    folder = Path(tempfile.mkdtemp(prefix="flywheel-credit-"))
    try:
        raw = await spool(chunks, folder)
        parquet = folder / "data.parquet"
        sha = await asyncio.to_thread(sha256_of, raw)
        kind, rows, _ = await asyncio.to_thread(to_parquet, raw, parquet)
        raw.unlink()
        profile = await asyncio.to_thread(profile_file, parquet, target, bad_value, time_column)
        return await _register(state, tenant_id, parquet, name=name, sha=sha, kind=kind, profile=profile,
                               target=target, bad_value=bad_value, time_column=time_column)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _register(state, tenant_id: UUID, parquet: Path, *, name: str, sha: str, kind: str,
                    profile: DatasetProfile, target: str, bad_value: str | None,
                    time_column: str | None) -> DatasetVersionRead:
    db = state.db
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('credit.datasets'), hashtext($1 || $2))",
                           str(tenant_id), name)
        dataset_id = await conn.fetchval(
            """INSERT INTO credit_datasets (id, tenant_id, name) VALUES ($1, $2, $3)
               ON CONFLICT (tenant_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id""",
            uuid.uuid4(), tenant_id, name)
        existing = await conn.fetchval(
            """SELECT id FROM credit_dataset_versions WHERE tenant_id = $1 AND dataset_id = $2 AND sha256 = $3
               AND target = $4 AND bad_value IS NOT DISTINCT FROM $5 AND time_column IS NOT DISTINCT FROM $6""",
            tenant_id, dataset_id, sha, target, bad_value, time_column)
        if existing is not None:
            found = await get_version(db, tenant_id, existing)
            return msgspec.structs.replace(found, existing=True)
        version = await conn.fetchval(
            "SELECT coalesce(max(version), 0) + 1 FROM credit_dataset_versions WHERE tenant_id = $1 "
            "AND dataset_id = $2", tenant_id, dataset_id)
        key = data_key(dataset_id, version)
        store = tenant_store(state, tenant_id)
        info = await store.put_file(key, parquet, content_type="application/vnd.apache.parquet")
        columns = [{"name": c.name, "type": c.type} for c in profile.columns]
        version_id = uuid.uuid4()
        await conn.execute(
            """INSERT INTO credit_dataset_versions (id, tenant_id, dataset_id, version, sha256, target, bad_value,
                   time_column, source_format, rows, bytes, columns, profile, store_key)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)""",
            version_id, tenant_id, dataset_id, version, sha, target, bad_value, time_column, kind, profile.rows,
            info.size, columns, msgspec.to_builtins(profile), key)
    return await get_version(db, tenant_id, version_id)


def _version(row) -> DatasetVersionRead:
    fields = dict(row)
    fields["profile"] = msgspec.convert(fields["profile"], DatasetProfile)
    return DatasetVersionRead(**fields)


async def get_version(db, tenant_id: UUID, version_id: UUID) -> DatasetVersionRead:
    row = await db.fetchrow(
        f"""SELECT {_VERSION_COLUMNS} FROM credit_dataset_versions v JOIN credit_datasets d ON d.id = v.dataset_id
            WHERE v.tenant_id = $1 AND v.id = $2""", tenant_id, version_id)
    if row is None:
        raise NotFound("no such dataset version", field="path.dataset_version_id")
    return _version(row)


async def list_datasets(db, tenant_id: UUID, after: tuple | None, limit: int) -> list[DatasetRead]:
    rows = await db.fetch(
        """SELECT id, name, created_at FROM credit_datasets WHERE tenant_id = $1
           AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4""",
        tenant_id, *(after or (None, None)), limit)
    return [await _dataset(db, tenant_id, r) for r in rows]


async def get_dataset(db, tenant_id: UUID, dataset_id: UUID) -> DatasetRead:
    row = await db.fetchrow("SELECT id, name, created_at FROM credit_datasets WHERE tenant_id = $1 AND id = $2",
                            tenant_id, dataset_id)
    if row is None:
        raise NotFound("no such dataset", field="path.dataset_id")
    return await _dataset(db, tenant_id, row)


async def _dataset(db, tenant_id: UUID, row) -> DatasetRead:
    versions = await db.fetch(
        """SELECT id, version, rows, sha256, target, created_at, used_at IS NOT NULL AS used
           FROM credit_dataset_versions WHERE tenant_id = $1 AND dataset_id = $2 ORDER BY version DESC""",
        tenant_id, row["id"])
    return DatasetRead(id=row["id"], name=row["name"], created_at=row["created_at"],
                       versions=[DatasetVersionSummary(**dict(v)) for v in versions])


async def delete_version(state, tenant_id: UUID, version_id: UUID) -> None:
    """Remove an unused version (a version a run has used is part of that run's lineage: 409)."""
    found = await get_version(state.db, tenant_id, version_id)
    if found.used:
        raise Conflict("this dataset version was used by a run and cannot be changed or removed",
                       code="version_in_use")
    await state.db.execute("DELETE FROM credit_dataset_versions WHERE tenant_id = $1 AND id = $2 "
                           "AND used_at IS NULL", tenant_id, version_id)
    await tenant_store(state, tenant_id).delete(found.store_key)


async def read_table(state, tenant_id: UUID, found: DatasetVersionRead, folder: Path):
    """The version's rows as an Arrow table (the runner needs them all in memory to train anyway)."""
    path = await tenant_store(state, tenant_id).get_file(found.store_key, folder / "data.parquet")
    return await asyncio.to_thread(pq.read_table, path)
