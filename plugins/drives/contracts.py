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
