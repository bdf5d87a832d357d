"""`/v1/alerts`: list, read, acknowledge and resolve alerts; their deliveries; a CSV export.

Reading needs `read`, acknowledging and resolving `write`; rules, channels
and the SMTP server are in config_api.py (changing them needs `admin`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream

from flywheel.server.alerts import lifecycle
from flywheel.server.alerts.contracts import Alert, AlertAction, AlertDetail, AlertPage
from flywheel.server.alerts.deliveries import DeliveryPage, DeliveryRead, get_delivery, list_deliveries
from flywheel.server.alerts.export import alerts_csv
from flywheel.server.alerts.listing import actor_of, list_alerts
from flywheel.server.auth.principal import Caller

StateFilter = Annotated[Literal["open", "acknowledged", "resolved", "active"] | None, QueryParameter(
    name="state", description="open, acknowledged, resolved, or active (open and acknowledged)")]
RuleFilter = Annotated[str | None, QueryParameter(max_length=100, description="An alert rule name")]
SeverityFilter = Annotated[Literal["info", "warning", "critical"] | None, QueryParameter()]
Limit = Annotated[int, QueryParameter(ge=1, le=500)]
Cursor = Annotated[str | None, QueryParameter(max_length=500)]


class AlertController(Controller):
    path = "/v1/alerts"
    tags = ["alerts"]

    @get("/", operation_id="listAlerts")
    async def list_alerts(self, state: State, principal: Caller, alert_state: StateFilter = None,
                          rule: RuleFilter = None, severity: SeverityFilter = None, limit: Limit = 50,
                          cursor: Cursor = None) -> AlertPage:
        """The tenant's alerts, newest opened first, filtered by state, rule and severity."""
        return await list_alerts(state.flywheel, principal.tenant_id, alert_state=alert_state, rule=rule,
                                 severity=severity, limit=limit, cursor=cursor)

    @get("/export.csv", operation_id="exportAlertsCsv", media_type="text/csv")
    async def export(self, state: State, principal: Caller, alert_state: StateFilter = None,
                     rule: RuleFilter = None, severity: SeverityFilter = None) -> Stream:
        """Every alert the filters match, as CSV (free-text cells spreadsheet-safe)."""
        body = alerts_csv(state.flywheel, principal.tenant_id, alert_state=alert_state, rule=rule, severity=severity)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return Stream(body, media_type="text/csv; charset=utf-8",
                      headers={"Content-Disposition": f'attachment; filename="alerts-{stamp}.csv"'})

    @get("/{alert_id:uuid}", operation_id="getAlert")
    async def get_alert(self, state: State, principal: Caller, alert_id: FromPath[UUID]) -> AlertDetail:
        """One alert with its history (opened, escalated, acknowledged, resolved: who, when, note)."""
        return await lifecycle.get_alert(state.flywheel, principal.tenant_id, alert_id)

    @post("/{alert_id:uuid}/acknowledge", operation_id="acknowledgeAlert", status_code=200,
          opt={"errors": {409: "the alert is acknowledged or resolved already"}})
    async def acknowledge(self, state: State, principal: Caller, alert_id: FromPath[UUID],
                          data: JSONBody[AlertAction]) -> Alert:
        """Say someone is on it (with a note); the alert stays open to repeats."""
        by = await actor_of(state.flywheel, principal.key_id, principal.tenant_id)
        return await lifecycle.acknowledge(state.flywheel, principal.tenant_id, alert_id, by=by, note=data.note)

    @post("/{alert_id:uuid}/resolve", operation_id="resolveAlert", status_code=200,
          opt={"errors": {409: "the alert is resolved already"}})
    async def resolve(self, state: State, principal: Caller, alert_id: FromPath[UUID],
                      data: JSONBody[AlertAction]) -> Alert:
        """Close the alert (with a note); the next time it is raised, a new alert opens."""
        by = await actor_of(state.flywheel, principal.key_id, principal.tenant_id)
        return await lifecycle.resolve(state.flywheel, principal.tenant_id, alert_id, by=by, note=data.note)

    @get("/deliveries", operation_id="listAlertDeliveries")
    async def deliveries(self, state: State, principal: Caller,
                         alert_id: Annotated[UUID | None, QueryParameter()] = None,
                         delivery_state: Annotated[Literal["pending", "delivered", "failed"] | None,
                                                   QueryParameter(name="state")] = None,
                         limit: Limit = 50, cursor: Cursor = None) -> DeliveryPage:
        """Deliveries to channels, newest first, each with its attempts (status code, error, time)."""
        return await list_deliveries(state.flywheel, principal.tenant_id, alert_id=alert_id,
                                     delivery_state=delivery_state, limit=limit, cursor=cursor)

    @get("/deliveries/{delivery_id:uuid}", operation_id="getAlertDelivery")
    async def delivery(self, state: State, principal: Caller, delivery_id: FromPath[UUID]) -> DeliveryRead:
        """One delivery with its attempts."""
        return await get_delivery(state.flywheel, principal.tenant_id, delivery_id)

