"""Training on a Dask cluster: Parquet partitions -> `lightgbm.dask` -> the same checks as a local version.

A family opts in by returning `TrainingData(parquet_prefix=...)`; with
FLYWHEEL_DASK_SCHEDULER set, `core.train_model` lands here instead of
reading the partitions into one table. The rows never reach this worker:
the Dask workers read the Parquet files straight from the object store
(a local path for file://, s3fs with the store's endpoint for s3://, with
the workers' own AWS credentials), and LightGBM trains data-parallel on
them (each worker builds histograms of its partitions; they are summed
over LightGBM's own network between the workers).

Only the holdout comes back here: the validation part (early stopping,
applied after training: lightgbm.dask has no early-stopping callback) and
the test part (metrics, ONNX parity, the monitoring reference), so they
must fit in a worker's memory, as a holdout_fraction of the data does.
From there on a version is exported, checked, written and registered by the
very functions a local training uses.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import structlog

from flywheel.contracts.models import DynamicFeatures, ModelFamily, TrainingData, TrainModel
from flywheel.server.models.batch_scoring import is_prefix
from flywheel.server.models.features import MAX_CATEGORIES, FeatureSchemaError, FeatureSpec, feature_spec
from flywheel.server.models.metrics import evaluate
from flywheel.server.models.onnx import export_classifier
from flywheel.server.models.training import (
    TrainingError,
    _checked_parity,
    _drop,
    check_monotone,
    lightgbm_params,
    register_trained,
    version_info,
)
from flywheel.server.monitoring.reference import training_reference
from flywheel.server.settings import redact_url
from flywheel.server.store.local import LocalStore
from flywheel.server.store.prefixed import PrefixedStore

log = structlog.get_logger("flywheel.models")
MIN_ROWS = 50


class Fitted(msgspec.Struct, kw_only=True):
    """What the cluster hands back: the local model and the holdout, as arrays and tables."""

    model: Any
    spec: Any
    X_valid: Any
    X_test: Any
    y_test: Any
    test_table: Any
    rows: dict[str, int]
    workers: int


async def train_on_dask(ctx, family: ModelFamily, request: TrainModel, version: int, data: TrainingData) -> dict:
    """Train version `version` of `family` on the cluster from `data.parquet_prefix`, then check and register it."""
    settings = ctx.state.settings
    await ctx.progress(0, None, "training on the Dask cluster", force=True)
    listing = await parquet_listing(ctx.store, data.parquet_prefix)
    urls, options = dataset_urls(ctx.store, [key for key, _, _ in listing])
    monotone = {**family.monotone, **data.monotone, **request.monotone}
    fitted = await asyncio.to_thread(fit_on_cluster, settings.dask_scheduler, urls, options, family, request,
                                     data, monotone)
    model, spec, total = fitted.model, fitted.spec, request.num_boost_round
    best = int(model.best_iteration_ or model.n_estimators_)
    await ctx.progress(total, total, f"trained {best} trees on {fitted.workers} Dask workers; exporting to ONNX",
                       force=True)
    onnx_bytes = await asyncio.to_thread(export_classifier, model, len(spec.names), f"{family.name}-v{version}")
    await ctx.progress(total, total, "checking ONNX against LightGBM", force=True)
    checked = await _checked_parity(model, onnx_bytes, fitted.X_test, request.parity_tolerance)
    metrics = await asyncio.to_thread(evaluate, fitted.y_test, checked.p_lgb, model, spec, family, fitted.test_table)
    metrics.update({"parity_max_abs_diff": checked.max_abs_diff, "trees": best, "rows": fitted.rows})
    info = version_info(ctx, family, request, version, model, listing_hash(listing))
    info["data"] = {"notes": [f"Trained with lightgbm.dask on {fitted.workers} workers from {len(listing)} "
                              f"Parquet partitions under {data.parquet_prefix!r}."]}
    info["dask"] = {"scheduler": redact_url(settings.dask_scheduler), "workers": fitted.workers,
                    "partitions": len(listing), "prefix": data.parquet_prefix}
    # The monitoring reference from the holdout rows: the training rows stay on the cluster.
    X_hold = np.concatenate([fitted.X_valid, fitted.X_test])
    reference = await asyncio.to_thread(training_reference, spec, X_hold, np.arange(len(X_hold)), onnx_bytes,
                                        request.seed)
    result = await register_trained(ctx, family, request, version, model, spec, best, onnx_bytes, metrics, info,
                                    reference)
    return {**result, "dask_workers": fitted.workers}


# -- where the partitions are -----------------------------------------------------


async def parquet_listing(store, prefix: str) -> list[tuple[str, int, str | None]]:
    """(key, size, etag) of every `.parquet` file under `prefix` of the tenant's store, sorted."""
    if not is_prefix(prefix):
        raise TrainingError(f"TrainingData.parquet_prefix {prefix!r} is not a key prefix of the store")
    found = sorted([(i.key, i.size, i.etag) async for i in store.list(prefix) if i.key.endswith(".parquet")])
    if not found:
        raise TrainingError(f"no Parquet files under {prefix!r} in the object store")
    return found


def dataset_urls(store, keys: list[str]) -> tuple[list[str], dict[str, Any]]:
    """What Dask reads for these tenant-store keys: paths (file://) or s3:// URLs, and fsspec's options.

    The tenant's prefix is part of every URL: the keys came from this
    tenant's own listing, so a worker reads nothing else.
    """
    base = ""
    while isinstance(store, PrefixedStore):
        base, store = store.prefix + base, store.inner
    if isinstance(store, LocalStore):
        return [(store.root / base / key).as_posix() for key in keys], {}
    from flywheel.server.store.s3 import S3Store

    if isinstance(store, S3Store):
        client = {"region_name": store.region, **({"endpoint_url": store.endpoint_url} if store.endpoint_url else {})}
        return [f"s3://{store.bucket}/{store.base}{base}{key}" for key in keys], {"client_kwargs": client}
    raise TrainingError(f"the object store {type(store).__name__} cannot be read by Dask")


def listing_hash(listing: list[tuple[str, int, str | None]]) -> str:
    """The version's `data_sha256`: of the partitions' keys, sizes and etags (hashing every row
    would read the whole data set once more, here)."""
    return hashlib.sha256(msgspec.json.encode(listing)).hexdigest()


# -- on the cluster (in a thread: every call below blocks) ---------------------------


def fit_on_cluster(address: str, urls: list[str], options: dict, family: ModelFamily, request: TrainModel,
                   data: TrainingData, monotone: dict[str, int]) -> Fitted:
    import dask.dataframe as dd
    from distributed import Client

    # Our own client, never the process default: two trainings on one worker each keep theirs.
    with Client(address, set_as_default=False, timeout="30s") as client:
        frame = dd.read_parquet(urls, storage_options=options or None)
        spec = _spec(client, frame, family, data)
        check_monotone(spec, monotone)
        parts = _split(frame, family, request)
        _check_labels(client, parts[0][family.label], family.label)
        train = _part(client, parts[0], spec, family.label)
        rows, positives = client.compute([train[1].size, train[1].sum()], sync=True)
        valid, test = (_collect(client, part, spec, family.label) for part in parts[1:])
        _check_parts({"training": (int(rows), int(positives)),
                      "validation": (len(valid[1]), int(valid[1].sum())), "test": (len(test[1]), int(test[1].sum()))})
        if rows + len(valid[1]) + len(test[1]) < MIN_ROWS:
            raise TrainingError(f"training data has fewer than {MIN_ROWS} rows")
        model = _fit(client, train, spec, family, request, monotone)
        workers = len(client.scheduler_info()["workers"])
    local = model.to_local()
    if request.early_stopping_rounds:
        stop_early(local, valid[0], valid[1], request.early_stopping_rounds)
    return Fitted(model=local, spec=spec, X_valid=valid[0], X_test=test[0], y_test=test[1], test_table=test[2],
                  rows={"train": int(rows), "valid": len(valid[1]), "test": len(test[1]),
                        "positives": int(positives + valid[1].sum() + test[1].sum())}, workers=workers)


def _spec(client, frame, family: ModelFamily, data: TrainingData) -> FeatureSpec:
    """The training's features (as `training.training_spec` chooses them), categories counted on the cluster."""
    # The frame's empty pandas template: column names and types without reading a row.
    empty = pa.Table.from_pandas(frame._meta, preserve_index=False)
    if family.features is DynamicFeatures:
        if not data.features:
            raise TrainingError(f"family {family.name!r} declares DynamicFeatures: its loader must return "
                                "TrainingData with the features to train on")
        try:
            spec = FeatureSpec.from_table(empty, data.features)
        except FeatureSchemaError as exc:
            raise TrainingError(str(exc)) from None
        if family.label in spec.names:
            raise TrainingError(f"the label {family.label!r} cannot be a feature")
    else:
        spec = feature_spec(family.features)
    missing = [c for c in (*spec.names, family.label) if c not in empty.column_names]
    if missing:
        raise TrainingError(f"training data lacks columns: {', '.join(map(repr, missing))}")
    names = [n for n, k in zip(spec.names, spec.kinds) if k == "category"]
    if not names:
        return spec
    counted = client.compute([frame[n].dropna().astype(str).value_counts() for n in names], sync=True)
    # fit_categories' order on the cluster's counts: most frequent first (ties by value), capped.
    infos = spec.describe()
    for info in infos:
        if info.type == "category":
            counts = counted[names.index(info.name)]
            pairs = sorted(((int(c), str(v)) for v, c in counts.items() if v), key=lambda x: (-x[0], x[1]))
            info.categories = [v for _, v in pairs[:MAX_CATEGORIES]]
    return dataclasses.replace(spec, categories=FeatureSpec.from_infos(infos).categories)


def _split(frame, family: ModelFamily, request: TrainModel) -> list:
    """Train, validation and test parts: the family's split column, else a seeded random split."""
    column = family.split_column
    if column is not None and column in frame.columns:
        return [frame[frame[column] == k] for k in (0, 1, 2)]
    if request.split == "time":
        raise TrainingError("split='time' is not available on a Dask cluster (it would sort the whole data set): "
                            "give the family a split_column, or use split='random'")
    hold = request.holdout_fraction
    return list(frame.random_split([1 - hold, hold / 2, hold / 2], random_state=request.seed))


def _part(client, part, spec: FeatureSpec, label: str):
    """A part as (float32 feature frame, int8 labels), persisted on the workers.

    Built as one frame and persisted before X and y are taken from it: Dask's
    optimizer may otherwise read the two with different column sets and
    merge small files into different partitions, and LightGBM needs X's and
    y's partitions to match one for one.
    """
    import pandas as pd

    meta = pd.DataFrame({n: pd.Series(dtype="float32") for n in spec.names} | {label: pd.Series(dtype="int8")})
    stored = msgspec.json.encode(spec.to_json())
    both = client.persist(part.map_partitions(partition_frame, stored, label, meta=meta))
    return both[list(spec.names)], both[label]


def partition_frame(pdf, stored: bytes, label: str):
    """One pandas partition's feature matrix, as `FeatureSpec.table_matrix` builds it, and its
    labels (this runs on a Dask worker)."""
    import pandas as pd

    spec = _spec_of(stored)
    table = pa.Table.from_pandas(pdf[list(spec.names)], preserve_index=False)
    out = pd.DataFrame(spec.table_matrix(table), columns=list(spec.names), index=pdf.index)
    out[label] = pdf[label].astype("int8")
    return out


@functools.lru_cache(maxsize=8)
def _spec_of(stored: bytes) -> FeatureSpec:
    return FeatureSpec.from_json(msgspec.json.decode(stored))


def _collect(client, part, spec: FeatureSpec, label: str) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """A holdout part brought here: its matrix, its 0/1 labels, and its table (for extra_metrics)."""
    table = pa.Table.from_pandas(client.compute(part, sync=True), preserve_index=False)
    column = table.column(label).combine_chunks()
    if column.null_count:
        raise TrainingError(f"label {label!r} has {column.null_count} empty values")
    y = column.to_numpy(zero_copy_only=False).astype(np.int8)
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise TrainingError(f"label {label!r} must be 0/1 (or boolean)")
    return spec.table_matrix(table), y, table


def _check_labels(client, label, name: str) -> None:
    """The training part's labels are all there and 0/1 (checked on the cluster, before casting them)."""
    nulls, low, high = client.compute([label.isna().sum(), label.min(), label.max()], sync=True)
    if nulls:
        raise TrainingError(f"label {name!r} has {int(nulls)} empty values")
    if not {int(low), int(high)} <= {0, 1}:
        raise TrainingError(f"label {name!r} must be 0/1 (or boolean)")


def _check_parts(parts: dict[str, tuple[int, int]]) -> None:
    """As `training.check_split`: every part needs both classes."""
    for name, (rows, positives) in parts.items():
        if rows == 0 or positives == 0 or positives == rows:
            raise TrainingError(f"the {name} split has {rows} rows and {positives} positive labels: it needs "
                                "both classes; add data (or a larger holdout_fraction) so every split holds positives")


def _fit(client, train, spec: FeatureSpec, family: ModelFamily, request: TrainModel, monotone: dict[str, int]):
    from lightgbm.dask import DaskLGBMClassifier

    params = lightgbm_params(family, request)
    _drop(params, "num_threads")  # each Dask worker uses its own thread count, not this process's cores
    if any(monotone.values()):
        params["monotone_constraints"] = [int(monotone.get(name, 0)) for name in spec.names]
    categorical = [j for j, kind in enumerate(spec.kinds) if kind == "category"] or "auto"
    model = DaskLGBMClassifier(client=client, n_estimators=request.num_boost_round, **params)
    # lightgbm.dask also waits on futures through the current client: ours, in this thread's context only.
    with client.as_current():
        return model.fit(train[0], train[1], feature_name=list(spec.names), categorical_feature=categorical)


def stop_early(model, X_valid: np.ndarray, y_valid: np.ndarray, rounds: int) -> int:
    """LightGBM's early-stopping rule, applied after the fact: the best iteration by validation
    log loss, stopping at the first run of `rounds` without improvement; the model then serves
    (and exports, and is checked at) that iteration, as an early-stopped local model does."""
    booster = model.booster_
    X64 = X_valid.astype(np.float64)
    margin = np.zeros(len(y_valid))
    best, best_loss = 0, np.inf
    for i in range(booster.num_trees()):
        margin += booster.predict(X64, start_iteration=i, num_iteration=1, raw_score=True)
        p = np.clip(1.0 / (1.0 + np.exp(-margin)), 1e-15, 1 - 1e-15)
        loss = float(-np.mean(y_valid * np.log(p) + (1 - y_valid) * np.log1p(-p)))
        if loss < best_loss:
            best, best_loss = i + 1, loss
        elif i + 1 - best >= rounds:
            break
    # Keep only those trees, as lgb.train does after early stopping (the ONNX converter counts them).
    booster.model_from_string(booster.model_to_string(num_iteration=best))
    booster.best_iteration = best
    model._best_iteration = best  # what LGBMModel.fit sets after early stopping (best_iteration_ reads it)
    log.info("dask early stopping", best_iteration=best, valid_log_loss=best_loss)
    return best
