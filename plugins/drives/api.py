"""`/v1/drives`: the fleet overview, the drive list and one drive's history.

Everything reads `drives_inventory` (one row per drive, kept current by
imports, events and the scoring job), so the views cost the same for a fleet
of a thousand drives or a hundred thousand.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Annotated, Literal
from urllib.parse import unquote_to_bytes

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import PathParameter, QueryParameter

from flywheel.plugins.drives.contracts import (
    DayCount,
    DayScore,
    DayScorePage,
    DriveDetail,
    DrivePage,
    DriveScorePage,
    DriveSummary,
    FleetOverview,
    ModelGroup,
    Reason,
    RiskBin,
    RiskPoint,
    SmartPoint,
)
from flywheel.plugins.drives.history import drive_scores, drive_scores_csv
from flywheel.plugins.drives.scoring import band_shares
from flywheel.server.plugin_api import (
    Caller,
    InvalidInput,
    NotFound,
    decode_cursor,
    encode_cursor,
    spreadsheet_safe,
)

RISK_BINS = [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0]  # rare events: most drives sit near zero
# Sort key expression, direction, and the value a NULL sorts as (last either way). Risk order is
# margin order: probabilities of rare events tie near zero, margins do not.
SORTS = {
    "-risk": ("coalesce(margin, -1e300)", "DESC"),
    "risk": ("coalesce(margin, 1e300)", "ASC"),
    "-age": ("(last_day - first_day)", "DESC"),
    "serial": ("serial_number", "ASC"),
}
_SUMMARY = "serial_number, model, capacity_bytes, first_day, last_day, failure_day, risk, margin, band, risk_day"

SERIAL_MAX = 100  # as `SmartDaily.serial_number`
# A `{serial:path}` value: the serial as routing decoded it, "/"-prefixed. Its length is checked
# by `path_serial` on the real serial; the schema still documents the bound clients must keep.
Serial = Annotated[str, PathParameter(
    description="The serial number, percent-encoded as one path segment (`/` as `%2F`).",
    schema_extra={"minLength": 1, "maxLength": SERIAL_MAX})]


def path_serial(request: Request, value: str) -> str:
    """The serial a `{serial:path}` parameter names, exactly as the client wrote it."""
    return serial_of(request.scope.get("raw_path") or b"", value)


def serial_of(raw: bytes, value: str) -> str:
    """The serial in a raw path whose routed `{serial:path}` value is `value`.

    Serials are free text, so one may hold `/`. Routing sees the path with `%2F` already decoded
    and empty segments dropped ("a//b" and "/a/b/" both arrive as "/a/b"), but the raw path keeps
    the client's percent-encoded last segment: when it decodes to the routed value, it is the
    serial. Otherwise the client sent the slashes unencoded, and the routed value is all there is.
    """
    last = unquote_to_bytes(raw.rpartition(b"/")[2]).decode("utf-8", "replace")
    serial = last if "/" + "/".join(p for p in last.split("/") if p) == value else value[1:]
    if not 1 <= len(serial) <= SERIAL_MAX:
        raise InvalidInput(f"a serial number has 1 to {SERIAL_MAX} characters", field="path.serial")
    return serial


# A drive's sub-resources. `{serial:path}` takes the rest of the path, so Litestar routes
# `/v1/drives/ZA%2F1/scores` to `get_drive` with "/ZA/1/scores" and never to a route declared as
# `/{serial:path}/scores`. `get_drive` therefore dispatches on the raw path's last segment: a
# literal (unencoded) `scores` is the history. A serial that itself ends in "/scores" stays
# reachable percent-encoded (`x%2Fscores` is one segment, not the literal). Serials cannot be
# `{serial:str}` instead: imports and events accept `/` in them (tests/test_drives_serials.py).
VIEWS = ("scores", "scores.csv")


def drive_view(request: Request, value: str) -> tuple[str, str | None]:
    """(serial, view): view is one of VIEWS when the raw path ends in it, else None (the drive itself)."""
    raw = request.scope.get("raw_path") or b""
    head, _, last = raw.rpartition(b"/")
    view = last.decode() if last.decode("latin-1") in VIEWS else None
    if view is not None and value.endswith("/" + view) and len(value) > len(view) + 1:
        return serial_of(head, value[:-len(view) - 1]), view
    return serial_of(raw, value), None


def summary(row) -> DriveSummary:
    risk = None if row["risk"] is None else float(row["risk"])
    return DriveSummary(serial_number=row["serial_number"], model=row["model"], capacity_bytes=row["capacity_bytes"],
                        first_day=row["first_day"], last_day=row["last_day"],
                        age_days=(row["last_day"] - row["first_day"]).days, failed=row["failure_day"] is not None,
                        failure_day=row["failure_day"], risk=risk, risk_band=row["band"], risk_day=row["risk_day"],
                        margin=row["margin"])


class DriveController(Controller):
    path = "/v1/drives"
    tags = ["drives"]

    @get("/fleet", operation_id="drivesFleet")
    async def fleet(self, state: State, principal: Caller) -> FleetOverview:
        """Drive counts, failures, at-risk drives by model and capacity, the risk distribution."""
        return await fleet_overview(state.flywheel.db, principal.tenant_id)

    @get("/", operation_id="listDrives")
    async def list_drives(
        self, state: State, principal: Caller,
        model: Annotated[str | None, QueryParameter(max_length=200)] = None,
        risk_band: Annotated[Literal["low", "medium", "high"] | None, QueryParameter(name="band")] = None,
        min_risk: Annotated[float | None, QueryParameter(ge=0, le=1)] = None,
        failed: Annotated[bool | None, QueryParameter(
            description="Failed drives only (true) or none (false). Default: none when listing by risk "
                        "(`sort=-risk`, `band`, `min_risk`: a failed drive is not at risk, it is gone), else all.")]
        = None,
        sort: Annotated[Literal["-risk", "risk", "-age", "serial"], QueryParameter()] = "-risk",
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
        q: Annotated[str | None, QueryParameter(min_length=1, max_length=100, description=(
            "Serial numbers containing this text (any case; matched as plain text, not a pattern)"))] = None,
    ) -> DrivePage:
        """Drives, riskiest first by default; filter by model, risk band, minimum risk, failed or not, and
        serial; `total` counts every drive the filters match."""
        return await list_drives(state.flywheel.db, principal.tenant_id, model=model, risk_band=risk_band,
                                 min_risk=min_risk, failed=failed, sort=sort, limit=limit, cursor=cursor, q=q)

    @get("/scores", operation_id="drivesDayScores")
    async def day_scores(
        self, state: State, principal: Caller,
        day: Annotated[date | None, QueryParameter(description="The scored day (ISO date); default: the latest")]
        = None,
        risk_band: Annotated[Literal["low", "medium", "high"] | None, QueryParameter(name="band")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
    ) -> DayScorePage:
        """One day's scores for every drive scored that day, riskiest (highest margin) first, paged.
        The whole day as CSV: `GET /v1/drives/scores.csv?day=D`."""
        return await day_scores(state.flywheel.db, principal.tenant_id, day, risk_band, limit, cursor)

    @get("/scores.csv", operation_id="drivesDayScoresCsv", media_type="text/csv")
    async def day_scores_csv(
        self, state: State, principal: Caller,
        day: Annotated[date | None, QueryParameter(description="The scored day (ISO date); default: the latest")]
        = None,
    ) -> Response[bytes]:
        """One day's scores as CSV (day, serial_number, model, risk, margin, band, model_version, failed)."""
        db, t = state.flywheel.db, principal.tenant_id
        day = day or await latest_scored(db, t)
        rows = await db.fetch(f"{_DAY_SCORES} ORDER BY r.margin DESC NULLS LAST, r.serial_number", t, day)
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["day", "serial_number", "model", "risk", "margin", "band", "model_version", "failed"])
        for r in rows:
            w.writerow([day, spreadsheet_safe(r["serial_number"]), spreadsheet_safe(r["model"]), repr(r["risk"]),
                        repr(r["margin"]), r["band"],
                        r["model_version"], str(r["failed"]).lower()])
        name = f"drive-scores-{day}.csv" if day else "drive-scores.csv"
        return Response(out.getvalue().encode(), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    # `path`, not `str`: a serial may hold `/`. Litestar matches paths without parameters first,
    # so `/fleet` and `/` still win (a drive serialled "fleet" is only in the list).
    @get("/{serial:path}", operation_id="getDrive")
    async def get_drive(self, state: State, principal: Caller, request: Request,
                        serial: Serial) -> DriveDetail:
        """One drive: its SMART history, risk history and the reasons for its latest risk.

        Percent-encode the serial as one segment (`urllib.parse.quote(serial, safe="")`).
        """
        serial, view = drive_view(request, serial)
        if view is not None:  # `/{serial}/scores(.csv)`: see VIEWS
            return await self._view(state, principal, request, serial, view)
        return await drive_detail(state.flywheel, principal.tenant_id, serial)

    async def _view(self, state: State, principal: Caller, request: Request, serial: str, view: str):
        db, t = state.flywheel.db, principal.tenant_id
        if view == "scores.csv":
            return await drive_scores_csv(db, t, serial)
        # The query is read here (routing chose get_drive): checked as the documented route declares.
        limit, cursor = request.query_params.get("limit", "100"), request.query_params.get("cursor")
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            raise InvalidInput("limit is a whole number from 1 to 1000", field="query.limit")
        if cursor is not None and len(cursor) > 500:
            raise InvalidInput("invalid cursor", field="query.cursor")
        return await drive_scores(db, t, serial, int(limit), cursor)

    # Documentation of the routes `get_drive` answers (see VIEWS): routing never reaches these two,
    # they put `/v1/drives/{serial}/scores` and its CSV in the OpenAPI document with their types.
    @get("/{serial:path}/scores", operation_id="driveScores")
    async def score_history(
        self, state: State, principal: Caller, request: Request, serial: Serial,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
    ) -> DriveScorePage:
        """One drive's score history (day, risk, margin, band, model version), newest first, paged.
        The whole history as CSV: `GET /v1/drives/{serial}/scores.csv`."""
        return await drive_scores(state.flywheel.db, principal.tenant_id, drive_view(request, serial)[0],
                                  limit, cursor)

    @get("/{serial:path}/scores.csv", operation_id="driveScoresCsv", media_type="text/csv")
    async def score_history_csv(self, state: State, principal: Caller, request: Request,
                               serial: Serial) -> Response[bytes]:
        """One drive's whole score history as CSV (day, serial_number, risk, margin, band, model_version)."""
        return await drive_scores_csv(state.flywheel.db, principal.tenant_id, drive_view(request, serial)[0])


async def fleet_overview(db, t) -> FleetOverview:
    head = await db.fetchrow(
        "SELECT max(last_day) AS as_of, max(risk_day) AS scored FROM drives_inventory WHERE tenant_id = $1", t)
    as_of = head["as_of"]
    groups = await db.fetch(
        """SELECT model, capacity_bytes,
                  count(*) FILTER (WHERE last_day = $2 AND failure_day IS NULL) AS drives,
                  count(*) FILTER (WHERE failure_day IS NOT NULL) AS failed,
                  count(*) FILTER (WHERE last_day = $2 AND failure_day IS NULL AND band = 'high') AS at_risk,
                  avg(risk) FILTER (WHERE last_day = $2 AND failure_day IS NULL) AS mean_risk
           FROM drives_inventory WHERE tenant_id = $1
           GROUP BY model, capacity_bytes ORDER BY drives DESC, model""", t, as_of)
    bins = await db.fetch(
        """SELECT width_bucket(risk, $3::float8[]) AS b, count(*) AS n FROM drives_inventory
           WHERE tenant_id = $1 AND last_day = $2 AND failure_day IS NULL AND risk IS NOT NULL
           GROUP BY 1""", t, as_of, RISK_BINS)
    counts = {r["b"]: r["n"] for r in bins}
    distribution = [RiskBin(lower=RISK_BINS[i], upper=RISK_BINS[i + 1],
                            drives=counts.get(i + 1, 0) + (counts.get(len(RISK_BINS), 0) if i == len(RISK_BINS) - 2
                                                           else 0))
                    for i in range(len(RISK_BINS) - 1)]
    failures = await db.fetch(
        """SELECT failure_day AS day, count(*) AS n FROM drives_inventory
           WHERE tenant_id = $1 AND failure_day >= $2::date - 89 GROUP BY 1 ORDER BY 1""", t, as_of) \
        if as_of else []
    version = await db.fetchval(
        "SELECT model_version FROM drives_inventory WHERE tenant_id = $1 AND risk_day = $2 LIMIT 1",
        t, head["scored"]) if head["scored"] else None
    threshold = await db.fetchval(
        "SELECT min(risk) FROM drives_risk WHERE tenant_id = $1 AND day = $2 AND band = 'high'",
        t, head["scored"]) if head["scored"] else None
    high_share, medium_share = await band_shares(db, t)
    by_model = [ModelGroup(model=g["model"], capacity_bytes=g["capacity_bytes"], drives=g["drives"],
                           failed=g["failed"], at_risk=g["at_risk"],
                           mean_risk=None if g["mean_risk"] is None else float(g["mean_risk"])) for g in groups]
    return FleetOverview(
        as_of=as_of, scored_day=head["scored"], model_version=version,
        drives=sum(g.drives for g in by_model), failed_total=sum(g.failed for g in by_model),
        failed_last_30_days=sum(r["n"] for r in failures if as_of and r["day"] > as_of - timedelta(days=30)),
        at_risk=sum(g.at_risk for g in by_model), high_risk_threshold=float(threshold or 0.0),
        high_share=high_share, medium_share=medium_share, by_model=by_model,
        risk_distribution=distribution, failures_by_day=[DayCount(day=r["day"], failures=r["n"]) for r in failures])


# The filters of a drive listing, on `drives_inventory` ($1 tenant .. $6 serial text).
_LIST_FILTERS = """tenant_id = $1
              AND ($2::text IS NULL OR model = $2)
              AND ($3::text IS NULL OR band = $3)
              AND ($4::float8 IS NULL OR risk >= $4)
              AND ($5::bool IS NULL OR (failure_day IS NOT NULL) = $5)
              AND ($6::text IS NULL OR strpos(lower(serial_number), lower($6)) > 0)"""


async def list_drives(db, tenant_id, *, model: str | None = None, risk_band: str | None = None,
                      min_risk: float | None = None, failed: bool | None = None, sort: str = "-risk",
                      limit: int = 50, cursor: str | None = None, q: str | None = None) -> DrivePage:
    key_sql, direction = SORTS[sort]
    if failed is None and (sort == "-risk" or risk_band or min_risk is not None):
        failed = False
    key_type = "text" if sort == "serial" else "float8"
    # A cursor carries the sort key of the last row: text for serial order, a number otherwise
    # (a cursor from another sort order, or forged, is refused rather than compared).
    after = decode_cursor(cursor, str if key_type == "text" else float, str) if cursor else None
    compare = "<" if direction == "DESC" else ">"
    filters = (tenant_id, model, risk_band, min_risk, failed, q)
    # strpos, not LIKE: the search text is plain text, never a pattern (`%` and `_` match themselves).
    rows = await db.fetch(
        f"""SELECT {_SUMMARY}, {key_sql} AS sort_key FROM drives_inventory
            WHERE {_LIST_FILTERS}
              AND ($7::text IS NULL OR {key_sql} {compare} $8::{key_type}
                   OR ({key_sql} = $8::{key_type} AND serial_number > $7))
            ORDER BY {key_sql} {direction}, serial_number LIMIT $9""",
        *filters, after[1] if after else None, after[0] if after else None, limit + 1)
    total = await db.fetchval(f"SELECT count(*) FROM drives_inventory WHERE {_LIST_FILTERS}", *filters)
    items = [summary(r) for r in rows[:limit]]
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return DrivePage(items=items, next_cursor=encode_cursor(last["sort_key"], last["serial_number"]) if last else None,
                     total=total)


_DAY_SCORES = """SELECT r.serial_number, d.model, r.risk, r.margin, r.band, r.model_version,
                         coalesce(d.failure, false) AS failed, coalesce(r.margin, -1e300) AS sort_key
                  FROM drives_risk r
                  LEFT JOIN drives_smart_daily d USING (tenant_id, day, serial_number)
                  WHERE r.tenant_id = $1 AND r.day = $2"""


async def latest_scored(db, t) -> date | None:
    return await db.fetchval("SELECT max(day) FROM drives_risk WHERE tenant_id = $1", t)


async def day_scores(db, t, day: date | None, risk_band: str | None, limit: int, cursor: str | None) -> DayScorePage:
    day = day or await latest_scored(db, t)
    after = decode_cursor(cursor, float, str) if cursor else None
    rows = await db.fetch(
        f"""{_DAY_SCORES} AND ($3::text IS NULL OR r.band = $3)
              AND ($4::text IS NULL OR coalesce(r.margin, -1e300) < $5::float8
                   OR (coalesce(r.margin, -1e300) = $5::float8 AND r.serial_number > $4))
            ORDER BY sort_key DESC, r.serial_number LIMIT $6""",
        t, day, risk_band, after[1] if after else None, after[0] if after else None, limit + 1)
    items = [DayScore(serial_number=r["serial_number"], model=r["model"] or "", risk=float(r["risk"]),
                      margin=r["margin"], band=r["band"], model_version=r["model_version"], failed=r["failed"])
             for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return DayScorePage(day=day, items=items,
                        next_cursor=encode_cursor(last["sort_key"], last["serial_number"]) if last else None)


async def drive_detail(state, t, serial: str) -> DriveDetail:
    db = state.db
    row = await db.fetchrow(f"SELECT {_SUMMARY}, reasons, model_version FROM drives_inventory "
                            "WHERE tenant_id = $1 AND serial_number = $2", t, serial)
    if row is None:
        raise NotFound("no such drive")  # never echo the id: it looks the same whoever owns it
    smart = await db.fetch(
        """SELECT day, smart_5_raw, smart_9_raw, smart_187_raw, smart_188_raw, smart_194_raw, smart_197_raw,
                  smart_198_raw, smart_199_raw, failure
           FROM drives_smart_daily WHERE tenant_id = $1 AND serial_number = $2 ORDER BY day""", t, serial)
    risks = await db.fetch("SELECT day, risk, margin, band, model_version FROM drives_risk WHERE tenant_id = $1 "
                           "AND serial_number = $2 ORDER BY day", t, serial)
    reasons = row["reasons"]
    if reasons is None and row["risk"] is not None:  # not among the riskiest the job explained: explain now
        from flywheel.plugins.drives.scoring import explain_drive

        try:
            reasons = await explain_drive(state, t, serial, row["risk_day"], row["model_version"])
        except NotFound:  # the version that scored it is gone; the risk still stands
            reasons = []
    return DriveDetail(
        drive=summary(row),
        smart_history=[SmartPoint(**dict(r)) for r in smart],
        risk_history=[RiskPoint(day=r["day"], risk=float(r["risk"]), model_version=r["model_version"],
                                margin=r["margin"], band=r["band"]) for r in risks],
        reasons=msgspec.convert(reasons or [], list[Reason]))
