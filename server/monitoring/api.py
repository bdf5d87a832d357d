"""What `/v1/models/{family}/monitoring...` answers (the routes are ModelController's, server/models/api.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec

from flywheel.contracts.jobs import JobRead
from flywheel.server.errors import InvalidInput
from flywheel.server.jobs.queue import enqueue
from flywheel.server.jobs.status import job_status
from flywheel.server.models import registry
from flywheel.server.models.families import family_of
from flywheel.server.monitoring.contracts import BackfillRequest, DayFigures, MonitoringReport, VersionSummary
from flywheel.server.monitoring.jobs import MAX_RANGE_DAYS
from flywheel.server.monitoring.thresholds import effective

if TYPE_CHECKING:
    from flywheel.server.state import AppState

DEFAULT_DAYS = 30

_DAYS = """SELECT figures FROM model_monitoring_days
           WHERE tenant_id = $1 AND family = $2 AND day BETWEEN $3 AND $4 AND ($5::int IS NULL OR version = $5)
           ORDER BY day, version"""
_REFERENCES = """SELECT version, rows FROM model_reference_bins
                 WHERE tenant_id = $1 AND family = $2 AND position = 0"""


def date_range(first: date | None, last: date | None, where: str = "query") -> tuple[date, date]:
    """The range asked for (default: the DEFAULT_DAYS days to today, UTC), or InvalidInput naming the bound."""
    last = last or (first + timedelta(days=DEFAULT_DAYS - 1) if first else datetime.now(UTC).date())
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidInput(f"`from` ({first}) is after `to` ({last})", field=f"{where}.from", code="bad_range")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput(f"a range covers at most {MAX_RANGE_DAYS} days; {first} to {last} is "
                           f"{(last - first).days + 1}", field=f"{where}.to", code="range_too_long")
    return first, last


def query_day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"`{name}` must be an ISO date (2026-11-30), got {value!r}", field=f"query.{name}",
                           code="bad_date") from None


async def report(state: AppState, tenant_id: UUID, family: str, first: str | None, last: str | None,
                 version: int | None) -> MonitoringReport:
    family_of(state, family)
    first, last = date_range(query_day(first, "from"), query_day(last, "to"))
    rows = await state.db.fetch(_DAYS, tenant_id, family, first, last, version)
    days = [msgspec.convert(r["figures"], DayFigures) for r in rows]
    versions = await _versions(state, tenant_id, family, days, version)
    return MonitoringReport(family=family, from_day=first, to_day=last,
                            thresholds=await effective(state, tenant_id, family), versions=versions, days=days,
                            notes=_notes(family, versions, days))


async def _versions(state: AppState, tenant_id: UUID, family: str, days: list[DayFigures],
                    only: int | None) -> list[VersionSummary]:
    """The versions with figures in the range, and the active one."""
    references = {r["version"]: r["rows"] for r in await state.db.fetch(_REFERENCES, tenant_id, family)}
    counted: dict[int, int] = {}
    for d in days:
        counted[d.version] = counted.get(d.version, 0) + 1
    out = []
    for v in await registry.list_versions(state.db, tenant_id, family):
        if (v.version in counted or v.active) and only in (None, v.version):
            out.append(VersionSummary(version=v.version, active=v.active, reference=v.version in references,
                                      reference_rows=references.get(v.version), days=counted.get(v.version, 0)))
    return out


def _notes(family: str, versions: list[VersionSummary], days: list[DayFigures]) -> list[str]:
    notes = [f"v{v.version} was trained before monitoring: it has no training distribution, so its days have "
             "operational figures but no drift; train a new version to monitor drift"
             for v in versions if not v.reference]
    if not days:
        notes.append("no figures in this range yet: the daily job computes yesterday's after 01:20 UTC; "
                     f"compute past days with POST /v1/models/{family}/monitoring/backfill")
    return notes


async def backfill(state: AppState, tenant_id: UUID, family: str, body: BackfillRequest) -> JobRead:
    """Queue `core.monitor_models` over the range for this tenant; follow it at `/v1/jobs/{id}`."""
    family_of(state, family)
    first, last = date_range(body.from_day, body.to_day, where="$")
    if body.version is not None:
        await registry.get_version(state.db, tenant_id, family, body.version)  # 404 for a version it lacks
    payload = {"from": first.isoformat(), "to": last.isoformat(), "family": family, "version": body.version,
               "alerts": False}
    job_id = await enqueue(state, "core.monitor_models", payload, tenant_id=tenant_id)
    return await job_status(state.db, job_id, tenant_id)
