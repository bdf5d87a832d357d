"""The rlaas LoRA trainer: TRL + PEFT on exports, adapters as versioned artifacts, and policies serving them.

The base model is tests/tiny_llm.py's: a Llama-shaped model of a few thousand
random weights with a word-level tokenizer, built here and saved under the
test server's data folder, where FLYWHEEL_RLAAS_BASE_MODEL_DIRS points by
default (`<data_dir>/base-models`). Nothing is downloaded. Exports are made
the way a tenant makes them: interactions through `POST /v1/events`, then
`POST /v1/rlaas/exports` (DPO pairs are the reward job's rows, written here).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from tiny_llm import save_tiny_llm

from flywheel.server.testing import eventually

BASE = "/v1/rlaas/adapters"
QUICK = {"max_steps": 12, "learning_rate": 0.01, "batch_size": 4, "dropout": 0.0, "device": "cpu"}
PROGRESS = re.compile(r"^step (\d+)/(\d+) loss (\d+\.\d{4})")
CONVERSATIONS = [
    ("where is my order?", "it shipped today, sorry it is late."),
    ("can i get a refund?", "yes, please send the package back and we will refund you."),
    ("how do i reset my password?", "check your email, we will send you a new password."),
    ("my package did not arrive.", "sorry, we will check the tracking number now."),
]


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def base_model(flywheel_settings) -> str:
    """The tiny model, as a local base model inside the default allowed folder."""
    path = Path(flywheel_settings.data_dir).resolve() / "base-models" / "tiny-llama"
    if not (path / "config.json").exists():
        save_tiny_llm(path)
    return str(path)


def sft_rows(n: int = 16) -> list[dict]:
    return [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for q, a in (CONVERSATIONS * n)[:n]]


def dpo_rows(n: int = 16) -> list[dict]:
    return [{"prompt": [{"role": "user", "content": q}], "chosen": [{"role": "assistant", "content": a}],
             "rejected": [{"role": "assistant", "content": "no."}]} for q, a in (CONVERSATIONS * n)[:n]]


def interaction(question: str, answer: str, minutes: float) -> dict[str, Any]:
    ts = datetime.now(UTC) - timedelta(hours=1) + timedelta(minutes=minutes)
    return {"type": "rlaas.interaction", "event_id": str(uuid.uuid4()), "ts": ts.isoformat(),
            "interaction_id": str(uuid.uuid4()), "route": "support", "endpoint": "chat.completions",
            "policy_id": str(uuid.uuid4()), "policy": "base", "policy_version": 1, "status": 200,
            "latency_ms": 100.0, "request": {"model": "support", "messages": [{"role": "user", "content": question}]},
            "response": {"choices": [{"message": {"role": "assistant", "content": answer}}]}}


async def make_export(client, state, worker, tenant, kind: str = "sft") -> dict:
    """The tenant's interactions (and, for DPO, pairs of them), exported by the export job."""
    events = [interaction(q, a, i) for i, (q, a) in enumerate(CONVERSATIONS * 2)]
    worse = [interaction(q, "no.", 30 + i) for i, (q, _) in enumerate(CONVERSATIONS)] if kind == "dpo" else []
    r = await client.post("/v1/events", json=events + worse, headers=tenant.headers)
    assert r.status_code == 200 and r.json()["accepted"] == len(events + worse), r.text

    async def projected():
        return await state.db.fetchval("SELECT count(*) FROM rlaas_interactions WHERE tenant_id = $1",
                                       tenant.id) == len(events + worse)

    await eventually(projected, what="the interactions projected")
    for good, bad in zip(events, worse):  # DPO: the good answer beats "no." for the same prompt
        await add_pair(state, tenant, good, bad)
    r = await client.post("/v1/rlaas/exports", json={"kind": kind}, headers=tenant.headers)
    assert r.status_code == 202, r.text
    await worker()
    record = (await client.get(f"/v1/rlaas/exports/{r.json()['export_id']}", headers=tenant.headers)).json()
    assert record["status"] == "succeeded" and record["row_count"] == len(events if kind == "sft" else worse), record
    return record


async def add_pair(state, tenant, chosen: dict, rejected: dict) -> None:
    from flywheel.plugins.rlaas.prompts import prompt_hash

    await state.db.execute(
        """INSERT INTO rlaas_pairs (tenant_id, pair_id, source, prompt_hash, interaction_id, chosen_interaction_id,
                                    rejected_interaction_id, chosen_text, route, ts)
           VALUES ($1, $2, 'comparison', $3, $4, $4, $5, NULL, 'support', $6)""",
        tenant.id, uuid.uuid4(), prompt_hash(tenant.id, chosen["request"]), uuid.UUID(chosen["interaction_id"]),
        uuid.UUID(rejected["interaction_id"]), datetime.fromisoformat(rejected["ts"]))


async def train(client, tenant, export: dict, base_model: str, name: str = "support-lora", **config: Any):
    r = await client.post(BASE, headers=tenant.headers, json={
        "name": name, "export_id": export["export_id"], "base_model": base_model, "config": {**QUICK, **config}})
    assert r.status_code == 202, r.text
    return r.json()


async def adapter(client, tenant, adapter_id: str) -> dict:
    r = await client.get(f"{BASE}/{adapter_id}", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def job(client, tenant, job_id: str) -> dict:
    r = await client.get(f"/v1/jobs/{job_id}", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def stored(state, tenant_id, prefix: str) -> dict[str, int]:
    return {info.key: info.size async for info in state.tenant_store(tenant_id).list(prefix)}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def trained(client, state, worker, make_tenant, base_model) -> dict[str, Any]:
    """One tenant with an SFT export and an adapter trained on it by the worker."""
    tenant = await make_tenant()
    export = await make_export(client, state, worker, tenant)
    created = await train(client, tenant, export, base_model)
    await worker()
    return {"tenant": tenant, "export": export, "created": created,
            "adapter": await adapter(client, tenant, created["id"])}


def logits_of(model_dir: str, adapter_dir: Path | None = None):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, str(adapter_dir))
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "where is my order?"}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        return model(**ids).logits


# -- the trainer on a local file -----------------------------------------------------------------


@pytest.mark.parametrize("kind,rows", [("sft", sft_rows()), ("dpo", dpo_rows())])
def test_a_few_steps_bring_the_loss_down_and_the_adapter_changes_the_model(base_model, tmp_path, kind, rows):
    import torch

    from flywheel.plugins.rlaas.trainer.config import TrainConfig
    from flywheel.plugins.rlaas.trainer.train import train_lora

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    seen: list[tuple[int, int, float]] = []
    result = train_lora(base_model, data, kind, TrainConfig(**QUICK), tmp_path / "out",
                        report=lambda step, total, loss: seen.append((step, total, loss)) or True)

    assert not result.stopped and result.steps == 12 and result.rows == 16 and result.device == "cpu"
    losses = [loss for _, loss in result.loss_history]
    assert len(losses) == 12 and losses[-1] < losses[0], losses
    assert sum(losses[-3:]) < sum(losses[:3]), "the loss goes down, not just its last step"
    if kind == "dpo":
        assert abs(losses[0] - 0.6931) < 1e-3, "DPO starts at log 2: the adapter starts as the base model"
    assert [s for s, _, _ in seen] == list(range(13)) and all(t == 12 for _, t, _ in seen), seen
    assert [loss for _, _, loss in seen[1:]] == losses, "each step's loss reaches the job"
    assert 0 < result.step_time_s < 5 and 0 < result.trainable_params < result.total_params

    adapter_dir = tmp_path / "out" / "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in adapter_dir.iterdir()}
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["lora_alpha"] == 16 and config["peft_type"] == "LORA"
    before, after = logits_of(base_model), logits_of(base_model, adapter_dir)
    assert before.shape == after.shape
    assert not torch.allclose(before, after, atol=1e-6), "the trained adapter changes the model's outputs"


def test_training_stops_when_the_report_says_so(base_model, tmp_path):
    from flywheel.plugins.rlaas.trainer.config import TrainConfig
    from flywheel.plugins.rlaas.trainer.train import train_lora

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in sft_rows()))
    result = train_lora(base_model, data, "sft", TrainConfig(**{**QUICK, "max_steps": 1000}), tmp_path / "out",
                        report=lambda step, total, loss: step < 3)
    assert result.stopped and result.steps == 3
    assert not (tmp_path / "out" / "adapter").exists(), "a stopped run leaves no adapter"


def test_cpu_threads_leave_a_core_to_the_event_loop_unless_set(monkeypatch):
    import os

    from flywheel.plugins.rlaas.trainer.train import THREADS_ENV, cpu_threads

    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert cpu_threads() == max(1, len(os.sched_getaffinity(0)) - 1)
    monkeypatch.setenv(THREADS_ENV, "3")
    assert cpu_threads() == 3
    for bad in ("0", "-1", "many", "5000"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match=THREADS_ENV):
            cpu_threads()


# -- the job, through the API --------------------------------------------------------------------


async def test_an_adapter_is_trained_by_the_worker_and_stored_whole(client, state, trained, base_model, tmp_path):
    import torch

    tenant, export, a = trained["tenant"], trained["export"], trained["adapter"]
    assert trained["created"]["status"] == "queued" and trained["created"]["job_id"]
    assert a["status"] == "succeeded", a
    assert (a["name"], a["version"], a["method"], a["base_model"]) == ("support-lora", 1, "sft", base_model)
    assert a["config"]["max_steps"] == 12 and a["config"]["r"] == 8  # the defaults are filled in

    m = a["metrics"]
    assert m["steps"] == 12 and m["final_loss"] < m["first_loss"], m
    assert m["step_time_s"] > 0 and len(m["loss_history"]) == 12
    assert a["data_manifest"]["sha256"] == export["sha256"] and a["data_manifest"]["row_count"] == 8

    done = await job(client, tenant, a["job_id"])
    assert done["state"] == "succeeded" and done["result"]["adapter_id"] == a["id"]
    shown = PROGRESS.match(done["progress"]["message"])
    assert shown and int(shown[1]) == int(shown[2]) == 12 and float(shown[3]) == round(m["final_loss"], 4), done
    assert done["progress"]["current"] == done["progress"]["total"] == 12

    prefix = f"rlaas/adapters/{a['id']}/"
    assert a["object_prefix"] == prefix
    objects = await stored(state, tenant.id, prefix)
    assert set(objects) == {f["key"] for f in a["files"]} >= {
        prefix + "adapter/adapter_model.safetensors", prefix + "adapter/adapter_config.json",
        prefix + "training_config.json", prefix + "data_manifest.json", prefix + "metrics.json"}
    store = state.tenant_store(tenant.id)
    training = json.loads(await store.get(prefix + "training_config.json"))
    assert training["export_sha256"] == export["sha256"] and training["config"] == a["config"]
    assert set(training["libraries"]) == {"torch", "transformers", "trl", "peft", "datasets"}
    assert json.loads(await store.get(prefix + "metrics.json"))["final_loss"] == m["final_loss"]

    for name in ("adapter_model.safetensors", "adapter_config.json"):  # what a serving engine would load
        await store.get_file(prefix + "adapter/" + name, tmp_path / "adapter" / name)
    assert not torch.allclose(logits_of(base_model), logits_of(base_model, tmp_path / "adapter"), atol=1e-6)


async def test_each_training_of_a_name_is_its_next_version_and_lists_newest_first(client, worker, trained,
                                                                                   base_model):
    tenant = trained["tenant"]
    again = await train(client, tenant, trained["export"], base_model, max_steps=1)
    other = await train(client, tenant, trained["export"], base_model, name="other", max_steps=1)
    assert (again["name"], again["version"]) == ("support-lora", 2) and other["version"] == 1
    await worker()  # both at once on one worker: they take turns, and both are trained
    for made in (again, other):
        a = await adapter(client, tenant, made["id"])
        assert a["status"] == "succeeded" and a["metrics"]["steps"] == 1, a
    page = (await client.get(BASE, params={"name": "support-lora", "limit": 1}, headers=tenant.headers)).json()
    assert [i["id"] for i in page["items"]] == [again["id"]] and page["next_cursor"]
    rest = (await client.get(BASE, params={"name": "support-lora", "cursor": page["next_cursor"]},
                             headers=tenant.headers)).json()
    assert [i["id"] for i in rest["items"]] == [trained["adapter"]["id"]] and rest["next_cursor"] is None
    done = (await client.get(BASE, params={"status": "succeeded", "name": "other"}, headers=tenant.headers)).json()
    assert [i["id"] for i in done["items"]] == [other["id"]]
    assert (await client.get(BASE, params={"status": "failed"}, headers=tenant.headers)).json()["items"] == []


async def test_a_dpo_export_trains_with_dpo(client, state, worker, tenant, base_model):
    export = await make_export(client, state, worker, tenant, "dpo")
    created = await train(client, tenant, export, base_model, name="dpo-lora", beta=0.2)
    await worker()
    a = await adapter(client, tenant, created["id"])
    assert a["status"] == "succeeded" and a["method"] == "dpo", a
    assert abs(a["metrics"]["first_loss"] - 0.6931) < 1e-3 and a["metrics"]["final_loss"] < 0.6931


async def test_cancelling_the_job_stops_training_and_stores_nothing(client, state, worker, trained, base_model):
    tenant = trained["tenant"]
    created = await train(client, tenant, trained["export"], base_model, name="long", max_steps=100_000)
    running = asyncio.create_task(worker())
    try:
        async def training():
            body = await job(client, tenant, created["job_id"])
            shown = PROGRESS.match(body["progress"].get("message") or "")
            return (body, shown) if shown and int(shown[1]) >= 2 else None

        body, shown = await eventually(training, timeout=60, what="training past step 2, with its loss")
        assert body["state"] == "running" and int(shown[2]) == 100_000 and float(shown[3]) > 0
        assert body["progress"]["current"] == int(shown[1]) and body["progress"]["total"] == 100_000
        r = await client.post(f"/v1/jobs/{created['job_id']}/cancel", headers=tenant.headers)
        assert r.status_code == 200, r.text
        await asyncio.wait_for(running, timeout=120)
    finally:
        running.cancel()
    done = await job(client, tenant, created["job_id"])
    assert done["state"] == "cancelled", done
    assert int(shown[1]) <= done["progress"]["current"] < 100_000, done  # how far it got
    a = await adapter(client, tenant, created["id"])
    assert a["status"] == "cancelled" and a["metrics"] is None and a["files"] == [], a
    assert await stored(state, tenant.id, a["object_prefix"]) == {}, "nothing half-stored"


async def test_the_data_must_match_the_exports_sha256(client, state, worker, trained, base_model):
    tenant, export = trained["tenant"], trained["export"]
    store = state.tenant_store(tenant.id)
    original = await store.get(export["object_key"])
    await store.put(export["object_key"], original.replace(b"refund", b"return"))
    try:
        created = await train(client, tenant, export, base_model, name="tampered")
        await worker()
    finally:
        await store.put(export["object_key"], original)
    a = await adapter(client, tenant, created["id"])
    assert a["status"] == "failed" and "SHA-256" in a["error"], a
    assert (await job(client, tenant, created["job_id"]))["state"] == "failed"
    assert await stored(state, tenant.id, a["object_prefix"]) == {}


# -- attaching to a policy -----------------------------------------------------------------------


UPSTREAM = {"base_url": "https://vllm.example.com/v1", "model": "tiny-llama"}


async def test_attach_makes_a_shadow_or_canary_policy_serving_the_adapter(client, trained):
    tenant, a = trained["tenant"], trained["adapter"]
    url = f"{BASE}/{a['id']}/policies"
    r = await client.post(url, headers=tenant.headers, json={"route": "support", "name": "lora", "upstream": UPSTREAM})
    assert r.status_code == 201, r.text
    shadow = r.json()
    assert shadow["status"] == "shadow" and shadow["upstream"]["adapter_id"] == a["id"]
    assert shadow["upstream"]["model"] == "tiny-llama" and "support-lora v1" in shadow["description"]
    audit = (await client.get(f"/v1/rlaas/policies/{shadow['id']}/audit", headers=tenant.headers)).json()
    assert [e["action"] for e in audit["items"]] == ["create"] and audit["items"][0]["after"]["id"] == shadow["id"]

    r = await client.post(url, headers=tenant.headers, json={
        "route": "support", "name": "lora", "version": 2, "status": "canary", "canary_share": 0.1,
        "upstream": {**UPSTREAM, "adapter_id": a["id"]}})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "canary" and r.json()["canary_share"] == 0.1
    listed = (await client.get("/v1/rlaas/policies", params={"route": "support"}, headers=tenant.headers)).json()
    assert {p["upstream"]["adapter_id"] for p in listed["items"]} == {a["id"]}

    # The policy path's own checks apply: a second canary, a canary without a share, a private host.
    for body, status, field in [
        ({"version": 3, "status": "canary", "canary_share": 0.2}, 409, None),
        ({"version": 3, "status": "canary"}, 422, "$.canary_share"),
        ({"version": 3, "upstream": {**UPSTREAM, "base_url": "http://10.0.0.1/v1"}}, 422, "$.upstream.base_url"),
        ({"version": 3, "status": "active"}, 422, "$.status"),
        ({"version": 3, "upstream": {**UPSTREAM, "adapter_id": "another-one"}}, 422, "$.upstream.adapter_id"),
    ]:
        r = await client.post(url, headers=tenant.headers,
                              json={"route": "support", "name": "lora", "upstream": UPSTREAM, **body})
        assert r.status_code == status, (body, r.text)
        if field:
            assert r.json()["field"] == field, r.text
    assert (await client.post(url, params={"replace": "true"}, headers=tenant.headers, json={
        "route": "support", "name": "lora", "version": 3, "status": "canary", "canary_share": 0.2,
        "upstream": UPSTREAM})).status_code == 201


async def test_only_a_trained_adapter_can_be_attached(client, trained, base_model):
    tenant = trained["tenant"]
    queued = await train(client, tenant, trained["export"], base_model, name="not-yet")
    r = await client.post(f"{BASE}/{queued['id']}/policies", headers=tenant.headers,
                          json={"route": "support", "name": "early", "upstream": UPSTREAM})
    assert r.status_code == 409 and r.json()["code"] == "adapter_not_ready", r.text


# -- isolation and validation --------------------------------------------------------------------


async def test_another_tenant_cannot_see_attach_train_on_or_retrain_an_adapter(client, state, worker, trained,
                                                                                make_tenant, base_model):
    owner, a, export = trained["tenant"], trained["adapter"], trained["export"]
    other = await make_tenant()
    assert (await client.get(f"{BASE}/{a['id']}", headers=other.headers)).status_code == 404
    assert (await client.get(BASE, headers=other.headers)).json()["items"] == []
    r = await client.post(f"{BASE}/{a['id']}/policies", headers=other.headers,
                          json={"route": "support", "name": "stolen", "upstream": UPSTREAM})
    assert r.status_code == 404, r.text
    r = await client.post(BASE, headers=other.headers, json={
        "name": "stolen", "export_id": export["export_id"], "base_model": base_model})
    assert r.status_code == 422 and r.json()["field"] == "$.export_id", r.text

    before = await stored(state, owner.id, a["object_prefix"])
    r = await client.post("/v1/jobs", headers=other.headers,
                          json={"name": "rlaas.train_adapter", "payload": {"adapter_id": a["id"]}})
    assert r.status_code == 202, r.text
    await worker()
    failed = await job(client, other, r.json()["id"])
    assert failed["state"] == "failed" and "no such adapter" in failed["error"], failed
    assert await adapter(client, owner, a["id"]) == a, "the owner's adapter is as it was"
    assert await stored(state, owner.id, a["object_prefix"]) == before


@pytest.mark.parametrize("change,field", [
    ({"config": {"r": 0}}, "$.config.r"),
    ({"config": {"alpha": 5000}}, "$.config.alpha"),
    ({"config": {"dropout": 0.9}}, "$.config.dropout"),
    ({"config": {"learning_rate": 1.0}}, "$.config.learning_rate"),
    ({"config": {"learning_rate": 0}}, "$.config.learning_rate"),
    ({"config": {"epochs": 100}}, "$.config.epochs"),
    ({"config": {"max_steps": 10**9}}, "$.config.max_steps"),
    ({"config": {"batch_size": 0}}, "$.config.batch_size"),
    ({"config": {"target_modules": ["lm_head"]}}, "$.config.target_modules[0]"),
    ({"config": {"target_modules": ["all-linear", "q_proj"]}}, "$.config.target_modules"),
    ({"config": {"target_modules": ["q_proj", "q_proj"]}}, "$.config.target_modules"),
    ({"config": {"target_modules": []}}, "$.config.target_modules"),
    ({"config": {"device": "tpu"}}, "$.config.device"),
    ({"config": {"trust_remote_code": True}}, "$.config.trust_remote_code"),
    ({"name": "Bad Name"}, "$.name"),
    ({"base_model": "/etc"}, "$.base_model"),
    ({"base_model": "BASE/../../../etc"}, "$.base_model"),
    ({"base_model": "meta-llama/Llama-3-8B"}, "$.base_model"),
    ({"base_model": "not a model"}, "$.base_model"),
    ({"export_id": str(uuid.uuid4())}, "$.export_id"),
])
async def test_bad_requests_are_422_naming_the_field(client, trained, base_model, change, field):
    tenant = trained["tenant"]
    body = {"name": "ok", "export_id": trained["export"]["export_id"], "base_model": base_model, **change}
    if isinstance(body["base_model"], str):
        body["base_model"] = body["base_model"].replace("BASE", base_model)
    r = await client.post(BASE, json=body, headers=tenant.headers)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field, r.text


async def test_an_empty_export_is_refused(client, worker, trained, base_model):
    tenant = trained["tenant"]
    r = await client.post("/v1/rlaas/exports", json={"kind": "sft", "selection": {"route": "nobody-calls-this"}},
                          headers=tenant.headers)
    await worker()
    r = await client.post(BASE, headers=tenant.headers, json={
        "name": "empty", "export_id": r.json()["export_id"], "base_model": base_model})
    assert r.status_code == 422 and r.json()["field"] == "$.export_id" and "no rows" in r.json()["message"], r.text


async def test_a_local_base_model_outside_the_allowed_folders_is_refused(client, trained, tmp_path):
    outside = save_tiny_llm(tmp_path / "elsewhere")
    link = Path(trained["adapter"]["base_model"]).parent / f"link-{uuid.uuid4().hex[:6]}"
    link.symlink_to(outside, target_is_directory=True)  # inside by name, outside once resolved
    try:
        for name in (str(outside), str(link)):
            r = await client.post(BASE, headers=trained["tenant"].headers, json={
                "name": "ok", "export_id": trained["export"]["export_id"], "base_model": name})
            assert r.status_code == 422 and r.json()["field"] == "$.base_model", r.text
            assert "FLYWHEEL_RLAAS_BASE_MODEL_DIRS" in r.json()["message"]
    finally:
        link.unlink()


def test_hub_ids_pass_only_the_operators_patterns():
    from flywheel.plugins.rlaas.trainer.base_models import BaseModels, base_model_problem

    allowed = BaseModels(dirs=[], hub_patterns=["Qwen/Qwen2.5-*", "HuggingFaceTB/SmolLM2-135M"])
    assert base_model_problem(allowed, "Qwen/Qwen2.5-0.5B-Instruct") is None
    assert base_model_problem(allowed, "HuggingFaceTB/SmolLM2-135M") is None
    for refused in ("HuggingFaceTB/SmolLM2-1.7B", "Qwen/../Qwen2.5-x", "evil/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B/x",
                    "Qwen\\Qwen2.5-0.5B", "https://example.com/model", "/models/x"):
        assert base_model_problem(allowed, refused), refused


# -- without the extra ---------------------------------------------------------------------------


def test_the_server_loads_without_torch_and_the_job_says_which_extra_it_needs():
    """A process where torch, TRL and PEFT cannot be imported still registers the routes and the job;
    running the job fails with the extra's name."""
    code = """
import sys
for name in ('torch', 'trl', 'peft', 'transformers', 'datasets'):
    sys.modules[name] = None  # as if not installed: `import torch` raises ImportError
from flywheel.plugins.rlaas import plugin
from flywheel.plugins.rlaas.adapters_cli import adapters
names = [spec.name for spec in plugin.register_jobs()]
routes = [c.__name__ for c in plugin.register_routes()]
from flywheel.plugins.rlaas.trainer.job import TrainerUnavailable, require_extra
try:
    require_extra()
except TrainerUnavailable as exc:
    print(names, routes, exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "rlaas.train_adapter" in out.stdout and "AdapterController" in out.stdout
    assert "pip install 'flywheel[llm-train]'" in out.stdout, out.stdout


# -- the CLI -------------------------------------------------------------------------------------


def _env(settings) -> dict[str, str]:
    return {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
            "FLYWHEEL_STORE_URL": settings.store_url, "FLYWHEEL_DATA_DIR": settings.data_dir, "COLUMNS": "200"}


async def test_the_cli_trains_with_a_progress_bar_lists_shows_and_attaches(client, trained, flywheel_settings,
                                                                          base_model):
    from click.testing import CliRunner

    from flywheel.server.testing import cli

    tenant, export = trained["tenant"], trained["export"]

    async def run(*args: str):
        return await asyncio.to_thread(CliRunner().invoke, cli, ["rlaas", "adapters", *args],
                                       env=_env(flywheel_settings))

    started = time.monotonic()
    made = await run("train", "--tenant", tenant.name, "--export", export["export_id"], "--base-model", base_model,
                     "--name", "from-cli", "--max-steps", "6", "--learning-rate", "0.01", "--device", "cpu",
                     "--target-module", "q_proj", "--target-module", "v_proj", "--json")
    assert made.exit_code == 0, made.output
    a = json.loads(made.stdout)
    assert a["status"] == "succeeded" and a["metrics"]["steps"] == 6, a
    assert a["config"]["target_modules"] == ["q_proj", "v_proj"]
    assert re.search(r"step 6/6 loss \d+\.\d{4}", made.stderr), made.stderr  # the progress bar's last line
    assert await adapter(client, tenant, a["id"]) == a and time.monotonic() - started < 120

    listed = await run("list", "--tenant", tenant.name, "--name", "from-cli")
    assert listed.exit_code == 0 and a["id"] in listed.output and "succeeded" in listed.output, listed.output
    shown = await run("show", a["id"], "--tenant", str(tenant.id))
    assert shown.exit_code == 0 and "final loss" in shown.output and f"{a['metrics']['final_loss']:.4f}" in \
        shown.output, shown.output
    attached = await run("attach", a["id"], "--tenant", tenant.name, "--route", "cli-route", "--name", "cli-lora",
                         "--base-url", UPSTREAM["base_url"], "--model", "tiny-llama", "--json")
    assert attached.exit_code == 0, attached.output
    policy = json.loads(attached.stdout)
    assert policy["status"] == "shadow" and policy["upstream"]["adapter_id"] == a["id"]

    bad = await run("train", "--tenant", tenant.name, "--export", export["export_id"], "--base-model", base_model,
                    "--name", "x", "--r", "0")
    assert bad.exit_code == 2 and "$.config.r" in bad.output, bad.output
