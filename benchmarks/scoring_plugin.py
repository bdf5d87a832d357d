"""The model family the scoring benchmark serves: 40 float features, a binary label.

A plugin in its own right (one hook), passed to `create_app` by
benchmarks/scoring_app.py so the benchmark does not need an installed entry point.
"""

from __future__ import annotations

import msgspec
import numpy as np
import pyarrow as pa

from flywheel.contracts.models import ModelFamily
from flywheel.server import hookimpl

N_FEATURES = 40
NAMES = [f"f{i:02d}" for i in range(N_FEATURES)]
BenchFeatures = msgspec.defstruct("BenchFeatures", [(n, float) for n in NAMES], kw_only=True)

__flywheel_plugin_name__ = "bench"
__version__ = "0.1"


def make_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, N_FEATURES))
    w = rng.normal(size=N_FEATURES) * (rng.random(N_FEATURES) < 0.5)
    logit = X @ w * 0.5 + 0.8 * np.sin(X[:, 0] * X[:, 1]) + rng.normal(0, 1, rows)
    return X, (logit > 0.5).astype(np.int8)


def make_table(rows: int, seed: int = 0) -> pa.Table:
    X, y = make_data(rows, seed)
    return pa.table({**{n: X[:, i] for i, n in enumerate(NAMES)}, "label": y})


async def load(ctx, request):
    return make_table(int(request.options.get("rows", 20_000)))


FAMILY = ModelFamily(name="bench.scoring", features=BenchFeatures, label="label", load_training_data=load,
                     params={"num_leaves": 31, "min_child_samples": 20}, description="Scoring benchmark model")


@hookimpl
def register_model_families():
    return [FAMILY]
