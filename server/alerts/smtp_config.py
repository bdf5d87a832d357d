"""The tenant's SMTP server for e-mail channels: `GET` / `PUT` / `DELETE /v1/alerts/smtp`.

Per tenant, through the API (not the environment): each tenant sends through
its own mail server and account. The password is sealed with
FLYWHEEL_SECRET_KEY and never returned; the host passes the alert allow-list
(FLYWHEEL_ALERTS_HOSTS) when written and again when used.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from flywheel.server.alerts.email import SmtpServer, smtp_problem
from flywheel.server.alerts.recipients import check_address
from flywheel.server.alerts.settings import alert_settings
from flywheel.server.errors import InvalidInput

Host = Annotated[str, msgspec.Meta(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.\-\[\]:]+$")]


class SmtpSettingsWrite(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: Host
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    sender: Annotated[str, msgspec.Meta(max_length=320)]
    username: Annotated[str, msgspec.Meta(max_length=320)] | None = None
    password: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class SmtpSettingsRead(msgspec.Struct, kw_only=True):
    configured: bool  # False: no SMTP server yet (every other field is then null)
    host: str | None = None
    port: int | None = None
    security: str | None = None
    sender: str | None = None
    username: str | None = None
    password_set: bool = False


_READ = "SELECT host, port, security, sender, username, password_sealed FROM alert_smtp WHERE tenant_id = $1"
_UPSERT = """INSERT INTO alert_smtp (tenant_id, host, port, security, sender, username, password_sealed)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id) DO UPDATE SET host = $2, port = $3, security = $4, sender = $5,
                 username = $6, password_sealed = $7, updated_at = now()"""


def _read(row: Any) -> SmtpSettingsRead:
    return SmtpSettingsRead(configured=True, host=row["host"], port=row["port"], security=row["security"],
                            sender=row["sender"], username=row["username"],
                            password_set=row["password_sealed"] is not None)


async def get_smtp(state: Any, tenant_id: UUID) -> SmtpSettingsRead:
    row = await state.db.fetchrow(_READ, tenant_id)
    return _read(row) if row is not None else SmtpSettingsRead(configured=False)


async def put_smtp(state: Any, tenant_id: UUID, data: SmtpSettingsWrite) -> SmtpSettingsRead:
    problem = smtp_problem(data.host, data.port, alert_settings().hosts)
    if problem:
        raise InvalidInput(problem, field="$.host", code="host_not_allowed")
    check_address(data.sender, "$.sender")
    if (data.username is None) != (data.password is None):
        raise InvalidInput("give both username and password, or neither", field="$.password")
    sealed = state.secrets().seal(data.password) if data.password is not None else None
    await state.db.execute(_UPSERT, tenant_id, data.host.lower(), data.port, data.security, data.sender,
                           data.username, sealed)
    return await get_smtp(state, tenant_id)


async def delete_smtp(state: Any, tenant_id: UUID) -> None:
    """Forget the SMTP server (nothing to forget is no error: the outcome is the same)."""
    await state.db.execute("DELETE FROM alert_smtp WHERE tenant_id = $1", tenant_id)


async def smtp_server(state: Any, tenant_id: UUID) -> SmtpServer | None:
    """The tenant's SMTP server with its password opened, or None."""
    row = await state.db.fetchrow(_READ, tenant_id)
    if row is None:
        return None
    password = state.secrets().open(row["password_sealed"]) if row["password_sealed"] else None
    return SmtpServer(host=row["host"], port=row["port"], security=row["security"], sender=row["sender"],
                      username=row["username"], password=password)
