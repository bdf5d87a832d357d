"""LoRA adapters as the API reads and writes them (`/v1/rlaas/adapters`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from flywheel.plugins.rlaas.contracts import PolicyName, Route
from flywheel.plugins.rlaas.policy_types import Share, Upstream
from flywheel.plugins.rlaas.trainer.config import TrainConfig

AdapterStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
AdapterName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description=(
    "Names a line of adapters: each training under the same name is its next version."))]
BaseModelName = Annotated[str, msgspec.Meta(min_length=1, max_length=1000, description=(
    "An absolute path inside FLYWHEEL_RLAAS_BASE_MODEL_DIRS, or a hub id (`org/model`) matching "
    "FLYWHEEL_RLAAS_HUB_MODELS."))]
PAGE_MAX = 500


class AdapterCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /v1/rlaas/adapters`: train a new version of adapter `name` on an export.
    An SFT export trains with TRL's SFTTrainer, a DPO export with its DPOTrainer."""

    name: AdapterName
    export_id: UUID
    base_model: BaseModelName
    config: TrainConfig = msgspec.field(default_factory=TrainConfig)
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class AdapterFile(msgspec.Struct, kw_only=True):
    key: str  # in the tenant's object store, under the adapter's `object_prefix`
    size: int
    sha256: str


class AdapterRead(msgspec.Struct, kw_only=True):
    """One trained (or training) adapter version. `metrics` (once succeeded): `first_loss`,
    `final_loss`, `steps`, `epochs`, `step_time_s`, `loss_history`, ...; `data_manifest`: the
    export's manifest as it was trained on. Progress is the job's (`GET /v1/jobs/{job_id}`)."""

    id: UUID
    name: str
    version: int
    method: Literal["sft", "dpo"]
    status: AdapterStatus
    base_model: str
    export_id: UUID
    config: TrainConfig
    data_manifest: dict[str, Any] | None
    metrics: dict[str, Any] | None
    files: list[AdapterFile]
    object_prefix: str
    job_id: UUID | None
    description: str
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class AdapterPage(msgspec.Struct, kw_only=True):
    items: list[AdapterRead]
    next_cursor: str | None = None


class AdapterAttach(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /v1/rlaas/adapters/{adapter_id}/policies`: a new policy that serves the adapter.

    As `POST /v1/rlaas/policies`, but born `shadow` or `canary`, never answering a route's traffic
    untried; `upstream` is the server that has the adapter loaded, and its `adapter_id` is set to
    the adapter's id (the name the upstream serves it under)."""

    route: Route
    name: PolicyName
    version: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1
    status: Literal["shadow", "canary"] = "shadow"
    upstream: Upstream
    canary_share: Share | None = None
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class TrainAdapter(msgspec.Struct, forbid_unknown_fields=True):
    """Payload of the `rlaas.train_adapter` job: the adapter (a row of the tenant's) to train."""

    adapter_id: UUID
