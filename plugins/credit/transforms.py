"""Features from raw columns: one function per transform, the same for training and scoring.

Every numeric transform returns float64 with NaN for missing (what LightGBM
and the core treat as missing); `categorical` returns strings, which the core
trains as a LightGBM categorical. Parameters are checked when a feature is
defined (`check_definition`), so a run never meets one it cannot apply.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from flywheel.plugins.credit.contracts import FeatureCreate, FeatureDefinition
from flywheel.server.plugin_api import InvalidInput

# Transform -> (source columns it takes, the parameters it needs, the column kinds it accepts).
RULES: dict[str, tuple[int, frozenset[str], frozenset[str]]] = {
    "passthrough": (1, frozenset(), frozenset({"number", "boolean"})),
    "log1p": (1, frozenset(), frozenset({"number"})),
    "clip": (1, frozenset({"lower", "upper"}), frozenset({"number"})),
    "bucket": (1, frozenset({"edges"}), frozenset({"number"})),
    "ratio": (2, frozenset(), frozenset({"number"})),
    "missing_indicator": (1, frozenset(), frozenset({"number", "string", "boolean", "time"})),
    "categorical": (1, frozenset(), frozenset({"string", "boolean", "number"})),
}


# Columns the training table holds beside the features (plugins/credit/family.py).
RESERVED = frozenset({"bad", "split"})


def check_definition(f: FeatureCreate) -> None:
    """InvalidInput naming the field when a transform's columns or parameters do not fit it."""
    if f.name in RESERVED:
        raise InvalidInput(f"{f.name!r} is reserved (the label and split columns); choose another name",
                           field="$.name")
    columns, params, _ = RULES[f.transform]
    if len(f.source_columns) != columns:
        raise InvalidInput(f"{f.transform} takes {columns} source column(s), got {len(f.source_columns)}",
                           field="$.source_columns")
    if set(f.params) != params:
        want = ", ".join(sorted(params)) or "none"
        raise InvalidInput(f"{f.transform} takes the parameters: {want}", field="$.params")
    if f.transform == "clip":
        lower, upper = f.params["lower"], f.params["upper"]
        if not isinstance(lower, float | int) or not isinstance(upper, float | int) or not lower < upper:
            raise InvalidInput("clip needs numbers lower < upper", field="$.params")
    if f.transform == "bucket":
        edges = f.params["edges"]
        if not isinstance(edges, list) or not 1 <= len(edges) <= 100 or any(b <= a for a, b in zip(edges, edges[1:])):
            raise InvalidInput("bucket needs 1 to 100 increasing edges", field="$.params.edges")
    if f.monotone and f.transform in ("categorical", "missing_indicator"):
        raise InvalidInput(f"a {f.transform} feature has no order to be monotone in", field="$.monotone")


def _numbers(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if pa.types.is_boolean(col.type):
        col = col.cast(pa.int8())
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _log1p(cols, params) -> np.ndarray:
    x = _numbers(cols[0])
    with np.errstate(invalid="ignore"):
        return np.log1p(np.maximum(x, 0.0))  # negatives (overdrafts, say) count as zero; NaN stays NaN


def _ratio(cols, params) -> np.ndarray:
    a, b = _numbers(cols[0]), _numbers(cols[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    out[~np.isfinite(out)] = np.nan  # a zero denominator is missing, not infinite
    return out


def _bucket(cols, params) -> np.ndarray:
    x = _numbers(cols[0])
    out = np.digitize(x, np.asarray(params["edges"], dtype=np.float64)).astype(np.float64)
    out[np.isnan(x)] = np.nan
    return out


def _categorical(cols, params) -> pa.Array:
    col = cols[0]
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col.cast(pa.string()).combine_chunks() if isinstance(col, pa.ChunkedArray) else col.cast(pa.string())


APPLY: dict[str, Callable] = {
    "passthrough": lambda cols, p: _numbers(cols[0]),
    "log1p": _log1p,
    "clip": lambda cols, p: np.clip(_numbers(cols[0]), p["lower"], p["upper"]),
    "bucket": _bucket,
    "ratio": _ratio,
    "missing_indicator": lambda cols, p: np.asarray(cols[0].is_null().to_numpy(zero_copy_only=False), np.float64),
    "categorical": _categorical,
}


def materialize(table: pa.Table, features: list[FeatureDefinition]) -> pa.Table:
    """The feature columns, in order, computed from `table`'s raw columns."""
    out = {}
    for f in features:
        value = APPLY[f.transform]([table.column(c) for c in f.source_columns], f.params)
        out[f.name] = value if isinstance(value, pa.Array) else pa.array(value, pa.float64(), from_pandas=True)
    return pa.table(out)


def describe(f: FeatureDefinition) -> str:
    """A feature's words for reason codes: the description its author gave."""
    return f.description or f.name.replace("_", " ")
