"""`core.monitor_models`: each version's figures for a day (the daily cron) or a range (a backfill).

For each day, the versions monitored are every tenant's active ones and any
other that scored rows that day. A day's figures replace what an earlier run
stored for it (the job is idempotent), and days are computed oldest first so
each day's trailing volume is the days before it. The daily run raises an
alert for each threshold crossed; a backfill recomputes history and raises
none (unless asked). Labels arrive late, so the daily run also looks back
CALIBRATION_LOOKBACK_DAYS for days still without calibration, and
recomputes those whose outcomes the family now knows (raising only their
calibration alerts).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import msgspec
import structlog

from flywheel.contracts.jobs import CronSpec, JobSpec
from flywheel.server.monitoring import sources
from flywheel.server.monitoring.alerting import raise_breaches
from flywheel.server.monitoring.contracts import DayFigures, MonitoringThresholds
from flywheel.server.monitoring.figures import DayInputs, day_figures
from flywheel.server.monitoring.reference import load_reference
from flywheel.server.monitoring.thresholds import effective

log = structlog.get_logger("flywheel.monitoring")

MAX_RANGE_DAYS = 366
CALIBRATION_LOOKBACK_DAYS = 60
_UNSET: Any = object()

_TARGETS = """
SELECT DISTINCT x.tenant_id, x.family, x.version FROM (
    SELECT tenant_id, family, version FROM active_models
    UNION SELECT tenant_id, family, version FROM model_scoring_counters WHERE day = $1
    UNION SELECT tenant_id, family, version FROM model_scored_bins WHERE day = $1
) x JOIN model_versions v USING (tenant_id, family, version)
WHERE v.state = 'ready' AND ($2::uuid IS NULL OR x.tenant_id = $2) AND ($3::text IS NULL OR x.family = $3)
ORDER BY 1, 2, 3
"""
_TRAILING = """SELECT avg(rows)::float8 FROM model_monitoring_days
               WHERE tenant_id = $1 AND family = $2 AND version = $3 AND day >= $4::date - $5::int AND day < $4
                 AND rows > 0"""
_STORE = """
INSERT INTO model_monitoring_days (tenant_id, family, version, day, rows, score_psi, max_feature_psi,
                                   calibration_error, figures)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (tenant_id, family, version, day) DO UPDATE SET
    rows = EXCLUDED.rows, score_psi = EXCLUDED.score_psi, max_feature_psi = EXCLUDED.max_feature_psi,
    calibration_error = EXCLUDED.calibration_error, figures = EXCLUDED.figures, computed_at = now()
"""
_UNCALIBRATED = """SELECT day FROM model_monitoring_days
                   WHERE tenant_id = $1 AND family = $2 AND version = $3 AND day >= $4 AND day < $5
                     AND calibration_error IS NULL ORDER BY day"""


class MonitorModels(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Payload of `core.monitor_models`: `{}` is yesterday (UTC); `{"day": "2026-11-30"}` one day;
    `{"from": ..., "to": ...}` every day of a range (at most 366), without alerts unless `alerts`
    is true. `family` and `version` narrow it; a tenant's job covers only that tenant."""

    day: date | None = None
    from_day: date | None = msgspec.field(default=None, name="from")
    to_day: date | None = msgspec.field(default=None, name="to")
    family: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    version: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | None = None
    alerts: bool | None = None

    def __post_init__(self) -> None:
        if (self.from_day is None) != (self.to_day is None):
            raise ValueError("a range needs both `from` and `to`")
        if self.from_day is not None:
            if self.day is not None:
                raise ValueError("give either `day` or a range (`from`, `to`), not both")
            check_range(self.from_day, self.to_day)
        if self.version is not None and self.family is None:
            raise ValueError("`version` needs `family`")

    def days(self) -> list[date]:
        if self.from_day is not None:
            return [self.from_day + timedelta(days=k) for k in range((self.to_day - self.from_day).days + 1)]
        return [self.day or datetime.now(UTC).date() - timedelta(days=1)]

    @property
    def raises_alerts(self) -> bool:
        return self.alerts if self.alerts is not None else self.from_day is None


def check_range(first: date, last: date) -> None:
    if first > last:
        raise ValueError(f"`from` ({first}) is after `to` ({last})")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise ValueError(f"a range covers at most {MAX_RANGE_DAYS} days; {first} to {last} is "
                         f"{(last - first).days + 1}")


class _Run:
    """One job run: thresholds and references read once per family and version."""

    def __init__(self, ctx: Any, payload: MonitorModels) -> None:
        self.ctx, self.state, self.payload = ctx, ctx.state, payload
        self._thresholds: dict[tuple, MonitoringThresholds] = {}
        self._references: dict[tuple, Any] = {}
        self.result: dict[str, Any] = {"version_days": 0, "breaches": 0, "alerts": 0, "calibrated_late": 0,
                                       "failed": []}

    async def thresholds(self, tenant_id: UUID, family: str) -> MonitoringThresholds:
        key = (tenant_id, family)
        if key not in self._thresholds:
            self._thresholds[key] = await effective(self.state, tenant_id, family)
        return self._thresholds[key]

    async def reference(self, tenant_id: UUID, family: str, version: int):
        key = (tenant_id, family, version)
        if key not in self._references:
            self._references[key] = await load_reference(self.state.db, tenant_id, family, version)
        return self._references[key]

    async def targets(self, day: date) -> list[tuple[UUID, str, int]]:
        p = self.payload
        rows = await self.state.db.fetch(_TARGETS, day, self.ctx.tenant_id, p.family)
        known = self.state.contributions.model_families  # a family whose plugin is gone is not monitored
        found = [(r["tenant_id"], r["family"], r["version"]) for r in rows if r["family"] in known]
        if p.version is not None:
            # An explicit version is monitored whether or not it served that day, if it is ready.
            mine = await self.state.db.fetch("SELECT tenant_id FROM model_versions WHERE family = $1 AND version = $2 "
                                             "AND state = 'ready' AND ($3::uuid IS NULL OR tenant_id = $3)",
                                             p.family, p.version, self.ctx.tenant_id)
            found = [(r["tenant_id"], p.family, p.version) for r in mine if p.family in known]
        return found

    async def compute(self, tenant_id: UUID, family: str, version: int, day: date,
                      outcomes: Any = _UNSET) -> DayFigures:
        """The version-day's figures, stored (replacing an earlier run's)."""
        state = self.state
        t = await self.thresholds(tenant_id, family)
        reference = await self.reference(tenant_id, family, version)
        layout = reference.layout if reference is not None else None
        if outcomes is _UNSET:
            outcomes = await sources.outcomes(state, tenant_id, family, version, day)
        inputs = DayInputs(
            family=family, version=version, day=day, reference=reference,
            drift=await sources.drift(state, tenant_id, family, version, day, layout),
            counters=await sources.counters(state, tenant_id, family, version, day), outcomes=outcomes,
            trailing_mean=await state.db.fetchval(_TRAILING, tenant_id, family, version, day, t.trailing_days))
        figures = day_figures(inputs, t)
        figures.computed_at = datetime.now(UTC)
        await store(state.db, tenant_id, figures)
        self.result["version_days"] += 1
        self.result["breaches"] += len(figures.breaches)
        return figures

    async def late_calibration(self, tenant_id: UUID, family: str, version: int, day: date) -> None:
        """Days before `day` still without calibration whose labels have arrived since."""
        since = day - timedelta(days=CALIBRATION_LOOKBACK_DAYS)
        for row in await self.state.db.fetch(_UNCALIBRATED, tenant_id, family, version, since, day):
            outcomes = await sources.outcomes(self.state, tenant_id, family, version, row["day"])
            if outcomes is None:
                continue
            figures = await self.compute(tenant_id, family, version, row["day"], outcomes)
            self.result["calibrated_late"] += 1
            self.result["alerts"] += await raise_breaches(self.state, tenant_id, figures,
                                                          frozenset({"monitoring.calibration"}))


async def store(db: Any, tenant_id: UUID, f: DayFigures) -> None:
    psis = [x.psi for x in f.features if x.psi is not None]
    await db.execute(_STORE, tenant_id, f.family, f.version, f.day, f.rows, f.score.psi if f.score else None,
                     max(psis) if psis else None, f.calibration.error if f.calibration else None,
                     msgspec.to_builtins(f))


async def monitor_models(ctx, payload: MonitorModels) -> dict:
    """Compute (and store) the figures of every monitored version for the payload's days."""
    run = _Run(ctx, payload)
    days = payload.days()
    for i, day in enumerate(days):
        targets = await run.targets(day)
        for tenant_id, family, version in targets:
            try:
                figures = await run.compute(tenant_id, family, version, day)
                if payload.raises_alerts:
                    run.result["alerts"] += await raise_breaches(ctx.state, tenant_id, figures)
                if payload.from_day is None:
                    await run.late_calibration(tenant_id, family, version, day)
            except Exception as exc:  # one family's broken hook must not stop the others' figures
                log.exception("monitoring failed", family=family, version=version, day=str(day))
                run.result["failed"].append(f"{family} v{version} {day}: {type(exc).__name__}: {exc}"[:500])
        await ctx.progress(i + 1, len(days), f"{day}: {len(targets)} version(s)")
    run.result["days"] = [days[0].isoformat(), days[-1].isoformat()]
    if run.result["failed"]:
        raise RuntimeError(f"{len(run.result['failed'])} version-day(s) failed (the others are stored): "
                           + "; ".join(run.result["failed"][:5]))
    return run.result


JOBS = [JobSpec(name="core.monitor_models", func=monitor_models, payload=MonitorModels, timeout_s=6 * 3600,
                description="Monitoring figures of every active model version for a day (default yesterday, "
                            "UTC) or a range (`from`, `to`): drift, calibration, operations")]
# After midnight UTC, once yesterday's counts are flushed; backfills come from the API or the CLI.
CRONS = [CronSpec(name="core.monitor_models_daily", job="core.monitor_models", hour=1, minute=20,
                  payload=MonitorModels())]
