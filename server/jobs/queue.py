"""Enqueueing jobs: a status row in Postgres first, then the ARQ job in Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from flywheel.contracts.errors import ErrorDetail
from flywheel.contracts.jobs import JobSpec
from flywheel.server.errors import (
    ApiError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unavailable,
    from_msgspec,
)
from flywheel.server.validation import check_document, check_int_range

if TYPE_CHECKING:
    from flywheel.server.state import AppState


async def create_job_row(state: AppState, spec: JobSpec, tenant_id: UUID | None, payload: Any) -> UUID:
    job_id = uuid.uuid4()
    await state.db.execute(
        "INSERT INTO jobs (id, tenant_id, name, payload) VALUES ($1, $2, $3, $4)",
        job_id, tenant_id, spec.name, msgspec.to_builtins(payload) if payload is not None else None,
    )
    return job_id


def validate_payload(spec: JobSpec, payload: Any) -> Any:
    """Check a payload against the job's Struct; errors name the field under `$.payload`."""
    check_document(payload, "$.payload")
    check_int_range(payload, "$.payload")
    if spec.payload is None:
        if payload not in (None, {}):
            raise InvalidInput(f"job {spec.name} takes no payload", field="$.payload")
        return None
    try:
        return msgspec.convert(payload if payload is not None else {}, spec.payload)
    except msgspec.ValidationError as exc:
        error = from_msgspec(exc, prefix="$.payload")
        fields = spec.payload.__struct_fields__
        if error.field and error.field.count(".") == 2 and error.field.rsplit(".", 1)[1] not in fields:
            # A misspelt field: say which ones the job takes (`day`, not `date`).
            error.message = f"{error.message.rstrip()}; {spec.name} takes: {', '.join(fields) or 'no fields'}"
            error.details = [ErrorDetail(code="allowed_field", message=f"{spec.name} takes {name!r}",
                                         field=f"$.payload.{name}") for name in fields]
        raise error from None


def _prepare(state: AppState, name: str, payload: Any, tenant_id: UUID | None) -> tuple[JobSpec, Any]:
    entry = state.contributions.jobs.get(name)
    if entry is None:
        raise NotFound(f"no job named {name!r}", field="$.name")
    spec = entry[1]
    if spec.system and tenant_id is not None:
        # Its work spans every tenant; run for one, it would still touch the others' rows.
        raise Forbidden(f"{name} is a system job: it runs on its schedule or from an operator's command, "
                        "not for a tenant", field="$.name", code="system_job")
    if isinstance(payload, msgspec.Struct):
        payload = msgspec.to_builtins(payload)
    return spec, validate_payload(spec, payload)


async def enqueue(state: AppState, name: str, payload: Any = None, *, tenant_id: UUID | None) -> UUID:
    """Queue job `name` for `tenant_id`; returns the job id to poll at `/v1/jobs/{id}`."""
    spec, validated = _prepare(state, name, payload, tenant_id)
    job_id = await create_job_row(state, spec, tenant_id, validated)
    wire = msgspec.to_builtins(validated) if validated is not None else None
    try:
        queued = await state.redis.enqueue_job(name, str(job_id), wire, _job_id=str(job_id))
    except Exception as exc:
        await state.db.execute(
            "UPDATE jobs SET state = 'failed', error = $2, finished_at = now() WHERE id = $1",
            job_id, f"could not queue: {type(exc).__name__}",
        )
        raise Unavailable("the job queue is unavailable; try again", headers={"Retry-After": "5"}) from exc
    if queued is None:  # cannot happen with a fresh uuid, but never report a job that will not run
        raise ApiError("job was not queued", status=500, code="internal_error")
    return job_id


async def start_here(state: AppState, name: str, payload: Any = None, *,
                     tenant_id: UUID | None) -> tuple[UUID, asyncio.Task]:
    """Run job `name` in this process now, recorded in `jobs` like a queued one.

    For commands and demo data that must not wait for a worker. Returns the
    job id (its progress shows at `/v1/jobs/{id}` meanwhile) and the task
    running it; the task never raises for a failing job: read its row.
    """
    from flywheel.server.jobs.runner import run_job

    spec, validated = _prepare(state, name, payload, tenant_id)
    job_id = await create_job_row(state, spec, tenant_id, validated)
    wire = msgspec.to_builtins(validated) if validated is not None else None
    return job_id, asyncio.create_task(run_job(state, spec, job_id, wire))
