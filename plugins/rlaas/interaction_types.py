"""Interactions, their feedback and task results as the API reads them (`/v1/rlaas/interactions`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from flywheel.plugins.rlaas.contracts import PolicyName, Route, Signal
from flywheel.plugins.rlaas.reward_types import RewardRead
from flywheel.plugins.rlaas.users import UserHash

Role = Literal["primary", "shadow"]
PAGE_MAX = 500


class InteractionFilter(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What `GET /v1/rlaas/interactions` and `flywheel rlaas interactions list` select by.

    `user` is the end user's own id: it is hashed as the gateway hashes it
    (`users.user_hash`) and compared with the stored hash. `since` is
    inclusive, `until` exclusive; both need a timezone.
    """

    route: Route | None = None
    policy: PolicyName | None = None
    policy_version: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    user: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    user_hash: UserHash | None = None
    role: Role | None = None
    has_feedback: bool | None = None
    since: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    until: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class InteractionSummary(msgspec.Struct, kw_only=True):
    """One call through the gateway, without its request and response bodies."""

    interaction_id: UUID
    ts: datetime
    route: str
    endpoint: str
    policy_id: UUID
    policy: str
    policy_version: int
    role: Role
    primary_interaction_id: UUID | None
    fallback_from_policy_id: UUID | None
    user_hash: str | None
    session_id: str | None
    stream: bool
    status: int
    latency_ms: float
    ttft_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    tokens_counted: bool
    error: str | None
    feedback_count: int
    task_result_count: int


class InteractionPage(msgspec.Struct, kw_only=True):
    items: list[InteractionSummary]
    next_cursor: str | None = None


class FeedbackRead(msgspec.Struct, kw_only=True):
    """One `rlaas.feedback` event, with its signal as it was sent."""

    event_id: UUID
    interaction_id: UUID
    ts: datetime
    signal: Signal
    comment: str | None
    subject_id: str | None


class TaskResultRead(msgspec.Struct, kw_only=True):
    event_id: UUID
    interaction_id: UUID
    ts: datetime
    task: str
    outcome: Literal["success", "failure", "partial", "abandoned"]
    score: float | None
    details: dict[str, Any]
    subject_id: str | None


class InteractionDetail(msgspec.Struct, kw_only=True):
    """An interaction with its bodies, and its feedback and task results, oldest first
    (the first `DETAIL_MAX` of each; the summary's counts say how many there are)."""

    interaction: InteractionSummary
    request: dict[str, Any]
    response: dict[str, Any] | None
    attributes: dict[str, Any]
    feedback: list[FeedbackRead]
    task_results: list[TaskResultRead]
    reward: RewardRead | None = None  # its reward, once the rewards job has computed one


DETAIL_MAX = 1000
