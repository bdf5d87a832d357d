"""The figures themselves, as plain functions of counts and arrays.

PSI (population stability index) of a distribution over fixed bins:
``sum((a - e) * ln(a / e))`` over the bins, with `e` the training shares and
`a` the day's. A bin empty on either side would make it infinite, so every
share is floored at EPSILON first (the common convention; with ten bins it
caps one bin's term near 0.1 * ln(0.1 / 1e-4) = 0.69).

Calibration compares, within score bands, the mean predicted probability
with the observed positive rate; its error is the row-weighted mean of the
absolute gaps (the "expected calibration error").
"""

from __future__ import annotations

import math

import numpy as np

EPSILON = 1e-4


def shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


def psi(expected: np.ndarray, counts: np.ndarray) -> float | None:
    """PSI of `counts` against the `expected` shares (None when there is nothing counted)."""
    if counts.sum() == 0:
        return None
    e = np.maximum(np.asarray(expected, dtype=np.float64), EPSILON)
    a = np.maximum(shares(np.asarray(counts, dtype=np.float64)), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def missing_rate(counts: np.ndarray) -> float | None:
    """The share in the last (missing) bin."""
    total = counts.sum()
    return float(counts[-1] / total) if total else None


def margin_of(scores: np.ndarray) -> np.ndarray:
    """Log-odds of probabilities (0 and 1 land far out, not at infinity)."""
    p = np.clip(np.asarray(scores, dtype=np.float64), 1e-300, 1 - 1e-16)
    return np.log(p) - np.log1p(-p)


def band_of(scores: np.ndarray, margin_edges: tuple[float, ...]) -> np.ndarray:
    """The training score band of each probability (bands are over margins: compare as margins)."""
    return np.searchsorted(np.asarray(margin_edges, dtype=np.float64), margin_of(scores), side="left")


def calibration(scores: np.ndarray, labels: np.ndarray, margin_edges: tuple[float, ...]) -> dict:
    """Per band (lowest scores first; empty bands left out): rows, mean predicted, observed rate;
    and the row-weighted mean absolute gap between the two."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    band = band_of(scores, margin_edges)
    bounds = [0.0, *(logistic(e) for e in margin_edges), 1.0]
    out, error = [], 0.0
    for b in range(len(margin_edges) + 1):
        inside = band == b
        n = int(inside.sum())
        if n == 0:
            continue
        predicted, observed = float(scores[inside].mean()), float(labels[inside].mean())
        error += n * abs(predicted - observed)
        out.append({"lower": bounds[b], "upper": bounds[b + 1], "rows": n, "mean_predicted": predicted,
                    "observed_rate": observed})
    rows = len(scores)
    return {"rows": rows, "positives": int(labels.sum()), "error": error / rows if rows else 0.0,
            "predicted_rate": float(scores.mean()) if rows else 0.0,
            "observed_rate": float(labels.mean()) if rows else 0.0, "bands": out}


def logistic(margin: float) -> float:
    if margin >= 0:
        return 1.0 / (1.0 + math.exp(-margin))
    e = math.exp(margin)
    return e / (1.0 + e)
