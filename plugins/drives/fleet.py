"""A synthetic fleet whose failing drives degrade before they fail.

Used by the demo, the tests and the benchmarks. Healthy drives mostly report
zero error counters (a few carry a small, stable count of reallocated
sectors, as real ones do); a failing drive starts degrading 5 to 45 days
before its failure day: reallocated (5) and pending (197) sectors climb,
uncorrectable errors (187, 198) and command timeouts (188) follow, and it
runs warmer. Its last record has `failure` = 1, and it reports no more.
The output has the drive-stats columns, so it goes through the same path
as an imported file.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa

MODELS = [  # (model, capacity bytes, share of the fleet, relative failure rate)
    ("ST4000DM000", 4000787030016, 0.40, 1.6),
    ("HGST HMS5C4040BLE640", 4000787030016, 0.25, 0.5),
    ("ST12000NM0007", 12000138625024, 0.25, 1.0),
    ("TOSHIBA MG07ACA14TA", 14000519643136, 0.10, 0.7),
]


def generate_fleet(drives: int = 2000, days: int = 60, *, end: date | None = None, seed: int = 0,
                   annual_failure_rate: float = 0.25) -> pa.Table:
    """`drives` drives over `days` days ending on `end` (default: yesterday, UTC).

    `annual_failure_rate` is high on purpose (real fleets: ~1-2%) so a small
    demo fleet has enough failures to learn from.
    """
    rng = np.random.default_rng(seed)
    end = end or date.today() - timedelta(days=1)
    start = end - timedelta(days=days - 1)
    shares = np.array([m[2] for m in MODELS])
    model_idx = rng.choice(len(MODELS), size=drives, p=shares / shares.sum())
    rate = np.array([m[3] for m in MODELS])[model_idx] * annual_failure_rate / 365
    # Failure day index (may fall after the window: the drive survives it).
    fail_day = np.floor(rng.exponential(1 / rate)).astype(np.int64)
    fails = fail_day < days
    lead = rng.integers(5, 46, size=drives)  # days of degradation before the failure
    installed_hours = rng.integers(100, 40_000, size=drives).astype(float)
    base_realloc = np.where(rng.random(drives) < 0.05, rng.integers(1, 16, size=drives), 0).astype(float)
    base_temp = rng.normal(30, 4, size=drives)
    crc = np.where(rng.random(drives) < 0.03, rng.integers(1, 50, size=drives), 0).astype(float)

    t = np.arange(days)[None, :]  # (1, days)
    alive = ~fails[:, None] | (t <= fail_day[:, None])
    # Days into degradation; drives that fail after the window may already be degrading at its end.
    into = np.clip(t - (fail_day[:, None] - lead[:, None]), 0, None)
    severity = rng.gamma(2.0, 1.5, size=drives)[:, None]
    noise = rng.random((drives, days))
    realloc = base_realloc[:, None] + np.floor(severity * into ** 1.3 * (0.6 + 0.8 * noise))
    pending = np.floor(severity * into * noise * 0.8)
    uncorrect = np.floor(np.where(into > 3, severity * (into - 3) * 0.3 * rng.random((drives, days)), 0))
    timeouts = np.floor(np.where(into > 8, rng.poisson(0.5, (drives, days)) * into * 0.2, 0))
    realloc = np.maximum.accumulate(realloc, axis=1)  # counters never go down
    uncorrect = np.maximum.accumulate(uncorrect, axis=1)
    timeouts = np.maximum.accumulate(timeouts, axis=1)
    temp = np.round(base_temp[:, None] + rng.normal(0, 1.0, (drives, days)) + 0.08 * into)
    hours = installed_hours[:, None] + 24 * t

    d_idx, t_idx = np.nonzero(alive)
    serial = np.array([f"SYN{seed:02d}{i:07d}" for i in range(drives)], dtype=object)
    day = np.array([start + timedelta(days=int(i)) for i in range(days)], dtype=object)
    failure = (fails[d_idx] & (t_idx == fail_day[d_idx])).astype(np.int8)
    # Some drives skip a day now and then, as real ones do.
    keep = (rng.random(len(d_idx)) > 0.01) | (failure == 1)
    d_idx, t_idx, failure = d_idx[keep], t_idx[keep], failure[keep]
    model = np.array([m[0] for m in MODELS], dtype=object)[model_idx[d_idx]]
    capacity = np.array([m[1] for m in MODELS])[model_idx[d_idx]]

    def col(a: np.ndarray) -> pa.Array:
        return pa.array(a[d_idx, t_idx], type=pa.float64())

    return pa.table({
        "date": pa.array(day[t_idx], type=pa.date32()),
        "serial_number": pa.array(serial[d_idx], type=pa.string()),
        "model": pa.array(model, type=pa.string()),
        "capacity_bytes": pa.array(capacity, type=pa.int64()),
        "failure": pa.array(failure, type=pa.int8()),
        "smart_5_raw": col(realloc),
        "smart_9_raw": col(hours),
        "smart_187_raw": col(uncorrect),
        "smart_188_raw": col(timeouts),
        "smart_194_raw": col(temp),
        "smart_197_raw": col(pending),
        "smart_198_raw": col(uncorrect),
        "smart_199_raw": pa.array(np.broadcast_to(crc[:, None], (drives, days))[d_idx, t_idx], type=pa.float64()),
        "smart_1_normalized": pa.array(np.full(len(d_idx), 100.0)),
    })


async def load_fleet(db, tenant_id, table: pa.Table, source: str = "synthetic") -> int:
    """Write a generated fleet through the import path (COPY, existing days untouched)."""
    import asyncio

    from flywheel.plugins.drives.daily import table_rows, write_rows

    rows = await asyncio.to_thread(table_rows, table, tenant_id, source)  # CPU-bound: off the event loop
    async with db.acquire() as conn, conn.transaction():
        return await write_rows(conn, rows)
