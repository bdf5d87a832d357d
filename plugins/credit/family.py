"""The `credit.gbm` model family: LightGBM on whatever features a run's feature set names.

Its features are dynamic (`DynamicFeatures`): the runner materializes a run's
features into `runs/{id}/training.parquet` in the tenant's store, with the 0/1
label `bad` and the run's `split` column (0 train, 1 validation, 2 test), and
the loader hands that table and the feature list to the core's training.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.contracts.models import DynamicFeatures, ModelFamily, TrainingData

FAMILY_NAME = "credit.gbm"
LABEL = "bad"
SPLIT = "split"


# Tables the runner is training on in this process, by run id. The runner materialized the
# table a moment ago: reading it back from the store cost a 1M-row run ~0.7 s. Training a
# run's table elsewhere (`core.train_model` with its run id) reads the store's copy.
_IN_PROCESS: dict[tuple[str, str], pa.Table] = {}


def training_key(run_id) -> str:
    return f"runs/{run_id}/training.parquet"


@contextmanager
def handed_over(tenant_id, run_id, table: pa.Table) -> Iterator[None]:
    """While inside, `load_training_data` for this tenant's run takes `table` instead of reading the store."""
    key = (str(tenant_id), str(run_id))
    _IN_PROCESS[key] = table
    try:
        yield
    finally:
        _IN_PROCESS.pop(key, None)


async def load_training_data(ctx, request) -> TrainingData:
    run_id = request.options.get("run_id")
    features = request.options.get("features")
    monotone = request.options.get("monotone") or {}
    if not isinstance(run_id, str) or not isinstance(features, list) or not isinstance(monotone, dict):
        raise ValueError("credit.gbm trains from a credit run: options run_id, features and monotone")
    table = _IN_PROCESS.get((str(ctx.tenant_id), run_id))  # keyed by tenant too: never another's table
    if table is None:  # ctx.store is the tenant's own: a run id of another tenant names nothing here.
        table = pq.read_table(io.BytesIO(await ctx.store.get(training_key(run_id))))
    return TrainingData(table=table, features=[str(f) for f in features],
                        monotone={str(k): int(v) for k, v in monotone.items()})


FAMILY = ModelFamily(
    name=FAMILY_NAME,
    features=DynamicFeatures,
    label=LABEL,
    split_column=SPLIT,
    load_training_data=load_training_data,
    params={"num_leaves": 15, "min_child_samples": 20, "learning_rate": 0.05},
    primary_metric="roc_auc",
    description="The probability that an applicant defaults (label `bad`), from a credit run's feature set.",
    intended_use="Credit-risk scoring of applicants, with adverse-action reasons from feature contributions.",
    limitations=("Trained on the tenant's uploaded dataset only; check the run's PSI before trusting it on a "
                 "population that has drifted, and review reason codes for fairness before use in decisions."),
)
