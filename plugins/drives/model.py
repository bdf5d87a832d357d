"""The H30 model: will this drive fail within 30 days?

Training rows are the feature rows whose 30-day label window is fully
observed (day <= last day of data - 29); a row is positive when the drive's
failure day falls on the row's day or in the 29 days after. The family's
metrics are the ones that mean something when failures are rare: recall
when alerting on the top 1% of drives each day, detection rate (share of
failing drives flagged at least once in their last 30 days) at 0.1% and 1%
false-alarm rates, and the median days of warning that gives.
"""

from __future__ import annotations

import zlib
from datetime import date

import msgspec
import numpy as np
import pyarrow as pa

from flywheel.contracts.models import ModelFamily
from flywheel.plugins.drives.features import TRACKED

HORIZON_DAYS = 30
FAMILY_NAME = "drives.h30"
_EPOCH = date(1970, 1, 1)


def model_code(model: str) -> int:
    """A stable integer for a drive model (the same at training and scoring, no lookup table)."""
    return zlib.crc32(model.encode()) % 100_003


_fields = [("capacity_tb", float), ("model_code", int), ("age_days", int), ("power_on_hours", float | None),
           ("temperature", float | None), ("temperature_d7", float | None)]
for _n in TRACKED:
    _fields += [(f"s{_n}", float | None), (f"s{_n}_d7", float | None), (f"s{_n}_d30", float | None)]
DriveFeatures = msgspec.defstruct("DriveFeatures", _fields, kw_only=True, module=__name__)
FEATURE_NAMES = [name for name, _ in _fields]

# SQL for the feature columns, in DriveFeatures order, over drives_features `f`.
FEATURE_SELECT = ", ".join(
    ["f.capacity_bytes / 1e12 AS capacity_tb", "0 AS model_code", "f.age_days", "f.power_on_hours",
     "f.temperature", "f.temperature_d7"] + [f"f.{name}" for name in FEATURE_NAMES[6:]])


def feature_table(rows: list, names: list[str]) -> pa.Table:
    """Feature query rows as an Arrow table with model codes, built column by column (rows -> dicts costs ~10x more)."""
    if not rows:
        return pa.table({n: [] for n in names})
    keys = list(rows[0].keys())
    columns = dict(zip(keys, (pa.array(col) for col in zip(*rows))))
    if "model" in columns:
        columns["model_code"] = pa.array([model_code(m) for m in columns["model"].to_pylist()], pa.int64())
    return pa.table(columns)


async def day_features(db, tenant_id, day: date, *, serial: str | None = None) -> pa.Table:
    """One day's feature rows (serial number, model and the features): the drives in service, or one drive."""
    # Two statements, not one with "$3 IS NULL OR ...": one drive must stay a primary-key lookup.
    which, extra = ("f.serial_number = $3", [serial]) if serial is not None else ("NOT f.failure", [])
    rows = await db.fetch(
        f"""SELECT f.serial_number, f.model, {FEATURE_SELECT} FROM drives_features f
            WHERE f.tenant_id = $1 AND f.day = $2 AND {which} ORDER BY f.serial_number""", tenant_id, day, *extra)
    return feature_table(rows, ["serial_number", "model", *FEATURE_NAMES])


async def training_table(db, tenant_id, *, until: date | None = None) -> pa.Table:
    """Features with the H30 label, for rows whose label window is fully observed."""
    last = until or await db.fetchval("SELECT max(day) FROM drives_smart_daily WHERE tenant_id = $1", tenant_id)
    if last is None:
        return pa.table({})
    rows = await db.fetch(
        f"""WITH failed AS (
                SELECT serial_number, min(day) AS fail_day FROM drives_smart_daily
                WHERE tenant_id = $1 AND failure GROUP BY serial_number)
            SELECT {FEATURE_SELECT}, f.model, f.serial_number, (f.day - DATE '1970-01-01') AS day_num,
                   (x.fail_day - f.day) AS days_to_failure,
                   (x.fail_day IS NOT NULL AND x.fail_day >= f.day AND x.fail_day < f.day + {HORIZON_DAYS})::int AS h30
            FROM drives_features f LEFT JOIN failed x USING (serial_number)
            WHERE f.tenant_id = $1 AND f.day <= $2::date - {HORIZON_DAYS - 1}
              AND (x.fail_day IS NULL OR f.day <= x.fail_day)""",
        tenant_id, last)
    return feature_table(rows, [*FEATURE_NAMES, "h30"])


async def load_training_data(ctx, request) -> pa.Table:
    until = request.options.get("until")
    table = await training_table(ctx.db, ctx.tenant_id, until=date.fromisoformat(until) if until else None)
    if table.num_rows == 0:
        raise ValueError("no drive features with a fully observed 30-day window yet: import or stream at least "
                         "30 days of data and run drives.build_features")
    return table


def fleet_metrics(y: np.ndarray, p: np.ndarray, test: pa.Table) -> dict[str, float | None]:
    """Rare-failure metrics on the test split (see the module docstring)."""
    days = test.column("day_num").to_numpy()
    serials = np.array(test.column("serial_number").to_pylist(), dtype=object)
    to_failure = test.column("days_to_failure").to_numpy(zero_copy_only=False)
    out: dict[str, float | None] = {}

    # Recall when alerting on the top 1% of drives each day.
    alerted = np.zeros(len(p), dtype=bool)
    for d in np.unique(days):
        idx = np.nonzero(days == d)[0]
        k = max(1, int(np.ceil(len(idx) * 0.01)))
        alerted[idx[np.argsort(-p[idx], kind="stable")[:k]]] = True
    out["recall_top1pct_daily"] = float(alerted[y == 1].mean()) if (y == 1).any() else None

    failing = set(serials[y == 1])
    negatives = p[y == 0]
    for name, fpr in (("0_1pct", 0.001), ("1pct", 0.01)):
        if not failing or len(negatives) == 0:
            out[f"detection_at_{name}_fpr"] = None
            continue
        threshold = float(np.quantile(negatives, 1 - fpr))
        warned = {}
        for s, score, dtf, label in zip(serials, p, to_failure, y):
            if label == 1 and score > threshold:
                warned[s] = max(warned.get(s, 0), int(dtf))  # first alert = the most days before failure
        out[f"detection_at_{name}_fpr"] = len(warned) / len(failing)
        if name == "1pct":
            out["median_warning_days_at_1pct_fpr"] = float(np.median(list(warned.values()))) if warned else None
    return out


FAMILY = ModelFamily(
    name=FAMILY_NAME,
    features=DriveFeatures,
    label="h30",
    time_column="day_num",
    load_training_data=load_training_data,
    params={"num_leaves": 31, "min_child_samples": 50, "scale_pos_weight": 1.0, "learning_rate": 0.05},
    monotone={"s5": 1, "s197": 1, "s187": 1, "s198": 1},
    primary_metric="pr_auc",
    extra_metrics=fleet_metrics,
    description="The probability that a drive fails within 30 days (H30), from its SMART history.",
    intended_use="Ranking a storage fleet's drives for proactive replacement and spare planning.",
    limitations=("Failures are rare and label noise is real (drives pulled for other reasons). SMART attributes "
                 "and their meaning vary by vendor and model; a model trained on one fleet transfers to another "
                 "only after checking its metrics there."),
)
