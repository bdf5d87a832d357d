"""Latency histograms that add up: fixed log-spaced buckets, percentiles read back from them.

Ten buckets a decade from 10 us to 100 s (edges 10^(k/10) s), one below and
one above: counters from every flush and every replica add bucket by
bucket, so a day's percentiles are exact up to the bucket width. A
percentile is reported as its bucket's geometric middle: within 12% of the
true value (half a bucket, 10^(1/20) - 1).
"""

from __future__ import annotations

import numpy as np

EDGES = 10.0 ** (np.arange(-50, 21) / 10.0)  # seconds, 1e-5 .. 1e2
BUCKETS = len(EDGES) + 1


def bucket_counts(seconds: np.ndarray) -> np.ndarray:
    """Counts per bucket (int64, BUCKETS of them)."""
    idx = np.searchsorted(EDGES, np.asarray(seconds, dtype=np.float64), side="left")
    return np.bincount(idx, minlength=BUCKETS).astype(np.int64)


def percentile(counts: np.ndarray, q: float) -> float | None:
    """The q-th quantile (0 < q < 1) in seconds, or None for an empty histogram."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return None
    i = int(np.searchsorted(np.cumsum(counts), q * total, side="left"))
    lower = EDGES[i - 1] if i > 0 else EDGES[0] / 10 ** 0.1
    upper = EDGES[i] if i < len(EDGES) else EDGES[-1] * 10 ** 0.1
    return float(np.sqrt(lower * upper))
