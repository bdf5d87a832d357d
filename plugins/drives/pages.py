"""The drives pages of the web console: fleet overview, drive list, drive detail.

They read through the same functions as the `/v1/drives` API, so a page and
the API never disagree.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal
from urllib.parse import quote, urlencode

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.params import QueryParameter
from litestar.response import Template

from flywheel.plugins.drives.api import (
    Serial,
    drive_detail,
    fleet_overview,
    list_drives,
    path_serial,
)
from flywheel.server.plugin_api import Caller, InvalidInput

ATTRIBUTES = {"5": "reallocated sectors", "187": "reported uncorrectable", "188": "command timeouts",
              "197": "pending sectors", "198": "offline uncorrectable", "199": "CRC errors"}


def feature_label(name: str) -> str:
    """`s197_d7` -> "SMART 197 pending sectors, 7-day change" (the model's names are terse)."""
    if name.startswith("s") and name[1:].split("_")[0] in ATTRIBUTES:
        attr, _, change = name[1:].partition("_")
        suffix = {"d7": ", 7-day change", "d30": ", 30-day change"}.get(change, "")
        return f"SMART {attr} {ATTRIBUTES[attr]}{suffix}"
    return {"temperature_d7": "temperature, 7-day change", "age_days": "age (days)", "capacity_tb": "capacity (TB)",
            "model_code": "drive model", "power_on_hours": "power-on hours"}.get(name, name)


# Bands are by fleet percentile on the scored day (per tenant; default top 1% and next 4%).
BAND_LABELS = {"low": "low (the rest of the fleet)", "medium": "medium (the next 4% by default)",
               "high": "high (the riskiest 1% by default)"}


def drive_url(serial: str) -> str:
    """The console page of a drive. Every character is encoded (Jinja's `urlencode` keeps `/`),
    so a serial holding `/`, `?`, `#` or `%` stays one segment that `path_serial` reads back."""
    return f"/console/drives/{quote(serial, safe='')}"


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


def _daily(fleet) -> list[tuple[date, int]]:
    """Failures on each of the last 90 days, zeros included (the API lists only days with failures)."""
    if fleet.as_of is None:
        return []
    counts = {d.day: d.failures for d in fleet.failures_by_day}
    days = [fleet.as_of - timedelta(days=i) for i in range(89, -1, -1)]
    return [(day, counts.get(day, 0)) for day in days]


class DrivePages(Controller):
    path = "/drives"
    include_in_schema = False

    @get("/")
    async def fleet(self, state: State, principal: Caller) -> Template:
        fleet = await fleet_overview(state.flywheel.db, principal.tenant_id)
        return Template("drives/fleet.html", context={
            "fleet": fleet,
            "risk_bins": [(f"{_pct(b.lower)}-{_pct(b.upper)}", b.drives) for b in fleet.risk_distribution],
            "failures": {"failures": _daily(fleet)},
            "at_risk_by_model": [(g.model, g.at_risk) for g in fleet.by_model],
        })

    @get("/list")
    async def drive_list(
        self, state: State, principal: Caller,
        model: Annotated[str | None, QueryParameter(max_length=200)] = None,
        band: Annotated[Literal["low", "medium", "high", ""] | None, QueryParameter()] = None,
        # Strings: an HTML form sends its empty fields as "" (meaning "any").
        min_risk: Annotated[str | None, QueryParameter(max_length=20)] = None,
        failed: Annotated[Literal["true", "false", ""] | None, QueryParameter()] = None,
        sort: Annotated[Literal["-risk", "risk", "-age", "serial"], QueryParameter()] = "-risk",
        cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
        q: Annotated[str | None, QueryParameter(max_length=100)] = None,
        # The cursors of the pages before this one, so "Previous page" needs no state on the server.
        trail: Annotated[str | None, QueryParameter(max_length=20_000)] = None,
    ) -> Template:
        db, t = state.flywheel.db, principal.tenant_id
        try:
            risk_floor = float(min_risk) if min_risk else None
        except ValueError:
            risk_floor = -1.0
        if risk_floor is not None and not 0 <= risk_floor <= 1:
            raise InvalidInput("minimum risk must be a number from 0 to 1", field="query.min_risk")
        page = await list_drives(db, t, model=model or None, risk_band=band or None, min_risk=risk_floor,
                                 failed={"true": True, "false": False}.get(failed or ""), sort=sort, limit=50,
                                 cursor=cursor or None, q=q or None)
        models = [r["model"] for r in await db.fetch(
            "SELECT DISTINCT model FROM drives_inventory WHERE tenant_id = $1 ORDER BY 1", t)]
        filters = {"model": model or "", "band": band or "", "min_risk": "" if risk_floor is None else risk_floor,
                   "failed": failed or "", "sort": sort, "q": q or ""}
        query = {k: v for k, v in filters.items() if v not in ("", None)}
        next_url, prev_url = page_links(query, cursor or "", trail, page.next_cursor)
        return Template("drives/list.html", context={
            "page": page, "models": models, "filters": filters, "next_url": next_url, "prev_url": prev_url,
            "bands": BAND_LABELS, "drive_url": drive_url})

    # `path` as in the API (a serial may hold `/`); `/` and `/list` are matched before it.
    @get("/{serial:path}")
    async def drive(self, state: State, principal: Caller, request: Request,
                    serial: Serial) -> Template:
        serial = path_serial(request, serial)
        detail = await drive_detail(state.flywheel, principal.tenant_id, serial)
        h = detail.smart_history
        return Template("drives/detail.html", context={
            "d": detail, "label": feature_label,
            "counters": {name: [(p.day, getattr(p, col)) for p in h] for name, col in (
                ("5 reallocated", "smart_5_raw"), ("197 pending", "smart_197_raw"),
                ("187 uncorrectable", "smart_187_raw"), ("198 offline uncorrectable", "smart_198_raw"),
                ("188 timeouts", "smart_188_raw"), ("199 CRC errors", "smart_199_raw"))},
            "temperature": {"temperature (C)": [(p.day, p.smart_194_raw) for p in h]},
            "risk": {"risk": [(r.day, r.risk) for r in detail.risk_history]},
        })


def page_links(query: dict, cursor: str, trail: str | None, next_cursor: str | None) -> tuple[str | None, str | None]:
    """Links to the next and the previous page. Keyset cursors only go forward, so each link carries
    the cursors of the pages before it (`trail`, dot-separated: cursors are base64url, without dots)."""
    before = trail.split(".") if trail else []
    next_url = (f"?{urlencode({**query, 'cursor': next_cursor, 'trail': '.'.join([*before, cursor])})}"
                if next_cursor else None)
    if not cursor:
        return next_url, None
    back = {**query, "cursor": before[-1] if before else "", "trail": ".".join(before[:-1])}
    return next_url, f"?{urlencode({k: v for k, v in back.items() if v})}"
