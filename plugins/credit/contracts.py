"""The credit plugin's API bodies: datasets, features, feature sets, run specs, runs, scores.

Create / Read shapes are separate; every name a tenant chooses that later
becomes a column name or a report label passes an allow-list here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from flywheel.contracts.models import TrainingParams

# A feature's name is a column of the materialized table and of the model: lower-case identifiers only.
FeatureName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
# A dataset's column names are the uploader's (German credit has "Duration in month"); they are looked
# up by exact name and never interpreted, so printable text without control characters is enough.
ColumnName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
ObjectName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, msgspec.Meta(max_length=2000)]
Transform = Literal["passthrough", "log1p", "clip", "bucket", "ratio", "missing_indicator", "categorical"]
Finite = Annotated[float, msgspec.Meta(ge=-1e300, le=1e300)]


# -- datasets ------------------------------------------------------------------------------


class ColumnProfile(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    type: Literal["number", "string", "boolean", "time", "other"]
    arrow_type: str
    missing_rate: float
    distinct: int
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] | None = None  # "p01", "p25", "p50", "p75", "p99"
    top_values: list[tuple[str, int]] | None = None
    target_rate_by_value: dict[str, float] | None = None  # strings: the bad rate of each top value


class DatasetProfile(msgspec.Struct, kw_only=True):
    rows: int
    target: str
    target_rate: float | None
    columns: list[ColumnProfile]


class DatasetVersionRead(msgspec.Struct, kw_only=True):
    id: UUID
    dataset_id: UUID
    name: str
    version: int
    sha256: str
    target: str
    bad_value: str | None
    time_column: str | None
    source_format: str
    rows: int
    bytes: int
    profile: DatasetProfile
    created_at: datetime
    used: bool
    store_key: str
    existing: bool = False  # an upload of identical content answers with the version it already has


class DatasetRead(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    created_at: datetime
    versions: list[DatasetVersionSummary]


class DatasetVersionSummary(msgspec.Struct, kw_only=True):
    id: UUID
    version: int
    rows: int
    sha256: str
    target: str
    created_at: datetime
    used: bool


class DatasetPage(msgspec.Struct, kw_only=True):
    items: list[DatasetRead]
    next_cursor: str | None = None


# -- features and feature sets -------------------------------------------------------------


class FeatureCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: FeatureName
    source_columns: Annotated[list[ColumnName], msgspec.Meta(min_length=1, max_length=2)]
    transform: Transform = "passthrough"
    # clip: lower, upper; bucket: edges (increasing); others take none.
    params: dict[str, Finite | list[Finite]] = {}
    monotone: Literal[-1, 0, 1] = 0
    description: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class FeatureRead(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    source_columns: list[str]
    transform: str
    params: dict[str, Any]
    monotone: int
    description: str
    created_at: datetime
    updated_at: datetime
    used: bool


class FeaturePage(msgspec.Struct, kw_only=True):
    items: list[FeatureRead]
    next_cursor: str | None = None


class FeatureSetCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: ObjectName
    description: Text = ""
    features: Annotated[list[FeatureName], msgspec.Meta(max_length=500)] = []  # a first version, if given


class FeatureSetVersionCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    features: Annotated[list[FeatureName], msgspec.Meta(min_length=1, max_length=500)]


class FeatureDefinition(msgspec.Struct, kw_only=True):
    """A feature as a feature set version holds it: the definition frozen when the version was made."""

    name: str
    source_columns: list[str]
    transform: str
    params: dict[str, Any] = {}
    monotone: int = 0
    description: str = ""


class FeatureSetVersionRead(msgspec.Struct, kw_only=True):
    id: UUID
    feature_set_id: UUID
    name: str
    version: int
    features: list[FeatureDefinition]
    created_at: datetime
    used: bool


class FeatureSetRead(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    description: str
    created_at: datetime
    versions: list[FeatureSetVersionRead]


class FeatureSetPage(msgspec.Struct, kw_only=True):
    items: list[FeatureSetRead]
    next_cursor: str | None = None


# -- run specs and runs ----------------------------------------------------------------------


class ModelParams(TrainingParams, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """LightGBM parameters of a run: the core's allow-list, plus the boosting rounds."""

    num_boost_round: Annotated[int, msgspec.Meta(ge=1, le=5000)] = 500
    early_stopping_rounds: Annotated[int, msgspec.Meta(ge=0, le=500)] = 50


class SplitPolicy(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # random_stratified: a seeded shuffle within each class; time: the newest rows (by the dataset's
    # time column) are the test set; column: a dataset column says "train" or "test" per row.
    kind: Literal["random_stratified", "time", "column"] = "random_stratified"
    test_share: Annotated[float, msgspec.Meta(ge=0.05, le=0.5)] = 0.3
    # Of the training rows, the share held out for early stopping.
    validation_share: Annotated[float, msgspec.Meta(ge=0.05, le=0.5)] = 0.2
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0
    column: ColumnName | None = None


class EvaluationPolicy(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    auc_min: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    gini_min: Annotated[float, msgspec.Meta(ge=-1, le=1)] | None = None
    ks_min: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    psi_max: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None  # the score's, train vs test
    feature_psi_max: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    # Probability-of-default cutoffs for the confusion table.
    cutoffs: Annotated[list[Annotated[float, msgspec.Meta(gt=0, lt=1)]], msgspec.Meta(max_length=20)] = \
        msgspec.field(default_factory=lambda: [0.1, 0.2, 0.3, 0.5])
    bands: Annotated[int, msgspec.Meta(ge=2, le=20)] = 10


class ArtifactPolicy(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    onnx: bool = True
    report: bool = True


class RunSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A run, in the replaced system's shape (JSON from the API, YAML from the CLI)."""

    dataset_version_id: UUID
    feature_set_version_id: UUID
    model_family: Literal["gbm"] = "gbm"
    model_params: ModelParams = msgspec.field(default_factory=ModelParams)
    split_policy: SplitPolicy = msgspec.field(default_factory=SplitPolicy)
    evaluation_policy: EvaluationPolicy = msgspec.field(default_factory=EvaluationPolicy)
    artifact_policy: ArtifactPolicy = msgspec.field(default_factory=ArtifactPolicy)


class PolicyFailure(msgspec.Struct, kw_only=True):
    threshold: str  # "auc_min"
    limit: float
    value: float | None
    feature: str | None = None


class RunRead(msgspec.Struct, kw_only=True):
    id: UUID
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    spec: RunSpec
    job_id: UUID | None
    model_family: str | None
    model_version: int | None
    passed: bool | None
    failures: list[PolicyFailure]
    metrics: dict[str, Any] | None
    logs: list[str]
    error: str | None
    artifacts: dict[str, str]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunPage(msgspec.Struct, kw_only=True):
    items: list[RunRead]
    next_cursor: str | None = None


class RunJob(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Payload of the `credit.run` job."""

    run_id: UUID


# -- scoring -----------------------------------------------------------------------------------


class Scaling(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Points: base_score at base_odds (good:bad), and pdo more points double the odds."""

    base_score: Annotated[float, msgspec.Meta(ge=0, le=10_000)] = 600.0
    base_odds: Annotated[float, msgspec.Meta(gt=0, le=1e6)] = 50.0
    pdo: Annotated[float, msgspec.Meta(gt=0, le=1000)] = 20.0


RawValue = str | float | int | bool | None
RawRow = Annotated[dict[ColumnName, RawValue], msgspec.Meta(max_length=1000)]


class ScoreRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    row: RawRow
    run_id: UUID | None = None  # None: the newest succeeded, passed run
    scaling: Scaling = msgspec.field(default_factory=Scaling)
    reasons: Annotated[int, msgspec.Meta(ge=0, le=10)] = 4


class BatchScoreRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    rows: Annotated[list[RawRow], msgspec.Meta(min_length=1, max_length=1000)]
    run_id: UUID | None = None
    scaling: Scaling = msgspec.field(default_factory=Scaling)
    reasons: Annotated[int, msgspec.Meta(ge=0, le=10)] = 4


class Reason(msgspec.Struct, kw_only=True):
    feature: str
    description: str
    contribution: float  # log-odds toward default
    value: float | str | None


class CreditScore(msgspec.Struct, kw_only=True):
    probability_of_default: float
    points: float
    reasons: list[Reason]


class ScoreResult(CreditScore, kw_only=True):
    run_id: UUID
    model_version: int


class BatchScoreResult(msgspec.Struct, kw_only=True):
    run_id: UUID
    model_version: int
    items: list[CreditScore]
