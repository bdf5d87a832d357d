"""LoRA adapters: versioned artifacts trained on an export, and policies that serve them.

An adapter is a row of `rlaas_adapters` and, once the `rlaas.train_adapter`
job (trainer/job.py) has trained it, files in the tenant's store under
`rlaas/adapters/{id}/`. Each training under a name is the name's next
version. Attaching one makes a new policy through `policies.create`, so it
is validated and audited exactly as one made by `POST /v1/rlaas/policies`.
The API and the CLI both call these functions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import msgspec

from flywheel.plugins.rlaas import policies
from flywheel.plugins.rlaas.adapter_types import (
    AdapterAttach,
    AdapterCreate,
    AdapterPage,
    AdapterRead,
    TrainAdapter,
)
from flywheel.plugins.rlaas.exports import export_record, finished
from flywheel.plugins.rlaas.policy_types import PolicyCreate, PolicyRead
from flywheel.plugins.rlaas.trainer.base_models import allowed_base_models, base_model_problem
from flywheel.plugins.rlaas.trainer.config import config_problem
from flywheel.server.plugin_api import (
    ApiError,
    AppState,
    InvalidInput,
    NotFound,
    decode_cursor,
    encode_cursor,
    enqueue,
)

JOB = "rlaas.train_adapter"
_COLUMNS = ", ".join(AdapterRead.__struct_fields__)
_INSERT = f"""
INSERT INTO rlaas_adapters (id, tenant_id, name, version, method, status, base_model, export_id, config,
                            object_prefix, description)
SELECT $1, $2, $3, coalesce(max(version), 0) + 1, $4, 'queued', $5, $6, $7, $8, $9
FROM rlaas_adapters WHERE tenant_id = $2 AND name = $3
RETURNING {_COLUMNS}"""


def object_prefix(adapter_id: UUID) -> str:
    return f"rlaas/adapters/{adapter_id}/"


def adapter_read(row: Any) -> AdapterRead:
    return msgspec.convert(dict(row), AdapterRead)


async def get_adapter(db: Any, tenant_id: UUID, adapter_id: UUID) -> AdapterRead:
    """One of the tenant's adapters (NotFound if it has none by that id, whoever else might)."""
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM rlaas_adapters WHERE tenant_id = $1 AND id = $2",
                            tenant_id, adapter_id)
    if row is None:
        raise NotFound("no such adapter")
    return adapter_read(row)


async def list_adapters(db: Any, tenant_id: UUID, *, name: str | None = None, status: str | None = None,
                        limit: int = 50, cursor: str | None = None) -> AdapterPage:
    """Newest first, in keyset pages."""
    after = decode_cursor(cursor, datetime, UUID) if cursor else (None, None)
    rows = await db.fetch(
        f"""SELECT {_COLUMNS} FROM rlaas_adapters
            WHERE tenant_id = $1 AND ($2::text IS NULL OR name = $2) AND ($3::text IS NULL OR status = $3)
              AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid))
            ORDER BY created_at DESC, id DESC LIMIT $6""", tenant_id, name, status, *after, limit + 1)
    items = [adapter_read(r) for r in rows[:limit]]
    last = items[-1] if len(rows) > limit else None
    return AdapterPage(items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None)


# -- training ---------------------------------------------------------------------------------


async def _enqueue(state: AppState, tenant_id: UUID, payload: TrainAdapter) -> UUID:
    return await enqueue(state, JOB, payload, tenant_id=tenant_id)


def check_create(state: AppState, body: AdapterCreate) -> None:
    problem = config_problem(body.config)
    if problem:
        raise InvalidInput(problem[1], field=f"$.config.{problem[0]}")
    why = base_model_problem(allowed_base_models(state), body.base_model)
    if why:
        raise InvalidInput(why, field="$.base_model")


async def create_adapter(state: AppState, tenant_id: UUID, body: AdapterCreate, *,
                         start: Callable[..., Any] = _enqueue) -> AdapterRead:
    """Record the name's next version, queued, and start its training job (`start(state, tenant_id,
    TrainAdapter)` returns the job id: a worker's queue by default; the CLI runs it in its own process)."""
    check_create(state, body)
    try:
        export = finished(await export_record(state, tenant_id, body.export_id))
    except NotFound:
        raise InvalidInput("no such export", field="$.export_id") from None
    if not export.row_count:
        raise InvalidInput("the export has no rows to train on", field="$.export_id")
    adapter_id = uuid4()
    row = await _insert(state, tenant_id, adapter_id, body, export.kind)
    try:
        job_id = await start(state, tenant_id, TrainAdapter(adapter_id=adapter_id))
    except BaseException:  # no job will ever train it: an adapter without one must not stay "queued"
        await state.db.execute("DELETE FROM rlaas_adapters WHERE tenant_id = $1 AND id = $2", tenant_id, adapter_id)
        raise
    row = await state.db.fetchrow(
        f"UPDATE rlaas_adapters SET job_id = $3 WHERE tenant_id = $1 AND id = $2 RETURNING {_COLUMNS}",
        tenant_id, adapter_id, job_id)
    return adapter_read(row)


async def _insert(state: AppState, tenant_id: UUID, adapter_id: UUID, body: AdapterCreate, method: str) -> Any:
    # Two trainings of one name at once may pick the same next version: the unique key
    # catches it, and the later one takes the version after.
    for _ in range(5):
        try:
            return await state.db.fetchrow(
                _INSERT, adapter_id, tenant_id, body.name, method, body.base_model, body.export_id,
                msgspec.to_builtins(body.config), object_prefix(adapter_id), body.description)
        except asyncpg.UniqueViolationError:
            continue
    raise ApiError(f"adapter {body.name} is being trained by many requests at once: try again", status=409,
                   code="adapter_busy")


# -- serving ----------------------------------------------------------------------------------


async def attach(state: AppState, tenant_id: UUID, actor: UUID | None, adapter_id: UUID, body: AdapterAttach, *,
                 replace: bool = False) -> PolicyRead:
    """A new `shadow` or `canary` policy whose upstream serves this adapter (its `adapter_id`)."""
    adapter = await get_adapter(state.db, tenant_id, adapter_id)
    if adapter.status != "succeeded":
        raise ApiError(f"adapter {adapter.name} v{adapter.version} is {adapter.status}: only a trained adapter "
                       "can be served", status=409, code="adapter_not_ready")
    given = body.upstream.adapter_id
    if given is not None and given != str(adapter.id):
        raise InvalidInput("the policy serves this adapter: leave `adapter_id` out, or give this adapter's id",
                           field="$.upstream.adapter_id")
    upstream = msgspec.structs.replace(body.upstream, adapter_id=str(adapter.id))
    description = body.description or f"LoRA adapter {adapter.name} v{adapter.version} on {adapter.base_model}"
    return await policies.create(state, tenant_id, actor, PolicyCreate(
        route=body.route, name=body.name, version=body.version, status=body.status, upstream=upstream,
        canary_share=body.canary_share, description=description[:2000]), replace=replace)
