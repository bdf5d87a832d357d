"""The rlaas events: what the gateway records and what applications send back.

An `rlaas.interaction` is one call through the gateway (the answer a user saw,
or a shadow policy's mirrored call). `rlaas.feedback` and `rlaas.task_result`
refer to it by `interaction_id`, the value of the `X-Flywheel-Interaction-Id`
header on the gateway's answer. All three go through `POST /v1/events` like any
other event (the SDK sends feedback and task results that way), so they are
PII-scrubbed, deduplicated by `event_id` and spooled during an outage.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from flywheel.contracts.events import Event

# A route is the `model` name clients ask for ("support-draft"): it is matched, never
# interpreted, but it appears in URLs, metrics and filters, so its alphabet is small.
ROUTE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"
Route = Annotated[str, msgspec.Meta(pattern=ROUTE_PATTERN, description="The model name a client asks for.")]
PolicyName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
Text = Annotated[str, msgspec.Meta(max_length=200_000)]
Count = Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]
Millis = Annotated[float, msgspec.Meta(ge=0, le=86_400_000)]


class Interaction(Event, tag="rlaas.interaction", kw_only=True):
    """One call through the gateway. `subject_id` is the end user's hash (never the raw id)."""

    interaction_id: UUID
    route: Route
    endpoint: Literal["chat.completions", "embeddings"]
    policy_id: UUID
    policy: PolicyName
    policy_version: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    role: Literal["primary", "shadow"] = "primary"
    # For a shadow call, the interaction whose request it mirrored.
    primary_interaction_id: UUID | None = None
    # The canary policy that failed before its first byte, when the active one answered instead.
    fallback_from_policy_id: UUID | None = None
    stream: bool = False
    status: Annotated[int, msgspec.Meta(ge=0, le=999)]  # the upstream's HTTP status; 0: it was not reached
    latency_ms: Millis
    ttft_ms: Millis | None = None  # time to the first streamed chunk
    prompt_tokens: Count | None = None
    completion_tokens: Count | None = None
    # True when the upstream reported no usage and completion_tokens counts content chunks.
    tokens_counted: bool = False
    request: dict[str, Any] = {}
    response: dict[str, Any] | None = None  # a stream's chunks are joined into one message
    error: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class Thumbs(msgspec.Struct, tag="thumbs", tag_field="kind", forbid_unknown_fields=True):
    value: Literal["up", "down"]


class Rating(msgspec.Struct, tag="rating", tag_field="kind", forbid_unknown_fields=True):
    value: Annotated[int, msgspec.Meta(ge=1, le=5)]


class Edit(msgspec.Struct, tag="edit", tag_field="kind", forbid_unknown_fields=True):
    """The answer as the user corrected it."""

    corrected_text: Text


class Comparison(msgspec.Struct, tag="comparison", tag_field="kind", forbid_unknown_fields=True):
    """This interaction against another one answering the same request."""

    other_interaction_id: UUID
    preferred: Literal["this", "other", "tie"]


Signal = Thumbs | Rating | Edit | Comparison


class Feedback(Event, tag="rlaas.feedback", kw_only=True):
    """What a user thought of an interaction's answer."""

    interaction_id: UUID
    signal: Signal
    comment: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None


class TaskResult(Event, tag="rlaas.task_result", kw_only=True):
    """How the task an interaction served ended (a ticket resolved, tests passed, ...)."""

    interaction_id: UUID
    task: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
    outcome: Literal["success", "failure", "partial", "abandoned"]
    score: Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)] | None = None
    details: dict[str, Any] = {}


EVENT_TYPES = [Interaction, Feedback, TaskResult]
