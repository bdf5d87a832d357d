"""A model family: will a note be reopened within a week?

It shows the shape of `register_model_families` for plugin authors. A real
plugin would build its training table from its own tables or events; this
one generates a deterministic table (with a known signal, so tests can check
that training finds it).
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pyarrow as pa

from flywheel.contracts.models import ModelFamily


class NoteFeatures(msgspec.Struct, kw_only=True):
    """The model's inputs, in ONNX column order."""

    length: int
    views_7d: float
    has_title: bool
    age_days: float | None  # unknown for imported notes
    hour: int
    edits: float


def make_training_table(rows: int = 3000, seed: int = 0, signal: float = 1.5) -> pa.Table:
    """Notes with a label that depends on views, edits and age (plus noise)."""
    rng = np.random.default_rng(seed)
    views = rng.gamma(2.0, 3.0, rows)
    edits = rng.poisson(2.0, rows).astype(float)
    age = rng.exponential(30.0, rows)
    age_known = rng.random(rows) > 0.1
    logit = -1.0 + signal * (0.25 * views - 0.4 * np.log1p(age) + 0.3 * edits - 0.5) + rng.normal(0, 0.5, rows)
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return pa.table({
        "length": pa.array(rng.integers(1, 5000, rows)),
        "views_7d": pa.array(views),
        "has_title": pa.array(rng.random(rows) > 0.2),
        "age_days": pa.array(np.where(age_known, age, math.nan), mask=~age_known),
        "hour": pa.array(rng.integers(0, 24, rows)),
        "edits": pa.array(edits),
        "reopened": pa.array(label),
        "created_at": pa.array(np.arange(rows, dtype=np.int64)),
    })


async def load_training_data(ctx, request):
    """`request.options` may set rows, seed and signal (tests use them)."""
    options = request.options
    return make_training_table(int(options.get("rows", 3000)), int(options.get("seed", 0)),
                               float(options.get("signal", 1.5)))


def top_decile_precision(y, p, table) -> dict[str, float]:
    """A family-specific metric: how often the top 10% of scores were reopened."""
    k = max(1, len(p) // 10)
    top = np.argsort(-p)[:k]
    return {"top_decile_precision": float(y[top].mean())}


NOTE_REOPEN = ModelFamily(
    name="example.note_reopen",
    features=NoteFeatures,
    label="reopened",
    time_column="created_at",
    params={"num_leaves": 15},
    monotone={"views_7d": 1},
    load_training_data=load_training_data,
    extra_metrics=top_decile_precision,
    description="Predicts whether a note is reopened within seven days.",
    intended_use="Ranking notes for a 'pick up where you left off' list. Not for decisions about people.",
    limitations="Trained on generated data: a template, not a real model.",
)
