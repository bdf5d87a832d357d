"""The caller's tenant and its API keys. Managing keys needs the `admin` scope."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from flywheel.contracts.tenants import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, TenantRead
from flywheel.server.auth import service
from flywheel.server.auth.principal import Caller


class TenantController(Controller):
    path = "/v1"
    tags = ["tenants"]

    @get("/tenant", operation_id="getTenant")
    async def get_tenant(self, state: State, principal: Caller) -> TenantRead:
        """The tenant the calling key belongs to."""
        return await service.get_tenant(state.flywheel.db, principal.tenant_id)

    @get("/keys", operation_id="listKeys", opt={"scope": "admin"})
    async def list_keys(self, state: State, principal: Caller) -> list[ApiKeyRead]:
        """The tenant's API keys, revoked ones included (never their secrets)."""
        return await service.list_keys(state.flywheel.db, principal.tenant_id)

    @post("/keys", operation_id="createKey", opt={"scope": "admin"})
    async def create_key(self, state: State, principal: Caller, data: JSONBody[ApiKeyCreate]) -> ApiKeyCreated:
        """Create a key in the caller's tenant. The secret is in this response only."""
        return await service.create_key(state.flywheel.db, principal.tenant_id, data.name, data.scopes)

    @delete("/keys/{key_id:uuid}", operation_id="revokeKey", opt={"scope": "admin"}, status_code=200)
    async def revoke_key(self, state: State, principal: Caller, key_id: FromPath[UUID]) -> ApiKeyRead:
        """Revoke a key of the tenant: refused (401) at once here, within seconds on other replicas."""
        revoked = await service.revoke_key(state.flywheel.db, principal.tenant_id, key_id)
        state.flywheel.keys.forget()
        return revoked
