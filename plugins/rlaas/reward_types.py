"""Rewards and preference pairs as the API reads and writes them (`/v1/rlaas/rewards`, `/v1/rlaas/pairs`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from flywheel.plugins.rlaas.contracts import PolicyName, Route

PAGE_MAX = 500
PairSource = Literal["comparison", "edit", "reward_gap"]
Weight = Annotated[float, msgspec.Meta(ge=0, le=1000, description="A signal's weight; 0 leaves it out.")]
Gap = Annotated[float, msgspec.Meta(gt=0, le=2, description=(
    "Two interactions with the same prompt make a `reward_gap` pair when their rewards differ by more."))]
RewardValue = Annotated[float, msgspec.Meta(ge=-1, le=1)]


class RewardWeights(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Each signal's weight in the reward (a weighted mean of the signals an interaction has)."""

    thumbs: Weight = 1.0
    rating: Weight = 1.0
    edit: Weight = 1.0
    task: Weight = 1.0


class RewardSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`PUT /v1/rlaas/rewards/settings`: the whole settings (a field left out takes its default)."""

    weights: RewardWeights = msgspec.field(default_factory=RewardWeights)
    pair_min_gap: Gap = 0.5


class RewardSettingsRead(msgspec.Struct, kw_only=True):
    """A tenant's reward settings. `version` 0 is the defaults, never changed; each change adds one.
    `job_id`: the recompute a change queued (None when nothing changed, or on GET)."""

    weights: RewardWeights
    pair_min_gap: float
    version: int
    updated_at: datetime | None = None
    job_id: UUID | None = None


class ComputeRewards(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The `rlaas.compute_rewards` job: the pending work, or with `full` every interaction with feedback."""

    full: bool = False


class RewardFilter(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What `GET /v1/rlaas/rewards` selects by; `since` is inclusive, `until` exclusive (interaction time)."""

    route: Route | None = None
    policy: PolicyName | None = None
    since: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    until: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    min_reward: RewardValue | None = None


class RewardRead(msgspec.Struct, kw_only=True):
    """One interaction's reward, with the signals and weights that produced it (`inputs`)."""

    interaction_id: UUID
    reward: float
    inputs: dict[str, Any]
    weights_version: int
    prompt_hash: str
    route: str
    policy: str
    policy_version: int
    ts: datetime
    computed_at: datetime


class RewardPage(msgspec.Struct, kw_only=True):
    items: list[RewardRead]
    next_cursor: str | None = None


class PairFilter(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What `GET /v1/rlaas/pairs` selects by; `since`/`until` bound the pair's `ts`."""

    route: Route | None = None
    source: PairSource | None = None
    prompt_hash: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}$")] | None = None
    since: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    until: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class PairRead(msgspec.Struct, kw_only=True):
    """For the prompt of `interaction_id`, `chosen` beats `rejected`. `chosen_text` is an edit's
    corrected text (None: the chosen interaction's own answer); `gap` a reward_gap pair's reward difference."""

    pair_id: UUID
    source: PairSource
    prompt_hash: str
    interaction_id: UUID
    chosen_interaction_id: UUID
    rejected_interaction_id: UUID
    chosen_text: str | None
    feedback_event_id: UUID | None
    gap: float | None
    route: str
    ts: datetime
    created_at: datetime


class PairPage(msgspec.Struct, kw_only=True):
    items: list[PairRead]
    next_cursor: str | None = None
