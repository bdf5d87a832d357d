"""What the drive model's monitoring needs from this plugin: its rows by data day, their outcomes, its thresholds.

The fleet is scored a data day at a time (`drives.score_fleet`, often days
or months after the day: imports of Backblaze's quarterly files, backfills),
so the core's counts by the day of scoring would lump those together. The
day's scored rows are in `drives_risk` (margin, version) beside
`drives_features`, so drift is measured on them by the day they describe,
and history scored before monitoring existed can be backfilled.

A drive-day's outcome is known once the data reaches the end of its horizon
(H days, the version's `horizon_days`): positive when the drive reported its
failure on the day or in the H - 1 days after, as in training.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from flywheel.plugins.drives.model import FAMILY_NAME, FEATURE_NAMES, FEATURE_SELECT, feature_table
from flywheel.server.plugin_api import MonitoringOutcomes, MonitoringThresholds, model_version

DEFAULT_HORIZON = 30
# A fleet's positive rate is a few in a thousand: a calibration error of 0.01 is already several times the
# rate itself. Drives report every day, so a fifth of the fleet going quiet is worth a look.
THRESHOLDS = MonitoringThresholds(calibration_warn=0.01, calibration_alert=0.03, volume_drop_warn=0.2,
                                  volume_drop_alert=0.5, min_rows=500)

_ROWS = f"""SELECT {FEATURE_SELECT}, r.margin FROM drives_risk r
            JOIN drives_features f ON f.tenant_id = r.tenant_id AND f.day = r.day AND f.serial_number = r.serial_number
            WHERE r.tenant_id = $1 AND r.day = $2 AND r.model_version = $3 AND r.margin IS NOT NULL"""
_OUTCOMES = """SELECT r.risk, (i.failure_day IS NOT NULL AND i.failure_day >= r.day
                              AND i.failure_day < r.day + $4::int) AS failed
               FROM drives_risk r JOIN drives_inventory i ON i.tenant_id = r.tenant_id
                                                         AND i.serial_number = r.serial_number
               WHERE r.tenant_id = $1 AND r.day = $2 AND r.model_version = $3"""


def thresholds(family: str) -> MonitoringThresholds | None:
    return THRESHOLDS if family == FAMILY_NAME else None


async def scored_rows(state, tenant_id, family: str, version: int, day: date) -> pa.Table | None:
    """The features and margins of every drive `version` scored for `day` (empty: none)."""
    if family != FAMILY_NAME:
        return None
    rows = await state.db.fetch(_ROWS, tenant_id, day, version)
    return feature_table(rows, [*FEATURE_NAMES, "margin"])


async def outcomes(state, tenant_id, family: str, version: int, day: date) -> MonitoringOutcomes | None:
    """Risk and failure within the horizon of each drive scored for `day`, once the data covers the horizon."""
    if family != FAMILY_NAME:
        return None
    metrics = (await model_version(state, tenant_id, family, version)).metrics or {}
    horizon = int(metrics.get("horizon_days") or DEFAULT_HORIZON)
    last = await state.db.fetchval("SELECT max(day) FROM drives_smart_daily WHERE tenant_id = $1", tenant_id)
    if last is None or last < day + timedelta(days=horizon - 1):
        return None  # some of the day's drives could still fail inside their horizon
    rows = await state.db.fetch(_OUTCOMES, tenant_id, day, version, horizon)
    if not rows:
        return None
    return MonitoringOutcomes(scores=np.array([r["risk"] for r in rows], dtype=np.float64),
                              labels=np.array([r["failed"] for r in rows], dtype=np.int8))
