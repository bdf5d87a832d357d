"""Backtest: train on the days up to D, score each later day as the daily job would, compare with the SMART rule.

The SMART rule is Backblaze's: a drive's score is how many of the raw SMART
5, 187, 188, 197 and 198 counters are above zero. Both scorers are judged on
the same drive-days with the same labels as training (fails on the day or in
the H - 1 days after; a drive-day whose window runs past the data with no
failure seen is dropped, its outcome unknown):

- drive-day ROC-AUC and PR-AUC;
- recall in the daily top 1%: the share of failing drives ranked in the top
  1% of their day on at least one of their last H days;
- detection at 0.1% and 1% false alarms (the score above which that share of
  healthy drive-days lie), with the median days of warning it gives.

The rule's score has few values, so ties are broken by a seeded random order
(the same for both scorers), not by serial number.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal

import msgspec
import numpy as np

from flywheel.contracts.jobs import JobSpec
from flywheel.plugins.drives.model import FAMILY_NAME, FEATURE_NAMES, day_features
from flywheel.server.plugin_api import job_status, model_version, run_here, score_table, tenant_store

RULE_ATTRIBUTES = (5, 187, 188, 197, 198)
SCORERS = ("model", "smart_rule")


class Backtest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Payload of `drives.backtest`: train on days up to `train_until` (or use `version`), score `from`..`to`.

    All three days default from the data: `to` the latest day, `from` 6 days before it, `train_until`
    the day before `from` (`{}` backtests the last week).
    """

    train_until: date | None = None
    from_: date | None = msgspec.field(default=None, name="from")
    to: date | None = None
    horizon: Literal[7, 14, 30] | None = None  # default: the longest the training days support
    version: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | None = None  # a ready version, instead of training
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0
    # Train without these features (their columns left missing, so no tree splits on them): what
    # each feature adds, measured by the same backtest. Ignored with `version`.
    drop_features: Annotated[list[Literal[tuple(FEATURE_NAMES)]], msgspec.Meta(max_length=len(FEATURE_NAMES))] = []

    def __post_init__(self) -> None:
        u, f, t = self.train_until, self.from_, self.to
        if (u and f and not u < f) or (f and t and not f <= t) or (u and t and not u < t):
            raise ValueError("need train_until < from <= to")
        self.drop_features = sorted(set(self.drop_features))


async def resolve_days(db, tenant_id, spec: Backtest) -> tuple[date, date, date]:
    last = spec.to or await db.fetchval("SELECT max(day) FROM drives_feature_days WHERE tenant_id = $1", tenant_id)
    if last is None:
        raise ValueError("no drive features to backtest on: import days and build features first")
    first = spec.from_ or (spec.train_until + timedelta(days=1) if spec.train_until else last - timedelta(days=6))
    until = spec.train_until or first - timedelta(days=1)
    if not until < first <= last:
        raise ValueError(f"need train_until < from <= to, got {until}, {first}, {last}")
    return until, first, last


def smart_rule(table) -> np.ndarray:
    """Backblaze's rule: how many of raw SMART 5/187/188/197/198 are above zero (missing counts as zero)."""
    out = np.zeros(table.num_rows)
    for n in RULE_ATTRIBUTES:
        v = table.column(f"s{n}").to_numpy(zero_copy_only=False).astype(float)
        out += np.nan_to_num(v, nan=0.0) > 0
    return out


async def train_version(state, tenant_id, until: date, horizon: int | None, seed: int,
                        drop: list[str] = ()) -> tuple[int, int]:
    """A new version trained on the days up to `until`, not activated: (version, horizon)."""
    options = {"until": until.isoformat(), **({"horizon": horizon} if horizon else {}),
               **({"drop_features": list(drop)} if drop else {})}
    job_id, task = await run_here(state, "core.train_model", {"family": FAMILY_NAME, "split": "time",
                                                              "seed": seed, "options": options},
                                  tenant_id=tenant_id)
    await task
    status = await job_status(state, job_id, tenant_id=tenant_id)
    if status.state.value != "succeeded":
        raise ValueError(f"training up to {until} failed: {status.error}")
    version = status.result["version"]
    metrics = (await model_version(state, tenant_id, FAMILY_NAME, version)).metrics or {}
    return version, int(metrics["horizon_days"])


async def collect(state, tenant_id, version: int, first: date, last: date, horizon: int) -> dict[str, np.ndarray]:
    """Model margins, rule scores, labels and days to failure of every labelled drive-day in first..last."""
    db = state.db
    data_end = await db.fetchval("SELECT max(day) FROM drives_smart_daily WHERE tenant_id = $1", tenant_id)
    fails = {r["serial_number"]: r["d"] for r in await db.fetch(
        "SELECT serial_number, min(day) AS d FROM drives_smart_daily WHERE tenant_id = $1 AND failure "
        "GROUP BY 1", tenant_id)}
    parts: dict[str, list] = {k: [] for k in ("model", "smart_rule", "label", "to_failure", "day", "serial")}
    day = first
    while day <= last:
        table = await day_features(db, tenant_id, day)
        if table.num_rows:
            _, margin = await score_table(state, tenant_id, FAMILY_NAME, table, version=version, margin=True,
                                          monitor=False)  # a backtest, not traffic
            serials = table.column("serial_number").to_pylist()
            to_failure = np.array([(fails[s] - day).days if s in fails else 10**6 for s in serials])
            label = (to_failure >= 0) & (to_failure < horizon)
            keep = label | (day + timedelta(days=horizon - 1) <= data_end)  # censored: outcome unknown
            for key, values in (("model", margin), ("smart_rule", smart_rule(table)), ("label", label),
                                ("to_failure", to_failure), ("day", np.full(len(serials), day.toordinal())),
                                ("serial", np.array(serials, dtype=object))):
                parts[key].append(np.asarray(values)[keep])
        day += timedelta(days=1)
    return {k: np.concatenate(v) if v else np.array([]) for k, v in parts.items()}


def scorer_metrics(score: np.ndarray, d: dict[str, np.ndarray], tiebreak: np.ndarray) -> dict:
    from sklearn import metrics as skm  # here: scikit-learn takes most of a second to import

    y = d["label"].astype(int)
    both = len(np.unique(y)) == 2
    out = {"roc_auc": float(skm.roc_auc_score(y, score)) if both else None,
           "pr_auc": float(skm.average_precision_score(y, score)) if both else None}
    failing = set(d["serial"][y == 1])
    flagged = set()
    for day in np.unique(d["day"]):
        idx = np.nonzero(d["day"] == day)[0]
        k = max(1, int(np.ceil(len(idx) * 0.01)))
        top = idx[np.lexsort((tiebreak[idx], -score[idx]))[:k]]
        flagged |= {s for s, lab in zip(d["serial"][top], y[top]) if lab}
    out["recall_top1pct_daily"] = len(flagged) / len(failing) if failing else None
    negatives = score[y == 0]
    for name, fpr in (("0_1pct", 0.001), ("1pct", 0.01)):
        threshold = float(np.quantile(negatives, 1 - fpr)) if len(negatives) else np.inf
        warned: dict[str, int] = {}
        for s, sc, dtf, lab in zip(d["serial"], score, d["to_failure"], y):
            if lab and sc > threshold:
                warned[s] = max(warned.get(s, 0), int(dtf))
        out[f"detection_at_{name}_fpr"] = len(warned) / len(failing) if failing else None
        out[f"median_warning_days_at_{name}_fpr"] = float(np.median(list(warned.values()))) if warned else None
    return out


def report(d: dict[str, np.ndarray], seed: int) -> dict:
    tiebreak = np.random.default_rng(seed).random(len(d["label"]))
    y = d["label"].astype(bool)
    counts = {"drive_days": int(len(y)), "positives": int(y.sum()), "failing_drives": len(set(d["serial"][y]))}
    return {"counts": counts, **{name: scorer_metrics(d[name].astype(float), d, tiebreak) for name in SCORERS}}


def features_label(drop: list[str]) -> str:
    return "current" if not drop else "without " + ", ".join(drop)


async def run_backtest(state, tenant_id, spec: Backtest, job_id=None) -> dict:
    until, first, last = await resolve_days(state.db, tenant_id, spec)
    horizon = spec.horizon
    version = spec.version
    drop = spec.drop_features if version is None else []
    if version is None:
        version, horizon = await train_version(state, tenant_id, until, horizon, spec.seed, drop)
    elif horizon is None:
        metrics = (await model_version(state, tenant_id, FAMILY_NAME, version)).metrics or {}
        horizon = int(metrics.get("horizon_days") or 30)  # versions from before horizons were 30-day ones
    data = await collect(state, tenant_id, version, first, last, horizon)
    out = {"job_id": None if job_id is None else str(job_id), "train_until": until.isoformat(),
           "from": first.isoformat(), "to": last.isoformat(), "horizon_days": horizon, "model_version": version,
           "features": features_label(drop), **report(data, spec.seed)}
    # One report per version and window: a job run twice (a retried worker) rewrites the same one.
    key = f"reports/drives-backtest/{until}_{first}_{last}_h{horizon}_v{version}.json"
    await tenant_store(state, tenant_id).put(key, msgspec.json.format(msgspec.json.encode(out)),
                                             content_type="application/json")
    out["report_key"] = key
    return out


async def backtest_job(ctx, payload: Backtest) -> dict:
    """Train (or take a version), score the later days, and compare with the SMART rule."""
    if ctx.tenant_id is None:
        raise ValueError("a backtest belongs to a tenant: queue drives.backtest with one")
    return await run_backtest(ctx.state, ctx.tenant_id, payload, job_id=ctx.job_id)


JOBS = [JobSpec(name="drives.backtest", func=backtest_job, payload=Backtest, timeout_s=3 * 3600,
                description="Train up to a day, score the days after as the daily job would, and compare the "
                            "model with the SMART rule (payload: train_until, from, to, horizon, version, "
                            "drop_features)")]
