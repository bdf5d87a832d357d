"""rlaas interactions, feedback and task results: posted through `POST /v1/events` with an ingest
key, projected by the plugin's subscriber, read through `/v1/rlaas/interactions` and the CLI."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from flywheel.plugins.rlaas.projection import project
from flywheel.plugins.rlaas.users import user_hash
from flywheel.server.testing import eventually

BASE = "/v1/rlaas/interactions"
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def at(minutes: float) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat()


def interaction(tenant, *, minutes: float = 0, user: str | None = "alice", **fields: Any) -> dict[str, Any]:
    iid = fields.pop("interaction_id", str(uuid.uuid4()))
    return {"type": "rlaas.interaction", "event_id": str(uuid.uuid4()), "ts": at(minutes), "interaction_id": iid,
            "route": "support", "endpoint": "chat.completions", "policy_id": str(uuid.uuid4()), "policy": "base",
            "policy_version": 1, "status": 200, "latency_ms": 120.5, "prompt_tokens": 12, "completion_tokens": 30,
            "subject_id": user_hash(tenant.id, user) if user else None,
            "request": {"model": "support", "messages": [{"role": "user", "content": "my order is late"}]},
            "response": {"choices": [{"message": {"role": "assistant", "content": "Sorry to hear that."}}]},
            **fields}


def feedback(interaction_id: str, signal: dict[str, Any], *, minutes: float = 1, **fields: Any) -> dict[str, Any]:
    return {"type": "rlaas.feedback", "event_id": str(uuid.uuid4()), "ts": at(minutes),
            "interaction_id": interaction_id, "signal": signal, **fields}


def task_result(interaction_id: str, *, minutes: float = 2, **fields: Any) -> dict[str, Any]:
    return {"type": "rlaas.task_result", "event_id": str(uuid.uuid4()), "ts": at(minutes),
            "interaction_id": interaction_id, "task": "ticket.resolve", "outcome": "success", **fields}


@pytest.fixture
async def ingest_headers(client, tenant) -> dict[str, str]:
    """An ingest-only key of `tenant`, the kind an application's SDK holds."""
    r = await client.post("/v1/keys", json={"name": "sdk", "scopes": ["ingest"]}, headers=tenant.headers)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['secret']}"}


async def post(client, headers, events) -> dict[str, Any]:
    r = await client.post("/v1/events", json=events, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def listed(client, tenant, **params) -> list[str]:
    r = await client.get(BASE, params={"limit": 500, **params}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    return [i["interaction_id"] for i in r.json()["items"]]


async def visible(client, tenant, interaction_id: str, *, feedback: int = 0, task_results: int = 0) -> dict:
    """The interaction's detail once it and the given number of feedback and task results are stored."""
    async def check():
        r = await client.get(f"{BASE}/{interaction_id}", headers=tenant.headers)
        if r.status_code != 200:
            return None
        body = r.json()
        return body if (len(body["feedback"]), len(body["task_results"])) == (feedback, task_results) else None

    return await eventually(check, what=f"interaction {interaction_id} with {feedback} feedback, "
                                        f"{task_results} task results")


async def all_listed(client, tenant, n: int) -> list[str]:
    async def check():
        ids = await listed(client, tenant)
        return ids if len(ids) == n else None

    return await eventually(check, what=f"{n} interactions listed")


async def test_each_filter_selects_what_it_names(client, tenant, ingest_headers):
    a1 = interaction(tenant, minutes=-10, route="support", policy="p-a", user="alice")
    a2 = interaction(tenant, minutes=-8, route="support", policy="p-a", policy_version=2, role="shadow",
                     user="bob", primary_interaction_id=a1["interaction_id"])
    a3 = interaction(tenant, minutes=-6, route="sales", policy="p-b", user="alice")
    a4 = interaction(tenant, minutes=-4, route="sales", policy="p-a", user=None)
    events = [a1, a2, a3, a4, feedback(a1["interaction_id"], {"kind": "thumbs", "value": "up"}),
              feedback(a3["interaction_id"], {"kind": "rating", "value": 2})]
    result = await post(client, ingest_headers, events)
    assert (result["accepted"], result["rejected"]) == (6, 0), result
    ids = {name: e["interaction_id"] for name, e in (("a1", a1), ("a2", a2), ("a3", a3), ("a4", a4))}
    assert await all_listed(client, tenant, 4) == [ids[n] for n in ("a4", "a3", "a2", "a1")], "newest first"
    await visible(client, tenant, ids["a3"], feedback=1)
    await visible(client, tenant, ids["a1"], feedback=1)

    cases = [
        ({"route": "support"}, {"a1", "a2"}),
        ({"policy": "p-a"}, {"a1", "a2", "a4"}),
        ({"policy": "p-a", "policy_version": 1}, {"a1", "a4"}),
        ({"policy_version": 2}, {"a2"}),
        ({"user": "alice"}, {"a1", "a3"}),
        ({"user_hash": user_hash(tenant.id, "bob")}, {"a2"}),
        ({"user": "alice", "user_hash": user_hash(tenant.id, "bob")}, set()),
        ({"user": "carol"}, set()),
        ({"role": "shadow"}, {"a2"}),
        ({"role": "primary"}, {"a1", "a3", "a4"}),
        ({"has_feedback": "true"}, {"a1", "a3"}),
        ({"has_feedback": "false"}, {"a2", "a4"}),
        ({"since": at(-8)}, {"a2", "a3", "a4"}),  # inclusive
        ({"until": at(-6)}, {"a1", "a2"}),  # exclusive
        ({"since": at(-9), "until": at(-5)}, {"a2", "a3"}),
        ({"route": "sales", "has_feedback": "false", "policy": "p-a"}, {"a4"}),
    ]
    for params, expected in cases:
        got = set(await listed(client, tenant, **params))
        assert got == {ids[n] for n in expected}, f"{params}: {sorted(k for k, v in ids.items() if v in got)}"

    page = (await client.get(BASE, params={"route": "sales"}, headers=tenant.headers)).json()
    by_id = {i["interaction_id"]: i for i in page["items"]}
    assert by_id[ids["a3"]]["feedback_count"] == 1 and by_id[ids["a4"]]["feedback_count"] == 0
    assert by_id[ids["a3"]]["user_hash"] == user_hash(tenant.id, "alice") and by_id[ids["a4"]]["user_hash"] is None
    assert page["next_cursor"] is None


@pytest.mark.parametrize("params,field", [
    ({"since": "2026-01-01T00:00:00"}, "query.since"),  # no timezone
    ({"route": "no spaces"}, "query.route"),
    ({"policy": "UPPER"}, "query.policy"),
    ({"user_hash": "xyz"}, "query.user_hash"),
    ({"role": "canary"}, "query.role"),
    ({"limit": "501"}, "query.limit"),
    ({"limit": "0"}, "query.limit"),
    ({"cursor": "bm90IGEgY3Vyc29y"}, "query.cursor"),
])
async def test_bad_filters_are_422_naming_the_parameter(client, tenant, params, field):
    r = await client.get(BASE, params=params, headers=tenant.headers)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field, r.json()


async def test_keyset_pagination_has_no_duplicates_or_gaps(client, tenant, ingest_headers):
    # Ties on ts (three interactions a minute) are where a cursor on ts alone would skip or repeat.
    events = [interaction(tenant, minutes=-(i // 3)) for i in range(23)]
    await post(client, ingest_headers, events)
    await all_listed(client, tenant, 23)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        r = await client.get(BASE, params=params, headers=tenant.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [(i["ts"], i["interaction_id"]) for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5 and len(seen) == 23
    assert len({i for _, i in seen}) == 23 and {i for _, i in seen} == {e["interaction_id"] for e in events}
    expected = sorted(((datetime.fromisoformat(e["ts"]), uuid.UUID(e["interaction_id"])) for e in events),
                      reverse=True)
    assert [uuid.UUID(i) for _, i in seen] == [i for _, i in expected], "ts descending, then id descending"
    # A filter and a cursor together: the second page of one route.
    first = (await client.get(BASE, params={"limit": 2, "role": "primary"}, headers=tenant.headers)).json()
    second = (await client.get(BASE, params={"limit": 2, "role": "primary", "cursor": first["next_cursor"]},
                               headers=tenant.headers)).json()
    assert [i["interaction_id"] for i in first["items"] + second["items"]] == [str(i) for _, i in expected[:4]]


async def test_the_detail_holds_every_kind_of_feedback_and_the_task_results(client, tenant, ingest_headers):
    main = interaction(tenant, minutes=-3, stream=True, ttft_ms=40.0, session_id="s-1")
    other = interaction(tenant, minutes=-3, role="shadow", primary_interaction_id=main["interaction_id"])
    iid = main["interaction_id"]
    signals = [{"kind": "thumbs", "value": "down"}, {"kind": "rating", "value": 4},
               {"kind": "edit", "corrected_text": "Sorry! Your order ships today."},
               {"kind": "comparison", "other_interaction_id": other["interaction_id"], "preferred": "other"}]
    events = [main, other, *(feedback(iid, s, minutes=i, comment=f"c{i}", subject_id="app-user")
                             for i, s in enumerate(signals)),
              task_result(iid, minutes=5, outcome="partial", score=0.5, details={"steps": 3}),
              task_result(iid, minutes=6, task="ticket.close")]
    assert (await post(client, ingest_headers, events))["accepted"] == 8
    detail = await visible(client, tenant, iid, feedback=4, task_results=2)

    assert [f["signal"] for f in detail["feedback"]] == signals, "as sent, oldest first"
    assert [f["comment"] for f in detail["feedback"]] == ["c0", "c1", "c2", "c3"]
    assert {f["subject_id"] for f in detail["feedback"]} == {"app-user"}
    assert [f["event_id"] for f in detail["feedback"]] == [e["event_id"] for e in events[2:6]]
    assert [(r["task"], r["outcome"], r["score"], r["details"]) for r in detail["task_results"]] == [
        ("ticket.resolve", "partial", 0.5, {"steps": 3}), ("ticket.close", "success", None, {})]
    summary = detail["interaction"]
    assert (summary["feedback_count"], summary["task_result_count"]) == (4, 2)
    assert (summary["stream"], summary["ttft_ms"], summary["session_id"], summary["role"]) == (True, 40.0, "s-1",
                                                                                               "primary")
    assert (summary["prompt_tokens"], summary["completion_tokens"], summary["status"]) == (12, 30, 200)
    assert detail["request"] == main["request"] and detail["response"] == main["response"]
    shadow = (await client.get(f"{BASE}/{other['interaction_id']}", headers=tenant.headers)).json()
    assert shadow["interaction"]["primary_interaction_id"] == iid
    # The comparison names `other` too: its detail shows it (stored once, on the interaction it came on).
    assert [(f["interaction_id"], f["signal"]) for f in shadow["feedback"]] == [(iid, signals[3])]
    assert shadow["interaction"]["feedback_count"] == 0  # counts and filters go by the interaction's own
    missing = await client.get(f"{BASE}/{uuid.uuid4()}", headers=tenant.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_feedback_that_arrives_before_its_interaction_still_shows(client, tenant, ingest_headers):
    late = interaction(tenant, minutes=-2)
    iid = late["interaction_id"]
    await post(client, ingest_headers, [feedback(iid, {"kind": "rating", "value": 5}), task_result(iid)])
    # Deliveries are made in commit order: once a later interaction is visible, the feedback was projected
    # with no interaction to attach to.
    marker = interaction(tenant, minutes=-5)
    await post(client, ingest_headers, [marker])
    await visible(client, tenant, marker["interaction_id"])
    assert (await client.get(f"{BASE}/{iid}", headers=tenant.headers)).status_code == 404
    await post(client, ingest_headers, [late])
    detail = await visible(client, tenant, iid, feedback=1, task_results=1)
    assert detail["feedback"][0]["signal"] == {"kind": "rating", "value": 5}
    assert set(await listed(client, tenant, has_feedback="true")) == {iid}


async def test_redelivered_events_are_stored_once(client, tenant, ingest_headers, state):
    first = interaction(tenant, minutes=-2)
    iid = first["interaction_id"]
    thumbs = feedback(iid, {"kind": "thumbs", "value": "up"})
    result = task_result(iid)
    r1 = await post(client, ingest_headers, [first, thumbs, thumbs, result])
    assert (r1["accepted"], r1["duplicate"]) == (3, 1), r1
    r2 = await post(client, ingest_headers, [thumbs, result])
    assert (r2["accepted"], r2["duplicate"]) == (0, 2), r2
    # The same interaction recorded again under another event id (a recorder retry) is still one row.
    again = {**first, "event_id": str(uuid.uuid4()), "status": 500}
    marker = interaction(tenant, minutes=-30)
    assert (await post(client, ingest_headers, [again, marker]))["accepted"] == 2
    await visible(client, tenant, marker["interaction_id"])
    # The engine delivers an event at most once; the projection must also survive a replay from the
    # events table (a rebuild): the same decoded events projected twice more.
    from flywheel.plugins.rlaas.contracts import Feedback, Interaction, TaskResult

    decoded = [_decode(first, Interaction), _decode(thumbs, Feedback),
               _decode(result, TaskResult)]
    await project(state, tenant.id, decoded)
    await project(state, tenant.id, decoded + decoded)
    detail = await visible(client, tenant, iid, feedback=1, task_results=1)
    assert detail["interaction"]["status"] == 200, "the first recording stands"
    assert detail["interaction"]["feedback_count"] == 1 and detail["interaction"]["task_result_count"] == 1
    assert sorted(await listed(client, tenant)) == sorted([iid, marker["interaction_id"]])


def _decode(event: dict, cls):
    import msgspec

    return msgspec.json.decode(msgspec.json.encode(event), type=cls)


async def test_invalid_feedback_is_rejected_naming_the_field(client, tenant, ingest_headers):
    iid = str(uuid.uuid4())
    events = [
        feedback(iid, {"kind": "rating", "value": 6}),
        feedback(iid, {"kind": "stars", "value": 3}),
        feedback(iid, {"kind": "comparison", "preferred": "this"}),
        feedback(iid, {"kind": "thumbs", "value": "sideways"}),
        feedback(iid, {"kind": "edit", "corrected_text": "x", "value": 1}),
        task_result(iid, outcome="won"),
        task_result(iid, score=float("1e12")),
        feedback(iid, {"kind": "rating", "value": 3}),  # the one good event is still accepted
    ]
    result = await post(client, ingest_headers, events)
    assert (result["accepted"], result["rejected"]) == (1, 7), result
    fields = {e["index"]: e["field"] for e in result["errors"]}
    assert fields == {0: "$[0].signal.value", 1: "$[1].signal.kind", 2: "$[2].signal.other_interaction_id",
                      3: "$[3].signal.value", 4: "$[4].signal.value", 5: "$[5].outcome", 6: "$[6].score"}, result
    assert {e["code"] for e in result["errors"]} == {"validation_error"}


async def test_another_tenant_sees_nothing(client, tenant, make_tenant, ingest_headers):
    mine = interaction(tenant, minutes=-2, route="private-route")
    iid = mine["interaction_id"]
    await post(client, ingest_headers, [mine, feedback(iid, {"kind": "thumbs", "value": "up"})])
    await visible(client, tenant, iid, feedback=1)
    other = await make_tenant()
    r = await client.get(f"{BASE}/{iid}", headers=other.headers)
    assert r.status_code == 404 and iid not in r.text
    assert await listed(client, other) == []
    assert await listed(client, other, route="private-route") == []
    # B's feedback naming A's interaction stays B's: A's view is unchanged, B has no interaction.
    stranger = await post(client, other.headers, [feedback(iid, {"kind": "thumbs", "value": "down"}),
                                                 interaction(other, minutes=-1)])
    assert stranger["accepted"] == 2
    await all_listed(client, other, 1)
    detail = (await client.get(f"{BASE}/{iid}", headers=tenant.headers)).json()
    assert [f["signal"]["value"] for f in detail["feedback"]] == ["up"]
    assert (await client.get(f"{BASE}/{iid}", headers=other.headers)).status_code == 404


def _env(settings) -> dict[str, str]:
    return {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
            "FLYWHEEL_STORE_URL": settings.store_url, "FLYWHEEL_DATA_DIR": settings.data_dir, "COLUMNS": "160"}


async def test_the_cli_lists_and_shows(client, tenant, ingest_headers, flywheel_settings):
    from flywheel.server.testing import cli

    a = interaction(tenant, minutes=-3, route="cli-route", user="dana")
    b = interaction(tenant, minutes=-2, route="other-route")
    await post(client, ingest_headers, [a, b, feedback(a["interaction_id"], {"kind": "edit",
                                                                              "corrected_text": "[b]fixed[/b]"})])
    await visible(client, tenant, a["interaction_id"], feedback=1)
    await visible(client, tenant, b["interaction_id"])

    async def run(*args: str):
        return await asyncio.to_thread(CliRunner().invoke, cli, ["rlaas", "interactions", *args],
                                       env=_env(flywheel_settings))

    listed_json = await run("list", "--tenant", tenant.name, "--user", "dana", "--json")
    assert listed_json.exit_code == 0, listed_json.output
    assert [i["interaction_id"] for i in json.loads(listed_json.output)["items"]] == [a["interaction_id"]]
    table = await run("list", "--tenant", str(tenant.id), "--limit", "1")
    assert table.exit_code == 0, table.output
    assert "other-route" in table.output and "cli-route" not in table.output and "--cursor" in table.output
    shown = await run("show", a["interaction_id"], "--tenant", tenant.name)
    assert shown.exit_code == 0, shown.output
    assert "cli-route" in shown.output and "[b]fixed[/b]" in shown.output, "the tenant's text is not markup"
    as_json = json.loads((await run("show", a["interaction_id"], "--tenant", tenant.name, "--json")).output)
    assert as_json["feedback"][0]["signal"] == {"kind": "edit", "corrected_text": "[b]fixed[/b]"}
    bad = await run("list", "--tenant", tenant.name, "--route", "no spaces")
    assert bad.exit_code == 2 and "--route" in bad.output, bad.output
    missing = await run("show", str(uuid.uuid4()), "--tenant", tenant.name)
    assert missing.exit_code == 1 and "no interaction" in missing.output


def test_flywheel_schemas_exports_the_rlaas_events(flywheel_settings, tmp_path):
    from flywheel.server.testing import cli

    result = CliRunner().invoke(cli, ["schemas", "-o", str(tmp_path)], env=_env(flywheel_settings))
    assert result.exit_code == 0, result.output
    for tag, field in (("interaction", "policy_version"), ("feedback", "other_interaction_id"),
                       ("task_result", "outcome")):
        schema = json.loads((tmp_path / f"event.rlaas.{tag}.json").read_text())
        assert field in json.dumps(schema), tag


async def test_the_tables_are_rebuilt_from_the_stored_events(client, tenant, ingest_headers, state, worker,
                                                             flywheel_settings):
    """Rows a crash left unprojected come back from the events, once, however often the job runs."""
    from flywheel.server.testing import cli

    a = interaction(tenant, minutes=-5)
    await post(client, ingest_headers, [a, feedback(a["interaction_id"], {"kind": "thumbs", "value": "up"}),
                                        task_result(a["interaction_id"])])
    await visible(client, tenant, a["interaction_id"], feedback=1, task_results=1)
    for table in ("rlaas_interactions", "rlaas_feedback", "rlaas_task_results"):  # the projection "missed" them
        await state.db.execute(f"DELETE FROM {table} WHERE tenant_id = $1", tenant.id)
    assert (await client.get(f"{BASE}/{a['interaction_id']}", headers=tenant.headers)).status_code == 404

    r = await client.post("/v1/jobs", json={"name": "rlaas.rebuild_interactions", "payload": {"days": 1}},
                          headers=tenant.headers)
    assert r.status_code == 202, r.text
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=tenant.headers)).json()
    assert job["state"] == "succeeded", job
    assert job["result"]["replayed"] == {"rlaas.interaction": 1, "rlaas.feedback": 1, "rlaas.task_result": 1}
    await visible(client, tenant, a["interaction_id"], feedback=1, task_results=1)

    again = await asyncio.to_thread(CliRunner().invoke, cli, ["rlaas", "interactions", "rebuild", "--tenant",
                                                              tenant.name, "--json"], env=_env(flywheel_settings))
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["replayed"]["rlaas.interaction"] == 1
    detail = await visible(client, tenant, a["interaction_id"], feedback=1, task_results=1)  # nothing twice
    assert detail["interaction"]["feedback_count"] == 1
