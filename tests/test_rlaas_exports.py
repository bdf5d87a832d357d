"""rlaas training data exports: SFT and DPO JSONL in the object store, as TRL reads them.

Interactions and feedback go in through `POST /v1/events` (the plugin's projection stores
them); rewards and pairs are the reward jobs' tables, filled here row by row with hand-picked
values so each selection has one right answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from flywheel.plugins.rlaas.prompts import prompt_hash
from flywheel.server.testing import eventually

BASE = "/v1/rlaas/exports"
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def iso(minutes: float) -> str:
    return at(minutes).isoformat().replace("+00:00", "Z")  # as the API writes times back


def chat(question: str, answer: str | None, *, minutes: float = 0, system: str | None = None,
         **fields: Any) -> dict[str, Any]:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    response = None if answer is None else {"choices": [{"message": {"role": "assistant", "content": answer}}]}
    return {"type": "rlaas.interaction", "event_id": str(uuid.uuid4()), "ts": at(minutes).isoformat(),
            "interaction_id": str(uuid.uuid4()), "route": "support", "endpoint": "chat.completions",
            "policy_id": str(uuid.uuid4()), "policy": "base", "policy_version": 1, "status": 200,
            "latency_ms": 100.0, "request": {"model": "support", "messages": messages}, "response": response,
            **fields}


def edit(interaction: dict, text: str) -> dict[str, Any]:
    return {"type": "rlaas.feedback", "event_id": str(uuid.uuid4()), "ts": at(1).isoformat(),
            "interaction_id": interaction["interaction_id"], "signal": {"kind": "edit", "corrected_text": text}}


async def store_events(client, state, tenant, events: list[dict]) -> None:
    r = await client.post("/v1/events", json=events, headers=tenant.headers)
    assert r.status_code == 200 and r.json()["rejected"] == 0, r.text
    n = sum(e["type"] == "rlaas.interaction" for e in events)
    f = sum(e["type"] == "rlaas.feedback" for e in events)

    async def projected():
        got = await state.db.fetchval("SELECT count(*) FROM rlaas_interactions WHERE tenant_id = $1", tenant.id)
        fb = await state.db.fetchval("SELECT count(*) FROM rlaas_feedback WHERE tenant_id = $1", tenant.id)
        return (got, fb) if (got, fb) == (n, f) else None

    await eventually(projected, what=f"{n} interactions and {f} feedback projected")


async def give_reward(state, tenant, interaction: dict, reward: float) -> None:
    await state.db.execute(
        """INSERT INTO rlaas_rewards (tenant_id, interaction_id, reward, inputs, weights_version, prompt_hash,
                                      route, policy, policy_version, ts)
           VALUES ($1, $2, $3, '{}', 1, $4, $5, $6, $7, $8)""",
        tenant.id, uuid.UUID(interaction["interaction_id"]), reward, prompt_hash(tenant.id, interaction["request"]),
        interaction["route"], interaction["policy"], interaction["policy_version"],
        datetime.fromisoformat(interaction["ts"]))


async def add_pair(state, tenant, source: str, prompt: dict, chosen: dict, rejected: dict,
                   chosen_text: str | None = None, minutes: float = 0) -> None:
    await state.db.execute(
        """INSERT INTO rlaas_pairs (tenant_id, pair_id, source, prompt_hash, interaction_id, chosen_interaction_id,
                                    rejected_interaction_id, chosen_text, route, ts)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        tenant.id, uuid.uuid4(), source, prompt_hash(tenant.id, prompt["request"]),
        *(uuid.UUID(x["interaction_id"]) for x in (prompt, chosen, rejected)), chosen_text, prompt["route"],
        at(minutes))


async def export(client, worker, tenant, kind: str, **selection: Any) -> dict[str, Any]:
    """Create an export, let a worker write it, and return it as the API shows it then."""
    r = await client.post(BASE, json={"kind": kind, "selection": selection}, headers=tenant.headers)
    assert r.status_code == 202, r.text
    created = r.json()
    assert created["status"] == "queued" and created["job_id"], created
    await worker()
    done = (await client.get(f"{BASE}/{created['export_id']}", headers=tenant.headers)).json()
    assert done["status"] == "succeeded", done
    return done


async def data_of(client, tenant, record: dict) -> bytes:
    r = await client.get(f"{BASE}/{record['export_id']}/data", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return r.content


def lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines()]


def sft_row(interaction: dict, answer: str) -> dict:
    return {"messages": [*interaction["request"]["messages"], {"role": "assistant", "content": answer}]}


@pytest.fixture
async def sft_world(client, state, tenant) -> dict[str, dict]:
    """Eight interactions: six exportable, each told apart by one selection field, and two that are not."""
    w = {
        "a": chat("Where is my order?", "It ships today.", minutes=0),
        "b": chat("Can I get a refund?", "Yes, within 30 days.", minutes=10, system="Be brief."),
        "c": chat("Do you ship to Canada?", "We do.", minutes=20, route="sales"),
        "d": chat("Reset my password", "Click 'forgot password'.", minutes=30, policy="tuned", policy_version=2),
        "e": chat("Is it in stock?", "No.", minutes=40, policy="tuned", policy_version=3),
        "f": chat("Cancel my plan", "Done.", minutes=50),
        "shadow": chat("Where is my order?", "Somewhere.", minutes=5, role="shadow"),
        "failed": chat("Hello?", None, minutes=15, status=502),
        "tool": {**chat("Weather?", "x", minutes=25),
                 "request": {"messages": [{"role": "user", "content": "Weather?"},
                                          {"role": "assistant", "content": None,
                                           "tool_calls": [{"id": "1", "type": "function",
                                                           "function": {"name": "w", "arguments": "{}"}}]}]}},
    }
    await store_events(client, state, tenant, [*w.values(), edit(w["f"], "Your plan is cancelled; no charge.")])
    for name, reward in (("a", 1.0), ("b", 0.2), ("c", 0.5), ("d", -1.0), ("f", 0.9)):
        await give_reward(state, tenant, w[name], reward)
    return w


async def test_sft_rows_are_the_conversation_and_follow_the_selection(client, worker, tenant, sft_world):
    w = sft_world
    everything = await export(client, worker, tenant, "sft")
    rows = lines(await data_of(client, tenant, everything))
    expected = [sft_row(w[n], w[n]["response"]["choices"][0]["message"]["content"]) for n in "abcde"]
    expected.append(sft_row(w["f"], "Your plan is cancelled; no charge."))  # the user's correction wins
    assert rows == expected, "oldest first; shadows and failed calls are not training data"
    assert everything["row_count"] == 6 and everything["skipped"] == {"not_plain_text": 1}, everything

    cases = [
        ({"route": "sales"}, "c"),
        ({"policy": "tuned"}, "de"),
        ({"policy": "tuned", "policy_version": 3}, "e"),
        ({"since": iso(10), "until": iso(30)}, "bc"),  # since inclusive, until exclusive
        ({"min_reward": 0.5}, "acf"),  # an interaction without a reward has none to pass
        ({"min_reward": -1.0, "route": "support"}, "abdf"),
        ({"max_rows": 2}, "ab"),
    ]
    for selection, names in cases:
        record = await export(client, worker, tenant, "sft", **selection)
        got = lines(await data_of(client, tenant, record))
        want = [r for r, n in zip(expected, "abcdef") if n in names]
        assert got == want, selection
        assert record["row_count"] == len(names) and record["selection"] == selection, record


async def test_the_manifest_describes_the_bytes(client, worker, tenant, state, sft_world):
    record = await export(client, worker, tenant, "sft", route="support", min_reward=0.0)
    data = await data_of(client, tenant, record)
    store = state.tenant_store(tenant.id)
    assert record["object_key"] == f"rlaas/exports/{record['export_id']}/data.jsonl"
    assert await store.get(record["object_key"]) == data
    manifest = json.loads(await store.get(record["manifest_key"]))
    assert record["manifest_key"] == f"rlaas/exports/{record['export_id']}/manifest.json"
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() == record["sha256"]
    assert manifest["row_count"] == len(data.splitlines()) == record["row_count"] == 3
    assert manifest["size_bytes"] == len(data) == record["size_bytes"]
    assert manifest["selection"] == {"route": "support", "min_reward": 0.0}
    assert manifest["format"] == "trl.conversational.language_modeling" and manifest["kind"] == "sft"
    assert datetime.fromisoformat(manifest["created_at"]) == datetime.fromisoformat(record["created_at"])
    assert data.endswith(b"\n") and b"\n\n" not in data


async def test_dpo_rows_come_from_the_pairs(client, worker, tenant, state):
    q = chat("Summarize my ticket", "Your ticket is about billing.", minutes=0)
    q2 = chat("Summarize my ticket", "Ticket.", minutes=3, policy="tuned", policy_version=2)
    r = chat("Translate 'hello'", "Bonjour", minutes=6, route="sales")
    r2 = chat("Translate 'hello'", "Hola", minutes=8, route="sales")
    await store_events(client, state, tenant, [q, q2, r, r2])
    await add_pair(state, tenant, "comparison", q, q, q2, minutes=3)
    await add_pair(state, tenant, "edit", q2, q2, q2, chosen_text="Your billing ticket, in one line.", minutes=4)
    await add_pair(state, tenant, "reward_gap", r, r, r2, minutes=8)
    await add_pair(state, tenant, "edit", r2, r2, r2, chosen_text="Hola", minutes=9)  # the same text: no signal

    def row(prompt: dict, chosen: str, rejected: str) -> dict:
        return {"prompt": prompt["request"]["messages"], "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}]}

    comparison = row(q, "Your ticket is about billing.", "Ticket.")
    edited = row(q2, "Your billing ticket, in one line.", "Ticket.")
    gap = row(r, "Bonjour", "Hola")
    everything = await export(client, worker, tenant, "dpo")
    assert lines(await data_of(client, tenant, everything)) == [comparison, edited, gap]
    assert everything["row_count"] == 3 and everything["skipped"] == {"same_text": 1}

    for selection, want in [({"sources": ["edit"]}, [edited]), ({"sources": ["comparison", "reward_gap"]},
                                                                 [comparison, gap]),
                            ({"route": "sales"}, [gap]), ({"policy": "tuned"}, [edited]),
                            ({"since": iso(4)}, [edited, gap]), ({"until": iso(4)},
                                                                            [comparison])]:
        record = await export(client, worker, tenant, "dpo", **selection)
        assert lines(await data_of(client, tenant, record)) == want, selection
    manifest = json.loads(await state.tenant_store(tenant.id).get(everything["manifest_key"]))
    assert manifest["format"] == "trl.conversational.preference" and set(manifest["fields"]) == {
        "prompt", "chosen", "rejected"}


async def test_a_selection_that_does_not_fit_is_refused(client, tenant):
    cases = [
        ({"kind": "dpo", "selection": {"min_reward": 1}}, "$.selection.min_reward"),
        ({"kind": "sft", "selection": {"sources": ["edit"]}}, "$.selection.sources"),
        ({"kind": "sft", "selection": {"since": iso(5), "until": iso(5)}}, "$.selection.until"),
        ({"kind": "sft", "selection": {"since": "2026-01-01T00:00:00"}}, "$.selection.since"),  # no timezone
        ({"kind": "dpo", "selection": {"sources": ["rumour"]}}, "$.selection.sources[0]"),
        ({"kind": "sft", "selection": {"route": "no spaces"}}, "$.selection.route"),
        ({"kind": "sft", "selection": {"max_rows": 0}}, "$.selection.max_rows"),
        ({"kind": "sft", "selection": {"columns": ["x"]}}, "$.selection.columns"),
        ({"kind": "csv"}, "$.kind"),
    ]
    for body, field in cases:
        r = await client.post(BASE, json=body, headers=tenant.headers)
        assert r.status_code == 422 and r.json()["field"] == field, (body, r.text)
    assert (await client.get(BASE, headers=tenant.headers)).json()["items"] == [], "nothing was queued"


async def test_exports_list_in_pages_and_download_on_the_file_store(client, worker, tenant, state, sft_world):
    made = [await export(client, worker, tenant, "sft", max_rows=n) for n in (1, 2, 3)]
    r = await client.get(BASE, params={"limit": 2}, headers=tenant.headers)
    page = r.json()
    assert [e["export_id"] for e in page["items"]] == [made[2]["export_id"], made[1]["export_id"]]
    rest = (await client.get(BASE, params={"limit": 2, "cursor": page["next_cursor"]}, headers=tenant.headers)).json()
    assert [e["export_id"] for e in rest["items"]] == [made[0]["export_id"]] and rest["next_cursor"] is None
    assert (await client.get(BASE, params={"kind": "dpo"}, headers=tenant.headers)).json()["items"] == []

    link = (await client.get(f"{BASE}/{made[2]['export_id']}/download", headers=tenant.headers)).json()
    assert link["method"] == "stream" and link["url"] == f"{BASE}/{made[2]['export_id']}/data"
    body = (await client.get(link["url"], headers=tenant.headers)).content
    assert hashlib.sha256(body).hexdigest() == link["sha256"] == made[2]["sha256"] and len(lines(body)) == 3


async def test_an_export_not_written_yet_cannot_be_downloaded(client, tenant, state):
    r = await client.post(BASE, json={"kind": "sft"}, headers=tenant.headers)
    export_id = r.json()["export_id"]
    for path in ("download", "data"):
        got = await client.get(f"{BASE}/{export_id}/{path}", headers=tenant.headers)
        assert got.status_code == 409 and got.json()["code"] == "export_not_ready", got.text
    await state.db.execute("DELETE FROM rlaas_exports WHERE tenant_id = $1", tenant.id)  # no worker for it here


async def test_another_tenant_sees_nothing_and_its_job_touches_nothing(client, worker, tenant, make_tenant, state,
                                                                      sft_world):
    mine = await export(client, worker, tenant, "sft")
    other = await make_tenant()
    for path in ("", "/download", "/data"):
        r = await client.get(f"{BASE}/{mine['export_id']}{path}", headers=other.headers)
        assert r.status_code == 404, (path, r.text)
    assert (await client.get(BASE, headers=other.headers)).json()["items"] == []
    # The other tenant's own export selects from its own (empty) interactions.
    theirs = await export(client, worker, other, "sft")
    assert theirs["row_count"] == 0 and theirs["size_bytes"] == 0
    # Its job, pointed at my export, fails without writing a thing.
    r = await client.post("/v1/jobs", json={"name": "rlaas.export", "payload": {"export_id": mine["export_id"]}},
                          headers=other.headers)
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=other.headers)).json()
    assert job["state"] == "failed" and "no such export" in job["error"]
    assert (await client.get(f"{BASE}/{mine['export_id']}", headers=tenant.headers)).json() == mine


async def test_the_job_run_again_changes_nothing(client, worker, tenant, state, sft_world):
    record = await export(client, worker, tenant, "sft")
    r = await client.post("/v1/jobs", json={"name": "rlaas.export", "payload": {"export_id": record["export_id"]}},
                          headers=tenant.headers)
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=tenant.headers)).json()
    assert job["state"] == "succeeded" and job["result"]["sha256"] == record["sha256"], job
    assert (await client.get(f"{BASE}/{record['export_id']}", headers=tenant.headers)).json() == record


@pytest.fixture
async def s3_app(s3_server, flywheel_settings, monkeypatch):
    """The same app and database with an S3 object store (SeaweedFS), its own queue and a burst worker."""
    import msgspec
    from s3_server import BUCKET

    from flywheel.server.app import create_app
    from flywheel.server.jobs.worker import build_worker
    from flywheel.server.testing.client import app_client

    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    settings = msgspec.structs.replace(flywheel_settings, store_url=f"s3://{BUCKET}/exports-{uuid.uuid4().hex[:8]}",
                                       s3_endpoint_url=s3_server.endpoint_url,
                                       queue_name=f"flywheel-test-s3:{uuid.uuid4().hex[:8]}")
    app = create_app(settings, load_entrypoints=True)
    async with app_client(app) as c:
        async def work() -> None:
            w = build_worker(app.state.flywheel, burst=True, handle_signals=False, poll_delay=0.05)
            try:
                await w.main()
            finally:
                await w.close()

        yield c, app.state.flywheel, work


async def test_download_on_s3_is_a_presigned_url(s3_app, tenant, sft_world):
    s3_client, s3_state, s3_worker = s3_app
    record = await export(s3_client, s3_worker, tenant, "sft", route="support")
    link = (await s3_client.get(f"{BASE}/{record['export_id']}/download", params={"expires_s": 120},
                                headers=tenant.headers)).json()
    assert link["method"] == "presigned_url" and link["url"].startswith("http://127.0.0.1:"), link
    expires = datetime.fromisoformat(link["expires_at"])
    assert timedelta(seconds=100) < expires - datetime.now(UTC) <= timedelta(seconds=120)
    async with httpx.AsyncClient() as plain:  # no Flywheel key, no AWS credentials: the URL is all
        body = (await plain.get(link["url"])).content
        assert (await plain.get(link["url"].replace("data.jsonl", "manifest.json"))).status_code == 403
    assert hashlib.sha256(body).hexdigest() == record["sha256"] and len(lines(body)) == 5
    assert json.loads(await s3_state.tenant_store(tenant.id).get(record["manifest_key"]))["sha256"] == record["sha256"]
    streamed = await data_of(s3_client, tenant, record)  # the API streams from S3 too
    assert streamed == body


def _env(settings) -> dict[str, str]:
    return {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
            "FLYWHEEL_STORE_URL": settings.store_url, "FLYWHEEL_DATA_DIR": settings.data_dir, "COLUMNS": "200"}


async def test_the_cli_creates_lists_shows_and_downloads(client, tenant, sft_world, flywheel_settings, tmp_path):
    from flywheel.server.testing import cli

    async def run(*args: str):
        return await asyncio.to_thread(CliRunner().invoke, cli, ["rlaas", "exports", *args],
                                       env=_env(flywheel_settings))

    made = await run("create", "sft", "--tenant", tenant.name, "--route", "support", "--min-reward", "0.5", "--json")
    assert made.exit_code == 0, made.output
    record = json.loads(made.stdout)
    assert record["status"] == "succeeded" and record["row_count"] == 2, record  # a and f
    assert record["selection"] == {"route": "support", "min_reward": 0.5}
    api = (await client.get(f"{BASE}/{record['export_id']}", headers=tenant.headers)).json()
    assert api == record, "the CLI's export is the API's"

    listed = await run("list", "--tenant", tenant.name)
    assert listed.exit_code == 0 and record["export_id"] in listed.output and "succeeded" in listed.output
    shown = await run("show", record["export_id"], "--tenant", str(tenant.id))
    assert shown.exit_code == 0 and record["sha256"] in shown.output, shown.output

    out = tmp_path / "sft.jsonl"
    got = await run("download", record["export_id"], "--tenant", tenant.name, "-o", str(out))
    assert got.exit_code == 0, got.output
    assert hashlib.sha256(out.read_bytes()).hexdigest() == record["sha256"] and len(lines(out.read_bytes())) == 2
    assert f"{record['size_bytes']:,} bytes" in got.output

    bad = await run("create", "dpo", "--tenant", tenant.name, "--min-reward", "1")
    assert bad.exit_code == 2 and "--min-reward" in bad.output, bad.output
    wrong = await run("create", "sft", "--tenant", tenant.name, "--source", "edit")
    assert wrong.exit_code == 2 and "--source:" in wrong.output, wrong.output
    missing = await run("show", str(uuid.uuid4()), "--tenant", tenant.name)
    assert missing.exit_code == 1 and "no export" in missing.output


@pytest.mark.llm_train  # needs the `llm-train` extra (trl, datasets, transformers): `make test` installs it
async def test_trl_reads_each_file_as_written(client, worker, tenant, state, sft_world, tmp_path):
    import datasets
    from tiny_llm import tiny_tokenizer
    from trl.data_utils import is_conversational, maybe_apply_chat_template, maybe_extract_prompt

    w = sft_world
    await add_pair(state, tenant, "comparison", w["a"], w["a"], w["shadow"], minutes=5)
    await add_pair(state, tenant, "edit", w["f"], w["f"], w["f"], chosen_text="Your plan is cancelled.", minutes=51)
    tokenizer = tiny_tokenizer()
    for kind, n in (("sft", 6), ("dpo", 2)):
        record = await export(client, worker, tenant, kind)
        path = tmp_path / f"{kind}.jsonl"
        path.write_bytes(await data_of(client, tenant, record))
        ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
        assert ds.num_rows == n == record["row_count"]
        assert ds.to_list() == lines(path.read_bytes()), "the loader reads every row exactly as written"
        assert all(is_conversational(example) for example in ds), kind
        # What TRL's trainers do first: split off the prompt (a no-op here), then apply the chat template.
        text = ds.map(maybe_extract_prompt).map(maybe_apply_chat_template, fn_kwargs={"processing_class": tokenizer})
        if kind == "sft":
            assert "text" in text.column_names  # beside `messages`, which the trainers drop
            assert text[5]["text"] == ("<|user|> Cancel my plan </s> "
                                       "<|assistant|> Your plan is cancelled; no charge. </s> ")
        else:
            assert set(text.column_names) == {"prompt", "chosen", "rejected"}
            assert text[0]["prompt"] == "<|user|> Where is my order? </s> <|assistant|>"  # the generation prompt
            assert (text[0]["chosen"], text[0]["rejected"]) == (" It ships today. </s> ", " Somewhere. </s> ")
            assert text[1]["chosen"] == " Your plan is cancelled. </s> " and "Done." in text[1]["rejected"]


async def test_exports_of_what_the_rewards_job_derived(client, worker, tenant, state):
    """The whole path: feedback events -> `rlaas.compute_rewards` -> rewards and pairs -> exports."""
    def fb(x: dict, signal: dict) -> dict:
        return {"type": "rlaas.feedback", "event_id": str(uuid.uuid4()), "ts": at(30).isoformat(),
                "interaction_id": x["interaction_id"], "signal": signal}

    liked = chat("Where is my order?", "It ships today.", minutes=0)
    disliked = chat("Where is my order?", "No idea.", minutes=1, policy="tuned")
    rated = chat("Can I get a refund?", "Yes, within 30 days.", minutes=2)
    edited = chat("Cancel my plan", "Done.", minutes=3)
    one, other = chat("Say hello", "Hi.", minutes=4), chat("Say hello", "Hello there!", minutes=5)
    await store_events(client, state, tenant, [
        liked, disliked, rated, edited, one, other,
        fb(liked, {"kind": "thumbs", "value": "up"}), fb(disliked, {"kind": "thumbs", "value": "down"}),
        fb(rated, {"kind": "rating", "value": 4}), edit(edited, "Your plan is cancelled."),
        fb(one, {"kind": "comparison", "other_interaction_id": other["interaction_id"], "preferred": "other"})])
    r = await client.post("/v1/jobs", json={"name": "rlaas.compute_rewards", "payload": {}}, headers=tenant.headers)
    assert r.status_code == 202, r.text
    await worker()
    assert (await client.get(f"/v1/jobs/{r.json()['id']}", headers=tenant.headers)).json()["state"] == "succeeded"

    def answer(x: dict) -> str:
        return x["response"]["choices"][0]["message"]["content"]

    sft = await export(client, worker, tenant, "sft", min_reward=0.5)  # thumbs up is 1, a rating of 4 is 0.5
    assert lines(await data_of(client, tenant, sft)) == [sft_row(liked, answer(liked)), sft_row(rated, answer(rated))]

    def pair(prompt: dict, chosen: str, rejected: str) -> dict:
        return {"prompt": prompt["request"]["messages"], "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}]}

    expected = {"reward_gap": pair(liked, "It ships today.", "No idea."),
                "edit": pair(edited, "Your plan is cancelled.", "Done."),
                "comparison": pair(one, "Hello there!", "Hi.")}
    for source, row in expected.items():
        record = await export(client, worker, tenant, "dpo", sources=[source])
        assert lines(await data_of(client, tenant, record)) == [row], source
    everything = await export(client, worker, tenant, "dpo")
    assert sorted(map(json.dumps, lines(await data_of(client, tenant, everything)))) == sorted(
        map(json.dumps, expected.values()))
