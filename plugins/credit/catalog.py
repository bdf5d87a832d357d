"""Features and feature sets in Postgres.

A feature may change until a run uses a feature set version holding it; a
feature set version freezes its features' definitions when it is made, so a
run always reads exactly what it was given.
"""

from __future__ import annotations

import uuid
from uuid import UUID

import asyncpg
import msgspec

from flywheel.plugins.credit.contracts import (
    FeatureCreate,
    FeatureDefinition,
    FeatureRead,
    FeatureSetRead,
    FeatureSetVersionRead,
)
from flywheel.plugins.credit.transforms import check_definition
from flywheel.server.plugin_api import Conflict, InvalidInput, NotFound

_FEATURE = ("id, name, source_columns, transform, params, monotone, description, created_at, updated_at, "
            "used_at IS NOT NULL AS used")
_FSV = ("v.id, v.feature_set_id, s.name, v.version, v.features, v.created_at, v.used_at IS NOT NULL AS used")


def _feature(row) -> FeatureRead:
    return FeatureRead(**dict(row))


async def create_feature(db, tenant_id: UUID, f: FeatureCreate) -> FeatureRead:
    check_definition(f)
    try:
        row = await db.fetchrow(
            f"""INSERT INTO credit_features (id, tenant_id, name, source_columns, transform, params, monotone,
                   description) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_FEATURE}""",
            uuid.uuid4(), tenant_id, f.name, f.source_columns, f.transform, f.params, f.monotone, f.description)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a feature named {f.name!r} exists", field="$.name") from None
    return _feature(row)


async def update_feature(db, tenant_id: UUID, feature_id: UUID, f: FeatureCreate) -> FeatureRead:
    check_definition(f)
    current = await get_feature(db, tenant_id, feature_id)
    if current.used:
        raise Conflict("this feature was used by a run and cannot be changed; define a new one",
                       code="version_in_use")
    try:
        row = await db.fetchrow(
            f"""UPDATE credit_features SET name = $3, source_columns = $4, transform = $5, params = $6,
                   monotone = $7, description = $8, updated_at = now()
                WHERE tenant_id = $1 AND id = $2 AND used_at IS NULL RETURNING {_FEATURE}""",
            tenant_id, feature_id, f.name, f.source_columns, f.transform, f.params, f.monotone, f.description)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a feature named {f.name!r} exists", field="$.name") from None
    if row is None:
        raise Conflict("this feature was used by a run meanwhile", code="version_in_use")
    return _feature(row)


async def get_feature(db, tenant_id: UUID, feature_id: UUID) -> FeatureRead:
    row = await db.fetchrow(f"SELECT {_FEATURE} FROM credit_features WHERE tenant_id = $1 AND id = $2",
                            tenant_id, feature_id)
    if row is None:
        raise NotFound("no such feature", field="path.feature_id")
    return _feature(row)


async def list_features(db, tenant_id: UUID, after: tuple | None, limit: int) -> list[FeatureRead]:
    rows = await db.fetch(
        f"""SELECT {_FEATURE} FROM credit_features WHERE tenant_id = $1
            AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4""",
        tenant_id, *(after or (None, None)), limit)
    return [_feature(r) for r in rows]


async def create_feature_set(db, tenant_id: UUID, name: str, description: str) -> UUID:
    try:
        return await db.fetchval(
            "INSERT INTO credit_feature_sets (id, tenant_id, name, description) VALUES ($1, $2, $3, $4) RETURNING id",
            uuid.uuid4(), tenant_id, name, description)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a feature set named {name!r} exists", field="$.name") from None


async def create_set_version(db, tenant_id: UUID, set_id: UUID, names: list[str], field: str) -> UUID:
    """A new version of the set holding these features' current definitions, in this order."""
    if len(set(names)) != len(names):
        raise InvalidInput("a feature set lists each feature once", field=field)
    rows = await db.fetch(
        "SELECT name, source_columns, transform, params, monotone, description FROM credit_features "
        "WHERE tenant_id = $1 AND name = ANY($2::text[])", tenant_id, names)
    by_name = {r["name"]: FeatureDefinition(**dict(r)) for r in rows}
    for i, name in enumerate(names):
        if name not in by_name:
            raise InvalidInput(f"no feature named {name!r}", field=f"{field}[{i}]", code="unknown_feature")
    frozen = msgspec.to_builtins([by_name[n] for n in names])
    async with db.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT 1 FROM credit_feature_sets WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                               tenant_id, set_id) is None:
            raise NotFound("no such feature set", field="path.feature_set_id")
        return await conn.fetchval(
            """INSERT INTO credit_feature_set_versions (id, tenant_id, feature_set_id, version, features)
               SELECT $1, $2, $3, coalesce(max(version), 0) + 1, $4 FROM credit_feature_set_versions
               WHERE tenant_id = $2 AND feature_set_id = $3 RETURNING id""",
            uuid.uuid4(), tenant_id, set_id, frozen)


def _set_version(row) -> FeatureSetVersionRead:
    fields = dict(row)
    fields["features"] = msgspec.convert(fields["features"], list[FeatureDefinition])
    return FeatureSetVersionRead(**fields)


async def get_set_version(db, tenant_id: UUID, version_id: UUID, field: str = "path.feature_set_version_id"):
    row = await db.fetchrow(
        f"""SELECT {_FSV} FROM credit_feature_set_versions v JOIN credit_feature_sets s ON s.id = v.feature_set_id
            WHERE v.tenant_id = $1 AND v.id = $2""", tenant_id, version_id)
    if row is None:
        raise NotFound("no such feature set version", field=field)
    return _set_version(row)


async def get_feature_set(db, tenant_id: UUID, set_id: UUID) -> FeatureSetRead:
    row = await db.fetchrow("SELECT id, name, description, created_at FROM credit_feature_sets "
                            "WHERE tenant_id = $1 AND id = $2", tenant_id, set_id)
    if row is None:
        raise NotFound("no such feature set", field="path.feature_set_id")
    return await _feature_set(db, tenant_id, row)


async def _feature_set(db, tenant_id: UUID, row) -> FeatureSetRead:
    versions = await db.fetch(
        f"""SELECT {_FSV} FROM credit_feature_set_versions v JOIN credit_feature_sets s ON s.id = v.feature_set_id
            WHERE v.tenant_id = $1 AND v.feature_set_id = $2 ORDER BY v.version DESC""", tenant_id, row["id"])
    return FeatureSetRead(id=row["id"], name=row["name"], description=row["description"],
                          created_at=row["created_at"], versions=[_set_version(v) for v in versions])


async def list_feature_sets(db, tenant_id: UUID, after: tuple | None, limit: int) -> list[FeatureSetRead]:
    rows = await db.fetch(
        """SELECT id, name, description, created_at FROM credit_feature_sets WHERE tenant_id = $1
           AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4""",
        tenant_id, *(after or (None, None)), limit)
    return [await _feature_set(db, tenant_id, r) for r in rows]


async def delete_set_version(db, tenant_id: UUID, version_id: UUID) -> None:
    found = await get_set_version(db, tenant_id, version_id)
    if found.used:
        raise Conflict("this feature set version was used by a run and cannot be changed or removed",
                       code="version_in_use")
    await db.execute("DELETE FROM credit_feature_set_versions WHERE tenant_id = $1 AND id = $2 AND used_at IS NULL",
                     tenant_id, version_id)


async def mark_used(conn, tenant_id: UUID, dataset_version_id: UUID, set_version_id: UUID,
                    features: list[str]) -> None:
    """Freeze what a run reads: its dataset version, feature set version and features."""
    await conn.execute("UPDATE credit_dataset_versions SET used_at = coalesce(used_at, now()) "
                       "WHERE tenant_id = $1 AND id = $2", tenant_id, dataset_version_id)
    await conn.execute("UPDATE credit_feature_set_versions SET used_at = coalesce(used_at, now()) "
                       "WHERE tenant_id = $1 AND id = $2", tenant_id, set_version_id)
    await conn.execute("UPDATE credit_features SET used_at = coalesce(used_at, now()) "
                       "WHERE tenant_id = $1 AND name = ANY($2::text[])", tenant_id, features)
