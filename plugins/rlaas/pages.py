"""The rlaas pages of the console: policies per route (status, traffic share, audit log), a
route's policies compared day by day, and the interaction explorer.

They read through the same functions as `/v1/rlaas/...`, so a page and the API never disagree.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from flywheel.plugins.rlaas import policies, policy_stats
from flywheel.plugins.rlaas.contracts import Route
from flywheel.plugins.rlaas.interactions_api import find_interactions, interaction_detail, parse_filter
from flywheel.server.plugin_api import Caller, InvalidInput, line_chart

SHARE_DAYS = 7
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class CompareQuery(msgspec.Struct, forbid_unknown_fields=True):
    route: Route
    days: Annotated[int, msgspec.Meta(ge=1, le=policy_stats.DAYS_MAX)] = 14


def configured_share(p: Any, route_policies: list[Any]) -> str:
    """What the router sends each policy: the active one what the canary leaves it."""
    if p.status == "canary":
        return f"{p.canary_share:.0%}"
    if p.status == "active":
        canary = next((q for q in route_policies if q.status == "canary"), None)
        return f"{1 - canary.canary_share:.0%}" if canary else "100%"
    return "mirrors traffic" if p.status == "shadow" else "none"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.1%}"


def _num(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _kind(signal: Any) -> str:
    return type(signal).__name__.lower()  # the signal Structs' tags are their lower-cased names


HELPERS = {"pct": _pct, "num": _num, "configured_share": configured_share, "kind": _kind}


async def _observed_shares(db: Any, tenant_id: UUID, routes: list[str]) -> dict[tuple[str, str], float | None]:
    since, until = policy_stats.window(SHARE_DAYS)
    out: dict[tuple[str, str], float | None] = {}
    for route in routes:
        for s in await policy_stats.summaries(db, tenant_id, route, since, until):
            out[(route, s.series)] = s.traffic_share
    return out


class RlaasPages(Controller):
    path = "/rlaas"
    include_in_schema = False

    @get("/")
    async def policies_page(self, state: State, principal: Caller) -> Template:
        db, t = state.flywheel.db, principal.tenant_id
        items = (await policies.list_policies(db, t, limit=500)).items
        by_route: dict[str, list[Any]] = {}
        for p in sorted(items, key=lambda p: (p.route, ["active", "canary", "shadow", "retired"].index(p.status))):
            by_route.setdefault(p.route, []).append(p)
        audit = (await policies.list_audit(db, t, limit=20)).items
        names = {p.id: f"{p.name} v{p.version}" for p in items}
        return Template("rlaas/policies.html", context={
            "by_route": by_route, "observed": await _observed_shares(db, t, list(by_route)), "audit": audit,
            "names": names, "share_days": SHARE_DAYS, **HELPERS})

    @get("/policies/{policy_id:uuid}")
    async def policy_page(self, state: State, principal: Caller, policy_id: FromPath[UUID]) -> Template:
        db, t = state.flywheel.db, principal.tenant_id
        policy = await policies.get(db, t, policy_id)
        audit = (await policies.list_audit(db, t, policy_id=policy_id, limit=200)).items
        return Template("rlaas/policy.html", context={"p": policy, "audit": audit, **HELPERS})

    @get("/compare")
    async def compare_page(self, state: State, principal: Caller, route: FromQuery[str | None] = None,
                           days: FromQuery[int | None] = None) -> Template:
        db, t = state.flywheel.db, principal.tenant_id
        if route is None:  # no route chosen yet: the routes to choose from
            routes = sorted({p.route for p in (await policies.list_policies(db, t, limit=500)).items})
            return Template("rlaas/compare.html", context={"q": None, "routes": routes, **HELPERS})
        query = _compare_query(route, days)
        since, until = policy_stats.window(query.days)
        daily = await policy_stats.daily(db, t, query.route, since, until)
        charts = {title: line_chart(policy_stats.chart_series(daily, figure), title=title, y_label=unit,
                                    zero_based=True)
                  for figure, title, unit in (("feedback_rate", "Feedback rate", "share"),
                                              ("mean_reward", "Mean reward", "reward"),
                                              ("p50_ms", "Latency p50", "ms"),
                                              ("error_rate", "Error rate", "share"))}
        return Template("rlaas/compare.html", context={
            "q": query, "charts": charts,
            "summaries": await policy_stats.summaries(db, t, query.route, since, until), **HELPERS})

    @get("/interactions")
    async def interactions_page(self, state: State, principal: Caller, route: FromQuery[str | None] = None,
                                policy: FromQuery[str | None] = None, policy_version: FromQuery[str | None] = None,
                                user: FromQuery[str | None] = None, role: FromQuery[str | None] = None,
                                has_feedback: FromQuery[str | None] = None, since: FromQuery[str | None] = None,
                                until: FromQuery[str | None] = None, cursor: FromQuery[str | None] = None) -> Template:
        raw = {"route": route, "policy": policy, "policy_version": policy_version, "user": user, "role": role,
               "has_feedback": has_feedback, "since": since, "until": until}
        given = {k: v for k, v in raw.items() if v not in (None, "")}
        f = parse_filter(_typed(given))
        page = await find_interactions(state.flywheel.db, principal.tenant_id, f, limit=100, cursor=cursor)
        return Template("rlaas/interactions.html", context={
            "page": page, "filters": given, "next_query": {**given, "cursor": page.next_cursor},
            "cursor_given": cursor is not None, **HELPERS})

    @get("/interactions/{interaction_id:uuid}")
    async def interaction_page(self, state: State, principal: Caller, interaction_id: FromPath[UUID]) -> Template:
        d = await interaction_detail(state.flywheel.db, principal.tenant_id, interaction_id)
        return Template("rlaas/interaction.html", context={
            "d": d, "request_json": _pretty(d.request), "response_json": _pretty(d.response), **HELPERS})


def _compare_query(route: str | None, days: int | None) -> CompareQuery:
    raw = {"route": route} | ({} if days is None else {"days": days})
    try:
        return msgspec.convert(raw, CompareQuery)
    except msgspec.ValidationError as exc:
        field = "query.route" if "route" in str(exc) else "query.days"
        raise InvalidInput(str(exc), field=field) from None


def _typed(given: dict[str, str]) -> dict[str, Any]:
    """Form values are strings; the filter's ints and bools are converted as the API's query is."""
    out: dict[str, Any] = dict(given)
    if "policy_version" in out:
        if not out["policy_version"].isdigit():
            raise InvalidInput("policy_version must be a whole number", field="query.policy_version")
        out["policy_version"] = int(out["policy_version"])
    if "has_feedback" in out:
        if out["has_feedback"] not in ("true", "false"):
            raise InvalidInput("has_feedback must be true or false", field="query.has_feedback")
        out["has_feedback"] = out["has_feedback"] == "true"
    for name in ("since", "until"):  # the form's date inputs: whole UTC days
        if name in out and _DAY.fullmatch(out[name]):
            out[name] += "T00:00:00Z"
    return out


def _pretty(value: Any) -> str:
    return "" if value is None else msgspec.json.format(msgspec.json.encode(value), indent=2).decode()
