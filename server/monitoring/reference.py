"""A version's training distribution: computed by core.train_model, stored beside the version.

It is computed on at most REFERENCE_ROWS of the rows the version was trained,
validated and tested on (a seeded sample: decile edges of 50,000 rows are within
about half a percentile of the whole's, and the sample is scored in ~0.1 s
rather than the ~16% of a credit run 200,000 rows took), with the margins the served ONNX
model gives them, so the score's reference is what scoring will compare to.
Versions trained before monitoring have none: their figures say so (the
training data may have changed since, so it is not rebuilt after the fact).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import numpy as np

from flywheel.server.monitoring.bins import Layout, Position, build_layout
from flywheel.server.monitoring.stats import shares

REFERENCE_ROWS = 50_000

_DELETE = "DELETE FROM model_reference_bins WHERE tenant_id = $1 AND family = $2 AND version = $3"
_INSERT = """INSERT INTO model_reference_bins (tenant_id, family, version, position, name, kind, edges, categories,
                                               shares, missing_rate, rows)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"""
_SELECT = """SELECT position, name, kind, edges, categories, shares, missing_rate, rows FROM model_reference_bins
             WHERE tenant_id = $1 AND family = $2 AND version = $3 ORDER BY position"""


class Reference:
    """The layout of a version's bins and the training shares in it."""

    def __init__(self, layout: Layout, expected: np.ndarray, rows: int) -> None:
        self.layout = layout
        self.expected = expected  # flat shares, in layout order
        self.rows = rows

    def expected_of(self, i: int) -> np.ndarray:
        return self.layout.split(self.expected)[i]


def sample_rows(n: int, seed: int = 0, limit: int = REFERENCE_ROWS) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def build_reference(spec: Any, X: np.ndarray, margins: np.ndarray) -> Reference:
    """The reference of a version whose feature spec is `spec`, from its (sampled) training rows."""
    layout = build_layout(spec.names, spec.kinds, spec.categories, X, margins)
    counts = layout.count(X, margins)
    flat = np.concatenate([shares(c) for c in layout.split(counts)])
    return Reference(layout, flat, len(margins))


def training_reference(spec: Any, X: np.ndarray, rows: np.ndarray, onnx_bytes: bytes, seed: int) -> Reference:
    """The reference of a version just exported: a sample of its training `rows` of X, scored by its ONNX model."""
    from flywheel.server.models.onnx import OnnxClassifier

    picked = np.sort(rows)[sample_rows(len(rows), seed)]
    sample = X[picked]
    return build_reference(spec, sample, OnnxClassifier(onnx_bytes).margin(sample))


async def store_reference(db: Any, tenant_id: UUID, family: str, version: int, ref: Reference) -> None:
    """Replace the version's reference rows (a retried training job writes the same ones again)."""
    records = []
    for i, (pos, part) in enumerate(zip(ref.layout.positions, ref.layout.split(ref.expected))):
        missing = float(part[-1]) if pos.has_missing else 0.0
        records.append((tenant_id, family, version, i, pos.name, pos.kind,
                        list(pos.edges) if pos.kind != "category" else None,
                        list(pos.categories) if pos.kind == "category" else None,
                        [float(s) for s in part], missing, ref.rows))
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(_DELETE, tenant_id, family, version)
        await conn.executemany(_INSERT, records)


async def load_reference(db: Any, tenant_id: UUID, family: str, version: int) -> Reference | None:
    """The version's reference, or None when it was trained before monitoring."""
    rows = await db.fetch(_SELECT, tenant_id, family, version)
    if not rows:
        return None
    positions = tuple(Position(r["name"], r["kind"], edges=tuple(r["edges"] or ()),
                               categories=tuple(r["categories"] or ())) for r in rows)
    expected = np.concatenate([np.asarray(r["shares"], dtype=np.float64) for r in rows])
    return Reference(Layout(positions), expected, rows[0]["rows"])
