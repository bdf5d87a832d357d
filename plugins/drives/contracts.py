"""The drives plugin's event type and results."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec

from flywheel.contracts.events import Event

# The SMART attributes with their own columns (raw values); see the migration.
KEY_ATTRIBUTES = (5, 9, 187, 188, 194, 197, 198, 199)
KEY_COLUMNS = tuple(f"smart_{n}_raw" for n in KEY_ATTRIBUTES)
SmartName = Annotated[str, msgspec.Meta(pattern=r"^smart_\d{1,3}_(normalized|raw)$")]


class SmartDaily(Event, tag="drives.smart_daily"):
    """One drive's record for one day: the same fields as a drive-stats CSV row.

    `smart` maps column names as in the CSV (`smart_5_raw`,
    `smart_194_normalized`, ...) to values; leave out what the drive does
    not report. `failure` is true on the drive's last day before it failed.
    """

    date: date
    serial_number: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    capacity_bytes: int | None = None
    failure: bool = False
    smart: dict[SmartName, float | None] = {}


class ImportResult(msgspec.Struct, kw_only=True):
    file: str
    sha256: str
    days: list[date]
    rows: int
    inserted: int
    failures: int
    skipped: bool = False  # the same file was imported before


# -- the fleet API -------------------------------------------------------------------------------


class Reason(msgspec.Struct):
    feature: str
    value: float | None
    contribution: float  # log-odds pushed towards failure


class ModelGroup(msgspec.Struct, kw_only=True):
    model: str
    capacity_bytes: int | None
    drives: int  # active: reporting on the latest day and not failed
    failed: int  # failures ever recorded
    at_risk: int  # active drives at or above the high band
    mean_risk: float | None


class RiskBin(msgspec.Struct):
    lower: float
    upper: float
    drives: int


class DayCount(msgspec.Struct):
    day: date
    failures: int


class FleetOverview(msgspec.Struct, kw_only=True):
    as_of: date | None  # the latest day with records
    scored_day: date | None  # the day the risks were computed for
    model_version: int | None
    drives: int  # active drives
    failed_total: int
    failed_last_30_days: int
    at_risk: int  # active drives in the high band on the scored day
    high_risk_threshold: float  # the lowest risk in the high band that day (bands are by fleet percentile)
    by_model: list[ModelGroup]
    risk_distribution: list[RiskBin]
    failures_by_day: list[DayCount]
    high_share: float = 0.01  # the share of a day's scored drives banded "high"
    medium_share: float = 0.04  # the share after those banded "medium"


class DriveSummary(msgspec.Struct, kw_only=True):
    serial_number: str
    model: str
    capacity_bytes: int | None
    first_day: date
    last_day: date
    age_days: int
    failed: bool
    failure_day: date | None
    risk: float | None
    risk_band: str | None  # low | medium | high, by fleet percentile on risk_day
    risk_day: date | None
    margin: float | None = None  # the model's log-odds: what risk order is


class DrivePage(msgspec.Struct):
    items: list[DriveSummary]
    next_cursor: str | None = None
    total: int = 0  # drives matching the filters, on every page


class SmartPoint(msgspec.Struct, kw_only=True):
    day: date
    smart_5_raw: float | None
    smart_9_raw: float | None
    smart_187_raw: float | None
    smart_188_raw: float | None
    smart_194_raw: float | None
    smart_197_raw: float | None
    smart_198_raw: float | None
    smart_199_raw: float | None
    failure: bool


class RiskPoint(msgspec.Struct):
    day: date
    risk: float
    model_version: int
    margin: float | None = None
    band: str | None = None


class DayScore(msgspec.Struct, kw_only=True):
    serial_number: str
    model: str
    risk: float  # float64 probability, the sigmoid of margin
    margin: float | None  # log-odds; the order of the list
    band: str | None
    model_version: int
    failed: bool  # the drive reported its failure on this day


class DayScorePage(msgspec.Struct, kw_only=True):
    """`GET /v1/drives/scores`: one day's scores for the fleet, riskiest first."""

    day: date | None
    items: list[DayScore]
    next_cursor: str | None = None


class DriveScorePage(msgspec.Struct, kw_only=True):
    """`GET /v1/drives/{serial}/scores`: one drive's score history, newest first, paged."""

    serial_number: str
    items: list[RiskPoint]
    next_cursor: str | None = None


class DriveDetail(msgspec.Struct, kw_only=True):
    drive: DriveSummary
    smart_history: list[SmartPoint]
    risk_history: list[RiskPoint]
    reasons: list[Reason]


# -- settings and backtests ----------------------------------------------------------------------


class RiskBands(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`/v1/drives/settings`: how a scored day is banded, per tenant.

    "high" is the riskiest `high_share` of the day's scored drives (by margin), "medium" the next
    `medium_share`, "low" the rest. A PUT replaces both (a field left out takes its default); the
    next scoring run bands with them, days scored before keep their bands.
    """

    high_share: Annotated[float, msgspec.Meta(gt=0, le=0.5)] = 0.01
    medium_share: Annotated[float, msgspec.Meta(ge=0, le=0.5)] = 0.04


class ScorerMetrics(msgspec.Struct, kw_only=True):
    """One scorer's figures in a backtest (see `flywheel.plugins.drives.backtest`); None when undefined."""

    roc_auc: float | None = None
    pr_auc: float | None = None
    recall_top1pct_daily: float | None = None
    detection_at_0_1pct_fpr: float | None = None
    median_warning_days_at_0_1pct_fpr: float | None = None
    detection_at_1pct_fpr: float | None = None
    median_warning_days_at_1pct_fpr: float | None = None


class BacktestCounts(msgspec.Struct, kw_only=True):
    drive_days: int  # labelled drive-days scored
    positives: int
    failing_drives: int


class BacktestReport(msgspec.Struct, kw_only=True):
    """A finished backtest: the JSON report the `drives.backtest` job stored, and where."""

    key: str  # in the tenant's store, under reports/drives-backtest/
    created_at: datetime
    job_id: UUID | None = None  # None for reports written before the job recorded it
    train_until: date
    from_: date = msgspec.field(name="from")
    to: date
    horizon_days: int
    model_version: int
    features: str = "current"  # the feature set the version was trained with
    counts: BacktestCounts
    model: ScorerMetrics
    smart_rule: ScorerMetrics


class BacktestPage(msgspec.Struct):
    """`GET /v1/drives/backtests`: finished backtests, newest first."""

    items: list[BacktestReport]
