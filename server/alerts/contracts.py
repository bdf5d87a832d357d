"""The alert shapes the API returns and plugins build: msgspec Structs, Create / Read / Update apart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

Severity = Literal["info", "warning", "critical"]
AlertState = Literal["open", "acknowledged", "resolved"]
SEVERITY_RANK: dict[str, int] = {"info": 1, "warning": 2, "critical": 3}

Note = Annotated[str, msgspec.Meta(max_length=2000)]


class Alert(msgspec.Struct, kw_only=True):
    """One alert episode: open (or acknowledged) until resolved; a repeat while it is
    open bumps `count` and `last_seen` instead of opening another."""

    id: UUID
    rule: str
    key: str
    severity: Severity
    title: str
    details: dict[str, Any]
    state: AlertState
    count: int
    first_seen: datetime
    last_seen: datetime
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    ack_note: str | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    resolve_note: str | None = None


class AlertHistoryEntry(msgspec.Struct, kw_only=True):
    action: Literal["opened", "escalated", "acknowledged", "resolved"]
    actor: str
    at: datetime
    note: str | None = None
    severity: Severity | None = None


class AlertDetail(Alert, kw_only=True):
    history: list[AlertHistoryEntry] = []


class AlertPage(msgspec.Struct):
    items: list[Alert]
    next_cursor: str | None = None


class AlertAction(msgspec.Struct, forbid_unknown_fields=True):
    """The body of `POST /v1/alerts/{id}/acknowledge` and `/resolve`."""

    note: Note | None = None


class Finding(msgspec.Struct, kw_only=True):
    """What a condition found for one thing (`key`: a drive's serial, `fleet`...).

    `severity` None takes the condition's default severity."""

    key: str
    title: str
    details: dict[str, Any] = {}
    severity: Severity | None = None


class AlertCondition(msgspec.Struct, kw_only=True):
    """A condition a plugin registers (`register_alert_conditions`), evaluated per tenant
    by the `core.evaluate_alerts` cron job. Each finding raises (or repeats) the alert
    (`name`, finding.key); with `auto_resolve`, an alert whose key is no longer found is
    resolved by "auto" (a tenant's rule may override this)."""

    name: str
    description: str
    severity: Severity
    evaluate: Callable[[Any, UUID], Awaitable[list[Finding]]]
    auto_resolve: bool = True


class DeliverAlert(msgspec.Struct, forbid_unknown_fields=True):
    """The payload of `core.deliver_alert`: one attempt of one delivery."""

    delivery_id: UUID
    attempt: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
