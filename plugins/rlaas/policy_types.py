"""Policies as the API reads and writes them.

Credentials are write-only: `api_key` and header values go in, and only
`has_api_key` and `header_names` come out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from flywheel.plugins.rlaas.contracts import PolicyName, Route

Status = Literal["shadow", "canary", "active", "retired"]
BaseUrl = Annotated[str, msgspec.Meta(min_length=8, max_length=2000, description=(
    "An OpenAI-compatible API's base URL, e.g. `https://api.openai.com/v1`; its host must be "
    "allowed by FLYWHEEL_RLAAS_UPSTREAM_HOSTS."))]
UpstreamModel = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
HeaderName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")]
HeaderValue = Annotated[str, msgspec.Meta(max_length=4000, pattern=r"^[\x20-\x7e]*$")]
Share = Annotated[float, msgspec.Meta(gt=0, lt=1, description="A canary's share of the route's traffic.")]


class Upstream(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    base_url: BaseUrl
    model: UpstreamModel
    adapter_id: Annotated[str, msgspec.Meta(max_length=200, pattern=r"^[\x21-\x7e]+$")] | None = None
    # Write-only: stored sealed, sent as `Authorization: Bearer ...` to the upstream.
    api_key: Annotated[str, msgspec.Meta(min_length=1, max_length=4000, pattern=r"^[\x21-\x7e]+$")] | None = None
    headers: Annotated[dict[HeaderName, HeaderValue], msgspec.Meta(max_length=20)] = {}


class PolicyCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    route: Route
    name: PolicyName
    version: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1
    status: Status = "shadow"
    upstream: Upstream
    canary_share: Share | None = None
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class PolicyUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A change: fields left out stay as they are. A new `upstream` replaces the whole upstream
    (credentials included: send `api_key` again, or it is dropped)."""

    status: Status | None = None
    canary_share: Share | None = None
    upstream: Upstream | None = None
    description: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class UpstreamRead(msgspec.Struct, kw_only=True):
    base_url: str
    model: str
    adapter_id: str | None
    has_api_key: bool
    header_names: list[str]


class PolicyRead(msgspec.Struct, kw_only=True):
    id: UUID
    route: str
    name: str
    version: int
    status: Status
    upstream: UpstreamRead
    canary_share: float | None
    description: str
    created_at: datetime
    updated_at: datetime


class PolicyPage(msgspec.Struct, kw_only=True):
    items: list[PolicyRead]
    next_cursor: str | None = None


class AuditEntry(msgspec.Struct, kw_only=True):
    id: int
    policy_id: UUID
    action: Literal["create", "update", "delete"]
    actor_key_id: UUID | None
    at: datetime
    before: PolicyRead | None
    after: PolicyRead | None


class AuditPage(msgspec.Struct, kw_only=True):
    items: list[AuditEntry]
    next_cursor: str | None = None
