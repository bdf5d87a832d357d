"""Committed rlaas events become rows of `rlaas_interactions`, `rlaas_feedback` and
`rlaas_task_results` (migrations/0002_interactions.sql).

Called from `on_events_committed` with one tenant's events, as stored (PII
scrubbed). Each type is one `executemany` (asyncpg pipelines the rows: one
round trip per batch, not per row) inside one transaction. Every insert is
`ON CONFLICT DO NOTHING` on the row's natural key, so a batch delivered again,
or replayed from the events table, stores nothing twice.

Each interaction is stored with its prompt's normalized hash (prompts.py),
and, in the same transaction, every interaction that feedback or a task
result names (both sides of a comparison) is marked in
`rlaas_reward_pending` for the rewards job (rewards.py) to recompute.
Marking again what is already pending only draws it a new mark.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import structlog

from flywheel.plugins.rlaas.contracts import Comparison, Edit, Feedback, Interaction, Rating, TaskResult, Thumbs
from flywheel.plugins.rlaas.prompts import prompt_hash

log = structlog.get_logger("flywheel.rlaas")

INT4_MAX = 2**31 - 1

INSERT_INTERACTION = """
INSERT INTO rlaas_interactions (
    tenant_id, interaction_id, event_id, ts, route, endpoint, policy_id, policy, policy_version, role,
    primary_interaction_id, fallback_from_policy_id, user_hash, session_id, stream, status, latency_ms, ttft_ms,
    prompt_tokens, completion_tokens, tokens_counted, request, response, error, attributes, prompt_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23,
        $24, $25, $26)
ON CONFLICT (tenant_id, interaction_id) DO NOTHING"""

INSERT_FEEDBACK = """
INSERT INTO rlaas_feedback (tenant_id, event_id, interaction_id, ts, kind, value, corrected_text,
                            other_interaction_id, preferred, comment, subject_id, attributes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (tenant_id, event_id) DO NOTHING"""

INSERT_TASK_RESULT = """
INSERT INTO rlaas_task_results (tenant_id, event_id, interaction_id, ts, task, outcome, score, details,
                                subject_id, attributes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (tenant_id, event_id) DO NOTHING"""

# Ids sorted and distinct: an upsert may touch a row once per statement, and two projections
# locking the same rows in one order cannot deadlock.
MARK_PENDING = """
INSERT INTO rlaas_reward_pending (tenant_id, interaction_id)
SELECT $1, unnest($2::uuid[])
ON CONFLICT (tenant_id, interaction_id)
DO UPDATE SET mark = nextval('rlaas_reward_pending_mark'), marked_at = now()"""


async def project(state: Any, tenant_id: UUID, events: list[Any]) -> None:
    """Store one tenant's committed interaction, feedback and task-result events."""
    interactions, feedback, results = [], [], []
    for e in events:
        if isinstance(e, Interaction):
            if e.policy_version <= INT4_MAX:
                interactions.append(interaction_row(tenant_id, e))
            else:  # only a hand-made event can hold one; the rest of the batch must still land
                log.warning("rlaas interaction skipped: policy_version out of range",
                            tenant_id=str(tenant_id), interaction_id=str(e.interaction_id))
        elif isinstance(e, Feedback):
            feedback.append(feedback_row(tenant_id, e))
        elif isinstance(e, TaskResult):
            results.append(task_result_row(tenant_id, e))
    if not (interactions or feedback or results):
        return
    async with state.db.acquire() as conn, conn.transaction():
        for sql, rows in ((INSERT_INTERACTION, interactions), (INSERT_FEEDBACK, feedback),
                          (INSERT_TASK_RESULT, results)):
            if rows:
                await conn.executemany(sql, rows)
        if named := reward_inputs_of(events):
            await conn.execute(MARK_PENDING, tenant_id, sorted(named))


def reward_inputs_of(events: list[Any]) -> set[UUID]:
    """The interactions whose reward or pairs these events change: those feedback and task results name."""
    named = set()
    for e in events:
        if isinstance(e, Feedback | TaskResult):
            named.add(e.interaction_id)
            if isinstance(e, Feedback) and isinstance(e.signal, Comparison):
                named.add(e.signal.other_interaction_id)
    return named


def interaction_row(tenant_id: UUID, e: Interaction) -> tuple:
    return (tenant_id, e.interaction_id, e.event_id, e.ts, e.route, e.endpoint, e.policy_id, e.policy,
            e.policy_version, e.role, e.primary_interaction_id, e.fallback_from_policy_id, e.subject_id,
            e.session_id, e.stream, e.status, e.latency_ms, e.ttft_ms, e.prompt_tokens, e.completion_tokens,
            e.tokens_counted, e.request, e.response, e.error, e.attributes, prompt_hash(tenant_id, e.request))


def signal_columns(signal: Any) -> tuple[str, int | None, str | None, UUID | None, str | None]:
    """(kind, value, corrected_text, other_interaction_id, preferred) of a feedback signal."""
    if isinstance(signal, Thumbs):
        return "thumbs", 1 if signal.value == "up" else -1, None, None, None
    if isinstance(signal, Rating):
        return "rating", signal.value, None, None, None
    if isinstance(signal, Edit):
        return "edit", None, signal.corrected_text, None, None
    if isinstance(signal, Comparison):
        return "comparison", None, None, signal.other_interaction_id, signal.preferred
    raise TypeError(f"not a feedback signal: {type(signal).__name__}")


def feedback_row(tenant_id: UUID, e: Feedback) -> tuple:
    return (tenant_id, e.event_id, e.interaction_id, e.ts, *signal_columns(e.signal), e.comment, e.subject_id,
            e.attributes)


def task_result_row(tenant_id: UUID, e: TaskResult) -> tuple:
    return (tenant_id, e.event_id, e.interaction_id, e.ts, e.task, e.outcome, e.score, e.details, e.subject_id,
            e.attributes)
