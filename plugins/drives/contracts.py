"""The drives plugin's event type and results."""

from __future__ import annotations

from datetime import date
from typing import Annotated

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
    at_risk: int
    high_risk_threshold: float
    by_model: list[ModelGroup]
    risk_distribution: list[RiskBin]
    failures_by_day: list[DayCount]


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
    risk_band: str | None  # low | medium | high
    risk_day: date | None


class DrivePage(msgspec.Struct):
    items: list[DriveSummary]
    next_cursor: str | None = None


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


class DriveDetail(msgspec.Struct, kw_only=True):
    drive: DriveSummary
    smart_history: list[SmartPoint]
    risk_history: list[RiskPoint]
    reasons: list[Reason]
