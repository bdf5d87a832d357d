"""Everything a run reports about its model: the metrics.json a run writes and its report draws."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from flywheel.plugins.credit import evaluation as ev
from flywheel.plugins.credit.contracts import EvaluationPolicy, FeatureDefinition


def score_band_edges(p_train: np.ndarray, bands: int) -> np.ndarray:
    return np.unique(np.quantile(p_train, np.linspace(0, 1, bands + 1)[1:-1]))


def feature_psi(features: pa.Table, defs: list[FeatureDefinition], part: np.ndarray) -> dict[str, float]:
    """PSI of every feature between the train (split 0) and test (split 2) rows, all of them."""
    train, test = np.nonzero(part == 0)[0], np.nonzero(part == 2)[0]
    out = {}
    for f in defs:
        col = features.column(f.name)
        if f.transform == "categorical":
            encoded = col.combine_chunks()
            if not pa.types.is_dictionary(encoded.type):
                encoded = encoded.dictionary_encode()
            codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            out[f.name] = ev.psi_categorical_codes(codes, encoded.dictionary.to_pylist(), train, test)
        else:
            x = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
            out[f.name] = ev.psi(x[train], x[test])
    return out


class Scored(msgspec.Struct, frozen=True):
    """The rows a run scored with its model version: every test row, and the train rows the
    train-side figures use (all of them, or a seeded sample of a large split)."""

    train_rows: np.ndarray
    p_train: np.ndarray
    test_rows: np.ndarray
    p_test: np.ndarray


def score_histogram(y: np.ndarray, p: np.ndarray, bins: int = 20) -> dict[str, list[float]]:
    """Share of each class's test rows per PD bin of equal width (the report's distribution chart)."""
    edges = np.linspace(0, 1, bins + 1)
    out = {"edges": edges.tolist()}
    for name, cls in (("good", 0), ("bad", 1)):
        counts, _ = np.histogram(p[y == cls], bins=edges)
        out[name] = (counts / max(1, counts.sum())).tolist()
    return out


def assess(y: np.ndarray, scored: Scored, drift: dict[str, float], part: np.ndarray, policy: EvaluationPolicy,
           importance: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's figures: ranking, PSI, calibration and confusion on the test split; the score
    bands, the score's PSI and the train ranking against the train rows scored."""
    y_test, p_test, p_train = y[scored.test_rows], scored.p_test, scored.p_train
    edges = score_band_edges(p_train, policy.bands)
    metrics: dict[str, Any] = {
        **ev.ranking(y_test, p_test),
        "train": ev.ranking(y[scored.train_rows], p_train),
        "rows": {"train": int((part == 0).sum()), "validation": int((part == 1).sum()),
                 "test": int(len(scored.test_rows)), "train_scored": int(len(scored.train_rows)),
                 "bad_rate_test": float(y_test.mean())},
        "score_psi": ev.psi(p_train, p_test),
        "feature_psi": drift,
        "calibration": ev.calibration_by_band(y_test, p_test, edges),
        "confusion": ev.confusion(y_test, p_test, policy.cutoffs),
        "importance": importance,
        "roc": ev.roc_points(y_test, p_test),
        "ks_curve": ev.ks_curve(y_test, p_test),
        "score_distribution": score_histogram(y_test, p_test),
    }
    return metrics
