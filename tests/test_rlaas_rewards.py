"""rlaas rewards and preference pairs: feedback posted through `POST /v1/events`, the
`rlaas.compute_rewards` job run by a burst worker, read through `/v1/rlaas/rewards`,
`/v1/rlaas/pairs`, the interaction detail and the CLI.

The expected numbers are worked out by hand from the formula in docs/rlaas.md
("Rewards"), with literal values, not by calling the code under test.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from flywheel.plugins.rlaas.prompts import prompt_hash
from flywheel.server.testing import eventually

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
ANSWER = "Sorry to hear that."  # 19 characters
P1 = "my order is late"
P2 = "where is my invoice"
P3 = "close my account"
# The documented pair id: uuid5 of "source:chosen:rejected:feedback_event" in this namespace.
PAIR_NAMESPACE = uuid.UUID("1b0e7f5e-6a43-5d0c-9e55-2a7d3c1f9b80")


def at(minutes: float) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat()


def interaction(prompt: str, *, minutes: float = 0, route: str = "support", policy: str = "base",
                iid: str | None = None) -> dict[str, Any]:
    return {"type": "rlaas.interaction", "event_id": str(uuid.uuid4()), "ts": at(minutes),
            "interaction_id": iid or str(uuid.uuid4()), "route": route, "endpoint": "chat.completions",
            "policy_id": str(uuid.uuid4()), "policy": policy, "policy_version": 1, "status": 200,
            "latency_ms": 100.0, "request": {"model": route, "messages": [{"role": "user", "content": prompt}]},
            "response": {"choices": [{"message": {"role": "assistant", "content": ANSWER}}]}}


def feedback(iid: str, signal: dict[str, Any], *, minutes: float = 1) -> dict[str, Any]:
    return {"type": "rlaas.feedback", "event_id": str(uuid.uuid4()), "ts": at(minutes), "interaction_id": iid,
            "signal": signal}


def thumbs(iid: str, value: str) -> dict[str, Any]:
    return feedback(iid, {"kind": "thumbs", "value": value})


def rating(iid: str, value: int) -> dict[str, Any]:
    return feedback(iid, {"kind": "rating", "value": value})


def task(iid: str, outcome: str, score: float | None = None) -> dict[str, Any]:
    return {"type": "rlaas.task_result", "event_id": str(uuid.uuid4()), "ts": at(2), "interaction_id": iid,
            "task": "ticket.resolve", "outcome": outcome, **({"score": score} if score is not None else {})}


async def post(client, tenant, events) -> None:
    r = await client.post("/v1/events", json=events, headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert r.json()["rejected"] == 0, r.json()


async def stored(state, tenant, interactions: int, feedback: int) -> None:
    """Wait until the subscriber has projected what was posted."""
    async def check():
        row = await state.db.fetchrow(
            "SELECT (SELECT count(*) FROM rlaas_interactions WHERE tenant_id = $1) AS i,"
            " (SELECT count(*) FROM rlaas_feedback WHERE tenant_id = $1)"
            " + (SELECT count(*) FROM rlaas_task_results WHERE tenant_id = $1) AS f", tenant.id)
        return (row["i"], row["f"]) == (interactions, feedback) or None

    await eventually(check, what=f"{interactions} interactions and {feedback} feedback/task results stored")


async def compute(client, tenant, worker, **payload) -> dict[str, Any]:
    r = await client.post("/v1/rlaas/rewards/compute", json=payload, headers=tenant.headers)
    assert r.status_code == 202, r.text
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=tenant.headers)).json()
    assert job["state"] == "succeeded", job
    return job["result"]


async def rewards_of(client, tenant, **params) -> dict[str, dict[str, Any]]:
    r = await client.get("/v1/rlaas/rewards", params={"limit": 500, **params}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    return {item["interaction_id"]: item for item in r.json()["items"]}


async def pairs_of(client, tenant, **params) -> list[dict[str, Any]]:
    r = await client.get("/v1/rlaas/pairs", params={"limit": 500, **params}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def pair_keys(pairs: list[dict[str, Any]]) -> set[tuple]:
    return {(p["source"], p["chosen_interaction_id"], p["rejected_interaction_id"]) for p in pairs}


class Scene:
    """The hand-checked set: interactions a..j, their feedback, and the rewards the formula gives."""

    def __init__(self) -> None:
        self.ids = {name: str(uuid.uuid4()) for name in "abcdefghij"}
        i = self.ids
        self.interactions = [interaction(P1, iid=i["a"], minutes=-9), interaction(P1, iid=i["b"], minutes=-8),
                             interaction(P1, iid=i["c"], minutes=-7),
                             interaction("My  order is LATE \n", iid=i["d"], minutes=-6),  # P1, normalized
                             interaction(P2, iid=i["e"], minutes=-5), interaction(P2, iid=i["f"], minutes=-4),
                             interaction(P2, iid=i["g"], minutes=-3), interaction(P1, iid=i["h"], minutes=-2),
                             interaction(P3, iid=i["i"], minutes=-1, route="billing"),
                             interaction(P3, iid=i["j"], minutes=0, route="billing", policy="next")]
        self.edit = feedback(i["c"], {"kind": "edit", "corrected_text": "Sorry to hear that!"})
        self.comparison = feedback(i["e"], {"kind": "comparison", "other_interaction_id": i["f"],
                                            "preferred": "other"})
        self.feedback = [
            thumbs(i["a"], "up"), thumbs(i["a"], "down"), thumbs(i["a"], "up"), rating(i["a"], 5),
            rating(i["b"], 2), task(i["b"], "failure"),
            self.edit, task(i["c"], "success", 0.8),
            thumbs(i["d"], "down"),
            self.comparison,
            feedback(i["g"], {"kind": "comparison", "other_interaction_id": i["a"], "preferred": "this"}),
            feedback(i["h"], {"kind": "comparison", "other_interaction_id": i["a"], "preferred": "tie"}),
            task(i["i"], "success", 3.0),  # clamped to 1
            task(i["j"], "abandoned"),
        ]


@pytest.fixture
async def scene(client, tenant, state) -> Scene:
    s = Scene()
    await post(client, tenant, s.interactions + s.feedback)
    await stored(state, tenant, len(s.interactions), len(s.feedback))
    return s


def gap_id(chosen: str, rejected: str) -> str:
    return str(uuid.uuid5(PAIR_NAMESPACE, f"reward_gap:{chosen}:{rejected}:"))


async def test_rewards_and_pairs_of_a_hand_checked_set(client, tenant, worker, scene):
    i = scene.ids
    result = await compute(client, tenant, worker)
    assert result["full_pass"] == 1 and result["version"] == 0, result  # the tenant's first run

    got = await rewards_of(client, tenant)
    # thumbs (1 - 1 + 1) / 3 = 1/3, rating (5 - 3) / 2 = 1: mean of the two, weights 1.
    a = (1 / 3 + 1) / 2
    # rating (2 - 3) / 2 = -0.5, task failure -1.
    b = (-0.5 - 1) / 2
    # edit: one substitution in 19 characters -> -1/19; task 2 * 0.8 - 1 = 0.6.
    c = (-1 / 19 + 0.6) / 2
    expected = {i["a"]: a, i["b"]: b, i["c"]: c, i["d"]: -1.0, i["i"]: 1.0, i["j"]: -0.5}
    assert set(got) == set(expected), "e..h have only comparisons: no reward"
    for iid, value in expected.items():
        assert got[iid]["reward"] == pytest.approx(value, abs=1e-12), iid
        assert got[iid]["weights_version"] == 0
    assert got[i["a"]]["inputs"] == {"weights": {"thumbs": 1.0, "rating": 1.0, "edit": 1.0, "task": 1.0},
                                     "signals": {"thumbs": pytest.approx(1 / 3), "rating": 1.0},
                                     "counts": {"thumbs": 3, "rating": 1}}
    assert got[i["c"]]["inputs"]["signals"] == {"edit": pytest.approx(-1 / 19), "task": pytest.approx(0.6)}
    assert got[i["d"]]["prompt_hash"] == got[i["a"]]["prompt_hash"] == prompt_hash(
        tenant.id, {"messages": [{"role": "user", "content": P1}]}), "whitespace and case are normalized"
    assert got[i["j"]]["policy"] == "next" and got[i["j"]]["route"] == "billing"

    pairs = await pairs_of(client, tenant)
    # P1 ranked a (0.667), c (0.274), b (-0.75), d (-1): a-d (gap 1.667) and c-b (gap 1.024) clear 0.5.
    # P3: i (1) - j (-0.5) = 1.5. g's comparison crosses prompts and h's is a tie: no pair.
    assert pair_keys(pairs) == {("comparison", i["f"], i["e"]), ("edit", i["c"], i["c"]),
                                ("reward_gap", i["a"], i["d"]), ("reward_gap", i["c"], i["b"]),
                                ("reward_gap", i["i"], i["j"])}
    by_source = {(p["source"], p["chosen_interaction_id"]): p for p in pairs}
    comparison = by_source[("comparison", i["f"])]
    assert comparison["pair_id"] == str(uuid.uuid5(
        PAIR_NAMESPACE, f"comparison:{i['f']}:{i['e']}:{scene.comparison['event_id']}"))
    assert comparison["interaction_id"] == i["e"] and comparison["gap"] is None
    assert comparison["ts"] == datetime.fromisoformat(at(-4)).isoformat().replace("+00:00", "Z"), "the later one"
    edit = by_source[("edit", i["c"])]
    assert edit["chosen_text"] == "Sorry to hear that!" and edit["feedback_event_id"] == scene.edit["event_id"]
    assert edit["pair_id"] == str(uuid.uuid5(PAIR_NAMESPACE, f"edit:{i['c']}:{i['c']}:{scene.edit['event_id']}"))
    assert by_source[("reward_gap", i["a"])]["gap"] == pytest.approx(a + 1)
    assert by_source[("reward_gap", i["a"])]["pair_id"] == gap_id(i["a"], i["d"])
    assert by_source[("reward_gap", i["c"])]["gap"] == pytest.approx(c - b)
    assert {p["source"] for p in await pairs_of(client, tenant, source="reward_gap")} == {"reward_gap"}
    assert [p["chosen_interaction_id"] for p in await pairs_of(client, tenant, route="billing")] == [i["i"]]

    detail = (await client.get(f"/v1/rlaas/interactions/{i['a']}", headers=tenant.headers)).json()
    assert detail["reward"]["reward"] == pytest.approx(a)
    detail = (await client.get(f"/v1/rlaas/interactions/{i['e']}", headers=tenant.headers)).json()
    assert detail["reward"] is None


async def test_new_feedback_recomputes_only_what_it_touches(client, tenant, worker, scene, state):
    i = scene.ids
    await compute(client, tenant, worker)
    before = await rewards_of(client, tenant)
    await post(client, tenant, [thumbs(i["d"], "up")])
    await stored(state, tenant, len(scene.interactions), len(scene.feedback) + 1)

    result = await compute(client, tenant, worker)
    assert (result["full_pass"], result["interactions"], result["rewards_written"]) == (0, 1, 1), result
    after = await rewards_of(client, tenant)
    assert after[i["d"]]["reward"] == pytest.approx(0.0), "thumbs (-1 + 1) / 2"
    assert after[i["d"]]["inputs"]["counts"] == {"thumbs": 2}
    assert {k: v["computed_at"] for k, v in after.items() if k != i["d"]} == \
           {k: v["computed_at"] for k, v in before.items() if k != i["d"]}, "the others are not rewritten"
    # P1 now a (0.667), c (0.274), d (0), b (-0.75): a-b (1.417) clears the gap, c-d (0.274) does not.
    gaps = pair_keys(await pairs_of(client, tenant, source="reward_gap"))
    assert gaps == {("reward_gap", i["a"], i["b"]), ("reward_gap", i["i"], i["j"])}


async def test_changing_the_weights_bumps_the_version_and_recomputes(client, tenant, worker, scene):
    i = scene.ids
    await compute(client, tenant, worker)
    r = await client.put("/v1/rlaas/rewards/settings", headers=tenant.headers,
                         json={"weights": {"thumbs": 0, "rating": 1, "edit": 1, "task": 3}, "pair_min_gap": 0.3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == 1 and body["job_id"], body
    again = await client.put("/v1/rlaas/rewards/settings", headers=tenant.headers,
                             json={"weights": {"thumbs": 0, "rating": 1, "edit": 1, "task": 3}, "pair_min_gap": 0.3})
    assert (again.json()["version"], again.json()["job_id"]) == (1, None), "the same settings change nothing"
    await worker()
    job = (await client.get(f"/v1/jobs/{body['job_id']}", headers=tenant.headers)).json()
    assert job["state"] == "succeeded" and job["result"]["full_pass"] == 1, job

    got = await rewards_of(client, tenant)
    a, b, c = 1.0, (-0.5 + 3 * -1) / 4, (-1 / 19 + 3 * 0.6) / 4  # thumbs weigh 0: a is its rating alone
    expected = {i["a"]: a, i["b"]: b, i["c"]: c, i["i"]: 1.0, i["j"]: -0.5}
    assert set(got) == set(expected), "d had only thumbs: no reward any more"
    for iid, value in expected.items():
        assert got[iid]["reward"] == pytest.approx(value, abs=1e-12), iid
        assert got[iid]["weights_version"] == 1
    # P1: a (1), c (0.437), b (-0.875): a-b clears 0.3; c is the middle one.
    gaps = pair_keys(await pairs_of(client, tenant, source="reward_gap"))
    assert gaps == {("reward_gap", i["a"], i["b"]), ("reward_gap", i["i"], i["j"])}
    shown = (await client.get("/v1/rlaas/rewards/settings", headers=tenant.headers)).json()
    assert shown["weights"]["task"] == 3 and shown["pair_min_gap"] == 0.3 and shown["version"] == 1


async def test_a_rerun_writes_nothing_twice(client, tenant, worker, scene, database):
    await compute(client, tenant, worker)
    first = await database.fetch("SELECT pair_id, created_at FROM rlaas_pairs WHERE tenant_id = $1 ORDER BY 1",
                                 tenant.id)
    rewards = await database.fetch("SELECT interaction_id, computed_at FROM rlaas_rewards WHERE tenant_id = $1 "
                                   "ORDER BY 1", tenant.id)
    quiet = await compute(client, tenant, worker)
    assert (quiet["interactions"], quiet.get("rewards_written", 0), quiet.get("prompts", 0)) == (0, 0, 0), quiet
    full = await compute(client, tenant, worker, full=True)
    assert full["interactions"] == 10 and full["rewards_written"] == 0 and full["gap_pairs_written"] == 0, full
    assert full["feedback_pairs"] == 0, "ON CONFLICT: the same pair ids"
    assert await database.fetch("SELECT pair_id, created_at FROM rlaas_pairs WHERE tenant_id = $1 ORDER BY 1",
                                tenant.id) == first
    assert await database.fetch("SELECT interaction_id, computed_at FROM rlaas_rewards WHERE tenant_id = $1 "
                                "ORDER BY 1", tenant.id) == rewards


async def test_feedback_before_its_interaction_waits_for_it(client, tenant, worker, state):
    late = interaction(P1)
    await post(client, tenant, [rating(late["interaction_id"], 4)])
    await stored(state, tenant, 0, 1)
    result = await compute(client, tenant, worker)
    assert (result["interactions"], result["waiting"]) == (0, 1), result
    await post(client, tenant, [late])
    await stored(state, tenant, 1, 1)
    result = await compute(client, tenant, worker)
    assert (result["interactions"], result["waiting"]) == (1, 0), result
    assert (await rewards_of(client, tenant))[late["interaction_id"]]["reward"] == pytest.approx(0.5)


async def test_feedback_for_an_interaction_never_recorded_is_given_up_after_a_week(client, tenant, worker, state,
                                                                                  database):
    await post(client, tenant, [rating(str(uuid.uuid4()), 4), rating(str(uuid.uuid4()), 2)])
    await stored(state, tenant, 0, 2)
    await database.execute("UPDATE rlaas_reward_pending SET marked_at = now() - interval '8 days' "
                           "WHERE tenant_id = $1 AND interaction_id = (SELECT interaction_id "
                           "FROM rlaas_reward_pending WHERE tenant_id = $1 ORDER BY 1 LIMIT 1)", tenant.id)
    result = await compute(client, tenant, worker)
    assert (result["expired"], result["waiting"]) == (1, 1), result


async def test_the_cron_tick_computes_every_tenant(client, tenant, make_tenant, scene, state):
    from flywheel.server.plugin_api import run_here

    other = await make_tenant()
    x = interaction(P1)
    await post(client, other, [x, rating(x["interaction_id"], 5)])
    await stored(state, other, 1, 1)
    _, task = await run_here(state, "rlaas.compute_rewards", {}, tenant_id=None)  # as cron runs it
    await task
    assert len(await rewards_of(client, tenant)) == 6
    assert (await rewards_of(client, other))[x["interaction_id"]]["reward"] == 1.0


async def test_a_run_stopped_half_way_leaves_the_rest_for_the_next(client, tenant, scene, database):
    from flywheel.plugins.rlaas.rewards import compute_tenant

    class Stop(Exception):
        pass

    async def stop_after_first_batch(current, total=None, message=None, **kwargs):
        if message and message.startswith("rewards:"):
            raise Stop  # what ctx.progress does once the job is cancelled

    with pytest.raises(Stop):
        await compute_tenant(database, tenant.id, progress=stop_after_first_batch, batch=3)
    assert await database.fetchval("SELECT count(*) FROM rlaas_reward_pending WHERE tenant_id = $1", tenant.id) == 7
    result = await compute_tenant(database, tenant.id, batch=3)
    assert (result["interactions"], result["waiting"]) == (7, 0), result
    assert await database.fetchval("SELECT count(*) FROM rlaas_rewards WHERE tenant_id = $1", tenant.id) == 6
    assert await database.fetchval("SELECT count(*) FROM rlaas_pairs WHERE tenant_id = $1", tenant.id) == 5


async def test_prompts_stored_without_a_hash_get_one(client, tenant, worker, scene, database):
    await database.execute("UPDATE rlaas_interactions SET prompt_hash = NULL WHERE tenant_id = $1", tenant.id)
    result = await compute(client, tenant, worker, full=True)
    assert result["hashed"] == 10, result
    rows = await database.fetch("SELECT request, prompt_hash FROM rlaas_interactions WHERE tenant_id = $1",
                                tenant.id)
    assert all(r["prompt_hash"] == prompt_hash(tenant.id, r["request"]) for r in rows)


async def test_another_tenants_job_sees_nothing(client, tenant, make_tenant, worker, scene, database):
    await compute(client, tenant, worker)
    other = await make_tenant()
    mine = await database.fetch("SELECT * FROM rlaas_rewards WHERE tenant_id = $1 ORDER BY interaction_id",
                                tenant.id)
    result = await compute(client, other, worker, full=True)
    assert result["interactions"] == 0 and result.get("rewards_written", 0) == 0, result
    assert await rewards_of(client, other) == {} and await pairs_of(client, other) == []
    assert await database.fetch("SELECT * FROM rlaas_rewards WHERE tenant_id = $1 ORDER BY interaction_id",
                                tenant.id) == mine
    # The same prompt in another tenant hashes differently: nothing pairs across tenants.
    assert prompt_hash(other.id, {"messages": [{"role": "user", "content": P1}]}) != \
           prompt_hash(tenant.id, {"messages": [{"role": "user", "content": P1}]})


def test_the_prompt_normalization():
    t = uuid.uuid4()

    def h(messages, **request):
        return prompt_hash(t, {"messages": messages, **request})

    base = h([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello  there\n"}])
    assert base == h([{"role": "system", "content": "be brief."},
                      {"role": "user", "content": [{"type": "text", "text": " HELLO there"}]}], model="x", user="u")
    assert base != h([{"role": "system", "content": "Be long."}, {"role": "user", "content": "Hello there"}])
    assert base != h([{"role": "user", "content": "Hello there"}]), "the system prompt is part of the prompt"
    assert len(base) == 32 and int(base, 16) >= 0


@pytest.mark.parametrize(("body", "field"), [
    ({"weights": {"thumbs": -1}}, "$.weights.thumbs"),
    ({"weights": {"edit": 1001}}, "$.weights.edit"),
    ({"weights": {"task": "high"}}, "$.weights.task"),
    ({"weights": {"thumbs": 0, "rating": 0, "edit": 0, "task": 0}}, "$.weights"),
    ({"weights": {"novelty": 1}}, "$.weights.novelty"),
    ({"pair_min_gap": 0}, "$.pair_min_gap"),
    ({"pair_min_gap": 3}, "$.pair_min_gap"),
])
async def test_bad_settings_are_422_naming_the_field(client, tenant, body, field):
    r = await client.put("/v1/rlaas/rewards/settings", json=body, headers=tenant.headers)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field, r.json()
    assert (await client.get("/v1/rlaas/rewards/settings", headers=tenant.headers)).json()["version"] == 0


@pytest.mark.parametrize(("params", "field"), [
    ({"min_reward": "2"}, "query.min_reward"), ({"source": "guess"}, "query.source"),
    ({"cursor": "bogus"}, "query.cursor"), ({"since": "yesterday"}, "query.since"),
    ({"until": "2026-01-01T00:00:00"}, "query.until"), ({"prompt_hash": "XYZ"}, "query.prompt_hash"),
])
async def test_bad_list_filters_are_422(client, tenant, params, field):
    path = "/v1/rlaas/pairs" if {"source", "prompt_hash"} & set(params) else "/v1/rlaas/rewards"
    r = await client.get(path, params=params, headers=tenant.headers)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field, r.json()


async def test_keyset_pages_and_filters(client, tenant, worker, scene):
    i = scene.ids
    await compute(client, tenant, worker)
    seen, cursor = [], None
    while True:
        r = await client.get("/v1/rlaas/rewards", params={"limit": 4, **({"cursor": cursor} if cursor else {})},
                             headers=tenant.headers)
        body = r.json()
        seen += [item["interaction_id"] for item in body["items"]]
        if not (cursor := body["next_cursor"]):
            break
    assert seen == [i[n] for n in "jidcba"], "newest first, each once"
    assert set(await rewards_of(client, tenant, min_reward=0)) == {i["a"], i["c"], i["i"]}
    assert set(await rewards_of(client, tenant, route="billing", policy="next")) == {i["j"]}
    assert set(await rewards_of(client, tenant, since=at(-7), until=at(-1))) == {i["c"], i["d"]}


def _env(settings) -> dict[str, str]:
    return {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
            "FLYWHEEL_STORE_URL": settings.store_url, "FLYWHEEL_DATA_DIR": settings.data_dir, "COLUMNS": "160"}


async def test_the_cli(client, tenant, scene, flywheel_settings):
    from flywheel.server.testing import cli

    i = scene.ids

    async def run(*args: str):
        return await asyncio.to_thread(CliRunner().invoke, cli, ["rlaas", *args, "--tenant", tenant.name],
                                       env=_env(flywheel_settings))

    computed = await run("rewards", "compute", "--json")
    assert computed.exit_code == 0, computed.output
    assert json.loads(computed.stdout)["rewards_written"] == 6
    listed = json.loads((await run("rewards", "list", "--min-reward", "0.5", "--json")).stdout)
    assert {r["interaction_id"] for r in listed["items"]} == {i["a"], i["i"]}
    table = await run("rewards", "list", "--route", "billing")
    assert table.exit_code == 0 and i["j"] in table.output and i["a"] not in table.output, table.output
    pairs = json.loads((await run("pairs", "list", "--source", "edit", "--json")).stdout)
    assert [p["chosen_text"] for p in pairs["items"]] == ["Sorry to hear that!"]
    shown = await run("rewards", "settings", "show")
    assert shown.exit_code == 0 and "version 0" in shown.output, shown.output
    bad = await run("rewards", "settings", "set", "--edit", "-2")
    assert bad.exit_code == 2 and "--edit" in bad.output, bad.output
    changed = json.loads((await run("rewards", "settings", "set", "--task", "2", "--json")).stdout)
    assert changed["version"] == 1 and changed["weights"]["task"] == 2 and changed["weights"]["edit"] == 1
    assert changed["job_id"]
    recomputed = json.loads((await run("rewards", "compute", "--json")).stdout)
    assert recomputed["full_pass"] == 1 and recomputed["version"] == 1
    again = await run("rewards", "compute")
    assert again.exit_code == 0 and "0 interactions" in again.output, again.output
