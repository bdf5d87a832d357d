"""A dataset version's profile (per column: type, missing rate, distinct values, min / max /
quantiles or top values) and its 0/1 target (1 = bad, the event a credit model predicts).

Columns are read one at a time from the stored Parquet file, so a profile
holds at most one column in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flywheel.plugins.credit.contracts import ColumnProfile, DatasetProfile
from flywheel.server.plugin_api import InvalidInput

QUANTILES = {"p01": 0.01, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p99": 0.99}
TOP_VALUES = 10


def kind_of(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "time"
    return "other"


def target_labels(values: pa.ChunkedArray | pa.Array, bad_value: str | None, target: str) -> np.ndarray:
    """0/1 labels (1 = bad). With `bad_value`, a row is bad when its target equals it (as text);
    without, the target must already be 0/1 or boolean. A missing target is refused."""
    if values.null_count:
        raise InvalidInput(f"target {target!r} has {values.null_count} missing values", field="target")
    if bad_value is not None:
        return (np.asarray(values.cast(pa.string()).to_pylist(), dtype=object) == bad_value).astype(np.int8)
    if pa.types.is_boolean(values.type):
        return np.asarray(values.to_pylist(), dtype=np.int8)
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        raise InvalidInput(f"target {target!r} is {values.type}: give bad_value (the value meaning default)",
                           field="target")
    y = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
    if not np.isin(y, (0.0, 1.0)).all():
        raise InvalidInput(f"target {target!r} must be 0/1 (1 = bad), or give bad_value", field="target")
    return y.astype(np.int8)


def profile_file(path: Path, target: str, bad_value: str | None, time_column: str | None) -> DatasetProfile:
    f = pq.ParquetFile(path)
    names = f.schema_arrow.names
    for field, name in (("target", target), ("time_column", time_column)):
        if name is not None and name not in names:
            raise InvalidInput(f"no column {name!r} in the file; its columns are {', '.join(names[:50])}",
                               field=field)
    y = target_labels(pq.read_table(path, columns=[target]).column(0), bad_value, target)
    columns = [column_profile(pq.read_table(path, columns=[n]).column(0), n, y) for n in names]
    return DatasetProfile(rows=f.metadata.num_rows, target=target,
                          target_rate=float(y.mean()) if len(y) else None, columns=columns)


def column_profile(col: pa.ChunkedArray, name: str, y: np.ndarray) -> ColumnProfile:
    n = len(col)
    kind = kind_of(col.type)
    out = ColumnProfile(name=name, type=kind, arrow_type=str(col.type),
                        missing_rate=col.null_count / n if n else 0.0,
                        distinct=int(pc.count_distinct(col).as_py()))
    if kind == "number":
        values = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
        values = values[~np.isnan(values)]
        if len(values):
            out.min, out.max = float(values.min()), float(values.max())
            qs = np.quantile(values, list(QUANTILES.values()))
            out.quantiles = {k: float(q) for k, q in zip(QUANTILES, qs)}
    elif kind in ("string", "boolean"):
        text = col.cast(pa.string())
        counts = sorted(((c["values"], c["counts"]) for c in pc.value_counts(text).to_pylist()
                         if c["values"] is not None), key=lambda vc: (-vc[1], vc[0]))[:TOP_VALUES]
        out.top_values = [(v, int(c)) for v, c in counts]
        values = np.asarray(text.to_pylist(), dtype=object)
        out.target_rate_by_value = {v: float(y[values == v].mean()) for v, _ in counts}
    return out
