"""Alert delivery settings, from their own environment variables (docs/alerts.md).

`FLYWHEEL_ALERTS_HOSTS` is the operator's allow-list of hosts webhooks and
SMTP servers may be on: tenants choose those URLs, so without it a tenant
could make the server call its own Postgres or a cloud metadata address.
The default `*` admits any public host; a private, loopback or link-local
one only when named (`*,mail.lan,10.0.0.5`).

Read on each use rather than once: they are a handful of environment
lookups, against an HTTP call or an SMTP session.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated

import msgspec

HOSTS_VAR = "FLYWHEEL_ALERTS_HOSTS"
# Ports an SMTP server may listen on when its host is not named in the allow-list: a tenant
# must not turn the mailer into a port scanner of public hosts.
SMTP_PORTS = frozenset({25, 465, 587, 2525})


class AlertSettings(msgspec.Struct, frozen=True, kw_only=True):
    hosts: list[str]
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0
    # Attempt n+1 waits retry_base_s * 2**(n-1), at most retry_max_s: 30 s, 1, 2, 4 ... min.
    retry_base_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    retry_max_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 3600.0
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] = 8


ENV = {
    "hosts": HOSTS_VAR,
    "timeout_s": "FLYWHEEL_ALERTS_TIMEOUT_S",
    "retry_base_s": "FLYWHEEL_ALERTS_RETRY_BASE_S",
    "retry_max_s": "FLYWHEEL_ALERTS_RETRY_MAX_S",
    "max_attempts": "FLYWHEEL_ALERTS_MAX_ATTEMPTS",
}


def alert_settings(environ: Mapping[str, str] | None = None) -> AlertSettings:
    """The settings now; a bad value raises ValueError naming the variable."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {field: env[var] for field, var in ENV.items() if env.get(var)}
    raw["hosts"] = [h.strip().lower() for h in str(raw.get("hosts", "*")).split(",") if h.strip()]
    try:
        return msgspec.convert(raw, AlertSettings, strict=False)
    except msgspec.ValidationError as exc:
        field = str(exc).rpartition("$.")[2].rstrip("`").split("[")[0]
        raise ValueError(f"{ENV.get(field, 'FLYWHEEL_ALERTS_*')}: {exc}") from None


def retry_delay(settings: AlertSettings, attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based) before the next."""
    return min(settings.retry_base_s * 2 ** (attempt - 1), settings.retry_max_s)
