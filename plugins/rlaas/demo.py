"""What `flywheel up --demo` starts the rlaas plugin with: policies and a week of interactions.

The policies route `support-draft` to OpenAI (active `gpt-4o-mini`, a 10%
canary, a shadow), with no API key: add yours and the gateway answers (see
README, "Built-in plugin: rlaas"). The interactions, feedback and task
results are generated and go through the ingestion engine like real ones, so
the interaction views and the CLI have something to show at once. Event ids
are derived from a seed, so a second start stores nothing twice.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import structlog

from flywheel.plugins.rlaas import policies, rewards
from flywheel.plugins.rlaas.contracts import Feedback, Interaction, Rating, TaskResult, Thumbs
from flywheel.plugins.rlaas.policy_types import PolicyCreate, Upstream
from flywheel.plugins.rlaas.reward_types import ComputeRewards
from flywheel.plugins.rlaas.users import user_hash
from flywheel.server.plugin_api import ingest_events, run_here

log = structlog.get_logger("flywheel.rlaas")
ROUTE = "support-draft"
OPENAI = "https://api.openai.com/v1"
INTERACTIONS = 300
_NS = uuid.UUID("6f1c2a52-2d0e-4d7e-9b57-3f0f6f7a1c11")
QUESTIONS = ["How do I reset my password?", "Where is my order?", "Can I change my delivery address?",
             "How do I cancel my subscription?", "Why was I charged twice?", "Is there a student discount?"]


async def seed_demo(state: Any, tenant_id: UUID) -> None:
    try:
        made = await _policies(state, tenant_id)
        for _ in range(600):  # the ingestion engine starts after the demo hooks
            if state.ingestor is not None:
                break
            await asyncio.sleep(0.1)
        else:
            return
        events = await _anchored_events(state, tenant_id, made)
        for start in range(0, len(events), 500):
            await ingest_events(state, tenant_id, events[start:start + 500])
        await _rewards(state, tenant_id)
        log.info("rlaas demo ready", interactions=INTERACTIONS)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("rlaas demo failed")


async def _rewards(state: Any, tenant_id: UUID) -> None:
    """Rewards and pairs at once, so the console's policy comparison shows mean rewards (the
    five-minute cron would get there too): once the interactions are projected, one job run."""
    for _ in range(100):
        projected = await state.db.fetchval("SELECT count(*) FROM rlaas_interactions WHERE tenant_id = $1",
                                            tenant_id)
        if projected >= INTERACTIONS:
            break
        await asyncio.sleep(0.1)
    _, task = await run_here(state, rewards.JOB, ComputeRewards(), tenant_id=tenant_id)
    await task


async def _policies(state: Any, tenant_id: UUID) -> dict[str, Any]:
    existing = {p.name: p for p in (await policies.list_policies(state.db, tenant_id, route=ROUTE)).items}
    wanted = [PolicyCreate(route=ROUTE, name="gpt-4o-mini", status="active", upstream=Upstream(
                  base_url=OPENAI, model="gpt-4o-mini"), description="What answers support drafts today."),
              PolicyCreate(route=ROUTE, name="gpt-4o", status="canary", canary_share=0.1, upstream=Upstream(
                  base_url=OPENAI, model="gpt-4o"), description="A bigger model on 10% of users."),
              PolicyCreate(route=ROUTE, name="gpt-4-1-mini", status="shadow", upstream=Upstream(
                  base_url=OPENAI, model="gpt-4.1-mini"), description="Mirrored, never answers.")]
    for data in wanted:
        if data.name not in existing:
            existing[data.name] = await policies.create(state, tenant_id, None, data)
    return existing


async def _anchored_events(state: Any, tenant_id: UUID, made: dict[str, Any]) -> list[Any]:
    """The demo's events, counted back from this hour, or from the hour a first seeding used.

    Seeding again hours later (`flywheel up --demo` restarted) must send the very same events,
    timestamps included, or the ones whose day moved would be stored a second time.
    """
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    events = _events(tenant_id, made, hour)
    first = await state.db.fetchval("SELECT ts FROM rlaas_interactions WHERE tenant_id = $1 AND interaction_id = $2",
                                    tenant_id, events[0].interaction_id)
    if first is not None and first != events[0].ts:
        events = _events(tenant_id, made, hour + (first - events[0].ts))
    return events


def _events(tenant_id: UUID, made: dict[str, Any], now: datetime) -> list[Any]:
    rng = random.Random(7)
    events: list[Any] = []
    for i in range(INTERACTIONS):
        policy = made["gpt-4o"] if rng.random() < 0.1 else made["gpt-4o-mini"]
        question = rng.choice(QUESTIONS)
        ts = now - timedelta(minutes=rng.randrange(7 * 24 * 60))
        interaction = _interaction(tenant_id, i, policy, question, ts, rng)
        events.append(interaction)
        events += _reactions(interaction, i, rng)
    return events


def _interaction(tenant_id: UUID, i: int, policy: Any, question: str, ts: datetime, rng: random.Random):
    iid = uuid.uuid5(_NS, f"interaction-{i}")
    answer = f"Thanks for asking! Here is how: ... ({policy.name})"
    user = user_hash(tenant_id, f"customer-{rng.randrange(60)}")
    completion = rng.randrange(40, 220)
    return Interaction(
        event_id=iid, ts=ts, subject_id=user, interaction_id=iid, route=ROUTE, endpoint="chat.completions",
        policy_id=policy.id, policy=policy.name, policy_version=policy.version, stream=rng.random() < 0.5,
        status=200, latency_ms=round(rng.uniform(300, 2500), 1), ttft_ms=round(rng.uniform(120, 400), 1),
        prompt_tokens=rng.randrange(30, 90), completion_tokens=completion,
        request={"model": ROUTE, "messages": [{"role": "user", "content": question}], "user": user},
        response={"object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]})


def _reactions(interaction: Interaction, i: int, rng: random.Random) -> list[Any]:
    out: list[Any] = []
    good = rng.random() < (0.75 if interaction.policy == "gpt-4o" else 0.6)
    at = interaction.ts + timedelta(minutes=2)
    if rng.random() < 0.4:
        signal = Thumbs(value="up" if good else "down") if rng.random() < 0.6 else Rating(value=5 if good else 2)
        out.append(Feedback(event_id=uuid.uuid5(_NS, f"feedback-{i}"), ts=at, subject_id=interaction.subject_id,
                            interaction_id=interaction.interaction_id, signal=signal))
    if rng.random() < 0.3:
        out.append(TaskResult(event_id=uuid.uuid5(_NS, f"task-{i}"), ts=at + timedelta(hours=1),
                              interaction_id=interaction.interaction_id, task="support_ticket",
                              outcome="success" if good else "failure", score=1.0 if good else 0.0))
    return out
