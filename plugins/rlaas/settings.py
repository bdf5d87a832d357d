"""The rlaas plugin's settings, from its own environment variables (docs/rlaas.md).

`FLYWHEEL_RLAAS_UPSTREAM_HOSTS` is the allow-list of hosts a policy may send
requests to: the gateway calls whatever URL a tenant admin writes into a
policy, so without it a tenant could make the server reach its own
Postgres, a cloud metadata address or another tenant's service.
"""

from __future__ import annotations

import ipaddress
import os
from fnmatch import fnmatchcase
from typing import Annotated
from urllib.parse import urlsplit

import msgspec

DEFAULT_HOSTS = "*"  # any public host; private, loopback and link-local ones only when named


class RlaasSettings(msgspec.Struct, frozen=True, kw_only=True):
    upstream_hosts: list[str]
    shadow_concurrency: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 16
    upstream_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 120.0
    connect_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    connect_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 2
    policy_cache_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 2.0


ENV = {
    "upstream_hosts": "FLYWHEEL_RLAAS_UPSTREAM_HOSTS",
    "shadow_concurrency": "FLYWHEEL_RLAAS_SHADOW_CONCURRENCY",
    "upstream_timeout_s": "FLYWHEEL_RLAAS_UPSTREAM_TIMEOUT_S",
    "connect_timeout_s": "FLYWHEEL_RLAAS_CONNECT_TIMEOUT_S",
    "connect_retries": "FLYWHEEL_RLAAS_CONNECT_RETRIES",
    "policy_cache_s": "FLYWHEEL_RLAAS_POLICY_CACHE_S",
}


def load(environ: dict[str, str] | None = None) -> RlaasSettings:
    """Settings from the environment; a bad value raises ValueError naming the variable."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {"upstream_hosts": env.get(ENV["upstream_hosts"], DEFAULT_HOSTS)}
    for field, var in ENV.items():
        value = env.get(var)
        if field == "upstream_hosts" or value in (None, ""):
            continue
        raw[field] = value
    raw["upstream_hosts"] = [h.strip().lower() for h in str(raw["upstream_hosts"]).split(",") if h.strip()]
    try:
        return msgspec.convert(raw, RlaasSettings, strict=False)
    except msgspec.ValidationError as exc:
        field = str(exc).rpartition("$.")[2].rstrip("`").split("[")[0]
        raise ValueError(f"{ENV.get(field, 'FLYWHEEL_RLAAS_*')}: {exc}") from None


def upstream_url_problem(url: str, allowed: list[str]) -> str | None:
    """Why the gateway may not call `url`, or None when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "an upstream base URL starts with http:// or https://"
    if parts.username or parts.password:
        return "put credentials in `api_key` or `headers`, not in the URL"
    if parts.query or parts.fragment:
        return "an upstream base URL has no query or fragment"
    host = (parts.hostname or "").lower()
    if not host:
        return "an upstream base URL names a host"
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return "the port is not a number from 1 to 65535"
    if host in allowed:
        return None
    if _private(host):
        return (f"{host} is a private, loopback or link-local address: name it in "
                "FLYWHEEL_RLAAS_UPSTREAM_HOSTS to allow it")
    if any(pattern != host and fnmatchcase(host, pattern) for pattern in allowed):
        return None
    return f"{host} is not in FLYWHEEL_RLAAS_UPSTREAM_HOSTS"


def _private(host: str) -> bool:
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name: DNS may still point it inside (see docs/rlaas.md, "Upstream hosts")
    return not address.is_global
