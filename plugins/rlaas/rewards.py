"""Rewards: one number per interaction, from its feedback and task results.

Each signal an interaction has is read on a -1..1 scale:

- thumbs: the mean of its thumbs (up 1, down -1);
- rating: (mean rating - 3) / 2, so 1 star is -1 and 5 stars 1;
- edit: minus the mean normalized Levenshtein distance between the answer
  (`choices[0].message.content`) and each corrected text (rapidfuzz: edits
  over the longer text's length; 0 the same text, 1 nothing in common);
- task: the mean over its task results of 2 * score - 1 with the score
  clamped to 0..1, or, for a result without a score, its outcome (success 1,
  partial 0, failure -1, abandoned -0.5).

The reward is the weighted mean of the signals present, with the tenant's
weights: sum(w_s * s) / sum(w_s) over the signals s the interaction has and
whose weight is above 0. An interaction with none (no feedback, only
comparisons, or only zero-weight signals) has no reward. Each reward is
stored with its `inputs` ({"weights", "signals", "counts"}) and the settings
version that produced it.

The `rlaas.compute_rewards` job works set by set, never a query per
interaction: a batch of pending interactions is a handful of statements
(prompt hashes, edit distances, one INSERT ... SELECT for the rewards, one
for the comparison and edit pairs), then the prompts whose rewards changed
get their reward-gap pairs again (pairs.py). Each batch is one transaction
that clears what it computed, so a run stopped half-way (cancelled, killed)
leaves the rest pending for the next, and a run over nothing pending does
nothing. One run per tenant at a time (an advisory lock).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import msgspec
import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from flywheel.contracts.jobs import CronSpec, JobSpec
from flywheel.plugins.rlaas import pairs
from flywheel.plugins.rlaas.prompts import prompt_hash
from flywheel.plugins.rlaas.reward_types import ComputeRewards, RewardSettings, RewardSettingsRead, RewardWeights
from flywheel.server.plugin_api import InvalidInput, tenant_ids

JOB = "rlaas.compute_rewards"
BATCH = 10_000
LOCK_WAIT_S = 0.5
# Levenshtein is quadratic: two unrelated 200,000-character texts (the longest an edit may be) take
# ~3.6 s, their first 20,000 characters ~40 ms, and an answer that long is never corrected by hand.
EDIT_CHARS = 20_000
# Feedback naming an interaction that was never recorded stops being retried after this long.
PENDING_EXPIRY = "7 days"
Progress = Callable[..., Awaitable[None]]
# What a run reports (each a count): interactions done, still waiting for their interaction to be
# recorded, or given up on after PENDING_EXPIRY; prompts hashed, edits measured; rewards and pairs
# written or removed; prompts re-paired.
COUNTS = ("interactions", "waiting", "expired", "hashed", "edits", "rewards_written", "rewards_removed",
          "feedback_pairs", "prompts", "gap_pairs_written", "gap_pairs_removed")

# --- settings ---------------------------------------------------------------------------------------

DEFAULTS = RewardSettings()


def check_settings(s: RewardSettings) -> None:
    if not any(msgspec.structs.astuple(s.weights)):
        raise InvalidInput("at least one weight must be above 0", field="$.weights")


async def load_settings(db: Any, tenant_id: UUID) -> RewardSettingsRead:
    row = await db.fetchrow("SELECT weights, pair_min_gap, version, updated_at FROM rlaas_reward_settings "
                            "WHERE tenant_id = $1", tenant_id)
    if row is None:
        return RewardSettingsRead(weights=DEFAULTS.weights, pair_min_gap=DEFAULTS.pair_min_gap, version=0)
    return RewardSettingsRead(weights=msgspec.convert(row["weights"], RewardWeights),
                              pair_min_gap=row["pair_min_gap"], version=row["version"],
                              updated_at=row["updated_at"])


SAVE_SETTINGS = """
INSERT INTO rlaas_reward_settings (tenant_id, weights, pair_min_gap, version) VALUES ($1, $2, $3, 1)
ON CONFLICT (tenant_id) DO UPDATE
   SET weights = EXCLUDED.weights, pair_min_gap = EXCLUDED.pair_min_gap,
       version = rlaas_reward_settings.version + 1, updated_at = now()
 WHERE (rlaas_reward_settings.weights, rlaas_reward_settings.pair_min_gap)
       IS DISTINCT FROM (EXCLUDED.weights, EXCLUDED.pair_min_gap)
RETURNING version"""


async def save_settings(db: Any, tenant_id: UUID, new: RewardSettings) -> tuple[RewardSettingsRead, bool]:
    """Store new settings; (the settings, whether they changed). A change bumps the version."""
    check_settings(new)
    current = await load_settings(db, tenant_id)
    if (current.weights, current.pair_min_gap) == (new.weights, new.pair_min_gap):
        return current, False
    changed = await db.fetchval(SAVE_SETTINGS, tenant_id, msgspec.to_builtins(new.weights), new.pair_min_gap)
    return await load_settings(db, tenant_id), changed is not None


# --- one batch of interactions ------------------------------------------------------------------------

UNHASHED = """
SELECT interaction_id, request FROM rlaas_interactions
 WHERE tenant_id = $1 AND interaction_id = ANY($2::uuid[]) AND prompt_hash IS NULL"""
SET_HASHES = """
UPDATE rlaas_interactions i SET prompt_hash = h.prompt_hash
  FROM unnest($2::uuid[], $3::text[]) AS h (interaction_id, prompt_hash)
 WHERE i.tenant_id = $1 AND i.interaction_id = h.interaction_id AND i.prompt_hash IS NULL"""


async def hash_prompts(conn: Any, tenant_id: UUID, ids: list[UUID]) -> int:
    """Hash the prompts of interactions stored before the projection hashed them."""
    rows = await conn.fetch(UNHASHED, tenant_id, ids)
    if rows:
        await conn.execute(SET_HASHES, tenant_id, [r["interaction_id"] for r in rows],
                           [prompt_hash(tenant_id, r["request"]) for r in rows])
    return len(rows)


UNMEASURED_EDITS = """
SELECT f.event_id, f.interaction_id, f.corrected_text,
       coalesce(i.response #>> '{choices,0,message,content}', '') AS answer
  FROM rlaas_feedback f
  JOIN rlaas_interactions i ON i.tenant_id = f.tenant_id AND i.interaction_id = f.interaction_id
 WHERE f.tenant_id = $1 AND f.interaction_id = ANY($2::uuid[]) AND f.kind = 'edit'
   AND NOT EXISTS (SELECT 1 FROM rlaas_edit_distances d WHERE d.tenant_id = $1 AND d.event_id = f.event_id)"""
SAVE_DISTANCES = """
INSERT INTO rlaas_edit_distances (tenant_id, event_id, interaction_id, distance)
SELECT $1, * FROM unnest($2::uuid[], $3::uuid[], $4::float8[])
ON CONFLICT (tenant_id, event_id) DO NOTHING"""


def edit_distance(answer: str, corrected: str) -> float:
    """Normalized Levenshtein distance of the texts' first EDIT_CHARS characters: edits / the longer
    one's length (0 for two empty texts)."""
    return Levenshtein.normalized_distance(answer[:EDIT_CHARS], corrected[:EDIT_CHARS])


def _distances(answers: list[str], corrected: list[str]) -> list[float]:
    return process.cpdist([a[:EDIT_CHARS] for a in answers], [c[:EDIT_CHARS] for c in corrected],
                          scorer=Levenshtein.normalized_distance, dtype=np.float64, workers=1).tolist()


async def measure_edits(conn: Any, tenant_id: UUID, ids: list[UUID]) -> int:
    """Each new edit's distance to its answer, once per edit event (a long text takes milliseconds:
    off the event loop)."""
    rows = await conn.fetch(UNMEASURED_EDITS, tenant_id, ids)
    if rows:
        distances = await asyncio.to_thread(_distances, [r["answer"] for r in rows],
                                            [r["corrected_text"] for r in rows])
        await conn.execute(SAVE_DISTANCES, tenant_id, [r["event_id"] for r in rows],
                           [r["interaction_id"] for r in rows], distances)
    return len(rows)


# $1 tenant, $2 the batch's interaction ids, $3..$6 the weights of thumbs, rating, edit, task,
# $7 the settings version, $8 the weights as stored in `inputs`.
UPSERT_REWARDS = """
WITH batch AS (
    SELECT interaction_id, prompt_hash, route, policy, policy_version, ts FROM rlaas_interactions
     WHERE tenant_id = $1 AND interaction_id = ANY($2::uuid[]) AND prompt_hash IS NOT NULL
), fb AS (
    SELECT interaction_id,
           avg(value) FILTER (WHERE kind = 'thumbs')::float8 AS thumbs,
           count(*) FILTER (WHERE kind = 'thumbs') AS thumbs_n,
           (avg(value) FILTER (WHERE kind = 'rating')::float8 - 3) / 2 AS rating,
           count(*) FILTER (WHERE kind = 'rating') AS rating_n
      FROM rlaas_feedback
     WHERE tenant_id = $1 AND interaction_id = ANY($2::uuid[]) AND kind IN ('thumbs', 'rating')
     GROUP BY interaction_id
), ed AS (
    SELECT interaction_id, -avg(distance) AS edit, count(*) AS edit_n FROM rlaas_edit_distances
     WHERE tenant_id = $1 AND interaction_id = ANY($2::uuid[]) GROUP BY interaction_id
), tr AS (
    SELECT interaction_id,
           avg(CASE WHEN score IS NOT NULL THEN 2 * least(greatest(score, 0), 1) - 1
                    WHEN outcome = 'success' THEN 1 WHEN outcome = 'partial' THEN 0
                    WHEN outcome = 'failure' THEN -1 ELSE -0.5 END)::float8 AS task,
           count(*) AS task_n
      FROM rlaas_task_results WHERE tenant_id = $1 AND interaction_id = ANY($2::uuid[]) GROUP BY interaction_id
), signals AS (
    SELECT b.*, fb.thumbs, fb.rating, ed.edit, tr.task,
           nullif(fb.thumbs_n, 0) AS thumbs_n, nullif(fb.rating_n, 0) AS rating_n, ed.edit_n, tr.task_n
      FROM batch b LEFT JOIN fb USING (interaction_id) LEFT JOIN ed USING (interaction_id)
      LEFT JOIN tr USING (interaction_id)
), scored AS (
    SELECT s.*,
           (coalesce($3::float8 * thumbs, 0) + coalesce($4::float8 * rating, 0)
            + coalesce($5::float8 * edit, 0) + coalesce($6::float8 * task, 0))
           / nullif(CASE WHEN thumbs IS NULL THEN 0 ELSE $3::float8 END
                    + CASE WHEN rating IS NULL THEN 0 ELSE $4::float8 END
                    + CASE WHEN edit IS NULL THEN 0 ELSE $5::float8 END
                    + CASE WHEN task IS NULL THEN 0 ELSE $6::float8 END, 0) AS reward
      FROM signals s
), written AS (
    INSERT INTO rlaas_rewards (tenant_id, interaction_id, reward, inputs, weights_version, prompt_hash, route,
                               policy, policy_version, ts)
    SELECT $1, interaction_id, reward,
           jsonb_build_object(
               'weights', $8::jsonb,
               'signals', jsonb_strip_nulls(jsonb_build_object('thumbs', thumbs, 'rating', rating, 'edit', edit,
                                                               'task', task)),
               'counts', jsonb_strip_nulls(jsonb_build_object('thumbs', thumbs_n, 'rating', rating_n,
                                                              'edit', edit_n, 'task', task_n))),
           $7, prompt_hash, route, policy, policy_version, ts
      FROM scored WHERE reward IS NOT NULL
    ON CONFLICT (tenant_id, interaction_id) DO UPDATE
       SET reward = EXCLUDED.reward, inputs = EXCLUDED.inputs, weights_version = EXCLUDED.weights_version,
           computed_at = now()
     WHERE (rlaas_rewards.reward, rlaas_rewards.inputs, rlaas_rewards.weights_version)
           IS DISTINCT FROM (EXCLUDED.reward, EXCLUDED.inputs, EXCLUDED.weights_version)
    RETURNING prompt_hash
), removed AS (
    DELETE FROM rlaas_rewards r USING scored s
     WHERE r.tenant_id = $1 AND r.interaction_id = s.interaction_id AND s.reward IS NULL
    RETURNING r.prompt_hash
), marked AS (
    INSERT INTO rlaas_pair_pending (tenant_id, prompt_hash)
    SELECT $1::uuid, prompt_hash FROM written UNION SELECT $1::uuid, prompt_hash FROM removed
    ON CONFLICT DO NOTHING
)
SELECT (SELECT count(*) FROM written) AS written, (SELECT count(*) FROM removed) AS removed"""

# Locked in id order, as the projection marks them, so the two never deadlock. A row whose mark
# changed since it was read (feedback committed meanwhile) stays, and so does one whose
# interaction has not been recorded yet.
LOCK_PENDING = """
SELECT 1 FROM rlaas_reward_pending WHERE tenant_id = $1 AND interaction_id = ANY($2::uuid[])
 ORDER BY interaction_id FOR UPDATE"""
CLEAR_PENDING = """
DELETE FROM rlaas_reward_pending p USING unnest($2::uuid[], $3::bigint[]) AS d (interaction_id, mark)
 WHERE p.tenant_id = $1 AND p.interaction_id = d.interaction_id AND p.mark = d.mark
   AND EXISTS (SELECT 1 FROM rlaas_interactions i WHERE i.tenant_id = $1 AND i.interaction_id = d.interaction_id)"""


async def compute_batch(conn: Any, tenant_id: UUID, settings: RewardSettingsRead, ids: list[UUID],
                        marks: list[int]) -> Counter:
    """Rewards and feedback pairs of one batch of pending interactions, and clear what was done."""
    done = Counter(hashed=await hash_prompts(conn, tenant_id, ids), edits=await measure_edits(conn, tenant_id, ids))
    w = settings.weights
    async with conn.transaction():
        row = await conn.fetchrow(UPSERT_REWARDS, tenant_id, ids, w.thumbs, w.rating, w.edit, w.task,
                                  settings.version, msgspec.to_builtins(w))
        done.update(rewards_written=row["written"], rewards_removed=row["removed"],
                    feedback_pairs=await pairs.insert_feedback_pairs(conn, tenant_id, ids))
        await conn.execute(LOCK_PENDING, tenant_id, ids)
        cleared = await conn.execute(CLEAR_PENDING, tenant_id, ids, marks)
    done.update(interactions=_rows(cleared))
    return done


# --- a tenant's run -----------------------------------------------------------------------------------

# Every interaction the reward or pairs depend on: feedback's, comparisons' other side, task
# results', and those with a reward (which may have to go). One already pending keeps its mark and
# its time (what PENDING_EXPIRY counts from).
MARK_ALL = """
INSERT INTO rlaas_reward_pending (tenant_id, interaction_id)
SELECT $1, interaction_id FROM (
    SELECT interaction_id FROM rlaas_feedback WHERE tenant_id = $1
    UNION SELECT other_interaction_id FROM rlaas_feedback WHERE tenant_id = $1 AND other_interaction_id IS NOT NULL
    UNION SELECT interaction_id FROM rlaas_task_results WHERE tenant_id = $1
    UNION SELECT interaction_id FROM rlaas_rewards WHERE tenant_id = $1) ids
 ORDER BY interaction_id
ON CONFLICT (tenant_id, interaction_id) DO NOTHING"""
MARK_ALL_PROMPTS = """
INSERT INTO rlaas_pair_pending (tenant_id, prompt_hash)
SELECT DISTINCT $1::uuid, prompt_hash FROM rlaas_rewards WHERE tenant_id = $1
ON CONFLICT DO NOTHING"""
SAVE_STATE = """
INSERT INTO rlaas_reward_state (tenant_id, computed_version) VALUES ($1, $2)
ON CONFLICT (tenant_id) DO UPDATE SET computed_version = EXCLUDED.computed_version, updated_at = now()"""
FIRST_PENDING = """
SELECT interaction_id, mark FROM rlaas_reward_pending WHERE tenant_id = $1 ORDER BY interaction_id LIMIT $2"""
NEXT_PENDING = """
SELECT interaction_id, mark FROM rlaas_reward_pending WHERE tenant_id = $1 AND interaction_id > $3
 ORDER BY interaction_id LIMIT $2"""

EXPIRE_PENDING = f"""
DELETE FROM rlaas_reward_pending p
 WHERE tenant_id = $1 AND marked_at < now() - interval '{PENDING_EXPIRY}'
   AND NOT EXISTS (SELECT 1 FROM rlaas_interactions i WHERE i.tenant_id = $1 AND i.interaction_id = p.interaction_id)"""


def _rows(result: str) -> int:
    return int(result.split()[-1])  # asyncpg's status, e.g. "DELETE 12"


async def start_pass(conn: Any, tenant_id: UUID, version: int, full: bool) -> bool:
    """Mark everything pending when asked, or when the settings changed since the last full pass
    (a weight going from 0 to 1 gives a reward to interactions that had none)."""
    computed = await conn.fetchval("SELECT computed_version FROM rlaas_reward_state WHERE tenant_id = $1",
                                   tenant_id)
    if not full and computed == version:
        return False
    async with conn.transaction():
        await conn.execute(MARK_ALL, tenant_id)
        if full:
            await conn.execute(MARK_ALL_PROMPTS, tenant_id)
        await conn.execute(SAVE_STATE, tenant_id, version)
    return True


async def drain_pending(conn: Any, tenant_id: UUID, settings: RewardSettingsRead, progress: Progress,
                        batch: int) -> Counter:
    total = await conn.fetchval("SELECT count(*) FROM rlaas_reward_pending WHERE tenant_id = $1", tenant_id)
    done, seen, last = Counter(), 0, None
    while True:
        rows = await (conn.fetch(FIRST_PENDING, tenant_id, batch) if last is None
                      else conn.fetch(NEXT_PENDING, tenant_id, batch, last))
        if not rows:
            break
        ids, marks = [r["interaction_id"] for r in rows], [r["mark"] for r in rows]
        last = ids[-1]
        done.update(await compute_batch(conn, tenant_id, settings, ids, marks))
        seen += len(ids)
        await progress(seen, max(total, seen), f"rewards: {seen:,} of {max(total, seen):,} interactions")
    done["expired"] = _rows(await conn.execute(EXPIRE_PENDING, tenant_id))
    done["waiting"] = await conn.fetchval("SELECT count(*) FROM rlaas_reward_pending WHERE tenant_id = $1",
                                          tenant_id)
    return done


async def _lock(conn: Any, tenant_id: UUID, progress: Progress) -> None:
    """One run per tenant at a time; waiting stays cancellable (progress raises JobCancelled)."""
    while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended('rlaas.rewards:' || $1, 0))",
                                  str(tenant_id)):
        await progress(0, None, "waiting for this tenant's other rewards run")
        await asyncio.sleep(LOCK_WAIT_S)


async def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


async def compute_tenant(db: Any, tenant_id: UUID, *, full: bool = False, progress: Progress = _nothing,
                         batch: int = BATCH) -> dict[str, int]:
    """Bring one tenant's rewards and pairs up to date with its feedback and settings."""
    async with db.acquire() as conn:
        await _lock(conn, tenant_id, progress)
        try:
            settings = await load_settings(conn, tenant_id)
            marked_all = await start_pass(conn, tenant_id, settings.version, full)
            done = await drain_pending(conn, tenant_id, settings, progress, batch)
            done.update(await pairs.drain_prompts(conn, tenant_id, settings.pair_min_gap, progress, batch))
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtextextended('rlaas.rewards:' || $1, 0))",
                               str(tenant_id))
    return {"version": settings.version, "full_pass": int(marked_all), **{k: done[k] for k in COUNTS}}


async def compute_rewards_job(ctx: Any, payload: ComputeRewards) -> dict:
    """For the tenant that queued it, or (a cron tick) for every tenant."""
    tenants = [ctx.tenant_id] if ctx.tenant_id is not None else await tenant_ids(ctx.state)
    totals: Counter = Counter()
    for tenant_id in tenants:
        result = await compute_tenant(ctx.state.db, tenant_id, full=payload.full, progress=ctx.progress)
        if ctx.tenant_id is not None:
            await ctx.progress(1, 1, "done", force=True)
            return result
        totals.update({k: v for k, v in result.items() if k != "version"})
    return {"tenants": len(tenants), **totals}


SPEC = JobSpec(name=JOB, func=compute_rewards_job, payload=ComputeRewards, timeout_s=6 * 3600,
               description="Compute the rlaas rewards and preference pairs of new feedback (incremental, "
                           "idempotent; payload: full)")
# Feedback becomes rewards within minutes without anyone asking; a tick over nothing pending is a few queries.
CRON = CronSpec(name="rlaas.compute_rewards_often", job=JOB, minute=set(range(0, 60, 5)), payload=ComputeRewards())
