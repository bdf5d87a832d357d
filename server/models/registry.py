"""The model registry in Postgres: versions per tenant and family, and the active pointer.

Activation writes the pointer and sends `NOTIFY flywheel_models` in one
transaction, so every API replica hears about it when (and only when) it is
committed; see runtime.py for what they do then.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from flywheel.contracts.models import LOWER_IS_BETTER, ActivateResult, ModelVersionRead
from flywheel.server.errors import Conflict, NotFound

CHANNEL = "flywheel_models"
_COLUMNS = "v.family, v.version, v.state, v.created_at, v.finished_at, v.job_id, v.metrics, v.error"


async def allocate_version(db, tenant_id: UUID, family: str, job_id: UUID) -> int:
    """The version number this training job fills; a retried job gets its own number back."""
    async with db.acquire() as conn, conn.transaction():
        # Serialize allocation per tenant and family: max()+1 would race otherwise.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('flywheel.models'), hashtext($1 || ':' || $2))",
                           str(tenant_id), family)
        existing = await conn.fetchval("SELECT version FROM model_versions WHERE job_id = $1", job_id)
        if existing is not None:
            await conn.execute("UPDATE model_versions SET state = 'training', error = NULL, finished_at = NULL "
                               "WHERE job_id = $1", job_id)
            return existing
        return await conn.fetchval(
            """INSERT INTO model_versions (tenant_id, family, version, job_id)
               SELECT $1, $2, coalesce(max(version), 0) + 1, $3 FROM model_versions
               WHERE tenant_id = $1 AND family = $2
               RETURNING version""", tenant_id, family, job_id)


async def mark_ready(db, tenant_id: UUID, family: str, version: int, *, metrics: dict, features: list,
                     info: dict) -> None:
    await db.execute(
        """UPDATE model_versions SET state = 'ready', metrics = $4, features = $5, info = $6, finished_at = now()
           WHERE tenant_id = $1 AND family = $2 AND version = $3""",
        tenant_id, family, version, metrics, features, info)


async def mark_failed(db, tenant_id: UUID, family: str, version: int, error: str) -> None:
    await db.execute(
        """UPDATE model_versions SET state = 'failed', error = $4, finished_at = now()
           WHERE tenant_id = $1 AND family = $2 AND version = $3""",
        tenant_id, family, version, error[:4000])


def version_read(row) -> ModelVersionRead:
    return ModelVersionRead(family=row["family"], version=row["version"], state=row["state"],
                            active=bool(row["active"]), created_at=row["created_at"],
                            finished_at=row["finished_at"], job_id=row["job_id"], metrics=row["metrics"],
                            error=row["error"])


async def list_versions(db, tenant_id: UUID, family: str | None = None) -> list[ModelVersionRead]:
    rows = await db.fetch(
        f"""SELECT {_COLUMNS}, a.version IS NOT NULL AS active
            FROM model_versions v
            LEFT JOIN active_models a ON a.tenant_id = v.tenant_id AND a.family = v.family AND a.version = v.version
            WHERE v.tenant_id = $1 AND ($2::text IS NULL OR v.family = $2)
            ORDER BY v.family, v.version DESC""", tenant_id, family)
    return [version_read(r) for r in rows]


async def get_version(db, tenant_id: UUID, family: str, version: int) -> ModelVersionRead:
    row = await db.fetchrow(
        f"""SELECT {_COLUMNS}, a.version IS NOT NULL AS active
            FROM model_versions v
            LEFT JOIN active_models a ON a.tenant_id = v.tenant_id AND a.family = v.family AND a.version = v.version
            WHERE v.tenant_id = $1 AND v.family = $2 AND v.version = $3""", tenant_id, family, version)
    if row is None:
        raise NotFound(f"no version {version} of model {family!r}")
    return version_read(row)


async def active_version(db, tenant_id: UUID, family: str) -> int | None:
    return await db.fetchval("SELECT version FROM active_models WHERE tenant_id = $1 AND family = $2",
                             tenant_id, family)


async def active_row(db, tenant_id: UUID, family: str):
    return await db.fetchrow(
        """SELECT v.version, v.metrics, v.features, v.info, v.created_at, a.activated_at
           FROM active_models a JOIN model_versions v USING (tenant_id, family, version)
           WHERE a.tenant_id = $1 AND a.family = $2""", tenant_id, family)


async def activate(db, tenant_id: UUID, family: str, version: int, *, by: str) -> ActivateResult:
    """Point the family at `version` (which must be ready), record who did (`by`), tell every replica."""
    async with db.acquire() as conn, conn.transaction():
        state = await conn.fetchval(
            "SELECT state FROM model_versions WHERE tenant_id = $1 AND family = $2 AND version = $3",
            tenant_id, family, version)
        if state is None:
            raise NotFound(f"no version {version} of model {family!r}")
        if state != "ready":
            raise Conflict(f"version {version} of {family!r} is {state}; only a ready version can be activated",
                           code="model_not_ready")
        previous = await conn.fetchval(
            "SELECT version FROM active_models WHERE tenant_id = $1 AND family = $2 FOR UPDATE", tenant_id, family)
        activated_at = await conn.fetchval(
            """INSERT INTO active_models (tenant_id, family, version) VALUES ($1, $2, $3)
               ON CONFLICT (tenant_id, family) DO UPDATE SET version = EXCLUDED.version, activated_at = now()
               RETURNING activated_at""", tenant_id, family, version)
        await conn.execute(
            """INSERT INTO model_activations (tenant_id, family, version, previous_version, activated_by, activated_at)
               VALUES ($1, $2, $3, $4, $5, $6)""", tenant_id, family, version, previous, by[:200], activated_at)
        message = msgspec.json.encode({"tenant_id": str(tenant_id), "family": family, "version": version}).decode()
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, message)
    return ActivateResult(family=family, version=version, previous_version=previous, activated_at=activated_at,
                          activated_by=by[:200])


async def activations(db, tenant_id: UUID, family: str, limit: int = 50) -> list[ActivateResult]:
    """The family's activations, newest first: the audit trail of what served when, and who chose it."""
    rows = await db.fetch(
        """SELECT family, version, previous_version, activated_at, activated_by FROM model_activations
           WHERE tenant_id = $1 AND family = $2 ORDER BY activated_at DESC, id DESC LIMIT $3""",
        tenant_id, family, limit)
    return [ActivateResult(**dict(r)) for r in rows]


def beats(new: dict[str, Any], old: dict[str, Any] | None, metric: str) -> bool:
    """Whether metrics `new` are better than `old` on `metric` (a null figure never wins, even alone)."""
    a = new.get(metric)
    if a is None:
        return False
    b = None if old is None else old.get(metric)
    if b is None:
        return True
    return a < b if metric in LOWER_IS_BETTER else a > b


def activation_verdict(new: dict[str, Any], current, metric: str) -> tuple[bool, str]:
    """Whether auto-activation may serve `new` instead of the `current` active row, and why, in one line."""
    a = new.get(metric)
    if a is None:
        return False, (f"not activated: {metric} is null on the test split (it needs both classes there); "
                       "activate it by hand if you must")
    if current is None:
        return True, f"activated: the first ready version ({metric} {a:.4f})"
    b = (current["metrics"] or {}).get(metric)
    shown = "null" if b is None else f"{b:.4f}"
    if beats(new, current["metrics"], metric):
        return True, f"activated: {metric} {a:.4f} beats active v{current['version']}'s {shown}"
    return False, f"not activated: {metric} {a:.4f} does not beat active v{current['version']}'s {shown}"
