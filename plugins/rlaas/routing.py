"""Which policy answers a request: the route's active policy, its canary, its shadows.

A tenant's policies are read from Postgres once and kept in memory for
`policy_cache_s` (2 s): a request costs a dict lookup, and a change made on
another replica is seen within that. A change made here drops the entry at
once (`forget`). Credentials are opened when the policies are read, and live
only in this process's memory.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from flywheel.plugins.rlaas.runtime import settings_of
from flywheel.server.plugin_api import NotFound, open_secret

CACHE = "rlaas.policies"
_BUCKETS = float(1 << 64)


@dataclass(frozen=True)
class Policy:
    """One policy as the gateway uses it, credentials opened."""

    id: UUID
    route: str
    name: str
    version: int
    status: str
    base_url: str
    model: str
    adapter_id: str | None
    headers: dict[str, str]
    canary_share: float | None

    def __repr__(self) -> str:  # never the headers: they hold the upstream credentials
        return f"Policy({self.name} v{self.version}, {self.status}, route={self.route})"


@dataclass
class RoutePolicies:
    active: Policy | None = None
    canary: Policy | None = None
    shadows: list[Policy] = field(default_factory=list)


@dataclass
class Choice:
    """The policy to call first, the one to fall back to, and the shadows to mirror to."""

    primary: Policy
    fallback: Policy | None
    shadows: list[Policy]


def forget(state: Any, tenant_id: UUID) -> None:
    """Drop the tenant's cached policies (after a change through this process)."""
    state.extras.get(CACHE, {}).pop(tenant_id, None)


async def routes_of(state: Any, tenant_id: UUID) -> dict[str, RoutePolicies]:
    cache: dict[UUID, tuple[float, dict[str, RoutePolicies]]] = state.extras.setdefault(CACHE, {})
    hit = cache.get(tenant_id)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    routes = await _load(state, tenant_id)
    cache[tenant_id] = (now + settings_of(state).policy_cache_s, routes)
    return routes


async def choose(state: Any, tenant_id: UUID, route: str, user_hash: str | None) -> Choice:
    """The policies for one request; NotFound when no active policy serves the route."""
    policies = (await routes_of(state, tenant_id)).get(route)
    if policies is None or policies.active is None:
        raise NotFound(f"no active policy serves the model {route!r}", code="model_not_found", field="$.model")
    canary = policies.canary
    if canary is not None and in_canary(canary, user_hash):
        return Choice(primary=canary, fallback=policies.active, shadows=policies.shadows)
    return Choice(primary=policies.active, fallback=None, shadows=policies.shadows)


def in_canary(canary: Policy, user_hash: str | None) -> bool:
    """Whether this user's requests go to the canary: the same answer for a user every time
    (while the canary's share stays), and a fresh draw per request for anonymous ones."""
    if user_hash is None:
        return random.random() < (canary.canary_share or 0.0)
    digest = hashlib.blake2b(f"{canary.id}:{user_hash}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _BUCKETS < (canary.canary_share or 0.0)


async def _load(state: Any, tenant_id: UUID) -> dict[str, RoutePolicies]:
    async with state.db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, route, name, version, status, base_url, upstream_model, adapter_id, headers_sealed,"
            " api_key_sealed, canary_share FROM rlaas_policies"
            " WHERE tenant_id = $1 AND status <> 'retired' ORDER BY route, name, version", tenant_id)
    routes: dict[str, RoutePolicies] = {}
    for row in rows:
        policy = _policy(state, row)
        slot = routes.setdefault(policy.route, RoutePolicies())
        if policy.status == "active":
            slot.active = policy
        elif policy.status == "canary":
            slot.canary = policy
        else:
            slot.shadows.append(policy)
    return routes


def _policy(state: Any, row: Any) -> Policy:
    headers: dict[str, str] = {}
    if row["headers_sealed"]:
        headers.update(json.loads(open_secret(state, row["headers_sealed"])))
    if row["api_key_sealed"]:
        headers["Authorization"] = "Bearer " + open_secret(state, row["api_key_sealed"])
    return Policy(id=row["id"], route=row["route"], name=row["name"], version=row["version"],
                  status=row["status"], base_url=row["base_url"].rstrip("/"), model=row["upstream_model"],
                  adapter_id=row["adapter_id"], headers=headers, canary_share=row["canary_share"])
