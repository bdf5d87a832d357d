"""A run's split policy as the core's split column: 0 train, 1 validation (early stopping), 2 test, -1 unused."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flywheel.plugins.credit.contracts import SplitPolicy
from flywheel.server.plugin_api import InvalidInput

TEST_WORDS = {"test", "holdout", "oot"}
TRAIN_WORDS = {"train", "training", "dev"}
VALID_WORDS = {"valid", "validation"}


def stratified(idx: np.ndarray, y: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """The indices (of `idx`) drawn for a `share` of each class."""
    picked = []
    for cls in (0, 1):
        members = idx[y[idx] == cls]
        k = int(round(len(members) * share))
        picked.append(rng.permutation(members)[:k])
    return np.concatenate(picked)


def assign(table: pa.Table, y: np.ndarray, policy: SplitPolicy, time_column: str | None) -> np.ndarray:
    n = len(y)
    rng = np.random.default_rng(policy.seed)
    part = np.zeros(n, dtype=np.int8)
    everything = np.arange(n)
    if policy.kind == "random_stratified":
        part[stratified(everything, y, policy.test_share, rng)] = 2
    elif policy.kind == "time":
        # Arrow sorts any orderable type (timestamps, dates, numbers, ISO strings); missing times sort last.
        order = pc.sort_indices(table.select([time_column]), sort_keys=[(time_column, "ascending")],
                                null_placement="at_end").to_numpy()
        part[order[n - int(round(n * policy.test_share)):]] = 2
    else:
        words = np.asarray([str(v).lower() if v is not None else "" for v in table.column(policy.column).to_pylist()])
        part[:] = -1
        part[np.isin(words, list(TRAIN_WORDS))] = 0
        part[np.isin(words, list(VALID_WORDS))] = 1
        part[np.isin(words, list(TEST_WORDS))] = 2
        if not (part == 2).any() or not (part == 0).any():
            raise InvalidInput(f"split column {policy.column!r} needs rows marked train and test",
                               field="$.split_policy.column")
        if (part == 1).any():
            return part
    train = np.nonzero(part == 0)[0]
    part[stratified(train, y, policy.validation_share, rng)] = 1
    return part
