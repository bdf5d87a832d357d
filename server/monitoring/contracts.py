"""What monitoring reads and answers: thresholds, a family's outcomes, a day's figures, the report."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
# PSI is unbounded above; past 10 every bin has moved and a larger number says nothing more.
Psi = Annotated[float, msgspec.Meta(ge=0.0, le=10.0)]


class MonitoringThresholds(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """When a monitoring figure is worth a warning, or an alert. Since 0.4.

    - `psi_warn` / `psi_alert`: PSI of a feature or of the score against training
      (0.1 / 0.25, the usual rule of thumb: under 0.1 no real change, over 0.25 a shift).
    - `missing_warn` / `missing_alert`: rise in a feature's missing share, in points of share.
    - `calibration_warn` / `calibration_alert`: calibration error (the row-weighted mean
      |predicted - observed| positive rate over score bands), once labels are known.
    - `volume_drop_warn` / `volume_drop_alert`: rows scored on the day, below the mean of
      the `trailing_days` before it, as a share of that mean (0.5: half of it is missing).
    - `error_rate_warn` / `error_rate_alert`: failed or refused requests per request.
    - `min_rows`: fewer rows on a day and its drift and calibration raise nothing
      (PSI of a handful of rows is noise).
    """

    psi_warn: Psi = 0.1
    psi_alert: Psi = 0.25
    missing_warn: Share = 0.05
    missing_alert: Share = 0.2
    calibration_warn: Share = 0.05
    calibration_alert: Share = 0.1
    volume_drop_warn: Share = 0.5
    volume_drop_alert: Share = 0.8
    error_rate_warn: Share = 0.01
    error_rate_alert: Share = 0.05
    min_rows: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 100
    trailing_days: Annotated[int, msgspec.Meta(ge=1, le=90)] = 7


THRESHOLD_FIELDS: tuple[str, ...] = MonitoringThresholds.__struct_fields__
# (warn, alert) pairs: the warning level may not be above the alert level.
LEVELS = (("psi_warn", "psi_alert"), ("missing_warn", "missing_alert"), ("calibration_warn", "calibration_alert"),
          ("volume_drop_warn", "volume_drop_alert"), ("error_rate_warn", "error_rate_alert"))


class ThresholdsUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Body of `PUT /v1/models/{family}/monitoring/thresholds`: the tenant's overrides.

    Every field is optional; one left out (or null) takes the family's default. A PUT
    replaces the tenant's overrides as a whole: `{}` returns to the defaults.
    """

    psi_warn: Psi | None = None
    psi_alert: Psi | None = None
    missing_warn: Share | None = None
    missing_alert: Share | None = None
    calibration_warn: Share | None = None
    calibration_alert: Share | None = None
    volume_drop_warn: Share | None = None
    volume_drop_alert: Share | None = None
    error_rate_warn: Share | None = None
    error_rate_alert: Share | None = None
    min_rows: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] | None = None
    trailing_days: Annotated[int, msgspec.Meta(ge=1, le=90)] | None = None


class ThresholdsRead(msgspec.Struct, kw_only=True):
    """A family's thresholds for this tenant: the family's defaults, the tenant's overrides, and the result."""

    family: str
    defaults: MonitoringThresholds
    overrides: ThresholdsUpdate
    effective: MonitoringThresholds
    updated_by: str | None = None
    updated_at: datetime | None = None


class MonitoringOutcomes(msgspec.Struct, kw_only=True):
    """What `monitoring_outcomes` returns: the predicted probability and the observed 0/1
    label of each row a version scored on a day, once the labels are known. `scores`
    and `labels` are sequences (lists or numpy arrays) of one length. Since 0.4."""

    scores: Any
    labels: Any


# -- a day's figures ---------------------------------------------------------------------

Level = Literal["ok", "warn", "alert"]


class FeatureDrift(msgspec.Struct, kw_only=True):
    """One feature on one day: PSI against training and the missing share, then and now."""

    name: str
    kind: Literal["numeric", "category"]
    psi: float | None
    missing_rate: float | None
    reference_missing_rate: float
    level: Level = "ok"


class ScoreDistribution(msgspec.Struct, kw_only=True):
    """The day's scores in the training score's bands (deciles of its margin)."""

    psi: float | None
    mean: float | None  # mean predicted probability
    shares: list[float]  # the day's share per band, lowest scores first
    reference_shares: list[float]
    edges: list[float]  # band edges as probabilities (len(shares) - 1 of them)
    level: Level = "ok"


class CalibrationBand(msgspec.Struct, kw_only=True):
    lower: float  # probability range of the band (training score bands)
    upper: float
    rows: int
    mean_predicted: float
    observed_rate: float


class Calibration(msgspec.Struct, kw_only=True):
    rows: int
    positives: int
    error: float  # row-weighted mean |mean_predicted - observed_rate| over bands
    predicted_rate: float
    observed_rate: float
    bands: list[CalibrationBand]
    level: Level = "ok"


class EndpointFigures(msgspec.Struct, kw_only=True):
    endpoint: str
    requests: int
    rows: int
    client_errors: int
    server_errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None


class Operational(msgspec.Struct, kw_only=True):
    requests: int
    rows: int
    client_errors: int
    server_errors: int
    error_rate: float | None
    endpoints: list[EndpointFigures]
    level: Level = "ok"


class Volume(msgspec.Struct, kw_only=True):
    rows: int
    trailing_mean: float | None  # over the trailing days that scored rows (None: none did)
    drop: float | None  # 1 - rows / trailing_mean, at least 0
    level: Level = "ok"


class Breach(msgspec.Struct, kw_only=True):
    """A threshold a figure crossed: the alert raised for it has this rule and key."""

    rule: str  # monitoring.psi, monitoring.missing_rate, monitoring.calibration, ...
    key: str  # "<family>/v<version>/<what>"
    level: Literal["warn", "alert"]
    value: float
    threshold: float
    what: str  # the feature, "score", "calibration", "volume", "errors"


class DayFigures(msgspec.Struct, kw_only=True):
    """One version on one day: what `GET /v1/models/{family}/monitoring` lists."""

    family: str
    version: int
    day: date
    rows: int  # rows the drift figures describe
    source: Literal["scoring", "family", "none"]  # counted on the scoring path, or the family's own rows
    reference: bool  # False: the version has no training distribution (trained before 0.4)
    features: list[FeatureDrift]
    score: ScoreDistribution | None
    calibration: Calibration | None
    operational: Operational
    volume: Volume
    breaches: list[Breach]
    computed_at: datetime | None = None


class VersionSummary(msgspec.Struct, kw_only=True):
    version: int
    active: bool
    reference: bool  # has a training distribution
    reference_rows: int | None
    days: int  # days with figures in the range


class MonitoringReport(msgspec.Struct, kw_only=True):
    """`GET /v1/models/{family}/monitoring`: each version's daily figures in the range, oldest day first."""

    family: str
    from_day: date = msgspec.field(name="from")
    to_day: date = msgspec.field(name="to")
    thresholds: MonitoringThresholds
    versions: list[VersionSummary]
    days: list[DayFigures]
    notes: list[str]


class BackfillRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /v1/models/{family}/monitoring/backfill`: recompute the figures of
    every day from `from` to `to` (at most 366 days), for `version` or, without it, the
    active version and every version that scored rows on those days."""

    from_day: date = msgspec.field(name="from")
    to_day: date = msgspec.field(name="to")
    version: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | None = None
