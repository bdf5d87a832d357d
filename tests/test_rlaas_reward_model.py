"""The rlaas reward model (`rlaas.reward`): trained through the core lifecycle on interactions
whose feedback depends on their features, scored over HTTP, and blind to what came after."""

from __future__ import annotations

import asyncio
import json
import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from flywheel.plugins.rlaas.reward_model import FAMILY_NAME, training_table
from flywheel.plugins.rlaas.users import user_hash
from flywheel.server.testing import eventually

START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
POLICY_EFFECT = {"good": 1.2, "meh": 0.0, "bad": -1.2}


def interaction(tenant, user: str | None, at: datetime, *, policy: str = "meh", route: str = "support",
                answer: str = "Sure, here you go.", latency_ms: float = 300.0, question: str = "Help me please",
                **fields: Any) -> dict[str, Any]:
    return {"type": "rlaas.interaction", "event_id": str(uuid.uuid4()), "ts": at.isoformat(),
            "interaction_id": str(uuid.uuid4()), "route": route, "endpoint": "chat.completions",
            "policy_id": str(uuid.uuid4()), "policy": policy, "policy_version": 1, "status": 200,
            "latency_ms": latency_ms, "prompt_tokens": len(question.split()), "completion_tokens": len(answer.split()),
            "subject_id": user_hash(tenant.id, user) if user else None,
            "request": {"messages": [{"role": "user", "content": question}]},
            "response": {"choices": [{"message": {"role": "assistant", "content": answer}}]}, **fields}


def feedback(of: dict, at: datetime, signal: dict) -> dict[str, Any]:
    return {"type": "rlaas.feedback", "event_id": str(uuid.uuid4()), "ts": at.isoformat(),
            "interaction_id": of["interaction_id"], "signal": signal}


async def store(client, state, tenant, events: list[dict]) -> None:
    for i in range(0, len(events), 250):
        r = await client.post("/v1/events", json=events[i:i + 250], headers=tenant.headers)
        assert r.status_code == 200 and r.json()["rejected"] == 0, r.text
    n = sum(e["type"] == "rlaas.interaction" for e in events)
    f = sum(e["type"] == "rlaas.feedback" for e in events)

    async def projected():
        got = (await state.db.fetchval("SELECT count(*) FROM rlaas_interactions WHERE tenant_id = $1", tenant.id),
               await state.db.fetchval("SELECT count(*) FROM rlaas_feedback WHERE tenant_id = $1", tenant.id))
        return got if got == (n, f) else None

    await eventually(projected, what=f"{n} interactions and {f} feedback events projected", timeout=30)


def generated(tenant, n: int = 900, seed: int = 7) -> list[dict]:
    """Interactions whose feedback is drawn from a known function of their features: the policy, the
    answer's length, the latency, and how generous the user is (so the history tells)."""
    rng = random.Random(seed)
    generosity = {f"user-{k}": rng.gauss(0, 1.3) for k in range(60)}
    events = []
    for k in range(n):
        user = rng.choice(list(generosity))
        policy = rng.choice(list(POLICY_EFFECT))
        words = rng.randint(2, 40)
        latency = rng.uniform(100, 4000)
        at = START + timedelta(minutes=4 * k)
        x = interaction(tenant, user, at, policy=policy, route=rng.choice(["support", "sales"]),
                        answer=" ".join(["word"] * words), latency_ms=latency)
        logit = POLICY_EFFECT[policy] + (words - 20) / 10 - (latency - 2000) / 1500 + generosity[user]
        liked = rng.random() < 1 / (1 + math.exp(-logit))
        signal = ({"kind": "thumbs", "value": "up" if liked else "down"} if k % 2 else
                  {"kind": "rating", "value": rng.choice([4, 5]) if liked else rng.choice([1, 2, 3])})
        events += [x, feedback(x, at + timedelta(minutes=1), signal)]
    return events


def good_and_bad_rows() -> tuple[dict, dict]:
    common = {"route": "support", "prompt_messages": 1, "prompt_chars": 14, "prompt_tokens": 3,
              "ttft_ms": None, "user_prior_feedback": 12}
    good = {**common, "policy": "good", "answer_chars": 200, "completion_tokens": 40, "latency_ms": 200.0,
            "user_prior_positive_rate": 0.9}
    bad = {**common, "policy": "bad", "answer_chars": 10, "completion_tokens": 2, "latency_ms": 3900.0,
           "user_prior_positive_rate": 0.1}
    return good, bad


@pytest.fixture
async def trained(client, state, worker, tenant) -> dict:
    await store(client, state, tenant, generated(tenant))
    r = await client.post(f"/v1/models/{FAMILY_NAME}/train", json={"auto_activate": True}, headers=tenant.headers)
    assert r.status_code == 202, r.text
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=tenant.headers)).json()
    assert job["state"] == "succeeded", job
    return job["result"]


async def test_it_learns_what_the_feedback_depends_on_and_scores_over_http(client, tenant, trained):
    assert trained["activated"], trained
    version = (await client.get(f"/v1/models/{FAMILY_NAME}/versions/{trained['version']}",
                                headers=tenant.headers)).json()
    metrics = version["metrics"]
    assert metrics["roc_auc"] > 0.7, metrics
    info = (await client.get(f"/v1/models/{FAMILY_NAME}", headers=tenant.headers)).json()
    assert f"| roc_auc | {metrics['roc_auc']:.4f} |" in info["card"], "the metrics are on the model card"
    assert "Label `positive`" in info["card"] and "strictly before" in info["card"]
    features = {f["name"]: f for f in info["features"]}
    assert features["policy"]["type"] == features["route"]["type"] == "category"
    assert set(features["policy"]["categories"]) == {"good", "meh", "bad"}

    good, bad = good_and_bad_rows()
    scores = {}
    for name, row in (("good", good), ("bad", bad)):
        r = await client.post(f"/v1/models/{FAMILY_NAME}/score", json=row, headers=tenant.headers)
        assert r.status_code == 200, r.text
        scores[name] = r.json()["score"]
    assert scores["good"] > 0.7 > 0.3 > scores["bad"], scores
    unseen = await client.post(f"/v1/models/{FAMILY_NAME}/score", json={**good, "policy": "brand-new"},
                               headers=tenant.headers)
    assert unseen.status_code == 200 and 0 < unseen.json()["score"] < 1, "an unseen policy scores as missing"
    missing = await client.post(f"/v1/models/{FAMILY_NAME}/score", json={"route": "support"}, headers=tenant.headers)
    assert missing.status_code == 422 and "answer_chars" in missing.text


async def test_another_tenant_neither_sees_the_model_nor_trains_on_its_data(client, worker, state, tenant, trained,
                                                                           make_tenant):
    other = await make_tenant()
    good, _ = good_and_bad_rows()
    r = await client.post(f"/v1/models/{FAMILY_NAME}/score", json=good, headers=other.headers)
    assert r.status_code == 404, r.text
    assert (await client.get(f"/v1/models/{FAMILY_NAME}", headers=other.headers)).status_code == 404
    assert (await training_table(state.db, other.id)).num_rows == 0, "the other tenant's rows are its own"
    r = await client.post(f"/v1/models/{FAMILY_NAME}/train", json={}, headers=other.headers)
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=other.headers)).json()
    assert job["state"] == "failed" and "0 rows" in job["error"], job
    mine = (await client.post(f"/v1/models/{FAMILY_NAME}/score", json=good, headers=tenant.headers)).json()
    assert mine["version"] == trained["version"], "the failed training changed nothing of the first tenant's"


async def test_the_user_history_holds_only_what_came_before(client, state, tenant):
    t0 = START
    i1 = interaction(tenant, "ann", t0, answer="one")
    i2 = interaction(tenant, "ann", t0 + timedelta(seconds=30), answer="two two")
    i3 = interaction(tenant, "ann", t0 + timedelta(minutes=2), answer="three")
    i4 = interaction(tenant, "ann", t0 + timedelta(minutes=3))
    solo = interaction(tenant, None, t0 + timedelta(minutes=4))
    ben = interaction(tenant, "ben", t0 + timedelta(minutes=5))
    unrated = interaction(tenant, "ann", t0 + timedelta(minutes=6))
    events = [i1, i2, i3, i4, solo, ben, unrated,
              feedback(i1, t0 + timedelta(minutes=1), {"kind": "thumbs", "value": "up"}),
              feedback(i2, t0 + timedelta(minutes=2, seconds=30), {"kind": "rating", "value": 2}),
              feedback(i2, t0 + timedelta(minutes=2, seconds=40), {"kind": "rating", "value": 5}),  # latest wins
              feedback(i3, t0 + timedelta(minutes=10), {"kind": "thumbs", "value": "down"}),
              feedback(i4, t0 + timedelta(minutes=3), {"kind": "thumbs", "value": "up"}),  # at its very time
              feedback(solo, t0 + timedelta(minutes=5), {"kind": "rating", "value": 4}),
              feedback(ben, t0 + timedelta(minutes=6), {"kind": "thumbs", "value": "down"}),
              feedback(unrated, t0 + timedelta(minutes=7), {"kind": "edit", "corrected_text": "x"})]
    await store(client, state, tenant, events)
    rows = (await training_table(state.db, tenant.id)).to_pylist()
    got = [(r["answer_chars"], r["user_prior_feedback"], r["user_prior_positive_rate"], r["positive"]) for r in rows]
    assert got == [
        (3, 0, None, 1),    # i1: nothing before it
        (7, 0, None, 1),    # i2: i1's thumbs came after it; its own latest rating is a 5
        (5, 1, 1.0, 0),     # i3: i1's thumbs up; i2's ratings came later
        (18, 3, 2 / 3, 1),  # i4: i1 up, i2's 2 and 5; i4's own thumbs at its very time is not "before"
        (18, None, None, 1),  # no user, no history
        (18, 0, None, 0),   # ben has his own history, not ann's
    ], "the unrated interaction (an edit only) is no row"
    assert all(r["route"] == "support" and r["policy"] == "meh" and r["prompt_chars"] == 14 for r in rows)


async def test_the_cli_trains_a_version(client, state, tenant, flywheel_settings):
    from flywheel.server.testing import cli

    await store(client, state, tenant, generated(tenant, n=300, seed=3))
    env = {"DATABASE_URL": flywheel_settings.database_url, "REDIS_URL": flywheel_settings.redis_url,
           "FLYWHEEL_STORE_URL": flywheel_settings.store_url, "FLYWHEEL_DATA_DIR": flywheel_settings.data_dir}
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["rlaas", "reward-model", "train", "--tenant",
                                                               tenant.name, "--json"], env=env)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["result"]["activated"] and out["metrics"]["roc_auc"] > 0.6, out
    active = (await client.get(f"/v1/models/{FAMILY_NAME}", headers=tenant.headers)).json()
    assert active["version"] == out["result"]["version"]
    table = await asyncio.to_thread(CliRunner().invoke, cli, ["rlaas", "reward-model", "train", "--tenant",
                                                              tenant.name, "--no-activate"], env=env)
    assert table.exit_code == 0 and "roc_auc" in table.output and "not activated" in table.output, table.output
