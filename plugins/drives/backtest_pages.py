"""`/console/drives/backtests`: finished backtests, the model against the SMART rule, with a chart."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import QueryParameter
from litestar.response import Template

from flywheel.plugins.drives.backtests_api import backtest_reports
from flywheel.server.plugin_api import Caller, NotFound

# (field, label, chart label): the comparison's rows, in the order the backtest module defines them.
METRICS = [
    ("roc_auc", "drive-day ROC-AUC", "ROC-AUC"),
    ("pr_auc", "drive-day PR-AUC", "PR-AUC"),
    ("recall_top1pct_daily", "failing drives in the daily top 1%", "top 1%"),
    ("detection_at_0_1pct_fpr", "detected at 0.1% false alarms", "at 0.1%"),
    ("detection_at_1pct_fpr", "detected at 1% false alarms", "at 1%"),
    ("median_warning_days_at_1pct_fpr", "median days of warning at 1% false alarms", None),
]


def comparison(report) -> list[dict]:
    """One row per metric: both values and which is higher (None when either is undefined)."""
    rows = []
    for field, label, _ in METRICS:
        model, rule = getattr(report.model, field), getattr(report.smart_rule, field)
        better = None if model is None or rule is None or model == rule else ("model" if model > rule else "rule")
        rows.append({"label": label, "model": model, "rule": rule, "better": better})
    return rows


def chart_bars(scorer) -> list[tuple[str, float]]:
    """One scorer's shares (0..1, so both charts share a scale), in METRICS order."""
    return [(short, getattr(scorer, field)) for field, _, short in METRICS
            if short is not None and getattr(scorer, field) is not None]


# The rule's chart is coloured apart from the model's (the console palette's orange).
RULE_COLOR = "#E69F00"


class BacktestPages(Controller):
    path = "/drives/backtests"
    include_in_schema = False

    @get("/")
    async def backtests(self, state: State, principal: Caller,
                        key: Annotated[str | None, QueryParameter(max_length=300)] = None) -> Template:
        reports = await backtest_reports(state.flywheel, principal.tenant_id, limit=100)
        if key is not None:
            chosen = next((r for r in reports if r.key == key), None)
            if chosen is None:
                raise NotFound("no such backtest")
        else:
            chosen = reports[0] if reports else None
        return Template("drives/backtests.html", context={
            "reports": reports, "chosen": chosen,
            "rows": comparison(chosen) if chosen else [], "rule_color": RULE_COLOR,
            "bars": {"model": chart_bars(chosen.model), "rule": chart_bars(chosen.smart_rule)} if chosen else {}})
