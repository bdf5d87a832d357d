"""What a trained version is measured by, on its test split.

ROC-AUC and PR-AUC rank; log loss and the Brier score judge the
probabilities themselves; the calibration table shows where they are off.
A figure that is undefined on the data (AUC with one class in the test
split) is stored as null rather than a made-up number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from prometheus_client import Histogram

CALIBRATION_BINS = 10

SCORE_SECONDS = Histogram(
    "flywheel_scoring_seconds", "Time to score a request (validation, model, response), by family and version",
    ["family", "version", "endpoint"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1))
SCORED_ROWS = Histogram("flywheel_scored_rows", "Rows per scoring request", ["family", "endpoint"],
                        buckets=(1, 10, 100, 1000, 10000))


def evaluate(y: np.ndarray, p: np.ndarray, model, spec, family, test_table) -> dict[str, Any]:
    from sklearn import metrics as skm  # here: importing scikit-learn takes most of a second

    both = len(np.unique(y)) == 2
    out: dict[str, Any] = {
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else None,
        "pr_auc": float(skm.average_precision_score(y, p)) if both else None,
        "log_loss": float(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y, p)),
        "positive_rate": float(y.mean()),
        "calibration": calibration_table(y, p),
        "feature_importance": feature_importance(model, spec),
    }
    if family.extra_metrics is not None:
        extra = family.extra_metrics(y, p, test_table)
        clash = set(extra) & set(out)
        if clash:
            raise ValueError(f"extra_metrics of {family.name!r} redefines core metrics {sorted(clash)}")
        out.update({k: (None if v is None else float(v)) for k, v in extra.items()})
    return out


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict[str, float]]:
    """Equal-count bins of the predicted probability: mean prediction against the observed rate."""
    order = np.argsort(p, kind="stable")
    out = []
    for chunk in np.array_split(order, min(bins, len(order))):
        if len(chunk) == 0:
            continue
        out.append({"lower": float(p[chunk].min()), "upper": float(p[chunk].max()),
                    "mean_predicted": float(p[chunk].mean()), "observed_rate": float(y[chunk].mean()),
                    "rows": int(len(chunk))})
    return out


def feature_importance(model, spec) -> list[dict[str, Any]]:
    """Total gain per feature, largest first (split counts alongside)."""
    booster = model.booster_
    gain = booster.feature_importance(importance_type="gain")
    split = booster.feature_importance(importance_type="split")
    rows = [{"feature": name, "gain": float(g), "splits": int(s)} for name, g, s in zip(spec.names, gain, split)]
    return sorted(rows, key=lambda r: -r["gain"])
