"""The plugin API: everything a Flywheel plugin uses from the server, and nothing else.

A plugin imports from here and from `flywheel.contracts`; anything else under
`flywheel.server` is internal and may change in any release (an import
contract in Flywheel's own tests keeps the built-in plugins to this rule).
Every name is documented in docs/plugins.md under "The plugin API", with
the version it appeared in. Names are added, never renamed or removed
without a deprecation first (docs/plugins.md, "Changelog").

Every function takes the app state first: `on_startup` and `on_demo` get it,
jobs have it as `ctx.state`, route handlers as `state.flywheel`, CLI commands
from `cli_state()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from flywheel.contracts.events import Event, IngestResult
from flywheel.contracts.jobs import JobRead
from flywheel.contracts.models import Explanation, ModelVersionRead, TrainModel
from flywheel.contracts.tenants import TenantRead
from flywheel.server.alerts.contracts import Alert, AlertCondition, Finding, Severity
from flywheel.server.auth.principal import Caller, Principal
from flywheel.server.console.charts import bar_chart, histogram, line_chart
from flywheel.server.errors import (
    ApiError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unavailable,
)
from flywheel.server.fast_routes import FAST_PATH, FastRequest, FastResponse
from flywheel.server.hookspecs import hookimpl, subscribe
from flywheel.server.jobs.cancel import JobCancelled
from flywheel.server.jobs.context import JobContext
from flywheel.server.monitoring.contracts import MonitoringOutcomes, MonitoringThresholds
from flywheel.server.net_guard import GuardedResolver, PrivateAddress
from flywheel.server.pagination import decode_cursor, encode_cursor
from flywheel.server.sandbox import SandboxError, SandboxResult, SandboxSpec, UnsafeArchive, extract_workspace
from flywheel.server.spreadsheets import spreadsheet_safe
from flywheel.server.state import AppState
from flywheel.server.store.base import ObjectInfo, ObjectStore

_encode_events = msgspec.json.Encoder().encode

if TYPE_CHECKING:
    import asyncio

    import numpy as np
    import pyarrow as pa

__all__ = [
    # hooks
    "hookimpl", "subscribe",
    # requests and errors
    "Caller", "Principal", "ApiError", "Conflict", "Forbidden", "InvalidInput", "NotFound", "Unauthorized",
    "Unavailable",
    # hot routes answered in front of Litestar
    "FAST_PATH", "FastRequest", "FastResponse",
    # state, jobs
    "AppState", "JobContext", "JobRead", "JobCancelled", "enqueue", "run_here", "job_status", "follow_job",
    # events
    "stored_events", "ingest_events",
    # secrets
    "seal_secret", "open_secret", "secrets_ready",
    # tenants and CLI commands
    "TenantRead", "find_tenant", "create_tenant", "tenant_ids", "cli_state",
    # models
    "ModelVersionRead", "Explanation", "active_version", "model_version", "score_table", "explain_table",
    "train_version",
    # pagination, console, store
    "encode_cursor", "decode_cursor", "bar_chart", "line_chart", "histogram", "ObjectStore", "ObjectInfo",
    "tenant_store", "spreadsheet_safe",
    # sandboxes
    "SandboxSpec", "SandboxResult", "SandboxError", "UnsafeArchive", "run_sandboxed", "sandbox_backend",
    "extract_workspace",
    # alerts (since 0.4)
    "raise_alert", "Alert", "AlertCondition", "Finding",
    # outbound HTTP to tenant-chosen hosts (since 0.4)
    "GuardedResolver", "PrivateAddress",
    # model monitoring (since 0.4)
    "MonitoringThresholds", "MonitoringOutcomes",
    # contracts for `flywheel schemas` (since 0.4)
    "contracts_in",
]

# -- jobs ----------------------------------------------------------------------------------


async def enqueue(state: AppState, name: str, payload: Any = None, *, tenant_id: UUID | None) -> UUID:
    """Queue job `name` for a worker; returns the job id (status at `GET /v1/jobs/{id}`). Since 0.1."""
    from flywheel.server.jobs.queue import enqueue as _enqueue

    return await _enqueue(state, name, payload, tenant_id=tenant_id)


async def run_here(state: AppState, name: str, payload: Any = None, *,
                   tenant_id: UUID | None) -> tuple[UUID, asyncio.Task]:
    """Run job `name` in this process now, recorded like a queued one. Since 0.2.

    For CLI commands and demo data that must not wait for a worker. Returns
    the job id and the task running it; the task never raises for a failing
    job: read its status (`job_status`, `follow_job`).
    """
    from flywheel.server.jobs.queue import start_here

    return await start_here(state, name, payload, tenant_id=tenant_id)


async def job_status(state: AppState, job_id: UUID, *, tenant_id: UUID | None) -> JobRead:
    """The job's state, progress, result and error (404 if it is not this tenant's). Since 0.2."""
    from flywheel.server.jobs.status import job_status as _status

    return await _status(state.db, job_id, tenant_id)


async def follow_job(state: AppState, job_id: UUID, *, tenant_id: UUID | None, on_progress: Any = None,
                     interval: float = 0.2) -> JobRead:
    """Wait until the job has succeeded or failed; `on_progress(JobRead)` (sync or async)
    sees each poll, e.g. to drive a progress bar. Since 0.2."""
    from flywheel.server.jobs.status import follow_job as _follow

    return await _follow(state.db, job_id, tenant_id, on_progress, interval=interval)


# -- events ----------------------------------------------------------------------------------


def stored_events(state: AppState, tenant_id: UUID, event_type: type[Event], since: datetime,
                  until: datetime | None = None, *, batch: int = 5000) -> AsyncIterator[list[Event]]:
    """The tenant's stored events of `event_type` with `since <= ts < until`, oldest first,
    in lists of at most `batch`, decoded into `event_type` (as stored: PII scrubbed).
    ``async for events in stored_events(...)``. Since 0.2."""
    from flywheel.server.ingest.reading import stored_events as _stored

    return _stored(state, tenant_id, event_type, since, until, batch=batch)


async def ingest_events(state: AppState, tenant_id: UUID, events: list[Event]) -> IngestResult:
    """Store events as `POST /v1/events` would: validated, PII scrubbed, deduplicated by
    `event_id`, spooled to disk while Postgres is down, then `on_events_committed`.
    In API processes only (a worker has no ingestion engine: Unavailable). Since 0.3."""
    if state.ingestor is None:
        raise Unavailable("events are ingested by API processes; this one has no ingestion engine",
                          code="ingest_unavailable")
    body = _encode_events(events)
    return await state.ingestor.ingest(tenant_id, body, "application/json")


# -- secrets --------------------------------------------------------------------------------


def seal_secret(state: AppState, plaintext: str) -> str:
    """`plaintext` encrypted with FLYWHEEL_SECRET_KEY (Fernet), as ASCII text to store.
    Unavailable (`secret_key_missing`) when no key is configured. Since 0.3."""
    return state.secrets().seal(plaintext)


def open_secret(state: AppState, token: str) -> str:
    """What `seal_secret` sealed. Unavailable when the key is missing or does not open it;
    the message never holds the token. Since 0.3."""
    return state.secrets().open(token)


def secrets_ready(state: AppState) -> bool:
    """True when a secret key is configured, so `seal_secret` works: a plugin holding
    sealed secrets refuses to start without one. Since 0.3."""
    return state.secrets().ready


# -- tenants and CLI commands ---------------------------------------------------------------


async def find_tenant(state: AppState, name_or_id: str) -> TenantRead:
    """The tenant with this name or id, or NotFound. Since 0.2."""
    from flywheel.server.auth.service import find_tenant as _find

    return await _find(state.db, name_or_id)


async def create_tenant(state: AppState, name: str) -> TenantRead:
    """A new tenant (Conflict if the name is taken). Since 0.2."""
    from flywheel.server.auth.service import create_tenant as _create

    return await _create(state.db, name)


async def tenant_ids(state: AppState) -> list[UUID]:
    """Every tenant's id: for cron jobs (`ctx.tenant_id` None) that work tenant by tenant. Since 0.2."""
    from flywheel.server.auth.service import list_tenants

    return [t.id for t in await list_tenants(state.db)]


@asynccontextmanager
async def cli_state(**settings: Any) -> AsyncIterator[AppState]:
    """A started app state for a CLI command: settings from the environment (`settings`
    override them), embedded Postgres and Redis when none are configured, migrations
    applied. A bad setting exits with code 2 and a message naming it. Since 0.2."""
    from flywheel.server.cli.context import connected, settings_or_exit

    async with connected(settings_or_exit(**settings)) as state:
        yield state


# -- models --------------------------------------------------------------------------------


async def active_version(state: AppState, tenant_id: UUID, family: str) -> int | None:
    """The version of `family` the tenant serves, or None. Since 0.2."""
    from flywheel.server.models.registry import active_version as _active

    return await _active(state.db, tenant_id, family)


async def model_version(state: AppState, tenant_id: UUID, family: str, version: int) -> ModelVersionRead:
    """One version of `family`: state, metrics, error (NotFound if there is none). Since 0.2."""
    from flywheel.server.models.registry import get_version

    return await get_version(state.db, tenant_id, family, version)


async def score_table(state: AppState, tenant_id: UUID, family: str, table: pa.Table, *,
                      version: int | None = None, chunk_rows: int = 50_000,
                      progress: Any = None, margin: bool = False, monitor: bool = True) -> tuple[int, np.ndarray]:
    """Scores of an Arrow table's rows (feature columns by name) with the active version
    (or `version`): (version, float64 probabilities), or with `margin=True` (since 0.3) the
    margins (log-odds: rank on these). `progress(done, total)` is awaited per chunk.
    The same ONNX sessions as `/score`. The rows count for the version's monitoring unless
    `monitor=False` (since 0.4): pass it for evaluations and backtests, which are not traffic
    the version served. Since 0.1."""
    from flywheel.server.models.runtime import score_table as _score

    return await _score(state, tenant_id, family, table, version=version, chunk_rows=chunk_rows,
                        progress=progress, margin=margin, monitor=monitor)


async def explain_table(state: AppState, tenant_id: UUID, family: str, table: pa.Table, *,
                        version: int | None = None, top: int = 3) -> list[Explanation]:
    """Each row's `top` largest feature contributions, computed off the event loop (~2 ms a
    row: explain the rows people look at, not whole tables). Since 0.2."""
    from flywheel.server.models.runtime import explain_table as _explain

    return await _explain(state, tenant_id, family, table, version=version, top=top)


async def train_version(ctx: JobContext, request: TrainModel, *, holdout_scores: bool = False) -> dict[str, Any]:
    """Train, check (ONNX parity) and register one version of `request.family` for
    `ctx.tenant_id` inside your own job, exactly as `core.train_model` does; returns its
    result (`version`, `trees`, ...). The version is keyed by the job: a retried job fills
    the same version, never a second one. Since 0.3.

    `holdout_scores=True` adds `result["holdout_scores"]`: `{"rows": positions of the test
    split's rows in the family's table, "probabilities": the registered version's for them}`,
    the scores the parity check already computed, so evaluating on the test split does not
    score it again (None after Dask training). Since 0.4."""
    from flywheel.server.models.training import train_version as _train

    return await _train(ctx, request, holdout_scores=holdout_scores)


# -- store -------------------------------------------------------------------------


def tenant_store(state: AppState, tenant_id: UUID) -> ObjectStore:
    """The object store as one tenant sees it: every key under its own prefix. Since 0.1."""
    return state.tenant_store(tenant_id)


# -- sandboxes -----------------------------------------------------------------------

_SANDBOX = "flywheel.sandbox"


def sandbox_backend(state: AppState) -> str:
    """The backend `run_sandboxed` uses: "bubblewrap", "docker" or "none" (FLYWHEEL_SANDBOX). Since 0.3."""
    from flywheel.server.sandbox import backend_name

    return backend_name(state.settings.sandbox)


async def run_sandboxed(state: AppState, spec: SandboxSpec) -> SandboxResult:
    """Run `spec.command` in the configured sandbox: no network, uid 1000, no capabilities,
    read-only root, bounded scratch, memory / pids / CPU limits, a wall-clock timeout.
    SandboxError when no sandbox is configured or the command could not start. Since 0.3."""
    from flywheel.server.sandbox import make_sandbox

    box = state.extras.get(_SANDBOX)
    if box is None:
        box = state.extras[_SANDBOX] = make_sandbox(state.settings.sandbox)
    return await box.run(spec)


# -- alerts --------------------------------------------------------------------------


async def raise_alert(state: AppState, tenant_id: UUID, *, rule: str, key: str, severity: Severity, title: str,
                      details: dict[str, Any]) -> Alert | None:
    """Open the alert (`rule`, `key`) for the tenant, or, while it is open or acknowledged,
    count a repeat (`count`, `last_seen`; a higher severity escalates it). Once resolved, the
    next raise opens a new one. `rule` is namespaced (`drives.top_risk_band`); `severity` is
    "info", "warning" or "critical". None when the tenant's alert rules drop it (disabled, or
    below their minimum severity). A new alert goes to the rule's channels. Since 0.4."""
    from flywheel.server.alerts.raise_alert import raise_alert as _raise

    return await _raise(state, tenant_id, rule=rule, key=key, severity=severity, title=title, details=details)


# -- contracts -------------------------------------------------------------------------


def contracts_in(module: Any) -> list[type[msgspec.Struct]]:
    """Every msgspec Struct defined in `module` (not those it imports), in definition order:
    ``return contracts_in(my_plugin.contracts)`` from `register_contracts`. Since 0.4."""
    import inspect

    return [cls for cls in vars(module).values()
            if inspect.isclass(cls) and issubclass(cls, msgspec.Struct) and cls.__module__ == module.__name__]
