"""Models: the families plugins declare, training requests, the registry and scoring.

A plugin declares a `ModelFamily` through `register_model_families`; the core
trains versions of it on workers (`TrainModel` is the job payload), keeps a
registry per tenant, and serves the active version as ONNX.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

# Metrics where a smaller value is better; every other metric (ROC-AUC, PR-AUC,
# and family metrics unless listed here) is compared as "higher is better"
# when a new version competes with the active one.
LOWER_IS_BETTER = frozenset({"log_loss", "brier"})


class DynamicFeatures(msgspec.Struct):
    """`ModelFamily(features=DynamicFeatures)`: no fixed features; every training names its
    own (`TrainingData.features`) and every version is scored with its own. Since 0.3."""


class TrainingData(msgspec.Struct, kw_only=True):
    """What `load_training_data` may return instead of a bare table. Since 0.3.

    - `table`: a `pyarrow.Table` as a bare return would be.
    - `features`: this training's features, in order (None: the family's Struct). Their
      types come from the table's columns: floats, integers, booleans, and strings (or
      dictionaries of strings) as categoricals. Required for `DynamicFeatures` families.
    - `monotone`: feature name -> -1, 0 or 1 for this training, over the family's own
      (a request's `monotone` still wins).
    - `parquet_prefix` (instead of `table`): a key prefix in the tenant's object store whose
      `.parquet` files are the training data, one partition each. With FLYWHEEL_DASK_SCHEDULER
      set the core reads them as a Dask dataframe and trains with `lightgbm.dask` on the
      cluster; otherwise it reads them into one table. Since 0.4.
    """

    table: Any = None
    features: list[str] | None = None
    monotone: dict[str, int] = {}
    parquet_prefix: str | None = None


class ModelFamily(msgspec.Struct, kw_only=True):
    """A kind of binary classifier a plugin trains and serves.

    - `features`: a Struct whose fields, in order, are the model's inputs. Field
      types are `float`, `int`, `bool` or `str` (a categorical: trained as a
      LightGBM categorical, its categories recorded with each version), optionally
      `| None` (a missing value, which LightGBM and the ONNX model treat as
      missing). ONNX input columns always follow this order. `DynamicFeatures`
      instead: each training chooses its features (`TrainingData.features`), and
      each version is scored with its own.
    - `label`: the 0/1 target column in the training table.
    - `load_training_data`: ``async def load(ctx: JobContext, request: TrainModel)``
      returning a `pyarrow.Table` with the feature columns and the label (and
      `time_column` for time-based splits), or a str: a key prefix in the
      tenant's object store holding a Parquet data set, or a `TrainingData`
      (the table with this training's feature list and monotone constraints).
    - `params`: LightGBM parameters for this family, any LightGBM accepts (plugin
      code is trusted; a training request may override those `TrainingParams`
      lists); `monotone`: feature name -> -1, 0 or 1.
    - `primary_metric`: what auto-activation compares (see `LOWER_IS_BETTER`).
    - `extra_metrics`: ``(y_true, y_score, test_table) -> dict[str, float]``,
      computed on the test split and stored with the version's metrics.
    - `intended_use`, `limitations`: text for the model card.
    - `split_column`: when the training table has this column, it assigns each
      row to train (0), validation (1) or test (2); any other value (a purge
      gap, say) leaves the row out. For splits only the plugin can draw (by
      entity and time). Validation and test must each hold both classes.
    - A training table's schema metadata key `flywheel.data` (JSON: `notes`, a
      list of lines, and any other figures) is kept in the version's info and
      its `notes` are printed in the model card (label censoring, horizons).
    """

    name: str
    features: type[msgspec.Struct]
    label: str
    load_training_data: Callable[..., Any] | None = None
    params: dict[str, Any] = {}
    monotone: dict[str, int] = {}
    time_column: str | None = None
    primary_metric: str = "roc_auc"
    extra_metrics: Callable[..., dict[str, float]] | None = None
    description: str = ""
    intended_use: str = ""
    limitations: str = ""
    split_column: str | None = None


# A share of rows or features: LightGBM needs > 0, and under 1% a tree has nothing to learn from.
Fraction = Annotated[float, msgspec.Meta(ge=0.01, le=1.0)]
# A regularisation or threshold: LightGBM needs >= 0; the cap only keeps it finite and sane.
Penalty = Annotated[float, msgspec.Meta(ge=0.0, le=1e6)]


class TrainingParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """The LightGBM parameters a training request may set (`TrainRequest.params`).

    An allow-list: anything else is refused, and LightGBM's file, network,
    threading, device and output parameters never come from a request.
    Names are LightGBM's (its scikit-learn names where it has them, which
    LightGBM takes as aliases of its own: `subsample` is `bagging_fraction`);
    other aliases are not accepted. None (or absent) keeps the family's value,
    else Flywheel's default. The upper bounds keep one tenant's training
    from taking a worker's memory or time. No field is a free-form string:
    LightGBM joins parameters into one "key=value key=value" string for its
    C API, where a string value could smuggle in parameters of its own.
    """

    # LightGBM needs > 0. Below 1e-4 even the most rounds a request may train (20,000) barely
    # move the margin; above 1 every tree overshoots its own fit.
    learning_rate: Annotated[float, msgspec.Meta(ge=1e-4, le=1.0)] | None = None
    # LightGBM needs > 1. LightGBM keeps a histogram per leaf (features x max_bin each), and
    # leaves x rounds is the model ONNX must hold (see MAX_MODEL_LEAVES): 1024 is 32x the default.
    num_leaves: Annotated[int, msgspec.Meta(ge=2, le=1024)] | None = None
    # -1 or 0: no limit (LightGBM's default). Leaves, not depth, cost memory and time; the cap
    # only keeps the value meaningful.
    max_depth: Annotated[int, msgspec.Meta(ge=-1, le=64)] | None = None
    # Rows per leaf (and per bin below): a C int, capped far above any table a worker holds.
    min_child_samples: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] | None = None
    min_child_weight: Penalty | None = None  # hessian sum per leaf (min_sum_hessian_in_leaf)
    min_split_gain: Penalty | None = None
    subsample: Fraction | None = None  # rows per bagging round; needs subsample_freq > 0
    # 0 turns bagging off; a period longer than the most rounds a request may train never bags.
    subsample_freq: Annotated[int, msgspec.Meta(ge=0, le=20_000)] | None = None
    colsample_bytree: Fraction | None = None
    colsample_bynode: Fraction | None = None
    reg_alpha: Penalty | None = None  # L1
    reg_lambda: Penalty | None = None  # L2
    # LightGBM needs > 1. Binned data takes one byte a value up to 255 bins and two above, and
    # every histogram (one per leaf in LightGBM's cache) grows with bins: 1023 is 4x the default.
    max_bin: Annotated[int, msgspec.Meta(ge=2, le=1023)] | None = None
    min_data_in_bin: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] | None = None
    # LightGBM needs > 0. A positive class rarer than 1 in 10,000 needs more data, not more weight.
    scale_pos_weight: Annotated[float, msgspec.Meta(gt=0.0, le=1e4)] | None = None
    is_unbalance: bool | None = None  # LightGBM refuses it together with scale_pos_weight
    path_smooth: Penalty | None = None  # needs min_child_samples >= 2 when > 0
    extra_trees: bool | None = None
    # 0: no limit on a leaf's output (LightGBM's default); beyond 1000 log-odds a limit is none.
    max_delta_step: Annotated[float, msgspec.Meta(ge=0.0, le=1e3)] | None = None
    monotone_constraints_method: Literal["basic", "intermediate", "advanced"] | None = None

    def __post_init__(self) -> None:
        # Combinations LightGBM refuses when training starts: refuse them before a job is queued.
        if self.is_unbalance and self.scale_pos_weight is not None:
            raise ValueError("is_unbalance and scale_pos_weight cannot both be set: choose one")
        if self.path_smooth and self.min_child_samples is not None and self.min_child_samples < 2:
            raise ValueError("path_smooth > 0 needs min_child_samples >= 2")
        # Not refused by LightGBM but silently trained as "basic": say so instead.
        method = self.monotone_constraints_method
        if method not in (None, "basic") and (self.colsample_bynode or 1.0) < 1.0:
            raise ValueError(f"monotone_constraints_method {method!r} needs colsample_bynode = 1 "
                             "(LightGBM falls back to 'basic' otherwise)")


# What `TrainRequest.params` accepts, in declaration order (error messages list them).
TRAINING_PARAMS: tuple[str, ...] = TrainingParams.__struct_fields__
# num_leaves x num_boost_round a request may ask for. Exporting to ONNX takes about 0.1 ms and
# 1 KB of memory a leaf (measured: about 100 s and a GB here), and scoring and explaining slow
# down with the model: 1024 leaves for 1024 rounds, or the default 31 for all 20,000.
MAX_MODEL_LEAVES = 1024 * 1024


class TrainRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /v1/models/{family}/train`: how to train one version."""

    # "time": the newest rows (by the family's time column) are held out; "random": a seeded shuffle.
    split: Literal["time", "random"] = "random"
    holdout_fraction: Annotated[float, msgspec.Meta(ge=0.05, le=0.5)] = 0.2
    # LightGBM's seed is a C int, and numpy's generator is seeded from it too.
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0
    params: TrainingParams = msgspec.field(default_factory=TrainingParams)
    # Feature name -> -1, 0 or 1; names are checked against the family's features.
    monotone: dict[str, Annotated[int, msgspec.Meta(ge=-1, le=1)]] = {}
    num_boost_round: Annotated[int, msgspec.Meta(ge=1, le=20_000)] = 1000
    # 0 turns early stopping off (exactly num_boost_round trees).
    early_stopping_rounds: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 50
    auto_activate: bool = False
    # ONNX and LightGBM must agree on every holdout row's margin (log-odds) within this; the
    # default allows for ONNX summing float32 leaf values (~1e-5 over a few hundred trees).
    parity_tolerance: Annotated[float, msgspec.Meta(ge=0, le=1e-2)] = 1e-4
    # Passed to the family's load_training_data (a date range, a data set name...).
    options: dict[str, Any] = {}

    def __post_init__(self) -> None:
        # Only what the request sets: a family's own num_leaves is the plugin's (trusted) choice.
        leaves = (self.params.num_leaves or 0) * self.num_boost_round
        if leaves > MAX_MODEL_LEAVES:
            raise ValueError(f"params.num_leaves x num_boost_round = {leaves:,}, above the "
                             f"{MAX_MODEL_LEAVES:,} leaves a model may have: lower either")


class TrainModel(TrainRequest, kw_only=True, forbid_unknown_fields=True):
    """Payload of the `core.train_model` job: a `TrainRequest` and the family."""

    family: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class FeatureInfo(msgspec.Struct, omit_defaults=True):
    name: str
    type: Literal["float", "int", "bool", "category"]
    nullable: bool
    # A categorical's values, as trained: a value's position is the code the model sees
    # (what ONNX gets); a value not listed scores as missing. Since 0.3.
    categories: list[str] | None = None


class ModelVersionRead(msgspec.Struct, kw_only=True):
    family: str
    version: int
    state: Literal["training", "ready", "failed"]
    active: bool
    created_at: datetime
    finished_at: datetime | None = None
    job_id: Any = None
    metrics: dict[str, Any] | None = None
    error: str | None = None


class FamilyRead(msgspec.Struct, kw_only=True):
    name: str
    plugin: str
    description: str
    primary_metric: str
    features: list[FeatureInfo]
    active_version: int | None
    versions: list[ModelVersionRead]


class ServedModel(msgspec.Struct, kw_only=True):
    """A model a plugin serves under an OpenAI-compatible API, as OpenAI's `GET /v1/models` lists it."""

    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "flywheel"


class FamilyList(msgspec.Struct, kw_only=True):
    """`GET /v1/models`: Flywheel's model families (`items`) and, for OpenAI clients pointed at
    Flywheel, the models plugins serve under OpenAI's API (`object` and `data`, as OpenAI lists them)."""

    items: list[FamilyRead]
    object: str = "list"
    data: list[ServedModel] = []


class ModelInfo(msgspec.Struct, kw_only=True):
    """The active version of a family: what `GET /v1/models/{family}` returns."""

    family: str
    version: int
    features: list[FeatureInfo]
    metrics: dict[str, Any]
    created_at: datetime
    activated_at: datetime
    info: dict[str, Any]
    card: str


class Contribution(msgspec.Struct, omit_defaults=True):
    feature: str
    value: float | None  # a categorical's code (see `category`)
    contribution: float  # in log-odds: positive pushes the score up
    category: str | None = None  # a categorical's value (None: missing or unseen). Since 0.3.


class Explanation(msgspec.Struct):
    """Why a row scored what it did: `bias` plus every feature's contribution
    equals `margin`, the raw log-odds (score = sigmoid(margin)); `top` lists
    the N largest contributions by absolute value."""

    bias: float
    margin: float
    top: list[Contribution]


class ScoreResult(msgspec.Struct, omit_defaults=True):
    family: str
    version: int
    score: float  # P(label = 1), float64: the sigmoid of `margin`
    explanation: Explanation | None = None
    margin: float | None = None  # raw log-odds; rank on it (probabilities of rare events crowd near 0)


class BatchScoreRequest(msgspec.Struct, forbid_unknown_fields=True):
    rows: list[dict[str, Any]]


class BatchScoreResult(msgspec.Struct, omit_defaults=True):
    family: str
    version: int
    scores: list[float]
    explanations: list[Explanation] | None = None
    margins: list[float] | None = None  # raw log-odds, row for row with `scores`


class ActivateResult(msgspec.Struct):
    """An activation: what serves now, what it replaced, when, and who chose it."""

    family: str
    version: int
    previous_version: int | None
    activated_at: datetime
    activated_by: str = ""  # "key <id>", "the CLI", "auto-activation (job <id>)"


# A key prefix in the tenant's store (checked again as a store key when the job runs).
StorePrefix = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"^[A-Za-z0-9._=/-]+$")]
ColumnName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class TableScoreRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /v1/models/{family}/batch_score`: score every Parquet file under a prefix. Since 0.4.

    Each `.parquet` file under `input_prefix` (in the tenant's store) is one partition, scored by
    its own job; its scores go to `batch_scores/{output_prefix}` + the file's path under
    `input_prefix` (default `batch_scores/{family}/v{version}/{input_prefix}`), written once: a re-run skips
    the partitions already scored. `keep_columns` are copied from the input beside `score` and
    `margin` (an id to join on, say).
    """

    input_prefix: StorePrefix
    output_prefix: StorePrefix | None = None
    version: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | None = None  # None: the active one
    keep_columns: Annotated[list[ColumnName], msgspec.Meta(max_length=50)] = []


class ScorePartitions(TableScoreRequest, kw_only=True, forbid_unknown_fields=True):
    """Payload of the `core.score_partitions` job: a `TableScoreRequest` and the family. Since 0.4."""

    family: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class ScorePartition(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Payload of `core.score_partition`: one input file scored with one version. Since 0.4."""

    family: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    version: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
    input_key: StorePrefix
    output_key: StorePrefix
    keep_columns: Annotated[list[ColumnName], msgspec.Meta(max_length=50)] = []
