"""Background jobs: their status as the API shows it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobProgress(msgspec.Struct, omit_defaults=True):
    """How far a job has got: `current` of `total` (if known), and what it is doing."""

    current: float = 0
    total: float | None = None
    message: str | None = None


class JobRead(msgspec.Struct):
    id: UUID
    name: str
    state: JobState
    progress: JobProgress
    attempts: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    logs: str | None = None  # what it logged while it ran (one job's page, not in listings)


class JobPage(msgspec.Struct):
    items: list[JobRead]
    next_cursor: str | None = None


class JobSpec(msgspec.Struct, kw_only=True):
    """A job function a plugin registers through `register_jobs`.

    `func` is ``async def func(ctx: JobContext, payload) -> dict | Struct | None``;
    `payload` is the Struct its payload decodes into (None: no payload). Names
    are namespaced by plugin (``drives.score_fleet``). Jobs may run more than
    once (a worker killed mid-job is retried), so they must be idempotent.

    A job queued by a tenant runs with `ctx.tenant_id` set and must touch
    that tenant's data only. `system=True` marks a job that works on the
    whole deployment (every tenant's rows): it runs from cron or an
    operator's command, never for a tenant, so `POST /v1/jobs` refuses it.
    """

    name: str
    func: Any
    payload: type[msgspec.Struct] | None = None
    timeout_s: float = 3600.0
    max_tries: int = 3
    description: str = ""
    system: bool = False


class CronSpec(msgspec.Struct, kw_only=True):
    """Run a registered job on a schedule (every worker process schedules; ARQ
    makes sure each tick runs once). Unset fields mean "every"."""

    name: str
    job: str
    minute: int | set[int] | None = None
    hour: int | set[int] | None = None
    day: int | set[int] | None = None
    weekday: int | set[int] | None = None
    month: int | set[int] | None = None
    run_at_startup: bool = False
    payload: Any = None
