"""Console pages for alerts: the open ones (filters, pages), one alert with its history and
deliveries, acknowledging and resolving it (forms), the delivery log, the CSV export.

Forms are protected as every console form is (same-origin check, SameSite
cookie: console/security.py). Acknowledging and resolving need `write`, as
in the API; who did it is the session's key, "in the console".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlencode
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Stream, Template

from flywheel.server.alerts import lifecycle
from flywheel.server.alerts.contracts import SEVERITY_RANK
from flywheel.server.alerts.deliveries import list_deliveries
from flywheel.server.alerts.export import alerts_csv
from flywheel.server.alerts.listing import list_alerts
from flywheel.server.auth.principal import Caller
from flywheel.server.console.templating import console_session
from flywheel.server.errors import InvalidInput

PAGE_SIZE = 25
MAX_NOTE = 2000
StateFilter = Literal["active", "open", "acknowledged", "resolved", "all", ""]
SeverityFilter = Literal["info", "warning", "critical", ""]
Text = Annotated[str | None, QueryParameter(max_length=100)]
Cursor = Annotated[str | None, QueryParameter(max_length=500)]
DONE = {"acknowledged": "The alert is acknowledged.", "resolved": "The alert is resolved."}


def _actor(request: Request) -> str:
    session = console_session(request)
    return f"key {session.key_name} ({session.key_prefix}) in the console" if session else "the console"


async def _note(request: Request) -> str | None:
    form = await request.form()
    note = str(form.get("note") or "").strip()
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"a note has at most {MAX_NOTE} characters", field="form.note")
    return note or None


class AlertPages(Controller):
    path = "/alerts"

    @get("/", name="console:alerts")
    async def alerts(self, state: State, principal: Caller,
                     alert_state: Annotated[StateFilter | None, QueryParameter(name="state")] = None,
                     severity: Annotated[SeverityFilter | None, QueryParameter()] = None,
                     rule: Text = None, cursor: Cursor = None) -> Template:
        chosen = alert_state if alert_state is not None else "active"  # the page opens on what needs someone
        page = await list_alerts(state.flywheel, principal.tenant_id,
                                 alert_state=None if chosen in ("all", "") else chosen, rule=rule or None,
                                 severity=severity or None, limit=PAGE_SIZE, cursor=cursor or None)
        query = {k: v for k, v in {"state": chosen, "severity": severity or "", "rule": rule or ""}.items() if v}
        export = {k: v for k, v in query.items() if not (k == "state" and v == "all")}
        return Template("console/alerts.html", context={
            "page": page, "filters": {"state": chosen, "severity": severity or "", "rule": rule or ""},
            "states": ["active", "open", "acknowledged", "resolved", "all"], "severities": list(SEVERITY_RANK),
            "query": query, "export_url": f"/console/alerts/export.csv?{urlencode(export)}",
            "next_url": f"?{urlencode({**query, 'cursor': page.next_cursor})}" if page.next_cursor else None,
            "first_url": f"?{urlencode(query)}" if cursor else None,
        })

    @get("/{alert_id:uuid}", name="console:alert")
    async def alert(self, request: Request, state: State, principal: Caller, alert_id: FromPath[UUID]) -> Template:
        detail = await lifecycle.get_alert(state.flywheel, principal.tenant_id, alert_id)
        sent = await list_deliveries(state.flywheel, principal.tenant_id, alert_id=alert_id, limit=100)
        done = request.query_params.get("done")
        return Template("console/alert.html", context={
            "alert": detail, "deliveries": sent.items,
            # Said only when the alert's state agrees with the redirect that asked for it.
            "done": DONE.get(done) if done == detail.state else None})

    @post("/{alert_id:uuid}/acknowledge", name="console:alert-acknowledge", status_code=303)
    async def acknowledge(self, request: Request, state: State, principal: Caller,
                          alert_id: FromPath[UUID]) -> Redirect:
        await lifecycle.acknowledge(state.flywheel, principal.tenant_id, alert_id, by=_actor(request),
                                    note=await _note(request))
        return Redirect(f"/console/alerts/{alert_id}?done=acknowledged", status_code=303)

    @post("/{alert_id:uuid}/resolve", name="console:alert-resolve", status_code=303)
    async def resolve(self, request: Request, state: State, principal: Caller, alert_id: FromPath[UUID]) -> Redirect:
        await lifecycle.resolve(state.flywheel, principal.tenant_id, alert_id, by=_actor(request),
                                note=await _note(request))
        return Redirect(f"/console/alerts/{alert_id}?done=resolved", status_code=303)

    @get("/deliveries", name="console:alert-deliveries")
    async def deliveries(self, state: State, principal: Caller,
                         delivery_state: Annotated[Literal["pending", "delivered", "failed", ""] | None,
                                                   QueryParameter(name="state")] = None,
                         cursor: Cursor = None) -> Template:
        page = await list_deliveries(state.flywheel, principal.tenant_id, delivery_state=delivery_state or None,
                                     limit=PAGE_SIZE, cursor=cursor or None)
        query = {"state": delivery_state} if delivery_state else {}
        return Template("console/alert_deliveries.html", context={
            "page": page, "filters": {"state": delivery_state or ""}, "states": ["pending", "delivered", "failed"],
            "next_url": f"?{urlencode({**query, 'cursor': page.next_cursor})}" if page.next_cursor else None,
            "first_url": f"?{urlencode(query)}" if cursor else None})

    @get("/export.csv", name="console:alerts-export")
    async def export(self, state: State, principal: Caller,
                     alert_state: Annotated[StateFilter | None, QueryParameter(name="state")] = None,
                     severity: Annotated[SeverityFilter | None, QueryParameter()] = None,
                     rule: Text = None) -> Stream:
        body = alerts_csv(state.flywheel, principal.tenant_id,
                          alert_state=None if alert_state in (None, "", "all") else alert_state,
                          rule=rule or None, severity=severity or None)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return Stream(body, media_type="text/csv; charset=utf-8",
                      headers={"Content-Disposition": f'attachment; filename="alerts-{stamp}.csv"'})
