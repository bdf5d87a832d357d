"""Preference pairs: for one prompt, which answer beats which, and what says so (`source`).

- comparison: a comparison feedback event on A naming B: `preferred` `this`
  makes A chosen and B rejected, `other` the reverse, `tie` no pair. Both
  interactions must be recorded and have the same prompt hash (a DPO pair
  has one prompt); the pair is for A's prompt.
- edit: an edit's corrected text (`chosen_text`) beats the interaction's own
  answer; an edit that changed nothing (distance 0) makes no pair.
- reward_gap: within the rewarded interactions of one prompt hash, ranked by
  reward (high first, ties by interaction id), the best is paired with the
  worst, the second best with the second worst, and so on inward; a pair is
  kept when the chosen one's reward exceeds the rejected one's by more than
  the tenant's `pair_min_gap`. Each interaction is in at most one such pair,
  so a prompt with n answers gives at most n / 2 pairs (not n^2), and equal
  rewards never make one.

`pair_id` is a uuid5 of (source, chosen, rejected, feedback event), so
deriving a pair again finds the row it made before. Comparison and edit
pairs never change once made (feedback is never edited); a prompt's
reward-gap pairs are derived again whenever one of its rewards changes, and
those no longer derived are deleted.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

PAIR_NAMESPACE = uuid.UUID("1b0e7f5e-6a43-5d0c-9e55-2a7d3c1f9b80")


def pair_id(source: str, chosen: UUID, rejected: UUID, feedback_event_id: UUID | None = None) -> UUID:
    """The pair's id: uuid5 of "source:chosen:rejected:feedback_event_id" (the last empty for reward_gap)."""
    return uuid.uuid5(PAIR_NAMESPACE, f"{source}:{chosen}:{rejected}:{feedback_event_id or ''}")


def _rows(result: str) -> int:
    return int(result.split()[-1])  # asyncpg's status, e.g. "INSERT 0 12"


# --- comparison and edit pairs, for a batch of interactions --------------------------------------------

FEEDBACK_EVENTS = """
SELECT event_id, kind, interaction_id, other_interaction_id, preferred FROM rlaas_feedback
 WHERE tenant_id = $1 AND interaction_id = ANY($2::uuid[])
   AND (kind = 'edit' OR kind = 'comparison' AND preferred <> 'tie')
UNION
SELECT event_id, kind, interaction_id, other_interaction_id, preferred FROM rlaas_feedback
 WHERE tenant_id = $1 AND other_interaction_id = ANY($2::uuid[]) AND kind = 'comparison' AND preferred <> 'tie'"""
# The pair ids come from Python (Postgres has no uuid5 without an extension); the rest is joined here.
# `this` is the interaction the feedback came on, `other` a comparison's other side (an edit's: itself),
# both passed in so that each join is a primary-key lookup.
INSERT_FEEDBACK_PAIRS = """
INSERT INTO rlaas_pairs (tenant_id, pair_id, source, prompt_hash, interaction_id, chosen_interaction_id,
                         rejected_interaction_id, chosen_text, feedback_event_id, route, ts)
SELECT $1, p.pair_id, f.kind, a.prompt_hash, a.interaction_id, p.chosen, p.rejected, f.corrected_text,
       f.event_id, a.route, greatest(a.ts, b.ts)
  FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[], $7::uuid[])
       AS p (event_id, pair_id, chosen, rejected, this, other)
  JOIN rlaas_feedback f ON f.tenant_id = $1 AND f.event_id = p.event_id
  JOIN rlaas_interactions a ON a.tenant_id = $1 AND a.interaction_id = p.this
  JOIN rlaas_interactions b ON b.tenant_id = $1 AND b.interaction_id = p.other
 WHERE a.prompt_hash = b.prompt_hash
   AND CASE f.kind WHEN 'comparison' THEN a.interaction_id <> b.interaction_id
                   ELSE EXISTS (SELECT 1 FROM rlaas_edit_distances d
                                 WHERE d.tenant_id = $1 AND d.event_id = f.event_id AND d.distance > 0) END
ON CONFLICT (tenant_id, pair_id) DO NOTHING"""


def feedback_pair(row: Any) -> tuple[UUID, UUID, UUID]:
    """(pair_id, chosen, rejected) of a comparison or edit feedback row."""
    this, other = row["interaction_id"], row["other_interaction_id"]
    if row["kind"] == "edit":
        chosen = rejected = this
    else:
        chosen, rejected = (this, other) if row["preferred"] == "this" else (other, this)
    return pair_id(row["kind"], chosen, rejected, row["event_id"]), chosen, rejected


async def insert_feedback_pairs(conn: Any, tenant_id: UUID, ids: list[UUID]) -> int:
    """The comparison and edit pairs of the feedback on (or, for comparisons, naming) these interactions."""
    rows = await conn.fetch(FEEDBACK_EVENTS, tenant_id, ids)
    if not rows:
        return 0
    made = [feedback_pair(r) for r in rows]
    return _rows(await conn.execute(
        INSERT_FEEDBACK_PAIRS, tenant_id, [r["event_id"] for r in rows], [m[0] for m in made],
        [m[1] for m in made], [m[2] for m in made], [r["interaction_id"] for r in rows],
        [r["other_interaction_id"] or r["interaction_id"] for r in rows]))


# --- reward-gap pairs, for a batch of prompts -----------------------------------------------------------

# Rank k from the top meets rank k from the bottom; `best < worst` keeps each pair once, and the
# middle one of an odd count out.
GAP_PAIRS = """
WITH ranked AS (
    SELECT interaction_id, prompt_hash, reward,
           row_number() OVER (PARTITION BY prompt_hash ORDER BY reward DESC, interaction_id) AS best,
           row_number() OVER (PARTITION BY prompt_hash ORDER BY reward, interaction_id DESC) AS worst
      FROM rlaas_rewards WHERE tenant_id = $1 AND prompt_hash = ANY($2::text[])
)
SELECT c.interaction_id AS chosen, r.interaction_id AS rejected
  FROM ranked c JOIN ranked r ON r.prompt_hash = c.prompt_hash AND r.worst = c.best
 WHERE c.best < c.worst AND c.reward - r.reward > $3"""
UPSERT_GAP_PAIRS = """
INSERT INTO rlaas_pairs (tenant_id, pair_id, source, prompt_hash, interaction_id, chosen_interaction_id,
                         rejected_interaction_id, gap, route, ts)
SELECT $1, p.pair_id, 'reward_gap', c.prompt_hash, c.interaction_id, c.interaction_id, r.interaction_id,
       c.reward - r.reward, c.route, greatest(c.ts, r.ts)
  FROM unnest($2::uuid[], $3::uuid[], $4::uuid[]) AS p (pair_id, chosen, rejected)
  JOIN rlaas_rewards c ON c.tenant_id = $1 AND c.interaction_id = p.chosen
  JOIN rlaas_rewards r ON r.tenant_id = $1 AND r.interaction_id = p.rejected
ON CONFLICT (tenant_id, pair_id) DO UPDATE SET gap = EXCLUDED.gap
 WHERE rlaas_pairs.gap IS DISTINCT FROM EXCLUDED.gap"""
DELETE_STALE_GAP_PAIRS = """
DELETE FROM rlaas_pairs
 WHERE tenant_id = $1 AND source = 'reward_gap' AND prompt_hash = ANY($2::text[]) AND pair_id <> ALL($3::uuid[])"""
CLEAR_PROMPTS = "DELETE FROM rlaas_pair_pending WHERE tenant_id = $1 AND prompt_hash = ANY($2::text[])"
NEXT_PROMPTS = """
SELECT prompt_hash FROM rlaas_pair_pending WHERE tenant_id = $1 AND prompt_hash > $2
 ORDER BY prompt_hash LIMIT $3"""


async def gap_pairs_of(conn: Any, tenant_id: UUID, hashes: list[str], min_gap: float) -> Counter:
    """Derive these prompts' reward-gap pairs again: upsert what is derived, delete the rest."""
    rows = await conn.fetch(GAP_PAIRS, tenant_id, hashes, min_gap)
    chosen, rejected = [r["chosen"] for r in rows], [r["rejected"] for r in rows]
    ids = [pair_id("reward_gap", c, r) for c, r in zip(chosen, rejected, strict=True)]
    async with conn.transaction():
        written = _rows(await conn.execute(UPSERT_GAP_PAIRS, tenant_id, ids, chosen, rejected))
        removed = _rows(await conn.execute(DELETE_STALE_GAP_PAIRS, tenant_id, hashes, ids))
        await conn.execute(CLEAR_PROMPTS, tenant_id, hashes)
    return Counter(prompts=len(hashes), gap_pairs_written=written, gap_pairs_removed=removed)


async def drain_prompts(conn: Any, tenant_id: UUID, min_gap: float, progress: Callable[..., Awaitable[None]],
                        batch: int) -> Counter:
    """Every prompt whose rewards changed (`rlaas_pair_pending`), a batch of prompts at a time."""
    total = await conn.fetchval("SELECT count(*) FROM rlaas_pair_pending WHERE tenant_id = $1", tenant_id)
    done, last = Counter(), ""
    while hashes := [r["prompt_hash"] for r in await conn.fetch(NEXT_PROMPTS, tenant_id, last, batch)]:
        last = hashes[-1]
        done.update(await gap_pairs_of(conn, tenant_id, hashes, min_gap))
        await progress(done["prompts"], max(total, done["prompts"]),
                       f"pairs: {done['prompts']:,} of {max(total, done['prompts']):,} prompts")
    return done
