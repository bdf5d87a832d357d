"""Credit metrics on the test split, and the evaluation policy that passes or fails a run.

- AUC and Gini (2 AUC - 1) rank; KS is the largest gap between the bad and
  good rows' cumulative score distributions.
- PSI compares a distribution between train (expected) and test (actual):
  sum over bins of (a - e) ln(a / e), bins the train deciles (missing values
  their own bin; a categorical's bins its values), shares floored at 1e-4 so
  an empty bin counts as rare, not infinite.
- Calibration: rows grouped by score band (train deciles of the predicted
  probability), mean predicted against observed bad rate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flywheel.plugins.credit.contracts import EvaluationPolicy, PolicyFailure

PSI_FLOOR = 1e-4


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """max over thresholds t of |F_bad(t) - F_good(t)| (the empirical CDFs of each class's scores)."""
    bad, good = np.sort(p[y == 1]), np.sort(p[y == 0])
    if len(bad) == 0 or len(good) == 0:
        return float("nan")
    t = np.unique(p)
    f_bad = np.searchsorted(bad, t, side="right") / len(bad)
    f_good = np.searchsorted(good, t, side="right") / len(good)
    return float(np.max(np.abs(f_bad - f_good)))


def ks_curve(y: np.ndarray, p: np.ndarray, points: int = 50) -> list[tuple[float, float, float]]:
    """(share of rows ranked riskiest first, cumulative bad share, cumulative good share)."""
    order = np.argsort(-p, kind="stable")
    ys = y[order]
    cum_bad = np.cumsum(ys) / max(1, ys.sum())
    cum_good = np.cumsum(1 - ys) / max(1, (1 - ys).sum())
    idx = np.unique(np.linspace(0, len(ys) - 1, min(points, len(ys))).astype(int))
    return [(float((i + 1) / len(ys)), float(cum_bad[i]), float(cum_good[i])) for i in idx]


def decile_edges(train: np.ndarray) -> np.ndarray:
    """Inner bin edges: the train deciles, duplicates dropped (a column with few values has fewer bins)."""
    values = train[~np.isnan(train)]
    if len(values) == 0:
        return np.array([])
    return np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9)))


def bin_shares(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of rows per bin: (-inf, e0], (e0, e1], ..., (e_last, inf), then missing."""
    # One lookup among the edges per row and a count per bin: no sort of the column (a run's
    # PSI over 40 features of 1M rows spent most of its time sorting).
    bins = np.searchsorted(edges, x, side="left")
    bins[np.isnan(x)] = len(edges) + 1
    return np.bincount(bins, minlength=len(edges) + 2).astype(np.float64) / max(1, len(x))


def psi_from_shares(expected: np.ndarray, actual: np.ndarray) -> float:
    e, a = np.maximum(expected, PSI_FLOOR), np.maximum(actual, PSI_FLOOR)
    keep = (expected > 0) | (actual > 0)  # a bin neither side has is no shift
    return float(np.sum((a[keep] - e[keep]) * np.log(a[keep] / e[keep])))


def psi(train: np.ndarray, test: np.ndarray) -> float:
    edges = decile_edges(train)
    return psi_from_shares(bin_shares(train, edges), bin_shares(test, edges))


def psi_categorical(train: list, test: list) -> float:
    cats = sorted({v for v in train if v is not None} | {v for v in test if v is not None}) + [None]
    def shares(values: list) -> np.ndarray:
        index = {c: i for i, c in enumerate(cats)}
        return np.bincount([index[v] for v in values], minlength=len(cats)) / max(1, len(values))
    return psi_from_shares(shares(train), shares(test))


def psi_categorical_codes(codes: np.ndarray, categories: list, train: np.ndarray, test: np.ndarray) -> float:
    """`psi_categorical` of the `train` and `test` rows of a column given as codes into `categories`
    (-1: missing): the same bins in the same order, counted without a Python object per row."""
    order = sorted(range(len(categories)), key=categories.__getitem__)

    def shares(rows: np.ndarray) -> np.ndarray:
        c = codes[rows]
        counts = np.bincount(c[c >= 0], minlength=len(categories))[order]
        return np.append(counts, np.count_nonzero(c < 0)) / max(1, len(rows))
    return psi_from_shares(shares(train), shares(test))


def calibration_by_band(y: np.ndarray, p: np.ndarray, edges: np.ndarray) -> list[dict[str, Any]]:
    """Per score band (bins between `edges`): rows, mean predicted PD, observed bad rate."""
    band = np.searchsorted(edges, p, side="left")
    lows = np.concatenate([[0.0], edges])
    highs = np.concatenate([edges, [1.0]])
    out = []
    for b in range(len(edges) + 1):
        mask = band == b
        n = int(mask.sum())
        out.append({"band": b + 1, "lower": float(lows[b]), "upper": float(highs[b]), "rows": n,
                    "mean_predicted": float(p[mask].mean()) if n else None,
                    "observed_bad_rate": float(y[mask].mean()) if n else None})
    return out


def confusion(y: np.ndarray, p: np.ndarray, cutoffs: list[float]) -> list[dict[str, Any]]:
    """At each cutoff, a row is declined (predicted bad) when its PD is at least the cutoff."""
    out = []
    for c in cutoffs:
        bad = p >= c
        out.append({"cutoff": c, "true_bad": int((bad & (y == 1)).sum()), "false_bad": int((bad & (y == 0)).sum()),
                    "true_good": int((~bad & (y == 0)).sum()), "false_good": int((~bad & (y == 1)).sum()),
                    "decline_rate": float(bad.mean())})
    return out


def roc_points(y: np.ndarray, p: np.ndarray, points: int = 60) -> list[tuple[float, float]]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    idx = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).astype(int))
    return [(float(fpr[i]), float(tpr[i])) for i in idx]


def ranking(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return {"auc": None, "gini": None, "ks": None}
    auc = float(roc_auc_score(y, p))
    return {"auc": auc, "gini": 2 * auc - 1, "ks": ks_statistic(y, p)}


def apply_policy(policy: EvaluationPolicy, metrics: dict[str, Any]) -> list[PolicyFailure]:
    """The thresholds the metrics miss (empty: the run passes). A null figure misses any threshold."""
    failures = []
    for name, metric, lower_bound in (("auc_min", "auc", True), ("gini_min", "gini", True),
                                      ("ks_min", "ks", True), ("psi_max", "score_psi", False)):
        limit = getattr(policy, name)
        value = metrics.get(metric)
        if limit is not None and (value is None or (value < limit if lower_bound else value > limit)):
            failures.append(PolicyFailure(threshold=name, limit=limit, value=value))
    if policy.feature_psi_max is not None:
        for feature, value in sorted(metrics.get("feature_psi", {}).items()):
            if value is not None and value > policy.feature_psi_max:
                failures.append(PolicyFailure(threshold="feature_psi_max", limit=policy.feature_psi_max,
                                              value=value, feature=feature))
    return failures
