"""Models: the families plugins declare, training requests, the registry and scoring.

A plugin declares a `ModelFamily` through `register_model_families`; the core
trains versions of it on workers (`TrainModel` is the job payload), keeps a
registry per tenant, and serves the active version as ONNX.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Callable, Literal

import msgspec

# Metrics where a smaller value is better; every other metric (ROC-AUC, PR-AUC,
# and family metrics unless listed here) is compared as "higher is better"
# when a new version competes with the active one.
LOWER_IS_BETTER = frozenset({"log_loss", "brier"})


class ModelFamily(msgspec.Struct, kw_only=True):
    """A kind of binary classifier a plugin trains and serves.

    - `features`: a Struct whose fields, in order, are the model's inputs. Field
      types are `float`, `int` or `bool`, optionally `| None` (a missing value,
      which LightGBM and the ONNX model treat as missing). ONNX input columns
      always follow this order.
    - `label`: the 0/1 target column in the training table.
    - `load_training_data`: ``async def load(ctx: JobContext, request: TrainModel)``
      returning a `pyarrow.Table` with the feature columns and the label (and
      `time_column` for time-based splits), or a str: a key prefix in the
      tenant's object store holding a Parquet data set.
    - `params`: LightGBM parameters for this family (a training request may
      override them); `monotone`: feature name -> -1, 0 or 1.
    - `primary_metric`: what auto-activation compares (see `LOWER_IS_BETTER`).
    - `extra_metrics`: ``(y_true, y_score, test_table) -> dict[str, float]``,
      computed on the test split and stored with the version's metrics.
    - `intended_use`, `limitations`: text for the model card.
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


class TrainRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /v1/models/{family}/train`: how to train one version."""

    # "time": the newest rows (by the family's time column) are held out; "random": a seeded shuffle.
    split: Literal["time", "random"] = "random"
    holdout_fraction: Annotated[float, msgspec.Meta(ge=0.05, le=0.5)] = 0.2
    seed: int = 0
    params: dict[str, float | int | str | bool] = {}
    monotone: dict[str, Annotated[int, msgspec.Meta(ge=-1, le=1)]] = {}
    num_boost_round: Annotated[int, msgspec.Meta(ge=1, le=20_000)] = 1000
    # 0 turns early stopping off (exactly num_boost_round trees).
    early_stopping_rounds: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 50
    auto_activate: bool = False
    # ONNX and LightGBM must agree on every holdout row within this; the
    # default allows for ONNX computing in float32.
    parity_tolerance: Annotated[float, msgspec.Meta(ge=0, le=1e-2)] = 1e-5
    # Passed to the family's load_training_data (a date range, a data set name...).
    options: dict[str, Any] = {}


class TrainModel(TrainRequest, kw_only=True, forbid_unknown_fields=True):
    """Payload of the `core.train_model` job: a `TrainRequest` and the family."""

    family: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class FeatureInfo(msgspec.Struct):
    name: str
    type: Literal["float", "int", "bool"]
    nullable: bool


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


class FamilyList(msgspec.Struct):
    items: list[FamilyRead]


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


class Contribution(msgspec.Struct):
    feature: str
    value: float | None
    contribution: float  # in log-odds: positive pushes the score up


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
    score: float
    explanation: Explanation | None = None


class BatchScoreRequest(msgspec.Struct, forbid_unknown_fields=True):
    rows: list[dict[str, Any]]


class BatchScoreResult(msgspec.Struct, omit_defaults=True):
    family: str
    version: int
    scores: list[float]
    explanations: list[Explanation] | None = None


class ActivateResult(msgspec.Struct):
    family: str
    version: int
    previous_version: int | None
    activated_at: datetime
