"""A key of tenant A never reads or changes tenant B's data, on any route.

The routes come from the app itself, so a route added later (core or plugin)
is covered without touching this file: its path parameters must have a
provider below (the test fails and says so when one is missing), and its
responses to A must never carry B's ids or marker. Console pages (plugin
pages included) get the same sweep with A signed in to the console, since
they authenticate by session cookie rather than by API key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from route_sweep import fill, protected_routes

from flywheel.server.testing import eventually

MARKER = f"tenant-b-secret-{uuid.uuid4().hex[:8]}"
DAY = datetime.now(UTC).date() - timedelta(days=10)  # recent: the ingest refuses events over a year old


@dataclass
class TenantB:
    headers: dict[str, str]
    tenant_id: str
    ids: dict[str, str] = field(default_factory=dict)
    worker: Any = None
    state: Any = None  # the app's state, for what only code makes (alerts: raise_alert)


async def _job(client, b):
    r = await client.post("/v1/jobs", json={"name": "example.count_notes"}, headers=b.headers)
    return r.json()["id"]


async def _key(client, b):
    r = await client.post("/v1/keys", json={"name": MARKER, "scopes": ["read"]}, headers=b.headers)
    return r.json()["key"]["id"]


async def _note(client, b):
    r = await client.post("/v1/example/notes", json={"title": MARKER}, headers=b.headers)
    return r.json()["id"]


async def _family(client, b):
    """Model families are declared by code, the same for every tenant; B trains its own version of one."""
    r = await client.post("/v1/models/example.note_reopen/train", headers=b.headers,
                          json={"auto_activate": True, "options": {"rows": 500}})
    assert r.status_code == 202, r.text
    await b.worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=b.headers)).json()
    assert job["state"] == "succeeded", job
    b.ids["version"] = str(job["result"]["version"])
    return "example.note_reopen"


async def _version(client, b):
    return b.ids["version"]  # made by _family, which runs first


async def _serial(client, b):
    """A drive of B's, streamed as a daily SMART record (it lands through the drives plugin's subscriber)."""
    serial = f"{MARKER}-drive"
    r = await client.post("/v1/events", headers=b.headers, json=[{
        "type": "drives.smart_daily", "event_id": str(uuid.uuid4()), "ts": f"{DAY}T23:00:00Z",
        "date": DAY.isoformat(), "serial_number": serial, "model": "ST4000DM000", "smart": {"smart_5_raw": 1}}])
    assert r.json()["accepted"] == 1, r.text
    async def visible() -> bool:
        return (await client.get(f"/v1/drives/{serial}", headers=b.headers)).status_code == 200

    await eventually(visible, what="B's drive")
    return serial


async def _interaction(client, b):
    """An LLM call of B's through the rlaas gateway, recorded as an event (the plugin's subscriber stores it)."""
    iid = str(uuid.uuid4())
    r = await client.post("/v1/events", headers=b.headers, json=[{
        "type": "rlaas.interaction", "event_id": str(uuid.uuid4()), "ts": f"{DAY}T23:00:00Z",
        "interaction_id": iid, "route": f"{MARKER}-route", "endpoint": "chat.completions",
        "policy_id": str(uuid.uuid4()), "policy": "base", "policy_version": 1, "status": 200, "latency_ms": 5.0,
        "request": {"messages": [{"role": "user", "content": MARKER}]}}])
    assert r.json()["accepted"] == 1, r.text

    async def visible() -> bool:
        return (await client.get(f"/v1/rlaas/interactions/{iid}", headers=b.headers)).status_code == 200

    await eventually(visible, what="B's interaction")
    return iid


async def _policy(client, b):
    r = await client.post("/v1/rlaas/policies", headers=b.headers, json={
        "route": "support-draft", "name": "b-policy", "status": "active", "description": MARKER,
        "upstream": {"base_url": "https://api.example.com/v1", "model": "gpt-4o-mini"}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _export(client, b):
    """An SFT export of B's route, written by the worker (its selection carries the marker)."""
    r = await client.post("/v1/rlaas/exports", headers=b.headers,
                          json={"kind": "sft", "selection": {"route": f"{MARKER}-route"}})
    assert r.status_code == 202, r.text
    await b.worker()
    return r.json()["export_id"]


async def _adapter(client, b):
    """A LoRA adapter of B's, trained for one step on an SFT export of one answered call (the llm-train extra)."""
    from pathlib import Path

    from tiny_llm import save_tiny_llm

    base = Path(b.state.settings.data_path) / "base-models" / "isolation-tiny"
    if not (base / "config.json").exists():
        save_tiny_llm(base)
    route, event_id = f"{MARKER}-lora", str(uuid.uuid4())
    r = await client.post("/v1/events", headers=b.headers, json=[{
        "type": "rlaas.interaction", "event_id": event_id, "ts": f"{DAY}T23:00:00Z",
        "interaction_id": str(uuid.uuid4()), "route": route, "endpoint": "chat.completions",
        "policy_id": str(uuid.uuid4()), "policy": "base", "policy_version": 1, "status": 200, "latency_ms": 5.0,
        "request": {"messages": [{"role": "user", "content": MARKER}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": MARKER}}]}}])
    assert r.json()["accepted"] == 1, r.text

    async def visible() -> bool:
        page = await client.get("/v1/rlaas/interactions", params={"route": route}, headers=b.headers)
        return bool(page.json()["items"])

    await eventually(visible, what="B's answered interaction")
    r = await client.post("/v1/rlaas/exports", headers=b.headers, json={"kind": "sft", "selection": {"route": route}})
    await b.worker()
    r = await client.post("/v1/rlaas/adapters", headers=b.headers, json={
        "name": "b-lora", "export_id": r.json()["export_id"], "base_model": str(base), "description": MARKER,
        "config": {"max_steps": 1, "device": "cpu"}})
    assert r.status_code == 202, r.text
    await b.worker()

    async def archived() -> bool:  # or the archive would change B's store during the jobs' sweep
        store = b.state.tenant_store(b.tenant_id)
        return any([event_id.encode() in await store.get(info.key) async for info in store.list("events/jsonl/")])

    await eventually(archived, what="B's answered interaction in its archive")
    return r.json()["id"]


async def _alert_channel(client, b):
    """An e-mail channel of B's named with the marker (B has no SMTP server: its deliveries fail at once)."""
    r = await client.post("/v1/alerts/channels", headers=b.headers,
                          json={"name": MARKER, "kind": "email", "recipients": ["ops@example.com"]})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _alert_rule(client, b):
    r = await client.post("/v1/alerts/rules", headers=b.headers,
                          json={"match": "*", "channel_ids": [b.ids["channel_id"]]})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _alert(client, b):
    """An open alert of B's, raised as a condition would (alerts are raised by code, not by the API)."""
    from flywheel.server.alerts import raise_alert

    alert = await raise_alert(b.state, uuid.UUID(b.tenant_id), rule="isolation.probe", key=MARKER,
                              severity="critical", title=MARKER, details={"marker": MARKER})
    return str(alert.id)


async def _alert_delivery(client, b):
    await b.worker()  # the alert's delivery to B's channel is attempted (and fails: no SMTP server)
    r = await client.get("/v1/alerts/deliveries", params={"alert_id": b.ids["alert_id"]}, headers=b.headers)
    (delivery,) = r.json()["items"]
    return delivery["id"]


async def _credit_run(client, b):
    """B's whole credit lineage: a dataset (named with the marker), features, a feature set and a finished run."""
    import io

    import pyarrow.csv as pcsv

    from flywheel.plugins.credit.demo import DEMO_FEATURES, generate

    sink = io.BytesIO()
    pcsv.write_csv(generate(600, seed=9), sink)
    r = await client.post("/v1/credit/datasets", params={"name": MARKER, "target": "bad"}, content=sink.getvalue(),
                          headers=b.headers)
    assert r.status_code == 201, r.text
    b.ids["dataset_id"], b.ids["dataset_version_id"] = r.json()["dataset_id"], r.json()["id"]
    for f in DEMO_FEATURES:
        r = await client.post("/v1/credit/features", headers=b.headers, json={
            "name": f.name, "source_columns": f.source_columns, "transform": f.transform, "params": f.params,
            "monotone": f.monotone, "description": f"{MARKER} {f.description}"})
        assert r.status_code == 201, r.text
    b.ids["feature_id"] = r.json()["id"]
    r = await client.post("/v1/credit/feature-sets", headers=b.headers,
                          json={"name": MARKER, "features": [f.name for f in DEMO_FEATURES]})
    b.ids["feature_set_id"], b.ids["feature_set_version_id"] = r.json()["id"], r.json()["versions"][0]["id"]
    r = await client.post("/v1/credit/runs", headers=b.headers, json={
        "dataset_version_id": b.ids["dataset_version_id"], "feature_set_version_id": b.ids["feature_set_version_id"],
        "model_params": {"num_boost_round": 50}})
    assert r.status_code == 202, r.text
    await b.worker()
    run = (await client.get(f"/v1/credit/runs/{r.json()['id']}", headers=b.headers)).json()
    assert run["state"] == "succeeded", run
    return run["id"]


def _made_by_credit_run(name):
    async def provide(client, b):
        return b.ids[name]

    return provide


async def _trace(client, b):
    """A trace of B's with two events in chunk 1 and a workspace artifact."""
    import hashlib

    r = await client.post("/v1/traces", headers=b.headers, json={
        "repository": "b/repo", "base_commit": "abcdef1", "task": MARKER})
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    events = [{"type": "traces.rationale_note", "event_id": str(uuid.uuid4()), "seq": i,
               "ts": f"{DAY}T23:00:00Z", "text": MARKER} for i in (1, 2)]
    r = await client.post(f"/v1/traces/{tid}/chunks/1", headers=b.headers, json={"events": events})
    assert r.status_code == 200, r.text
    data = MARKER.encode() * 10
    b.ids["sha256"] = hashlib.sha256(data).hexdigest()
    r = await client.put(f"/v1/traces/{tid}/artifacts/{b.ids['sha256']}", headers=b.headers, content=data)
    assert r.status_code == 201, r.text
    return tid


async def _trace_made(client, b):
    return "1"  # B's trace's first chunk, sent by _trace


async def _sha256(client, b):
    return b.ids["sha256"]  # uploaded by _trace, which runs first


# Path parameter name -> how tenant B makes one. A new route with a new
# parameter needs a line here; `test_every_path_parameter_has_a_provider` says so.
PROVIDERS = {"job_id": _job, "key_id": _key, "note_id": _note, "family": _family, "version": _version,
             "serial": _serial, "interaction_id": _interaction,
             "policy_id": _policy, "export_id": _export, "adapter_id": _adapter, "run_id": _credit_run,
             "channel_id": _alert_channel, "rule_id": _alert_rule, "alert_id": _alert, "delivery_id": _alert_delivery,
             "trace_id": _trace, "chunk_no": _trace_made, "sha256": _sha256,
             **{name: _made_by_credit_run(name) for name in ("dataset_id", "dataset_version_id", "feature_id",
                                                            "feature_set_id", "feature_set_version_id")}}
# Parameters that name something every tenant shares (a model family is declared by a plugin's code):
# a route with only these may succeed for A, acting on A's own data; the leak check still applies.
SHARED = {"family"}

# Checks that B's resources survived whatever A tried: parameter -> (GET path, predicate on B's view).
SURVIVES = {
    "trace_id": ("/v1/traces/{}", lambda body: body["task"] == MARKER and body["events"] == 2),
    "job_id": ("/v1/jobs/{}", lambda body: body["id"]),
    "note_id": ("/v1/example/notes/{}", lambda body: body["title"] == MARKER),
    "key_id": ("/v1/keys", None),
    "serial": ("/v1/drives/{}", lambda body: body["drive"]["serial_number"].startswith(MARKER)),
    "version": ("/v1/models/example.note_reopen/versions/{}", lambda body: body["active"] and body["state"] == "ready"),
    "run_id": ("/v1/credit/runs/{}", lambda body: body["state"] == "succeeded"),
    "dataset_version_id": ("/v1/credit/dataset-versions/{}", lambda body: body["name"] == MARKER),
    "feature_set_version_id": ("/v1/credit/feature-set-versions/{}", lambda body: body["name"] == MARKER),
    "feature_id": ("/v1/credit/features/{}", lambda body: body["description"].startswith(MARKER)),
    "export_id": ("/v1/rlaas/exports/{}", lambda body: body["status"] == "succeeded"),
    "adapter_id": ("/v1/rlaas/adapters/{}", lambda body: body["status"] == "succeeded" and len(body["files"]) >= 5),
    "alert_id": ("/v1/alerts/{}", lambda body: body["state"] == "open" and len(body["history"]) == 1),
    "rule_id": ("/v1/alerts/rules/{}", lambda body: body["enabled"] and body["channel_ids"]),
    "channel_id": ("/v1/alerts/channels/{}", lambda body: body["name"] == MARKER and body["enabled"]),
    "delivery_id": ("/v1/alerts/deliveries/{}", lambda body: body["state"] == "failed" and len(body["log"]) == 1),
}


@pytest.fixture
async def tenants(client, make_tenant, worker, state):
    a = await make_tenant()
    b_t = await make_tenant(name=f"{MARKER}-{uuid.uuid4().hex[:4]}")
    b = TenantB(headers=b_t.headers, tenant_id=str(b_t.id), worker=worker, state=state)
    for name, make in PROVIDERS.items():
        b.ids[name] = await make(client, b)
    return a, b


def test_every_path_parameter_has_a_provider(app):
    routes = protected_routes(app)
    assert len(routes) >= 8, "the app should expose its core and example routes"
    routes += protected_routes(app, console=True)
    missing = {(m, p, name) for m, p, params in routes for name in params if name not in PROVIDERS}
    assert not missing, f"add a provider in test_tenant_isolation.PROVIDERS for {sorted(missing)}"


async def test_tenant_a_cannot_reach_tenant_b_on_any_route(app, client, tenants):
    a, b = tenants
    # A version or chunk number is a small integer and a family name is public: none can mark a leak.
    secrets = [MARKER, b.tenant_id, *(v for k, v in b.ids.items() if k not in (*SHARED, "version", "chunk_no"))]
    checked = 0
    for method, path, params in protected_routes(app):
        url = fill(path, b.ids)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        r = await client.request(method, url, headers=a.headers, json=body)
        checked += 1
        where = f"{method} {path} as tenant A"
        assert r.status_code < 500, f"{where}: {r.status_code} {r.text}"
        if set(params) - SHARED:
            # Naming B's resource must look exactly like naming nothing.
            assert r.status_code in (400, 403, 404, 405, 422), f"{where} reached B's resource: {r.status_code} {r.text}"
        leaked = [s for s in secrets if s in r.text]
        assert not leaked, f"{where} leaked tenant B's data: {leaked}"
    assert checked >= 8

    # B can still see every resource, unchanged: A's attempts changed nothing.
    for name, (check_path, ok) in SURVIVES.items():
        r = await client.get(check_path.format(b.ids[name]), headers=b.headers)
        assert r.status_code == 200, f"B lost its {name}: {r.text}"
        if ok is not None:
            assert ok(r.json())
    keys = (await client.get("/v1/keys", headers=b.headers)).json()
    assert any(k["id"] == b.ids["key_id"] and k["revoked_at"] is None for k in keys), "A revoked B's key"


async def test_the_same_requests_succeed_for_tenant_b(app, client, tenants):
    """Guards the test above: B's ids are real, so A's 404s mean isolation, not typos."""
    _, b = tenants
    for method, path, params in protected_routes(app):
        if method == "GET" and params:
            r = await client.get(fill(path, b.ids), headers=b.headers)
            assert r.status_code == 200, f"GET {path} as B: {r.status_code} {r.text}"


async def test_an_api_key_opens_no_console_page(app, client, tenants):
    """Console pages take a session cookie, never a key: with A's key they all send A to sign in."""
    a, b = tenants
    routes = protected_routes(app, console=True)
    assert routes, "the console's overview at least"
    for method, path, _ in routes:
        r = await client.request(method, fill(path, b.ids), headers={**a.headers, "Origin": "http://testserver"})
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login"), f"{method} {path}"


async def test_tenant_a_signed_in_to_the_console_cannot_reach_tenant_b(app, console_client, tenants):
    a, b = tenants
    secrets = [MARKER, b.tenant_id, *(v for k, v in b.ids.items() if k not in (*SHARED, "version", "chunk_no"))]
    async with console_client(a.headers["Authorization"].removeprefix("Bearer ")) as c:
        for method, path, params in protected_routes(app, console=True):
            data = {} if method in ("POST", "PUT", "PATCH") else None
            r = await c.request(method, fill(path, b.ids), data=data)
            where = f"{method} {path} in A's console session"
            assert r.status_code < 500, f"{where}: {r.status_code} {r.text[:500]}"
            assert r.status_code != 303 or not r.headers["location"].startswith("/console/login"), \
                f"{where}: the session was refused"
            if set(params) - SHARED:
                assert r.status_code in (400, 403, 404, 405, 422), f"{where} reached B's resource: {r.status_code}"
            leaked = [s for s in secrets if s in r.text]
            assert not leaked, f"{where} leaked tenant B's data: {leaked}"

    # B's own session sees its pages (so A's 404s above mean isolation, not typos).
    async with console_client(b.headers["Authorization"].removeprefix("Bearer ")) as c:
        for method, path, params in protected_routes(app, console=True):
            if method == "GET":
                r = await c.get(fill(path, b.ids))
                assert r.status_code == 200, f"GET {path} in B's console session: {r.status_code}"
                if not params:
                    assert MARKER in r.text, f"GET {path} should show B its own tenant"


# -- jobs ----------------------------------------------------------------------
# Every registered job (core and plugins') is queued by tenant A with hostile
# payloads; tenant B's rows, in every table that has a tenant_id, and B's
# objects in the store must be exactly as they were. A job added later is
# swept without touching this file.

_TENANT_TABLES = """
SELECT n.nspname AS schema, c.relname AS name FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  -- Not the session-local staging tables jobs create (ON COMMIT DELETE ROWS: empty outside a
  -- transaction): which pooled connections have one changes as jobs run, their rows do not.
  AND c.relpersistence <> 't'
ORDER BY 1, 2"""
# Per job, at most this many hostile payloads that pass validation are run (the rest are refused up front).
MAX_RUNS_PER_JOB = 12


async def tenant_snapshot(state, tenant_id) -> dict[str, tuple[int, str]]:
    """(row count, digest of the rows) of every table holding `tenant_id`'s rows, and its objects."""
    out = {}
    for t in await state.db.fetch(_TENANT_TABLES):
        out[f"{t['schema']}.{t['name']}"] = tuple(await state.db.fetchrow(
            f'''SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))
                FROM "{t['schema']}"."{t['name']}" x WHERE tenant_id = $1''', uuid.UUID(tenant_id)))
    objects = sorted([(info.key, info.size) async for info in state.tenant_store(tenant_id).list("")])
    out["store"] = (len(objects), str(objects))
    return out


async def _archived(state, tenant_id) -> bool:
    """Every event of B's has reached its JSONL archive (its trace's events too, sent last)."""
    store = state.tenant_store(tenant_id)
    lines = 0
    async for info in store.list("events/jsonl/"):
        lines += (await store.get(info.key)).count(b"\n")
    stored = await state.db.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", uuid.UUID(tenant_id))
    return stored > 0 and lines >= stored


def _bases(state, name: str) -> list[dict[str, Any]]:
    if name == "core.train_model":  # needs a family: every declared one
        return [{"family": family, "options": {"rows": 200}} for family in state.contributions.model_families]
    if name == "core.score_partitions":  # B's archive and models, by the prefixes B's own jobs would use
        return [{"family": family, "input_prefix": prefix} for family in state.contributions.model_families
                for prefix in ("events/", "models/")]
    if name == "core.score_partition":
        return [{"family": family, "version": 1, "input_key": "events/parquet/part.parquet",
                 "output_key": "events/parquet/part.parquet"} for family in state.contributions.model_families]
    return [{}]


async def test_jobs_queued_by_tenant_a_leave_tenant_b_untouched(app, client, state, tenants):
    from hostile import payload_variants

    a, b = tenants
    # B's events reach its JSONL archive within a second of their commit: wait, so only A can change anything.
    await eventually(lambda: _archived(state, b.tenant_id), what="B's events in its archive")
    before = await tenant_snapshot(state, b.tenant_id)
    holding = [name for name, (count, _) in before.items() if count]
    assert len(holding) >= 8, f"B should have rows in most tenant tables for this to mean anything: {holding}"

    queued: dict[str, int] = {}
    for name, (_, spec) in sorted(state.contributions.jobs.items()):
        queued[name] = 0
        for payload in payload_variants(spec.payload, b.tenant_id, _bases(state, name)):
            if queued[name] >= MAX_RUNS_PER_JOB:
                break
            r = await client.post("/v1/jobs", json={"name": name, "payload": payload}, headers=a.headers)
            assert r.status_code < 500, f"{name} {payload!r}: {r.status_code} {r.text}"
            if spec.system:
                assert r.status_code == 403 and r.json()["code"] == "system_job", f"{name}: {r.text}"
                break
            queued[name] += r.status_code == 202
    await b.worker()

    ran = {name for name, n in queued.items() if n}
    tenant_jobs = {name for name, (_, spec) in state.contributions.jobs.items() if not spec.system}
    assert ran == tenant_jobs, f"every tenant job ran at least once: {sorted(tenant_jobs - ran)}"
    after = await tenant_snapshot(state, b.tenant_id)
    changed = sorted(table for table in before if before[table] != after.get(table))
    assert not changed, f"A's jobs changed B's data in {changed}"
