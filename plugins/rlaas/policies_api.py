"""`/v1/rlaas/policies`: which upstream answers each route, and `/v1/rlaas/audit`: who changed what.

Reading needs `read`; every change needs `admin` (a policy decides where a
tenant's prompts go and with which credentials).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from flywheel.plugins.rlaas import policies
from flywheel.plugins.rlaas.contracts import ROUTE_PATTERN
from flywheel.plugins.rlaas.policy_types import AuditPage, PolicyCreate, PolicyPage, PolicyRead, PolicyUpdate, Status
from flywheel.server.plugin_api import Caller, NotFound

ADMIN = {"scope": "admin"}
Replace = Annotated[bool, QueryParameter(description=(
    "When the policy becomes `active` (or `canary`) and another policy of the route holds that status: "
    "retire that one in the same transaction instead of answering 409."))]
Limit = Annotated[int, QueryParameter(ge=1, le=1000)]
Cursor = Annotated[str | None, QueryParameter(max_length=1000)]


class PolicyController(Controller):
    # Handler names must not shadow the `get`/`delete` decorators in the class body.
    path = "/v1/rlaas"
    tags = ["rlaas"]

    @post("/policies", operation_id="rlaasCreatePolicy", opt=ADMIN, status_code=201)
    async def create_policy(self, state: State, principal: Caller, data: JSONBody[PolicyCreate],
                            replace: Replace = False) -> PolicyRead:
        """Add a policy to a route. `upstream.api_key` and header values are stored encrypted and never
        shown again (`has_api_key`, `header_names`)."""
        return await policies.create(state.flywheel, principal.tenant_id, principal.key_id, data, replace=replace)

    @get("/policies", operation_id="rlaasListPolicies")
    async def list_policies(
        self, state: State, principal: Caller,
        route: Annotated[str | None, QueryParameter(max_length=128, pattern=ROUTE_PATTERN)] = None,
        status: Annotated[Status | None, QueryParameter()] = None,
        limit: Limit = 50, cursor: Cursor = None,
    ) -> PolicyPage:
        """The tenant's policies, newest first; filter by route and status."""
        return await policies.list_policies(state.flywheel.db, principal.tenant_id, route=route, status=status,
                                            limit=limit, cursor=cursor)

    @get("/policies/{policy_id:uuid}", operation_id="rlaasGetPolicy")
    async def get_policy(self, state: State, principal: Caller, policy_id: FromPath[UUID]) -> PolicyRead:
        return await policies.get(state.flywheel.db, principal.tenant_id, policy_id)

    @patch("/policies/{policy_id:uuid}", operation_id="rlaasUpdatePolicy", opt=ADMIN)
    async def update_policy(self, state: State, principal: Caller, policy_id: FromPath[UUID],
                            data: JSONBody[PolicyUpdate], replace: Replace = False) -> PolicyRead:
        """Change status, canary share, upstream or description. `?replace=true` with `status: active`
        promotes atomically: the route's active policy is retired in the same transaction."""
        return await policies.update(state.flywheel, principal.tenant_id, principal.key_id, policy_id, data,
                                     replace=replace)

    @delete("/policies/{policy_id:uuid}", operation_id="rlaasDeletePolicy", opt=ADMIN, status_code=204)
    async def delete_policy(self, state: State, principal: Caller, policy_id: FromPath[UUID]) -> None:
        """Delete a policy, whatever its status (retiring keeps it listed; its audit history stays either way)."""
        await policies.delete(state.flywheel, principal.tenant_id, principal.key_id, policy_id)

    @get("/policies/{policy_id:uuid}/audit", operation_id="rlaasPolicyAudit")
    async def policy_audit(self, state: State, principal: Caller, policy_id: FromPath[UUID],
                           limit: Limit = 50, cursor: Cursor = None) -> AuditPage:
        """One policy's changes, newest first (a deleted policy's too)."""
        page = await policies.list_audit(state.flywheel.db, principal.tenant_id, policy_id=policy_id,
                                         limit=limit, cursor=cursor)
        if not page.items and cursor is None:
            raise NotFound("no such policy")  # every policy has its `create` entry
        return page

    @get("/audit", operation_id="rlaasAudit")
    async def audit(self, state: State, principal: Caller,
                    policy_id: Annotated[UUID | None, QueryParameter()] = None,
                    limit: Limit = 50, cursor: Cursor = None) -> AuditPage:
        """Every policy change of the tenant, newest first: who (the API key; none for the CLI), when, and the
        policy before and after (credentials masked)."""
        return await policies.list_audit(state.flywheel.db, principal.tenant_id, policy_id=policy_id,
                                         limit=limit, cursor=cursor)
