"""`core.deliver_alert`: one attempt of one delivery, logged, and the next one scheduled.

Idempotent: an attempt runs only while the delivery is pending and no later
attempt has started, so a job ARQ runs twice does not send twice, and one
that re-runs after a lost worker repeats its own attempt (the receiver
recognises the delivery id).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from flywheel.server.alerts.contracts import Alert, DeliverAlert
from flywheel.server.alerts.dispatch import schedule_attempt
from flywheel.server.alerts.email import alert_message, send_email
from flywheel.server.alerts.outcome import Outcome, Refused
from flywheel.server.alerts.rows import ALERT_COLUMNS, alert_of
from flywheel.server.alerts.settings import alert_settings, retry_delay
from flywheel.server.alerts.smtp_config import smtp_server
from flywheel.server.alerts.webhook import post_webhook
from flywheel.server.errors import Unavailable

_CLAIM = """UPDATE alert_deliveries SET attempts = $3
            WHERE id = $1 AND tenant_id = $2 AND state = 'pending' AND attempts <= $3
            RETURNING alert_id, channel_id, event"""
_CHANNEL = "SELECT kind, url, recipients, secret_sealed FROM alert_channels WHERE id = $1 AND tenant_id = $2"
_LOG = """INSERT INTO alert_delivery_attempts
              (delivery_id, tenant_id, attempt, started_at, duration_ms, status_code, error)
          VALUES ($1, $2, $3, $4, $5, $6, $7)"""
_FINISH = "UPDATE alert_deliveries SET state = $3, finished_at = now() WHERE id = $1 AND tenant_id = $2"


def webhook_body(alert: Alert, *, delivery_id: str, event: str, attempt: int) -> bytes:
    return msgspec.json.encode({"id": delivery_id, "event": f"alert.{event}", "attempt": attempt,
                                "sent_at": datetime.now(UTC), "alert": alert})


async def _send(state: Any, tenant_id: Any, channel: Any, alert: Alert, delivery_id: str, event: str,
                attempt: int) -> Outcome:
    settings = alert_settings()
    box = state.secrets()
    if channel["kind"] == "webhook":
        body = webhook_body(alert, delivery_id=delivery_id, event=event, attempt=attempt)
        return await post_webhook(settings, channel["url"], box.open(channel["secret_sealed"]), body,
                                  delivery_id=delivery_id, event=event)
    server = await smtp_server(state, tenant_id)
    if server is None:
        raise Refused("no SMTP server is configured for this tenant (PUT /v1/alerts/smtp)")
    recipients = list(channel["recipients"])
    message = alert_message(alert, server.sender, recipients, event=event, delivery_id=delivery_id, link=None)
    return await send_email(settings, server, message, recipients)


async def _attempt(state: Any, tenant_id: Any, claimed: Any, delivery_id: str, attempt: int) -> Outcome:
    channel = await state.db.fetchrow(_CHANNEL, claimed["channel_id"], tenant_id)
    row = await state.db.fetchrow(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1 AND tenant_id = $2",
                                  claimed["alert_id"], tenant_id)
    if channel is None or row is None:
        raise Refused("the channel or the alert is gone")
    try:
        return await _send(state, tenant_id, channel, alert_of(row), delivery_id, claimed["event"], attempt)
    except Unavailable as exc:  # the secret key is missing or does not open the channel's secret
        raise Refused(exc.message) from None


async def deliver_alert(ctx: Any, payload: DeliverAlert) -> dict[str, Any]:
    state, tenant_id, attempt = ctx.state, ctx.tenant_id, payload.attempt
    claimed = await state.db.fetchrow(_CLAIM, payload.delivery_id, tenant_id, attempt)
    if claimed is None:  # delivered, given up, or a later attempt already ran
        return {"skipped": True}
    started, clock = datetime.now(UTC), time.perf_counter()
    final = False
    try:
        outcome = await _attempt(state, tenant_id, claimed, str(payload.delivery_id), attempt)
    except Refused as exc:
        outcome, final = Outcome(error=f"refused: {exc}"), True
    duration_ms = (time.perf_counter() - clock) * 1000
    await state.db.execute(_LOG, payload.delivery_id, tenant_id, attempt, started, duration_ms,
                           outcome.status_code, outcome.error or outcome.note)
    result = {"delivered": outcome.delivered, "attempt": attempt, "status_code": outcome.status_code}
    if outcome.delivered:
        await state.db.execute(_FINISH, payload.delivery_id, tenant_id, "delivered")
        return result
    settings = alert_settings()
    if final or attempt >= settings.max_attempts:
        await state.db.execute(_FINISH, payload.delivery_id, tenant_id, "failed")
        return {**result, "error": outcome.error}
    delay = retry_delay(settings, attempt)
    await schedule_attempt(state, tenant_id, payload.delivery_id, attempt + 1, delay)
    return {**result, "error": outcome.error, "next_attempt_in_s": delay}
