"""The drive failure model: will this drive fail within H days (H = 7, 14 or 30)?

The family keeps its first name, `drives.h30`; each version's horizon is in
its model card and its metrics (`horizon_days`). Labels treat censoring
honestly: a drive-day is positive when the drive's failure day falls on it
or in the H - 1 days after; a drive-day whose horizon runs past the data is
kept only when that failure is already seen (positive), else dropped (its
outcome is unknown, not "survived"). Splits are by drive (no drive on both
sides) and, for `split="time"`, by time with a purge gap: see `splits.py`.

The family's metrics are the ones that mean something when failures are
rare: recall when alerting on the top 1% of drives each day, detection rate
(share of failing drives flagged at least once in their last H days) at
0.1% and 1% false-alarm rates, and the median days of warning that gives.
"""

from __future__ import annotations

from datetime import date, timedelta

import msgspec
import numpy as np
import pyarrow as pa

from flywheel.contracts.models import ModelFamily
from flywheel.plugins.drives.features import TRACKED
from flywheel.plugins.drives.splits import assign_splits

FAMILY_NAME = "drives.h30"
LABEL = "failed_within_horizon"
HORIZONS = (30, 14, 7)  # longest first: `choose_horizon` takes the first the data supports
_EPOCH = date(1970, 1, 1)

# No hours powered in the last week (`power_on_hours_d7`, added with age): on backblaze-april a
# version trained without it scored the same to the last digit (no tree split on it), so it went.
#
# The drive model ("ST4000DM000") is a categorical (codes in the version's feature schema; a model the
# version never saw scores as missing). Measured on backblaze-april (train to 04-23, H = 7, its own test
# split): PR-AUC 0.215 -> 0.522, ROC-AUC 0.893 -> 0.920 with it. Capacity is not an input: as terabytes
# (a number, so an unseen size still falls on one side of a split) it added nothing beside the model
# (split 0.520 / 0.895 with both, 0.522 / 0.920 with the model alone): the model already names it.
_fields = [("model", str | None), ("age_days", int | None), ("temperature", float | None),
           ("temperature_d7", float | None)]
for _n in TRACKED:
    _fields += [(f"s{_n}", float | None), (f"s{_n}_d7", float | None), (f"s{_n}_d30", float | None)]
DriveFeatures = msgspec.defstruct("DriveFeatures", _fields, kw_only=True, module=__name__)
FEATURE_NAMES = [name for name, _ in _fields]
FEATURE_SELECT = ", ".join(f"f.{name}" for name in FEATURE_NAMES)  # over drives_features `f`
DAY_COLUMNS = ("serial_number", "model", "failure")  # beside the features in `day_features`


class HorizonError(ValueError):
    """The data is too short for the horizon asked (or for any); the message says how many days it needs."""


def days_needed(horizon: int) -> int:
    # Half the days need a fully observed label window, so there are negatives to learn from and to test on.
    return 2 * horizon


def choose_horizon(span_days: int, asked: int | None = None) -> tuple[int, str]:
    """The horizon to train at and one line saying why, or HorizonError with that line."""
    if asked is not None:
        if asked not in HORIZONS:
            raise HorizonError(f"horizon must be one of {', '.join(map(str, sorted(HORIZONS)))} days, not {asked}")
        if span_days < days_needed(asked):
            raise HorizonError(f"a {asked}-day horizon needs {days_needed(asked)} days of data; there are {span_days}")
        return asked, f"horizon {asked} days (asked for; {span_days} days of data)"
    for h in HORIZONS:
        if span_days >= days_needed(h):
            longer = [x for x in HORIZONS if x > h]
            why = f"; {longer[-1]} needs {days_needed(longer[-1])}" if longer else ""
            return h, f"horizon {h} days: the longest {span_days} days of data support{why}"
    shortest = HORIZONS[-1]
    raise HorizonError(f"training needs at least {days_needed(shortest)} days of drive features (for a "
                       f"{shortest}-day horizon); there are {span_days}: import more days and build features")


async def data_span(db, tenant_id, until: date | None = None) -> tuple[date | None, date | None]:
    row = await db.fetchrow("SELECT min(day) AS first, max(day) AS last FROM drives_feature_days "
                            "WHERE tenant_id = $1 AND ($2::date IS NULL OR day <= $2)", tenant_id, until)
    return row["first"], row["last"]


def span_days(first: date | None, last: date | None) -> int:
    return 0 if first is None else (last - first).days + 1


def feature_table(rows: list, names: list[str]) -> pa.Table:
    """Feature query rows as an Arrow table, built column by column (rows -> dicts costs ~10x more)."""
    if not rows:
        return pa.table({n: [] for n in names})
    keys = list(rows[0].keys())
    return pa.table(dict(zip(keys, (pa.array(col) for col in zip(*rows)))))


async def day_features(db, tenant_id, day: date, *, serial: str | None = None) -> pa.Table:
    """One day's feature rows (serial number, model, failure and the features): every drive reporting, or one.

    A drive's failure-day record is scored too: it is the last record the drive
    sends, and for a drive failing the day after training it is the only one.
    """
    # Two statements, not one with "$3 IS NULL OR ...": one drive must stay a primary-key lookup.
    which, extra = ("AND f.serial_number = $3", [serial]) if serial is not None else ("", [])
    head = [n for n in DAY_COLUMNS if n not in FEATURE_NAMES]  # `model` may be a feature too
    rows = await db.fetch(
        f"""SELECT {", ".join(f"f.{n}" for n in head)}, {FEATURE_SELECT} FROM drives_features f
            WHERE f.tenant_id = $1 AND f.day = $2 {which} ORDER BY f.serial_number""", tenant_id, day, *extra)
    return feature_table(rows, [*head, *FEATURE_NAMES])


async def labelled_rows(db, tenant_id, until: date, horizon: int) -> pa.Table:
    """Every feature row up to `until` with its label and whether its label window is fully observed.

    Failures after `until` are not seen (a backtest trains as if on that day).
    """
    rows = await db.fetch(
        f"""WITH failed AS (
                SELECT serial_number, min(day) AS fail_day FROM drives_smart_daily
                WHERE tenant_id = $1 AND failure AND day <= $2 GROUP BY serial_number)
            SELECT {FEATURE_SELECT}, f.serial_number, (f.day - DATE '1970-01-01') AS day_num,
                   (x.fail_day - f.day) AS days_to_failure,
                   (x.fail_day IS NOT NULL AND x.fail_day < f.day + $3::int)::int AS {LABEL},
                   (f.day <= $2::date - ($3::int - 1)) AS observed
            FROM drives_features f LEFT JOIN failed x USING (serial_number)
            WHERE f.tenant_id = $1 AND f.day <= $2 AND (x.fail_day IS NULL OR f.day <= x.fail_day)""",
        tenant_id, until, horizon)
    return feature_table(rows, [*FEATURE_NAMES, "serial_number", "day_num", "days_to_failure", LABEL, "observed"])


def censor(table: pa.Table) -> tuple[pa.Table, int]:
    """Drop drive-days whose horizon runs past the data with no failure seen; returns (kept, dropped)."""
    if table.num_rows == 0:
        return table, 0
    observed = table.column("observed").to_numpy(zero_copy_only=False).astype(bool)
    positive = table.column(LABEL).to_numpy(zero_copy_only=False) == 1
    keep = observed | positive
    return table.filter(pa.array(keep)), int((~keep).sum())


async def training_table(db, tenant_id, *, until: date | None = None, horizon: int | None = None,
                         split: str = "time", holdout_fraction: float = 0.2, seed: int = 0) -> pa.Table:
    """Features, label and split for training; the model card's notes ride in the schema metadata."""
    first, last = await data_span(db, tenant_id, until)
    h, why = choose_horizon(span_days(first, last), horizon)
    table, dropped = censor(await labelled_rows(db, tenant_id, last, h))
    part, split_notes = assign_splits(table, h, split=split, holdout_fraction=holdout_fraction, seed=seed)
    table = table.append_column("split", pa.array(part, pa.int8()))
    positives = int(np.asarray(table.column(LABEL)).sum())
    censored_pos = positives - int(np.asarray(table.filter(table.column("observed")).column(LABEL)).sum())
    notes = [f"Data: {first} to {last} ({span_days(first, last)} days); {why}.",
             f"Label `{LABEL}`: the drive fails on the day or in the {h - 1} days after. Censoring: "
             f"{dropped:,} drive-days whose {h}-day window runs past {last} with no failure seen were dropped "
             f"(their outcome is unknown); {censored_pos:,} such drive-days with the failure seen are positives.",
             *split_notes]
    meta = {"notes": notes, "horizon_days": h, "first_day": str(first), "last_day": str(last),
            "censored_dropped": dropped, "censored_positives": censored_pos}
    return table.replace_schema_metadata({b"flywheel.data": msgspec.json.encode(meta)})


def drop_features(table: pa.Table, names: list[str]) -> pa.Table:
    """The table with these feature columns all missing: trees never split on them, so a version
    trained so ignores them at scoring time too (the ONNX inputs stay the family's)."""
    unknown = sorted(set(names) - set(FEATURE_NAMES))
    if unknown:
        raise ValueError(f"options.drop_features: no feature {', '.join(unknown)}; features are "
                         f"{', '.join(FEATURE_NAMES)}")
    for name in names:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, table.schema.field(i), pa.nulls(table.num_rows, table.schema.field(i).type))
    meta = msgspec.json.decode(table.schema.metadata[b"flywheel.data"])
    if names:
        meta["dropped_features"] = sorted(names)
        meta["notes"].append(f"Trained without {', '.join(sorted(names))} (left missing: no tree splits on them).")
    return table.replace_schema_metadata({b"flywheel.data": msgspec.json.encode(meta)})


async def load_training_data(ctx, request) -> pa.Table:
    until = request.options.get("until")
    horizon = request.options.get("horizon")
    drop = request.options.get("drop_features") or []
    if not isinstance(drop, list) or not all(isinstance(n, str) for n in drop):
        raise ValueError("options.drop_features is a list of feature names")
    try:
        table = await training_table(ctx.db, ctx.tenant_id, until=date.fromisoformat(until) if until else None,
                                     horizon=int(horizon) if horizon is not None else None, split=request.split,
                                     holdout_fraction=request.holdout_fraction, seed=request.seed)
    except HorizonError as exc:
        raise ValueError(str(exc)) from None
    return drop_features(table, drop)


def horizon_of(table: pa.Table) -> int | None:
    raw = (table.schema.metadata or {}).get(b"flywheel.data")
    return msgspec.json.decode(raw).get("horizon_days") if raw else None


def fleet_metrics(y: np.ndarray, p: np.ndarray, test: pa.Table) -> dict[str, float | None]:
    """Rare-failure metrics on the test split (see the module docstring)."""
    days = test.column("day_num").to_numpy()
    serials = np.array(test.column("serial_number").to_pylist(), dtype=object)
    to_failure = test.column("days_to_failure").to_numpy(zero_copy_only=False)
    out: dict[str, float | None] = {"horizon_days": horizon_of(test)}

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


def day_of(day_num: int) -> date:
    return _EPOCH + timedelta(days=int(day_num))


FAMILY = ModelFamily(
    name=FAMILY_NAME,
    features=DriveFeatures,
    label=LABEL,
    time_column="day_num",
    split_column="split",
    load_training_data=load_training_data,
    params={"num_leaves": 15, "min_child_samples": 100, "scale_pos_weight": 1.0, "learning_rate": 0.05},
    monotone={"s5": 1, "s197": 1, "s187": 1, "s198": 1},
    primary_metric="pr_auc",
    extra_metrics=fleet_metrics,
    description=("The probability that a drive fails within the version's horizon (7, 14 or 30 days: the longest "
                 "the data supports; see the notes), from its SMART history."),
    intended_use="Ranking a storage fleet's drives for proactive replacement and spare planning.",
    limitations=("Failures are rare and label noise is real (drives pulled for other reasons). SMART attributes "
                 "and their meaning vary by vendor and model; a model trained on one fleet transfers to another "
                 "only after checking its metrics there. The drive model is an input (a categorical): a model the "
                 "version never saw scores as missing, so a new model's drives are scored from their other features. "
                 "Capacity is not an input."),
)
