"""The console's monitoring page of a model family: drift by feature and day, scores, calibration, operations."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import QueryParameter
from litestar.response import Template

from flywheel.server.auth.principal import Caller
from flywheel.server.console.models_pages import family_url
from flywheel.server.models.api import Family
from flywheel.server.monitoring import api as monitoring_api
from flywheel.server.monitoring.contracts import DayFigures, MonitoringReport
from flywheel.server.monitoring.heatmap import EMPTY, LEVEL_COLORS, heat_map, ratio_color

FromQuery = Annotated[str | None, QueryParameter(name="from", max_length=10)]
ToQuery = Annotated[str | None, QueryParameter(name="to", max_length=10)]
VersionQuery = Annotated[int | None, QueryParameter(ge=1, le=2**31 - 1)]
PSI_LEGEND = [(LEVEL_COLORS["ok"], "below the warning level"), (LEVEL_COLORS["warn"], "warning"),
              (LEVEL_COLORS["alert"], "alert"), (EMPTY, "no data")]
SHARE_LEGEND = [(ratio_color(0.25, 1), "fewer rows than in training"), (ratio_color(1, 1), "as in training"),
                (ratio_color(1, 0.25), "more")]


def chosen_version(report: MonitoringReport, asked: int | None) -> int | None:
    """The version asked for, else the active one, else the newest with figures."""
    numbers = [v.version for v in report.versions]
    if asked in numbers:
        return asked
    active = next((v.version for v in report.versions if v.active), None)
    return active if active is not None else max((d.version for d in report.days), default=None)


def psi_map(days: list[DayFigures]) -> Any:
    names = next((([x.name for x in d.features]) for d in days if d.features), [])
    if not names:
        return None
    cells = {}
    for d in days:
        for x in d.features:
            if x.psi is not None:
                cells[(x.name, d.day)] = (LEVEL_COLORS[x.level], f"PSI {x.psi:.3f}, missing {x.missing_rate:.1%} "
                                                                  f"(training {x.reference_missing_rate:.1%})")
        if d.score is not None and d.score.psi is not None:
            cells[("score", d.day)] = (LEVEL_COLORS[d.score.level], f"PSI {d.score.psi:.3f}")
    return heat_map([*names, "score"], [d.day for d in days], cells, title="PSI against training, by feature and day",
                    legend=PSI_LEGEND)


def score_map(days: list[DayFigures]) -> Any:
    scored = [d for d in days if d.score is not None]
    if not scored:
        return None
    bounds = [0.0, *scored[-1].score.edges, 1.0]
    bands = [f"{_p(lo)} to {_p(hi)}" for lo, hi in zip(bounds, bounds[1:])][::-1]  # riskiest on top
    cells = {}
    for d in scored:
        for band, share, expected in zip(bands[::-1], d.score.shares, d.score.reference_shares):
            cells[(band, d.day)] = (ratio_color(share, expected), f"{share:.1%} of rows (training {expected:.1%})")
    return heat_map(bands, [d.day for d in scored], cells, title="Score distribution by day (training score bands)",
                    legend=SHARE_LEGEND)


def charts(days: list[DayFigures]) -> dict[str, Any]:
    """The line charts' series, by chart."""
    def series(value) -> list[tuple[date, float | None]]:
        return [(d.day, value(d)) for d in days]

    calibrated = [d for d in days if d.calibration is not None]
    busiest = _busiest_endpoint(days)
    return {
        "score_psi": {"score PSI": series(lambda d: d.score.psi if d.score else None)},
        "score_mean": {"mean score": series(lambda d: d.score.mean if d.score else None)},
        "calibration_error": {"calibration error": series(lambda d: d.calibration.error if d.calibration else None)}
        if calibrated else {},
        "calibration": _calibration_lines(calibrated[-1]) if calibrated else {},
        "rows": {"rows (drift)": series(lambda d: d.rows),
                 "rows scored (service)": series(lambda d: d.operational.rows)},
        "latency": {f"{busiest} {q}": series(lambda d, q=q: _latency(d, busiest, q)) for q in ("p50", "p95", "p99")}
        if busiest else {},
        "errors": {"refused (client)": series(lambda d: d.operational.client_errors),
                   "failed (server)": series(lambda d: d.operational.server_errors)},
    }


def breach_summary(days: list[DayFigures]) -> list[dict[str, Any]]:
    """One line per alert (rule and key): the days it crossed, and its latest value and level."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for d in days:
        for b in d.breaches:
            line = out.setdefault((b.rule, b.key), {"rule": b.rule, "what": b.what, "first": d.day, "days": 0})
            line.update(last=d.day, value=b.value, level=b.level, threshold=b.threshold)
            line["days"] += 1
    return sorted(out.values(), key=lambda x: (x["last"], x["level"] == "alert", x["value"]), reverse=True)


def _calibration_lines(d: DayFigures) -> dict[str, list[tuple[float, float]]]:
    """The latest labelled day's bands: mean predicted against observed, beside the diagonal."""
    return {f"observed on {d.day}": [(b.mean_predicted, b.observed_rate) for b in d.calibration.bands],
            "perfectly calibrated": [(0.0, 0.0), (1.0, 1.0)]}


def _busiest_endpoint(days: list[DayFigures]) -> str | None:
    totals: dict[str, int] = {}
    for d in days:
        for e in d.operational.endpoints:
            totals[e.endpoint] = totals.get(e.endpoint, 0) + e.requests
    return max(totals, key=totals.get) if totals else None


def _latency(d: DayFigures, endpoint: str, q: str) -> float | None:
    e = next((e for e in d.operational.endpoints if e.endpoint == endpoint), None)
    return getattr(e, f"latency_{q}_ms") if e else None


def _p(p: float) -> str:
    return f"{p:.3g}"


class MonitoringPages(Controller):
    path = "/models"

    @get("/{family:str}/monitoring", name="console:model-monitoring")
    async def monitoring(self, state: State, principal: Caller, family: Family, from_day: FromQuery = None,
                         to_day: ToQuery = None, version: VersionQuery = None) -> Template:
        """`/console/models/{family}/monitoring?from=&to=&version=`."""
        fw = state.flywheel
        report = await monitoring_api.report(fw, principal.tenant_id, family, from_day, to_day, None)
        shown = chosen_version(report, version)
        days = [d for d in report.days if d.version == shown]
        breaches = breach_summary(days)
        return Template("console/model_monitoring.html", context={
            "name": family, "family_url": family_url(family), "report": report, "shown": shown, "days": days,
            "psi_map": psi_map(days), "score_map": score_map(days), "charts": charts(days), "breaches": breaches,
            "thresholds": report.thresholds,
        })
