"""`/v1/rlaas/adapters`: LoRA adapters trained on exports, and the policies that serve them.

Training needs `write` (it queues work and writes to the tenant's store), as
creating an export does; reading needs `read`; attaching an adapter to a new
policy needs `admin`, as every policy change does.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from flywheel.plugins.rlaas import adapters
from flywheel.plugins.rlaas.adapter_types import (
    PAGE_MAX,
    AdapterAttach,
    AdapterCreate,
    AdapterName,
    AdapterPage,
    AdapterRead,
    AdapterStatus,
)
from flywheel.plugins.rlaas.policy_types import PolicyRead
from flywheel.server.plugin_api import Caller


class AdapterController(Controller):
    path = "/v1/rlaas/adapters"
    tags = ["rlaas"]

    @post("/", operation_id="rlaasTrainAdapter", status_code=202, opt={
        "scope": "write", "errors": {409: "the export is not written (yet): `export_not_ready`"}})
    async def train_adapter(self, state: State, principal: Caller, data: JSONBody[AdapterCreate]) -> AdapterRead:
        """Train the next version of adapter `name` on an export (SFT or DPO) from `base_model`. It comes back
        `queued` with its `job_id`: step and loss at `GET /v1/jobs/{job_id}`, cancel with
        `POST /v1/jobs/{job_id}/cancel`."""
        return await adapters.create_adapter(state.flywheel, principal.tenant_id, data)

    @get("/", operation_id="rlaasListAdapters")
    async def list_adapters(
        self, state: State, principal: Caller,
        name: Annotated[AdapterName | None, QueryParameter(max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")] = None,
        status: Annotated[AdapterStatus | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=PAGE_MAX)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=1000)] = None,
    ) -> AdapterPage:
        """The tenant's adapters, newest first (keyset pages: pass `next_cursor` back as `cursor`)."""
        return await adapters.list_adapters(state.flywheel.db, principal.tenant_id, name=name, status=status,
                                            limit=limit, cursor=cursor)

    @get("/{adapter_id:uuid}", operation_id="rlaasGetAdapter")
    async def get_adapter(self, state: State, principal: Caller, adapter_id: FromPath[UUID]) -> AdapterRead:
        """One adapter version: its status, training config, data manifest, metrics and stored files."""
        return await adapters.get_adapter(state.flywheel.db, principal.tenant_id, adapter_id)

    @post("/{adapter_id:uuid}/policies", operation_id="rlaasAttachAdapter", status_code=201, opt={
        "scope": "admin", "errors": {409: "the adapter is not trained (`adapter_not_ready`), or the route has a "
                                          "canary (`canary_exists`) or that policy (`policy_exists`)"}})
    async def attach_adapter(self, state: State, principal: Caller, adapter_id: FromPath[UUID],
                             data: JSONBody[AdapterAttach],
                             replace: Annotated[bool, QueryParameter(description=(
                                 "For a canary, when the route has one: retire it in the same transaction "
                                 "instead of answering 409."))] = False) -> PolicyRead:
        """A new `shadow` or `canary` policy serving this adapter: `upstream.adapter_id` is the adapter's id,
        and the policy is validated and audited as `POST /v1/rlaas/policies` does."""
        return await adapters.attach(state.flywheel, principal.tenant_id, principal.key_id, adapter_id, data,
                                     replace=replace)
