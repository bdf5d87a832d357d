"""rlaas rewards benchmark: reward and preference-pair generation, set-based, against a query-per-interaction loop.

    python -m benchmarks.rlaas_rewards [--size N] [--quick]

In one run, against one Postgres:
1. generate N interactions (default 1,000,000; `--quick` 20,000) with their
   feedback and task results, and COPY them into the rlaas tables as the
   projection stores them: prompt hashes computed, every interaction marked
   pending (not timed). About one prompt in four is asked again (4 answers a
   prompt on average, some with other case and spacing); per interaction:
   thumbs 50% (some twice), a rating 30%, an edit 10% (a tenth of them
   unchanged), a task result 40% (half with a score), a comparison with an
   earlier answer to the same prompt 10%;
2. time `rlaas.compute_rewards` (a burst worker runs it) over all of them
   -> `flywheel_interactions_per_s`;
3. keep its output aside, clear the rewards and pairs, mark the same
   interactions pending again, VACUUM, and time the peer: the same
   computation written the plain way, one interaction at a time in asyncpg
   (fetch its row, its feedback and its task results, the comparisons
   naming it, compute in Python, upsert the reward, insert each pair, one
   transaction per interaction; then one prompt at a time for the reward-gap
   pairs) -> `peer_interactions_per_s`;
4. check that both wrote the same rewards (within 1e-9) and the same pairs.
`ratio` is Flywheel's interactions/s over the peer's. Prints a table, then
one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from rich.console import Console
from rich.table import Table

from benchmarks.services import BenchServices, run_job_now
from flywheel.plugins.rlaas.pairs import pair_id
from flywheel.plugins.rlaas.prompts import prompt_hash
from flywheel.plugins.rlaas.rewards import edit_distance
from flywheel.server.app import build_state
from flywheel.server.auth import service
from flywheel.server.settings import load_settings

console = Console(stderr=True)
CHUNK = 50_000
SEED = 7
START = datetime(2026, 6, 1, tzinfo=UTC)
ROUTES = ["support-draft", "billing", "search"]
VERBS = ["reset", "change", "cancel", "update", "find", "export", "delete", "share"]
NOUNS = ["password", "order", "address", "subscription", "invoice", "account", "profile", "plan"]
OUTCOMES = ["success", "failure", "partial", "abandoned"]
INTERACTION_COLUMNS = ["tenant_id", "interaction_id", "event_id", "ts", "route", "endpoint", "policy_id", "policy",
                       "policy_version", "role", "stream", "status", "latency_ms", "tokens_counted", "request",
                       "response", "prompt_hash"]
FEEDBACK_COLUMNS = ["tenant_id", "event_id", "interaction_id", "ts", "kind", "value", "corrected_text",
                    "other_interaction_id", "preferred"]
TASK_COLUMNS = ["tenant_id", "event_id", "interaction_id", "ts", "task", "outcome", "score"]


# --- 1. the data ---------------------------------------------------------------------------------------

class Generator:
    """Interactions with feedback, chunk by chunk (1M rows at once would not fit in memory as tuples)."""

    def __init__(self, tenant_id: uuid.UUID, size: int) -> None:
        self.tenant_id, self.size = tenant_id, size
        self.rng = random.Random(SEED)
        self.prompts = max(1, size // 4)
        self.last_answer: dict[int, uuid.UUID] = {}  # prompt -> its latest interaction, for comparisons
        self.policies = [(uuid.UUID(int=self.rng.getrandbits(128), version=4), name) for name in ("base", "tuned")]

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def prompt_text(self, k: int) -> str:
        text = f"How do I {VERBS[k % 8]} my {NOUNS[(k // 8) % 8]}? (case {k})"
        roll = self.rng.random()  # the same prompt as another client sends it: normalized away
        return text.upper() if roll < 0.1 else f"  {text.replace(' ', '  ')}\n" if roll < 0.2 else text

    def chunk(self, start: int, stop: int) -> tuple[list, list, list]:
        interactions, feedback, tasks = [], [], []
        for n in range(start, stop):
            k = self.rng.randrange(self.prompts)
            iid, ts = self.uid(), START + timedelta(seconds=n * 2.5)
            route = ROUTES[k % 3]
            policy_id, policy = self.policies[self.rng.random() < 0.3]
            request = {"model": route, "messages": [{"role": "system", "content": "You answer support questions."},
                                                    {"role": "user", "content": self.prompt_text(k)}]}
            answer = f"Open Settings, then {VERBS[k % 8].title()} and follow the steps ({self.rng.randrange(50)})."
            interactions.append((self.tenant_id, iid, self.uid(), ts, route, "chat.completions", policy_id, policy,
                                 1, "primary", False, 200, 100 + self.rng.random() * 900, False,
                                 json.dumps(request), json.dumps({"choices": [{"message": {
                                     "role": "assistant", "content": answer}}]}), prompt_hash(self.tenant_id, request)))
            mine = self.feedback_of(iid, ts, k, answer)
            if self.rng.random() < 0.4:
                score = round(self.rng.random(), 2) if self.rng.random() < 0.5 else None
                tasks.append((self.tenant_id, self.uid(), iid, ts + timedelta(minutes=5), "ticket.resolve",
                              self.rng.choice(OUTCOMES), score))
            elif not mine:  # every interaction has something
                mine.append(self.row(iid, ts, "thumbs", value=1))
            feedback += mine
            self.last_answer[k] = iid
        return interactions, feedback, tasks

    def row(self, iid, ts, kind, *, value=None, corrected=None, other=None, preferred=None) -> tuple:
        return (self.tenant_id, self.uid(), iid, ts + timedelta(minutes=1), kind, value, corrected, other, preferred)

    def feedback_of(self, iid: uuid.UUID, ts: datetime, k: int, answer: str) -> list[tuple]:
        rng, out = self.rng, []
        if rng.random() < 0.5:
            out += [self.row(iid, ts, "thumbs", value=rng.choice((-1, 1))) for _ in range(1 + (rng.random() < 0.2))]
        if rng.random() < 0.3:
            out.append(self.row(iid, ts, "rating", value=rng.randint(1, 5)))
        if rng.random() < 0.1:
            corrected = answer if rng.random() < 0.1 else answer.replace("Open Settings", rng.choice(
                ("Go to Settings", "Open the app's Settings", "Tap your avatar")))
            out.append(self.row(iid, ts, "edit", corrected=corrected))
        if rng.random() < 0.1 and k in self.last_answer:
            out.append(self.row(iid, ts, "comparison", other=self.last_answer[k],
                                preferred=rng.choice(("this", "other", "tie"))))
        return out


async def load(dsn: str, tenant_id: uuid.UUID, size: int) -> dict[str, int]:
    gen, counts = Generator(tenant_id, size), {"interactions": 0, "feedback": 0, "task_results": 0}
    conn = await asyncpg.connect(dsn)  # a plain connection: jsonb goes in as text, COPY binary
    try:
        for start in range(0, size, CHUNK):
            interactions, feedback, tasks = gen.chunk(start, min(size, start + CHUNK))
            await conn.copy_records_to_table("rlaas_interactions", records=interactions, columns=INTERACTION_COLUMNS)
            await conn.copy_records_to_table("rlaas_feedback", records=feedback, columns=FEEDBACK_COLUMNS)
            await conn.copy_records_to_table("rlaas_task_results", records=tasks, columns=TASK_COLUMNS)
            counts["interactions"] += len(interactions)
            counts["feedback"] += len(feedback)
            counts["task_results"] += len(tasks)
            console.print(f"  {counts['interactions']:,} interactions loaded", end="\r")
        await mark_pending(conn, tenant_id)
        # As after an earlier run: this run is the ordinary incremental one, not a first full pass.
        await conn.execute("INSERT INTO rlaas_reward_state (tenant_id, computed_version) VALUES ($1, 0)", tenant_id)
        await conn.execute("VACUUM ANALYZE rlaas_interactions, rlaas_feedback, rlaas_task_results, "
                           "rlaas_reward_pending")
    finally:
        await conn.close()
    return counts


async def mark_pending(conn, tenant_id) -> None:
    """What the projection marks as it stores feedback and task results."""
    await conn.execute(
        """INSERT INTO rlaas_reward_pending (tenant_id, interaction_id)
           SELECT $1, interaction_id FROM rlaas_feedback WHERE tenant_id = $1
           UNION SELECT $1, other_interaction_id FROM rlaas_feedback
                  WHERE tenant_id = $1 AND other_interaction_id IS NOT NULL
           UNION SELECT $1, interaction_id FROM rlaas_task_results WHERE tenant_id = $1""", tenant_id)


# --- 3. the peer ---------------------------------------------------------------------------------------

OUTCOME_VALUE = {"success": 1.0, "partial": 0.0, "failure": -1.0, "abandoned": -0.5}
W = {"thumbs": 1.0, "rating": 1.0, "edit": 1.0, "task": 1.0}  # the defaults the benchmark runs with
MIN_GAP = 0.5


def peer_reward(feedback, tasks, answer: str) -> float | None:
    """The documented formula, in Python, for one interaction."""
    thumbs = [f["value"] for f in feedback if f["kind"] == "thumbs"]
    ratings = [f["value"] for f in feedback if f["kind"] == "rating"]
    edits = [edit_distance(answer, f["corrected_text"]) for f in feedback if f["kind"] == "edit"]
    task = [2 * min(max(t["score"], 0), 1) - 1 if t["score"] is not None else OUTCOME_VALUE[t["outcome"]]
            for t in tasks]
    signals = {"thumbs": sum(thumbs) / len(thumbs) if thumbs else None,
               "rating": (sum(ratings) / len(ratings) - 3) / 2 if ratings else None,
               "edit": -sum(edits) / len(edits) if edits else None,
               "task": sum(task) / len(task) if task else None}
    weight = sum(W[s] for s, v in signals.items() if v is not None)
    if not weight:
        return None
    return sum(W[s] * v for s, v in signals.items() if v is not None) / weight


async def peer_interaction(conn, t, iid, hashes: set) -> None:
    row = await conn.fetchrow("SELECT prompt_hash, route, policy, policy_version, ts, response #>> "
                              "'{choices,0,message,content}' AS answer FROM rlaas_interactions "
                              "WHERE tenant_id = $1 AND interaction_id = $2", t, iid)
    if row is None:
        return
    feedback = await conn.fetch("SELECT event_id, kind, value, corrected_text, interaction_id, other_interaction_id, "
                                "preferred FROM rlaas_feedback WHERE tenant_id = $1 AND interaction_id = $2", t, iid)
    tasks = await conn.fetch("SELECT outcome, score FROM rlaas_task_results WHERE tenant_id = $1 "
                             "AND interaction_id = $2", t, iid)
    reward = peer_reward(feedback, tasks, row["answer"] or "")
    if reward is not None:
        await conn.execute(
            """INSERT INTO rlaas_rewards (tenant_id, interaction_id, reward, inputs, weights_version, prompt_hash,
                                          route, policy, policy_version, ts)
               VALUES ($1, $2, $3, '{}', 0, $4, $5, $6, $7, $8)
               ON CONFLICT (tenant_id, interaction_id) DO UPDATE SET reward = EXCLUDED.reward""",
            t, iid, reward, row["prompt_hash"], row["route"], row["policy"], row["policy_version"], row["ts"])
        hashes.add(row["prompt_hash"])
    elif await conn.execute("DELETE FROM rlaas_rewards WHERE tenant_id = $1 AND interaction_id = $2", t, iid) \
            != "DELETE 0":
        hashes.add(row["prompt_hash"])
    naming = await conn.fetch("SELECT event_id, kind, corrected_text, interaction_id, other_interaction_id, "
                              "preferred FROM rlaas_feedback WHERE tenant_id = $1 AND other_interaction_id = $2",
                              t, iid)
    for f in [*feedback, *naming]:
        await peer_feedback_pair(conn, t, f, iid, row)
    await conn.execute("DELETE FROM rlaas_reward_pending WHERE tenant_id = $1 AND interaction_id = $2", t, iid)


async def peer_feedback_pair(conn, t, f, iid, row) -> None:
    if f["kind"] == "edit":
        if edit_distance(row["answer"] or "", f["corrected_text"]) == 0:
            return
        await conn.execute(
            """INSERT INTO rlaas_pairs (tenant_id, pair_id, source, prompt_hash, interaction_id, chosen_interaction_id,
                                        rejected_interaction_id, chosen_text, feedback_event_id, route, ts)
               VALUES ($1, $2, 'edit', $3, $4, $4, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
            t, pair_id("edit", iid, iid, f["event_id"]), row["prompt_hash"], iid, f["corrected_text"],
            f["event_id"], row["route"], row["ts"])
        return
    if f["kind"] != "comparison" or f["preferred"] == "tie":
        return
    this, other = f["interaction_id"], f["other_interaction_id"]
    a = row if this == iid else await conn.fetchrow(
        "SELECT prompt_hash, route, ts FROM rlaas_interactions WHERE tenant_id = $1 AND interaction_id = $2", t, this)
    b = row if other == iid else await conn.fetchrow(
        "SELECT prompt_hash, route, ts FROM rlaas_interactions WHERE tenant_id = $1 AND interaction_id = $2", t, other)
    if a is None or b is None or this == other or a["prompt_hash"] != b["prompt_hash"]:
        return
    chosen, rejected = (this, other) if f["preferred"] == "this" else (other, this)
    await conn.execute(
        """INSERT INTO rlaas_pairs (tenant_id, pair_id, source, prompt_hash, interaction_id, chosen_interaction_id,
                                    rejected_interaction_id, feedback_event_id, route, ts)
           VALUES ($1, $2, 'comparison', $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING""",
        t, pair_id("comparison", chosen, rejected, f["event_id"]), a["prompt_hash"], this, chosen, rejected,
        f["event_id"], a["route"], max(a["ts"], b["ts"]))


async def peer_prompt(conn, t, h: str) -> None:
    ranked = await conn.fetch("SELECT interaction_id, reward, route, ts FROM rlaas_rewards WHERE tenant_id = $1 "
                              "AND prompt_hash = $2 ORDER BY reward DESC, interaction_id", t, h)
    kept = []
    for k in range(len(ranked) // 2):
        c, r = ranked[k], ranked[-1 - k]
        if c["reward"] - r["reward"] > MIN_GAP:
            kept.append(pid := pair_id("reward_gap", c["interaction_id"], r["interaction_id"]))
            await conn.execute(
                """INSERT INTO rlaas_pairs (tenant_id, pair_id, source, prompt_hash, interaction_id,
                                            chosen_interaction_id, rejected_interaction_id, gap, route, ts)
                   VALUES ($1, $2, 'reward_gap', $3, $4, $4, $5, $6, $7, $8)
                   ON CONFLICT (tenant_id, pair_id) DO UPDATE SET gap = EXCLUDED.gap""",
                t, pid, h, c["interaction_id"], r["interaction_id"], c["reward"] - r["reward"], c["route"],
                max(c["ts"], r["ts"]))
    await conn.execute("DELETE FROM rlaas_pairs WHERE tenant_id = $1 AND source = 'reward_gap' AND prompt_hash = $2 "
                       "AND pair_id <> ALL($3::uuid[])", t, h, kept)


async def peer(dsn: str, t: uuid.UUID) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        ids = [r[0] for r in await conn.fetch(
            "SELECT interaction_id FROM rlaas_reward_pending WHERE tenant_id = $1 ORDER BY interaction_id", t)]
        hashes: set[str] = set()
        # One transaction per interaction and per prompt (generous: autocommit would pay a commit per write).
        for n, iid in enumerate(ids):
            async with conn.transaction():
                await peer_interaction(conn, t, iid, hashes)
            if n % 5000 == 0:
                console.print(f"  peer: {n:,} of {len(ids):,} interactions", end="\r")
        for h in sorted(hashes):
            async with conn.transaction():
                await peer_prompt(conn, t, h)
    finally:
        await conn.close()


# --- 2 and 4: Flywheel's run, and the check ------------------------------------------------------------

KEEP = """
CREATE TABLE bench_rewards AS SELECT interaction_id, reward FROM rlaas_rewards WHERE tenant_id = $1;
CREATE TABLE bench_pairs AS SELECT pair_id, source, chosen_text, gap FROM rlaas_pairs WHERE tenant_id = $1;
DELETE FROM rlaas_rewards WHERE tenant_id = $1; DELETE FROM rlaas_pairs WHERE tenant_id = $1;
DELETE FROM rlaas_edit_distances WHERE tenant_id = $1; DELETE FROM rlaas_pair_pending WHERE tenant_id = $1"""
DIFFERENCES = """
SELECT (SELECT count(*) FROM bench_rewards b FULL JOIN rlaas_rewards r USING (interaction_id)
         WHERE r.reward IS NULL OR b.reward IS NULL OR abs(r.reward - b.reward) > 1e-9) AS rewards,
       (SELECT count(*) FROM bench_pairs b FULL JOIN rlaas_pairs p USING (pair_id)
         WHERE p.pair_id IS NULL OR b.pair_id IS NULL OR p.source <> b.source
            OR p.chosen_text IS DISTINCT FROM b.chosen_text OR abs(coalesce(p.gap, 0) - coalesce(b.gap, 0)) > 1e-9)
         AS pairs"""


async def keep_flywheels_output(dsn: str, t: uuid.UUID) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        by_source = {r["source"]: r["n"] for r in await conn.fetch(
            "SELECT source, count(*) AS n FROM rlaas_pairs WHERE tenant_id = $1 GROUP BY source", t)}
        rewards = await conn.fetchval("SELECT count(*) FROM rlaas_rewards WHERE tenant_id = $1", t)
        for statement in KEEP.strip().split(";"):
            await conn.execute(statement.replace("$1", f"'{t}'::uuid"))
        await mark_pending(conn, t)
        await conn.execute("VACUUM ANALYZE rlaas_rewards, rlaas_pairs, rlaas_reward_pending, rlaas_edit_distances")
    finally:
        await conn.close()
    return {"rewards": rewards, **by_source}


async def differences(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return dict(await conn.fetchrow(DIFFERENCES))
    finally:
        await conn.close()


async def main_async(args) -> dict:
    svc = BenchServices()
    await svc.start()
    env = {"DATABASE_URL": svc.database_url, "REDIS_URL": svc.redis_url,
           "FLYWHEEL_DATA_DIR": str(svc.scratch / "data"), "FLYWHEEL_QUEUE": f"bench-rlaas-{os.getpid()}"}
    state = build_state(load_settings(env), load_entrypoints=True)
    await state.start()
    try:
        tenant = await service.create_tenant(state.db, "bench")
        console.print(f"[bold]generating[/] {args.size:,} interactions with feedback, COPY (not timed) ...")
        loaded = await load(svc.database_url, tenant.id, args.size)
        console.print(f"\n[bold]flywheel[/] rlaas.compute_rewards over {loaded['interactions']:,} interactions ...")
        started = time.perf_counter()
        result = await run_job_now(state, "rlaas.compute_rewards", {}, tenant.id)
        flywheel_s = time.perf_counter() - started
        made = await keep_flywheels_output(svc.database_url, tenant.id)
        console.print("[bold]peer[/] the same, one interaction at a time ...")
        started = time.perf_counter()
        await peer(svc.database_url, tenant.id)
        peer_s = time.perf_counter() - started
        diff = await differences(svc.database_url)
    finally:
        await state.stop()
        await svc.stop()
    n = loaded["interactions"]
    out = Table(title=f"rlaas rewards and pairs, {n:,} interactions ({svc.where}, {os.cpu_count()} cores)")
    for c in ("", "seconds", "interactions/s"):
        out.add_column(c, justify="right")
    out.add_row("Flywheel (set-based job)", f"{flywheel_s:.1f}", f"{n / flywheel_s:,.0f}")
    out.add_row("peer (SQL per interaction)", f"{peer_s:.1f}", f"{n / peer_s:,.0f}")
    console.print(out)
    console.print(f"{loaded['feedback']:,} feedback, {loaded['task_results']:,} task results -> {made}; "
                  f"differences between the two: {diff}")
    return {"size": n, "feedback": loaded["feedback"], "task_results": loaded["task_results"],
            "flywheel_seconds": round(flywheel_s, 2), "flywheel_interactions_per_s": round(n / flywheel_s),
            "peer_seconds": round(peer_s, 2), "peer_interactions_per_s": round(n / peer_s),
            "ratio": round(peer_s / flywheel_s, 1), "made": made, "same_results": diff == {"rewards": 0, "pairs": 0},
            "differences": diff, "job": {k: v for k, v in result.items() if v}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="20,000 interactions")
    p.add_argument("--size", type=int, default=None, help="interactions to generate (default 1,000,000)")
    args = p.parse_args()
    args.size = args.size or (20_000 if args.quick else 1_000_000)
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
