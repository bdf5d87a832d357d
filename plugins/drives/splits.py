"""Training, validation and test rows for rare failures: by drive, and by time with a purge gap.

- **By drive**: every drive belongs to one part (60% train, 20% validation,
  20% test), from a seeded hash of its serial, so no drive is on both sides
  and a model cannot score well by recognising drives. Failing drives are
  dealt round-robin in order of failure day, so every part, and every stretch
  of time, gets its share of the few failures there are.
- **By time** (`split="time"`): validation and test rows come from the last
  `holdout_fraction` of the days whose label window is fully observed, and
  training rows from the days before them less a purge gap. The gap is the
  horizon, shortened when the data is short so training keeps at least half
  the observed days; it separates the fleet-wide conditions of the two sides
  (no drive is on both, so no label is).
- Validation and test use only fully observed drive-days: a censored
  positive kept there (its failure seen, its negatives unknowable) would
  inflate precision. Training uses them (`split="random"`, by drive only).

Values: 0 train, 1 validation, 2 test, -1 left out.
"""

from __future__ import annotations

import hashlib
import math
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

DRIVE_SHARES = (0.6, 0.2, 0.2)
_EPOCH = date(1970, 1, 1)


class SplitError(ValueError):
    """A split that cannot judge a model (no failure in validation or test); the message says why."""


def _unit(serial: str, seed: int) -> float:
    digest = hashlib.blake2b(f"{seed}:{serial}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def drive_groups(serials: np.ndarray, fail_day: dict[str, int], seed: int) -> dict[str, int]:
    """Each drive's part: healthy ones by hash, failing ones round-robin by failure day."""
    a, b = DRIVE_SHARES[0], DRIVE_SHARES[0] + DRIVE_SHARES[1]
    groups = {}
    for s in np.unique(serials):
        u = _unit(s, seed)
        groups[s] = 0 if u < a else 1 if u < b else 2
    deal = (0, 1, 0, 2, 0)  # 3 of 5 to training, 1 each to validation and test
    for i, s in enumerate(sorted(fail_day, key=lambda s: (fail_day[s], _unit(s, seed)))):
        groups[s] = deal[i % len(deal)]
    return groups


def assign_splits(table: pa.Table, horizon: int, *, split: str, holdout_fraction: float,
                  seed: int) -> tuple[np.ndarray, list[str]]:
    """The split value of every row and the model card's lines about it; SplitError when it cannot work."""
    serials = np.array(table.column("serial_number").to_pylist(), dtype=object)
    days = table.column("day_num").to_numpy(zero_copy_only=False)
    label = table.column("failed_within_horizon").to_numpy(zero_copy_only=False)
    observed = table.column("observed").to_numpy(zero_copy_only=False).astype(bool)
    to_failure = table.column("days_to_failure").to_numpy(zero_copy_only=False)
    fail_day = {s: int(d + t) for s, d, t in zip(serials[label == 1], days[label == 1], to_failure[label == 1])}
    groups = drive_groups(serials, fail_day, seed)
    group = np.array([groups[s] for s in serials], dtype=np.int8)

    part = np.full(len(serials), -1, dtype=np.int8)
    if split == "time":
        obs_days = np.unique(days[observed])
        n = len(obs_days)
        k = max(2, round(holdout_fraction * n))
        purge = max(0, min(horizon, n - k - math.ceil(n / 2)))
        start = int(obs_days[-k]) if n >= k else int(days.max()) + 1
        train = (group == 0) & (days < start - purge)
        holdout = observed & (days >= start)
        how = (f"Split by drive and by time: validation and test are {k} days ({_d(start)} to {_d(obs_days[-1])}) "
               f"of other drives; training ends {_d(start - purge - 1)}, a purge gap of {purge} day(s) before.")
    else:
        train = group == 0
        holdout = observed
        how = "Split by drive only (no drive on both sides); every day on each side."
    part[train] = 0
    part[holdout & (group == 1)] = 1
    part[holdout & (group == 2)] = 2
    counts = [(int((part == p).sum()), int(label[part == p].sum()), len(set(serials[(part == p) & (label == 1)])))
              for p in (0, 1, 2)]
    for name, (rows, pos, drives) in zip(("training", "validation", "test"), counts):
        if pos == 0 or pos == rows:
            raise SplitError(f"the {name} split holds {rows:,} drive-days and {pos} positive ones ({drives} failing "
                             f"drives): it needs failures to {'learn' if name == 'training' else 'judge'} from; "
                             "import more days (or use a shorter horizon)")
    lines = [how, "Rows (drive-days / positives / failing drives): " + "; ".join(
        f"{name} {r:,} / {p:,} / {d}" for name, (r, p, d) in zip(("train", "validation", "test"), counts)) + "."]
    return part, lines


def _d(day_num: int) -> str:
    return (_EPOCH + timedelta(days=int(day_num))).isoformat()
