"""The `core.train_model` job: data -> split -> LightGBM -> metrics -> ONNX -> parity -> registry.

Everything CPU-bound runs in a thread so the worker's event loop keeps
answering (heartbeats, progress writes, other jobs). A retried job (worker
killed mid-run) gets its version number back and rewrites the same
artifacts: the job is idempotent.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from flywheel.contracts.models import DynamicFeatures, ModelFamily, TrainingData, TrainModel
from flywheel.server import __version__
from flywheel.server.errors import InvalidInput
from flywheel.server.models import registry
from flywheel.server.models.artifacts import write_artifacts
from flywheel.server.models.families import family_of
from flywheel.server.models.features import FeatureSchemaError, FeatureSpec, feature_spec
from flywheel.server.models.metrics import evaluate
from flywheel.server.models.onnx import OnnxClassifier, export_classifier, sigmoid
from flywheel.server.monitoring.reference import store_reference, training_reference

log = structlog.get_logger("flywheel.models")

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 20,
    "colsample_bytree": 0.9, "reg_lambda": 1.0, "verbose": -1, "deterministic": True,
    "force_row_wise": True,
}
MIN_ROWS = 50


class TrainingError(Exception):
    """Training could not produce a usable version; the message says why."""


async def train_model(ctx, request: TrainModel) -> dict[str, Any]:
    if ctx.tenant_id is None:
        raise TrainingError("models belong to a tenant: queue core.train_model with a tenant")
    return await train_version(ctx, request)


async def train_version(ctx, request: TrainModel, *, holdout_scores: bool = False) -> dict[str, Any]:
    """Train, check and register one version of `request.family` for `ctx.tenant_id`, inside
    the calling job (`core.train_model`, or a plugin's own job: the version is keyed by the job,
    so a retried job fills the same version).

    `holdout_scores=True` adds `holdout_scores`: the test split's row positions in the
    family's table and the registered ONNX version's probabilities for them, as the
    parity check computed them (None after Dask training: its rows are on the cluster).
    """
    family = family_of(ctx.state, request.family)
    version = await registry.allocate_version(ctx.db, ctx.tenant_id, family.name, ctx.job_id)
    log.info("training", family=family.name, version=version, tenant=str(ctx.tenant_id))
    try:
        return await _train(ctx, family, request, version, holdout_scores)
    except Exception as exc:
        await registry.mark_failed(ctx.db, ctx.tenant_id, family.name, version, f"{type(exc).__name__}: {exc}")
        raise
    except asyncio.CancelledError:  # a cancelled job leaves no version that looks like it is training
        await registry.mark_failed(ctx.db, ctx.tenant_id, family.name, version, "cancelled")
        raise


async def _train(ctx, family: ModelFamily, request: TrainModel, version: int, holdout_scores: bool = False) -> dict:
    await ctx.progress(0, None, "loading training data", force=True)
    data = await load_data(ctx, family, request)
    if data.table is None:  # Parquet partitions (TrainingData.parquet_prefix)
        if ctx.state.settings.dask_scheduler:
            from flywheel.server.models.dask_training import train_on_dask

            result = await train_on_dask(ctx, family, request, version, data)
            return {**result, "holdout_scores": None} if holdout_scores else result
        data = msgspec.structs.replace(data, table=await _as_table(ctx, family, data.parquet_prefix))
    table = data.table
    spec = await asyncio.to_thread(training_spec, family, data)
    monotone = {**family.monotone, **data.monotone, **request.monotone}
    X, y, t = await asyncio.to_thread(to_arrays, table, spec, family, request)
    await ctx.progress(0, None, f"loaded {len(y)} rows", force=True)
    train, valid, test = split_table(table, len(y), t, family, request)
    check_split(y, train, valid, test)
    total = request.num_boost_round

    model = await _fit_with_progress(ctx, X, y, train, valid, spec, family, request, monotone)
    best = int(model.best_iteration_ or model.n_estimators_)
    await ctx.progress(total, total, f"trained {best} trees; exporting to ONNX", force=True)
    onnx_bytes = await asyncio.to_thread(export_classifier, model, len(spec.names), f"{family.name}-v{version}")

    await ctx.progress(total, total, "checking ONNX against LightGBM", force=True)
    checked = await _checked_parity(model, onnx_bytes, X[test], request.parity_tolerance)
    metrics = await asyncio.to_thread(evaluate, y[test], checked.p_lgb, model, spec, family, _take(table, test))
    metrics.update({"parity_max_abs_diff": checked.max_abs_diff, "trees": best, "rows": {
        "train": int(len(train)), "valid": int(len(valid)), "test": int(len(test)),
        "positives": int(y.sum())}})
    # The training distribution monitoring compares every scored day with (server/monitoring), and
    # the data's hash, side by side: both read all of X, neither needs the event loop.
    reference, digest = await asyncio.gather(
        asyncio.to_thread(training_reference, spec, X, np.concatenate([train, valid, test]), onnx_bytes,
                          request.seed),
        asyncio.to_thread(data_hash, X, y))
    info = version_info(ctx, family, request, version, model, digest)
    info["data"] = data_notes(table)

    result = await register_trained(ctx, family, request, version, model, spec, best, onnx_bytes, metrics, info,
                                    reference)
    if holdout_scores:
        result["holdout_scores"] = {"rows": test, "probabilities": checked.p_onnx}
    return result


async def register_trained(ctx, family: ModelFamily, request: TrainModel, version: int, model, spec, best: int,
                           onnx_bytes: bytes, metrics: dict, info: dict, reference) -> dict:
    """Store a checked version (artifacts, monitoring reference, registry), activate it if asked
    and better, and say what happened: the same for local and Dask training."""
    total = request.num_boost_round
    await ctx.progress(total, total, "writing artifacts", force=True)
    await write_artifacts(ctx.store, family, spec, version, onnx_bytes,
                          model.booster_.model_to_string(num_iteration=best), metrics, info)
    await store_reference(ctx.db, ctx.tenant_id, family.name, version, reference)
    await registry.mark_ready(ctx.db, ctx.tenant_id, family.name, version, metrics=metrics,
                              features=spec.to_json(), info=info)
    activated, activation = False, "not activated: auto_activate was not requested"
    if request.auto_activate:
        activated, activation = await _activate_if_better(ctx, family, version, metrics)
    await ctx.progress(total, total, "done", force=True)
    return {"family": family.name, "version": version, "activated": activated, "activation": activation,
            "trees": best, family.primary_metric: metrics.get(family.primary_metric),
            "parity_max_abs_diff": metrics.get("parity_max_abs_diff")}


async def _fit_with_progress(ctx, X, y, train, valid, spec, family, request, monotone):
    """Fit in a thread, reporting every tenth boosting round on the job."""
    loop = asyncio.get_running_loop()
    total = request.num_boost_round

    def on_round(env) -> None:  # called from the training thread
        i = env.iteration + 1
        if i % 10 == 0 or i == total:
            asyncio.run_coroutine_threadsafe(ctx.progress(i, total, f"boosting round {i}"), loop)

    return await asyncio.to_thread(fit, X, y, train, valid, spec, family, request, on_round, monotone)


async def _checked_parity(model, onnx_bytes: bytes, X_test: np.ndarray, tolerance: float) -> Parity:
    checked = await asyncio.to_thread(holdout_parity, model, onnx_bytes, X_test)
    if not checked.max_abs_diff <= tolerance:
        raise TrainingError(f"ONNX and LightGBM disagree on the holdout: max |difference| = "
                            f"{checked.max_abs_diff:.3e} > tolerance {tolerance:.1e} in margin (log-odds) "
                            f"over {len(X_test)} rows")
    return checked


def version_info(ctx, family: ModelFamily, request: TrainModel, version: int, model, data_sha256: str) -> dict:
    """What `version.json` records: data, parameters, split, libraries and code that made the version."""
    params = model.get_params()
    return {
        "family": family.name, "version": version, "data_sha256": data_sha256,
        "params": {k: v for k, v in params.items() if _jsonable(v)},
        "split": {"kind": request.split, "holdout_fraction": request.holdout_fraction, "seed": request.seed,
                  "time_column": family.time_column if request.split == "time" else None,
                  **({"column": family.split_column} if family.split_column else {})},
        "libraries": library_versions(), "git_revision": git_revision(), "flywheel": __version__,
        "python": platform.python_version(), "job_id": str(ctx.job_id),
    }


async def _activate_if_better(ctx, family: ModelFamily, version: int, metrics: dict) -> tuple[bool, str]:
    """Activate only a version whose primary metric is known and beats the active one's; say why either way."""
    current = await registry.active_row(ctx.db, ctx.tenant_id, family.name)
    ok, why = registry.activation_verdict(metrics, current, family.primary_metric)
    if ok:
        await registry.activate(ctx.db, ctx.tenant_id, family.name, version, by=f"auto-activation (job {ctx.job_id})")
    log.info("auto-activation", family=family.name, version=version, verdict=why)
    return ok, why


# -- data ----------------------------------------------------------------------


async def load_data(ctx, family: ModelFamily, request: TrainModel) -> TrainingData:
    """What the family's loader returned, as `TrainingData` (a bare table or store prefix is wrapped)."""
    if family.load_training_data is None:
        raise TrainingError(f"family {family.name!r} has no load_training_data")
    data = await family.load_training_data(ctx, request)
    if isinstance(data, TrainingData):
        if data.table is None and data.parquet_prefix is not None:
            return data  # read by _train: as a Dask dataframe, or into one table
        if not isinstance(data.table, pa.Table):
            raise TrainingError(f"TrainingData.table of {family.name!r} is {type(data.table).__name__}, "
                                "not a pyarrow.Table")
        return data
    return TrainingData(table=await _as_table(ctx, family, data))


def training_spec(family: ModelFamily, data: TrainingData) -> FeatureSpec:
    """The features this training uses, categories fitted: the family's Struct, or the loader's list."""
    if family.features is DynamicFeatures:
        if not data.features:
            raise TrainingError(f"family {family.name!r} declares DynamicFeatures: its loader must return "
                                "TrainingData with the features to train on")
        try:
            spec = FeatureSpec.from_table(data.table, data.features)
        except FeatureSchemaError as exc:
            raise TrainingError(str(exc)) from None
        if family.label in spec.names:
            raise TrainingError(f"the label {family.label!r} cannot be a feature")
    elif data.features is not None and list(data.features) != list(feature_spec(family.features).names):
        raise TrainingError(f"family {family.name!r} has fixed features; TrainingData.features must be None")
    else:
        spec = feature_spec(family.features)
    return spec.fit_categories(data.table)


async def _as_table(ctx, family: ModelFamily, data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, str):  # a Parquet data set under this prefix of the tenant's store
        parts = [info.key async for info in ctx.store.list(data) if info.key.endswith(".parquet")]
        if not parts:
            raise TrainingError(f"no Parquet files under {data!r} in the object store")
        tables = [pq.read_table(io.BytesIO(await ctx.store.get(key))) for key in sorted(parts)]
        return pa.concat_tables(tables, promote_options="default")
    raise TrainingError(f"load_training_data of {family.name!r} returned {type(data).__name__}, "
                        "not a pyarrow.Table or a store prefix")


def to_arrays(table: pa.Table, spec: FeatureSpec, family: ModelFamily,
              request: TrainModel) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Feature matrix (float32, Struct order), 0/1 labels, and times for a time split."""
    by_family = family.split_column is not None and family.split_column in table.column_names
    needed = [*spec.names, family.label] + ([family.time_column] if request.split == "time" and not by_family
                                            else [])
    missing = [c for c in needed if c not in table.column_names]
    if request.split == "time" and family.time_column is None and not by_family:
        raise InvalidInput(f"family {family.name!r} has no time_column; use split='random'", field="$.split")
    if missing:
        raise TrainingError(f"training data lacks columns: {', '.join(map(repr, missing))}")
    if table.num_rows < MIN_ROWS:
        raise TrainingError(f"training data has {table.num_rows} rows; at least {MIN_ROWS} are needed")
    X = spec.table_matrix(table)
    label = table.column(family.label).combine_chunks()
    if label.null_count:
        raise TrainingError(f"label {family.label!r} has {label.null_count} empty values")
    y = label.cast(pa.int8()).to_numpy().astype(np.int8) if not pa.types.is_boolean(label.type) \
        else label.to_numpy(zero_copy_only=False).astype(np.int8)
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise TrainingError(f"label {family.label!r} must be 0/1 (or boolean)")
    if len(np.unique(y)) < 2:
        raise TrainingError(f"label {family.label!r} has a single class; nothing to learn")
    t = None
    if request.split == "time" and not by_family:
        t = table.column(family.time_column).combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    return X, y, t


def split_rows(n: int, t: np.ndarray | None, request: TrainModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / validation (early stopping) / test (metrics, parity) indices.

    The holdout is split evenly between validation and test. A time split
    holds out the newest rows (validation before test in time); a random
    split shuffles with the request's seed.
    """
    order = np.argsort(t, kind="stable") if t is not None else np.random.default_rng(request.seed).permutation(n)
    n_hold = max(2, int(round(n * request.holdout_fraction)))
    n_valid = n_hold // 2
    train, valid, test = order[: n - n_hold], order[n - n_hold: n - n_hold + n_valid], order[n - n_hold + n_valid:]
    return np.sort(train), np.sort(valid), np.sort(test)


def split_table(table: pa.Table, n: int, t, family: ModelFamily,
                request: TrainModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The family's own split when its table carries one (see `ModelFamily.split_column`), else `split_rows`."""
    column = family.split_column
    if column is None or column not in table.column_names:
        return split_rows(n, t, request)
    part = table.column(column).combine_chunks().cast(pa.int64()).fill_null(-1).to_numpy(zero_copy_only=False)
    return tuple(np.nonzero(part == k)[0] for k in (0, 1, 2))


def check_split(y: np.ndarray, train: np.ndarray, valid: np.ndarray, test: np.ndarray) -> None:
    """Refuse a split early stopping or the metrics cannot use: each part needs both classes.

    An all-negative validation set stops boosting on noise, and an all-negative
    test set leaves every ranking metric null (so the version could never be judged).
    """
    for name, idx in (("training", train), ("validation", valid), ("test", test)):
        positives = int(y[idx].sum()) if len(idx) else 0
        if len(idx) == 0 or positives == 0 or positives == len(idx):
            raise TrainingError(f"the {name} split has {len(idx)} rows and {positives} positive labels: it needs "
                                "both classes; add data (or a larger holdout_fraction) so every split holds positives")


def data_notes(table: pa.Table) -> dict[str, Any]:
    """What the family's loader said about its data (schema metadata `flywheel.data`), or {}."""
    raw = (table.schema.metadata or {}).get(b"flywheel.data")
    if raw is None:
        return {}
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return {"notes": ["(the loader's data notes were not valid JSON)"]}
    return value if isinstance(value, dict) else {}


def fit(X, y, train, valid, spec: FeatureSpec, family: ModelFamily, request: TrainModel, on_round,
        monotone: dict[str, int]):
    import lightgbm as lgb

    params = lightgbm_params(family, request)
    check_monotone(spec, monotone)
    if any(monotone.values()):
        params["monotone_constraints"] = [int(monotone.get(name, 0)) for name in spec.names]
    callbacks = [on_round]
    if request.early_stopping_rounds:
        callbacks.append(lgb.early_stopping(request.early_stopping_rounds, verbose=False))
    model = lgb.LGBMClassifier(n_estimators=request.num_boost_round, **params)
    # Categoricals are LightGBM's own (codes from the spec), never numbers it could order.
    categorical = [j for j, kind in enumerate(spec.kinds) if kind == "category"] or "auto"
    model.fit(X[train], y[train], eval_X=(X[valid],), eval_y=(y[valid],), eval_metric="binary_logloss",
              feature_name=list(spec.names), categorical_feature=categorical, callbacks=callbacks)
    return model


def lightgbm_params(family: ModelFamily, request: TrainModel) -> dict[str, Any]:
    """LightGBM parameters: Flywheel's defaults, then the family's, then what the request set.

    Only `TrainingParams` fields come from a request (its Struct refuses the
    rest), so file, network, thread and device parameters are the server's
    and the family's alone.
    """
    requested = msgspec.to_builtins(request.params)  # omit_defaults: only the fields set
    base = _layered({**DEFAULT_PARAMS, "num_threads": os.cpu_count() or 1}, family.params)
    # LightGBM refuses is_unbalance with scale_pos_weight: the request's replaces the family's.
    if requested.get("is_unbalance"):
        _drop(base, "scale_pos_weight")
    if "scale_pos_weight" in requested:
        _drop(base, "is_unbalance")
    return _layered(base, requested, {"random_state": request.seed})


def _layered(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers win, whichever alias each spells a parameter with: given both
    min_data_in_leaf and min_child_samples, LightGBM would keep one of its own choosing."""
    out: dict[str, Any] = {}
    for layer in layers:
        for name in layer:
            _drop(out, name)
        out.update(layer)
    return out


def _drop(params: dict[str, Any], name: str) -> None:
    """Remove `name` and every alias LightGBM knows for it."""
    from lightgbm.basic import _ConfigAliases  # LightGBM's own table (LGBM_DumpParamAliases)

    for alias in _ConfigAliases.get_by_alias(name):
        params.pop(alias, None)


def check_monotone(spec: FeatureSpec, monotone: dict[str, int]) -> None:
    """InvalidInput naming the first monotone constraint on a feature the family lacks."""
    for name in monotone:
        if name not in spec.names:
            raise InvalidInput(f"monotone constraint on unknown feature {name!r}; the features are "
                               f"{', '.join(spec.names)}", field=f"$.monotone.{name}")
        if monotone[name] and spec.kinds[spec.names.index(name)] == "category":
            raise InvalidInput(f"feature {name!r} is categorical: its categories have no order to be monotone in",
                               field=f"$.monotone.{name}")


class Parity(msgspec.Struct, frozen=True):
    """The holdout as LightGBM and the exported ONNX each score it (probabilities, float64)."""

    p_lgb: np.ndarray
    p_onnx: np.ndarray
    max_abs_diff: float


def holdout_parity(model, onnx_bytes: bytes, X_test: np.ndarray) -> Parity:
    """Both models' probabilities on the holdout and their largest gap, on the margin.

    The margin is what is served and ranked on; a gap in probabilities hides
    in the tails (two margins of -18 and -25 are both ~0 as probabilities).
    Probabilities are the margins' logistic, which is what the ONNX version
    serves: LightGBM is asked for its margins once, not again for probabilities
    (on a 300,000-row holdout that second pass was ~1 s).
    """
    from concurrent.futures import ThreadPoolExecutor

    # Both see the same float32 inputs: the gap measured is the model's, not the input rounding's.
    X64 = X_test.astype(np.float64)
    best = model.best_iteration_ or None
    onnx = OnnxClassifier(onnx_bytes)  # one thread per session: halves scored side by side
    halves = np.array_split(X_test, 2) if len(X_test) >= 20_000 else [X_test]
    with ThreadPoolExecutor(len(halves) + 1) as pool:
        lgb_future = pool.submit(model.booster_.predict, X64, num_iteration=best, raw_score=True)
        onnx_parts = list(pool.map(onnx.margin, halves))
        m_lgb = lgb_future.result()
    m_onnx = np.concatenate(onnx_parts) if onnx_parts else np.empty(0)
    diff = float(np.max(np.abs(m_lgb - m_onnx))) if len(m_lgb) else 0.0
    return Parity(p_lgb=sigmoid(m_lgb), p_onnx=sigmoid(m_onnx), max_abs_diff=diff)


def data_hash(X: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(X).tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    import lightgbm
    import onnx
    import onnxmltools
    import onnxruntime
    import skl2onnx
    import sklearn

    return {"lightgbm": lightgbm.__version__, "onnx": onnx.__version__, "onnxmltools": onnxmltools.__version__,
            "onnxruntime": onnxruntime.__version__, "skl2onnx": skl2onnx.__version__,
            "scikit-learn": sklearn.__version__, "numpy": np.__version__, "pyarrow": pa.__version__}


def git_revision() -> str | None:
    """FLYWHEEL_GIT_REVISION (set in container builds) or the checkout's HEAD, when there is one."""
    if rev := os.environ.get("FLYWHEEL_GIT_REVISION"):
        return rev
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=2, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _take(table: pa.Table, idx: np.ndarray) -> pa.Table:
    return table.take(pa.array(idx))


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list))
