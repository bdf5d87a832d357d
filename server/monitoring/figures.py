"""One version-day's figures, from its sources and thresholds (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from flywheel.server.monitoring import latency, stats
from flywheel.server.monitoring.bins import SCORE_BINS, quantile_edges
from flywheel.server.monitoring.contracts import (
    Breach,
    Calibration,
    CalibrationBand,
    DayFigures,
    EndpointFigures,
    FeatureDrift,
    Level,
    MonitoringThresholds,
    Operational,
    ScoreDistribution,
    Volume,
)
from flywheel.server.monitoring.reference import Reference
from flywheel.server.monitoring.sources import Drift
from flywheel.server.monitoring.thresholds import level

_WORST = {"ok": 0, "warn": 1, "alert": 2}


@dataclass
class DayInputs:
    family: str
    version: int
    day: date
    reference: Reference | None
    drift: Drift
    counters: list[Any]  # model_scoring_counters rows of the day
    outcomes: tuple[np.ndarray, np.ndarray] | None
    trailing_mean: float | None  # rows per day over the trailing days that had rows


def day_figures(i: DayInputs, t: MonitoringThresholds) -> DayFigures:
    enough = i.drift.rows >= t.min_rows
    features, score = _drift(i, t, enough)
    calibration = _calibration(i, t)
    operational = _operational(i.counters, t)
    rows = i.drift.rows if i.drift.source != "none" else operational.rows
    volume = _volume(rows, i.trailing_mean, t)
    figures = DayFigures(family=i.family, version=i.version, day=i.day, rows=rows, source=i.drift.source,
                         reference=i.reference is not None, features=features, score=score,
                         calibration=calibration, operational=operational, volume=volume, breaches=[])
    figures.breaches = breaches(figures, t)
    return figures


def _drift(i: DayInputs, t: MonitoringThresholds, enough: bool) -> tuple[list[FeatureDrift], ScoreDistribution | None]:
    ref = i.reference
    if ref is None or i.drift.counts is None:
        return [], None
    parts = ref.layout.split(i.drift.counts)
    features = []
    for j, pos in enumerate(ref.layout.features):
        expected, counts = ref.expected_of(j), parts[j]
        value, missing = stats.psi(expected, counts), stats.missing_rate(counts)
        rise = None if missing is None else missing - float(expected[-1])
        worst = max(level(value, t.psi_warn, t.psi_alert), level(rise, t.missing_warn, t.missing_alert),
                    key=_WORST.get) if enough else "ok"
        features.append(FeatureDrift(name=pos.name, kind=pos.kind, psi=value, missing_rate=missing,
                                     reference_missing_rate=float(expected[-1]), level=worst))
    edges = ref.layout.score.edges
    counts = parts[-1]
    value = stats.psi(ref.expected_of(len(parts) - 1), counts)
    score = ScoreDistribution(psi=value, mean=i.drift.score_mean, shares=stats.shares(counts).tolist(),
                              reference_shares=ref.expected_of(len(parts) - 1).tolist(),
                              edges=[stats.logistic(e) for e in edges],
                              level=level(value, t.psi_warn, t.psi_alert) if enough else "ok")
    return features, score


def _calibration(i: DayInputs, t: MonitoringThresholds) -> Calibration | None:
    if i.outcomes is None or len(i.outcomes[0]) == 0:
        return None
    scores, labels = i.outcomes
    if i.reference is not None:
        edges = i.reference.layout.score.edges
    else:  # no training bands: the day's own deciles
        edges = quantile_edges(stats.margin_of(scores), SCORE_BINS)
    c = stats.calibration(scores, labels, edges)
    lvl = level(c["error"], t.calibration_warn, t.calibration_alert) if c["rows"] >= t.min_rows else "ok"
    return Calibration(rows=c["rows"], positives=c["positives"], error=c["error"],
                       predicted_rate=c["predicted_rate"], observed_rate=c["observed_rate"],
                       bands=[CalibrationBand(**b) for b in c["bands"]], level=lvl)


def _operational(rows: list[Any], t: MonitoringThresholds) -> Operational:
    endpoints = []
    for r in rows:
        counts = np.asarray(r["latency"], dtype=np.int64)
        p50, p95, p99 = (latency.percentile(counts, q) for q in (0.5, 0.95, 0.99))
        endpoints.append(EndpointFigures(
            endpoint=r["endpoint"], requests=r["requests"], rows=r["rows"], client_errors=r["client_errors"],
            server_errors=r["server_errors"], latency_p50_ms=_ms(p50), latency_p95_ms=_ms(p95),
            latency_p99_ms=_ms(p99)))
    requests = sum(e.requests for e in endpoints)
    errors = sum(e.client_errors + e.server_errors for e in endpoints)
    rate = errors / requests if requests else None
    lvl = level(rate, t.error_rate_warn, t.error_rate_alert) if requests >= t.min_rows else "ok"
    return Operational(requests=requests, rows=sum(e.rows for e in endpoints),
                       client_errors=sum(e.client_errors for e in endpoints),
                       server_errors=sum(e.server_errors for e in endpoints), error_rate=rate, endpoints=endpoints,
                       level=lvl)


def _volume(rows: int, trailing_mean: float | None, t: MonitoringThresholds) -> Volume:
    if not trailing_mean:
        return Volume(rows=rows, trailing_mean=None, drop=None)
    drop = max(0.0, 1.0 - rows / trailing_mean)
    # A small service's quiet day is not an outage: judged only once the trailing days are busy enough.
    lvl = level(drop, t.volume_drop_warn, t.volume_drop_alert) if trailing_mean >= t.min_rows else "ok"
    return Volume(rows=rows, trailing_mean=trailing_mean, drop=drop, level=lvl)


def breaches(f: DayFigures, t: MonitoringThresholds) -> list[Breach]:
    """Every figure of the day at a warning or alert level, as the alert it raises."""
    base = f"{f.family}/v{f.version}"
    out: list[Breach] = []

    def add(rule: str, what: str, lvl: Level, value: float | None, warn: float, alert: float) -> None:
        if lvl != "ok" and value is not None:
            key = f"{base}/{what}"[:200]
            out.append(Breach(rule=rule, key=key, level=lvl, value=value, what=what,
                              threshold=alert if lvl == "alert" else warn))

    for feature in f.features:
        if feature.level == "ok":
            continue
        add("monitoring.psi", f"feature/{feature.name}", level(feature.psi, t.psi_warn, t.psi_alert), feature.psi,
            t.psi_warn, t.psi_alert)
        rise = None if feature.missing_rate is None else feature.missing_rate - feature.reference_missing_rate
        add("monitoring.missing_rate", f"feature/{feature.name}", level(rise, t.missing_warn, t.missing_alert), rise,
            t.missing_warn, t.missing_alert)
    if f.score is not None:
        add("monitoring.psi", "score", f.score.level, f.score.psi, t.psi_warn, t.psi_alert)
    if f.calibration is not None:
        add("monitoring.calibration", "calibration", f.calibration.level, f.calibration.error, t.calibration_warn,
            t.calibration_alert)
    add("monitoring.volume_drop", "volume", f.volume.level, f.volume.drop, t.volume_drop_warn, t.volume_drop_alert)
    add("monitoring.error_rate", "errors", f.operational.level, f.operational.error_rate, t.error_rate_warn,
        t.error_rate_alert)
    return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 4)
