"""rlaas policies: the API and the CLI, their audit log, and credentials that never come back out."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from click.testing import CliRunner

from flywheel.plugins.rlaas.policies import any_sealed
from flywheel.server.cli.main import cli
from flywheel.server.secrets import SecretBox, new_key

KEY = new_key()
API_KEY = f"sk-upstream-{uuid.uuid4().hex}"
HEADER_VALUE = f"hdr-{uuid.uuid4().hex}"
SECRETS = (API_KEY, HEADER_VALUE)
URL = "/v1/rlaas/policies"


def body(name="p", *, route="support-draft", status="shadow", version=1, secrets=False, **extra) -> dict:
    upstream = {"base_url": "https://api.example.com/v1", "model": "gpt-4o-mini"}
    if secrets:
        upstream |= {"api_key": API_KEY, "headers": {"X-Org": HEADER_VALUE, "Api-Version": "2"}}
    return {"route": route, "name": name, "version": version, "status": status, "upstream": upstream, **extra}


async def _with_box(state, box):
    previous = state.secret_box
    state.secret_box = box
    try:
        yield
    finally:
        state.secret_box = previous
        # The session's other app instances (live servers, CLI commands) have no key: sealed rows
        # left behind would stop them from starting.
        await state.db.execute(
            "DELETE FROM rlaas_policies WHERE api_key_sealed IS NOT NULL OR headers_sealed IS NOT NULL")


@pytest.fixture
async def sealing(state):
    """The app seals credentials with KEY, as with FLYWHEEL_SECRET_KEY set."""
    async for _ in _with_box(state, SecretBox([KEY.encode()])):
        yield KEY


@pytest.fixture
async def no_key(state):
    """The app has no secret key."""
    async for _ in _with_box(state, SecretBox(None)):
        yield


async def create(client, tenant, payload, status=201, **params):
    r = await client.post(URL, json=payload, headers=tenant.headers, params=params)
    assert r.status_code == status, r.text
    return r.json()


async def key_id(client, tenant) -> str:
    return (await client.get("/v1/keys", headers=tenant.headers)).json()[0]["id"]


# -- CRUD --------------------------------------------------------------------------------------


async def test_crud_round_trip(client, tenant, sealing):
    made = await create(client, tenant, body("drafts", secrets=True, description="first"))
    assert made["upstream"] == {"base_url": "https://api.example.com/v1", "model": "gpt-4o-mini", "adapter_id": None,
                                "has_api_key": True, "header_names": ["Api-Version", "X-Org"]}
    assert (made["route"], made["status"], made["version"]) == ("support-draft", "shadow", 1)
    assert made["canary_share"] is None
    pid = made["id"]
    assert (await client.get(f"{URL}/{pid}", headers=tenant.headers)).json() == made

    r = await client.patch(f"{URL}/{pid}", json={"description": "second"}, headers=tenant.headers)
    assert r.status_code == 200 and r.json()["description"] == "second"
    assert r.json()["upstream"]["has_api_key"], "fields left out stay as they are"
    new_upstream = {"base_url": "https://llm.example.org/v1", "model": "m2", "adapter_id": "lora-7"}
    r = await client.patch(f"{URL}/{pid}", json={"upstream": new_upstream}, headers=tenant.headers)
    assert r.json()["upstream"] == {**new_upstream, "has_api_key": False, "header_names": []}, \
        "a new upstream replaces the old one, credentials included"

    other = await create(client, tenant, body("other", route="summaries", status="canary", canary_share=0.1))
    listed = (await client.get(URL, headers=tenant.headers)).json()
    assert [p["id"] for p in listed["items"]] == [other["id"], pid] and listed["next_cursor"] is None
    by_route = (await client.get(URL, params={"route": "summaries"}, headers=tenant.headers)).json()["items"]
    by_status = (await client.get(URL, params={"status": "shadow"}, headers=tenant.headers)).json()["items"]
    assert [p["id"] for p in by_route] == [other["id"]] and [p["id"] for p in by_status] == [pid]

    r = await client.delete(f"{URL}/{pid}", headers=tenant.headers)
    assert r.status_code == 204 and r.content == b""
    assert (await client.get(f"{URL}/{pid}", headers=tenant.headers)).status_code == 404
    assert (await client.delete(f"{URL}/{pid}", headers=tenant.headers)).status_code == 404


async def test_list_pages_with_a_cursor(client, tenant):
    ids = [(await create(client, tenant, body(f"p{i}")))["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(URL, params=params, headers=tenant.headers)).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1], "newest first, each once"
    bad = await client.get(URL, params={"cursor": "bm9wZQ"}, headers=tenant.headers)
    assert bad.status_code == 422 and bad.json()["field"] == "query.cursor"


# -- validation and conflicts -----------------------------------------------------------------


@pytest.mark.parametrize("payload,field", [
    (body(upstream={"base_url": "http://169.254.169.254/latest", "model": "m"}), "$.upstream.base_url"),
    (body(upstream={"base_url": "http://10.1.2.3:8000/v1", "model": "m"}), "$.upstream.base_url"),
    (body(upstream={"base_url": "ftp://api.example.com/v1", "model": "m"}), "$.upstream.base_url"),
    (body(upstream={"base_url": "https://u:pw@api.example.com/v1", "model": "m"}), "$.upstream.base_url"),
    (body(status="canary"), "$.canary_share"),
    (body(status="active", canary_share=0.2), "$.canary_share"),
    (body(status="canary", canary_share=1.5), "$.canary_share"),
    (body(upstream={"base_url": "https://api.example.com/v1", "model": "m", "headers": {"Host": "x"}}),
     "$.upstream.headers.Host"),
    (body(upstream={"base_url": "https://api.example.com/v1", "model": "m", "api_key": "k",
                    "headers": {"authorization": "Basic x"}}), "$.upstream.headers.authorization"),
    (body(upstream={"base_url": "https://api.example.com/v1", "model": "m", "headers": {"X-A": "1", "x-a": "2"}}),
     None),  # either name may be reported
    ({**body(), "route": "bad route!"}, "$.route"),
    ({**body(), "extra": 1}, "$.extra"),
])
async def test_invalid_policies_are_422_naming_the_field(client, tenant, payload, field):
    r = await client.post(URL, json=payload, headers=tenant.headers)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    if field:
        assert r.json()["field"] == field, r.json()
    else:
        assert r.json()["field"].startswith("$.upstream.headers.")
    assert (await client.get(URL, headers=tenant.headers)).json()["items"] == []


async def test_a_change_is_checked_like_a_creation(client, tenant):
    pid = (await create(client, tenant, body()))["id"]
    for change, field in (({"status": "canary"}, "$.canary_share"), ({"canary_share": 0.3}, "$.canary_share"),
                          ({"upstream": {"base_url": "http://10.0.0.1:5432", "model": "m"}}, "$.upstream.base_url")):
        r = await client.patch(f"{URL}/{pid}", json=change, headers=tenant.headers)
        assert r.status_code == 422 and r.json()["field"] == field, (change, r.text)
    canary = (await client.patch(f"{URL}/{pid}", json={"status": "canary", "canary_share": 0.25},
                                 headers=tenant.headers)).json()
    assert canary["status"] == "canary" and canary["canary_share"] == 0.25
    retuned = (await client.patch(f"{URL}/{pid}", json={"canary_share": 0.5}, headers=tenant.headers)).json()
    assert retuned["canary_share"] == 0.5
    active = (await client.patch(f"{URL}/{pid}", json={"status": "active"}, headers=tenant.headers)).json()
    assert active["status"] == "active" and active["canary_share"] is None, "only a canary keeps a share"


async def test_one_active_and_one_canary_per_route(client, tenant):
    first = await create(client, tenant, body("first", status="active"))
    r = await client.post(URL, json=body("second", status="active"), headers=tenant.headers)
    assert r.status_code == 409 and r.json()["code"] == "active_exists"
    assert first["id"] in r.json()["message"] and "first v1" in r.json()["message"]
    await create(client, tenant, body("elsewhere", route="other-route", status="active"))  # routes are separate

    shadow = await create(client, tenant, body("second"))
    r = await client.patch(f"{URL}/{shadow['id']}", json={"status": "active"}, headers=tenant.headers)
    assert r.status_code == 409 and r.json()["code"] == "active_exists"

    await create(client, tenant, body("c1", status="canary", canary_share=0.1))
    r = await client.post(URL, json=body("c2", status="canary", canary_share=0.1), headers=tenant.headers)
    assert r.status_code == 409 and r.json()["code"] == "canary_exists"

    r = await client.post(URL, json=body("first"), headers=tenant.headers)
    assert r.status_code == 409 and r.json()["code"] == "policy_exists", "(route, name, version) is unique"
    await create(client, tenant, body("first", version=2))
    listed = (await client.get(URL, params={"route": "support-draft"}, headers=tenant.headers)).json()["items"]
    statuses = {(p["name"], p["version"]): p["status"] for p in listed}
    assert statuses == {("first", 1): "active", ("second", 1): "shadow", ("c1", 1): "canary", ("first", 2): "shadow"}


async def test_replace_promotes_atomically(client, tenant):
    old = await create(client, tenant, body("old", status="active"))
    canary = await create(client, tenant, body("new", status="canary", canary_share=0.2))
    r = await client.patch(f"{URL}/{canary['id']}", params={"replace": "true"}, json={"status": "active"},
                           headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active" and r.json()["canary_share"] is None
    retired = (await client.get(f"{URL}/{old['id']}", headers=tenant.headers)).json()
    assert retired["status"] == "retired"
    actives = (await client.get(URL, params={"status": "active"}, headers=tenant.headers)).json()["items"]
    assert [p["id"] for p in actives] == [canary["id"]]

    # The promotion is two audit entries: the old policy retired, the new one active.
    log = (await client.get("/v1/rlaas/audit", params={"limit": 2}, headers=tenant.headers)).json()["items"]
    assert [(e["policy_id"], e["before"]["status"], e["after"]["status"]) for e in log] == [
        (canary["id"], "canary", "active"), (old["id"], "active", "retired")]

    # replace works on creation too, and a failed change retires nothing.
    third = await create(client, tenant, body("third", status="active"), replace="true")
    assert (await client.get(f"{URL}/{canary['id']}", headers=tenant.headers)).json()["status"] == "retired"
    r = await client.post(URL, json=body("third", status="active"), params={"replace": "true"}, headers=tenant.headers)
    assert r.status_code == 409 and r.json()["code"] == "policy_exists"
    assert (await client.get(f"{URL}/{third['id']}", headers=tenant.headers)).json()["status"] == "active"


# -- who may do what ---------------------------------------------------------------------------


async def test_changes_need_the_admin_scope(client, tenant):
    pid = (await create(client, tenant, body()))["id"]
    for scope in ("read", "write", "ingest"):
        r = await client.post("/v1/keys", json={"name": scope, "scopes": [scope]}, headers=tenant.headers)
        weak = {"Authorization": f"Bearer {r.json()['secret']}"}
        for method, url, payload in (("POST", URL, body("x")), ("PATCH", f"{URL}/{pid}", {"description": "x"}),
                                     ("DELETE", f"{URL}/{pid}", None)):
            r = await client.request(method, url, json=payload, headers=weak)
            assert r.status_code == 403 and r.json()["code"] == "forbidden", (scope, method)
        reads = [await client.get(u, headers=weak) for u in (URL, f"{URL}/{pid}", f"{URL}/{pid}/audit",
                                                                "/v1/rlaas/audit")]
        assert [r.status_code for r in reads] == ([403] * 4 if scope == "ingest" else [200] * 4), scope
    assert (await client.get(f"{URL}/{pid}", headers=tenant.headers)).json()["description"] == ""


async def test_another_tenants_policy_is_not_found(client, tenant, make_tenant):
    other = await make_tenant()
    theirs = await create(client, other, body("theirs", status="active"))
    pid = theirs["id"]
    for method, url, payload in (("GET", f"{URL}/{pid}", None), ("PATCH", f"{URL}/{pid}", {"status": "retired"}),
                                 ("DELETE", f"{URL}/{pid}", None), ("GET", f"{URL}/{pid}/audit", None)):
        r = await client.request(method, url, json=payload, headers=tenant.headers)
        assert r.status_code == 404 and pid not in r.text, (method, url, r.text)
    mine = (await client.get(URL, headers=tenant.headers)).json()["items"]
    assert mine == [] and (await client.get("/v1/rlaas/audit", params={"policy_id": pid},
                                            headers=tenant.headers)).json()["items"] == []
    # The same route name in two tenants: each has its own active policy.
    await create(client, tenant, body("mine", status="active"))
    assert (await client.get(f"{URL}/{pid}", headers=other.headers)).json() == theirs


# -- the audit log -------------------------------------------------------------------------------


async def test_every_change_is_audited(client, tenant, sealing):
    start = datetime.now(UTC) - timedelta(seconds=5)
    made = await create(client, tenant, body("audited", secrets=True))
    pid = made["id"]
    changed = (await client.patch(f"{URL}/{pid}", json={"status": "canary", "canary_share": 0.3},
                                  headers=tenant.headers)).json()
    assert (await client.delete(f"{URL}/{pid}", headers=tenant.headers)).status_code == 204

    entries = (await client.get(f"{URL}/{pid}/audit", headers=tenant.headers)).json()
    assert entries["next_cursor"] is None, "a deleted policy keeps its history"
    assert [e["action"] for e in entries["items"]] == ["delete", "update", "create"]
    who = await key_id(client, tenant)
    for e in entries["items"]:
        assert e["policy_id"] == pid and e["actor_key_id"] == who
        assert start <= datetime.fromisoformat(e["at"]) <= datetime.now(UTC)
    deleted, updated, created = entries["items"]
    assert (created["before"], created["after"]) == (None, made)
    assert (updated["before"], updated["after"]) == (made, changed)
    assert (deleted["before"], deleted["after"]) == (changed, None)
    assert created["after"]["upstream"]["has_api_key"] and "api_key" not in created["after"]["upstream"]

    everything = (await client.get("/v1/rlaas/audit", params={"limit": 2}, headers=tenant.headers)).json()
    assert [e["id"] for e in everything["items"]] == [deleted["id"], updated["id"]]
    rest = (await client.get("/v1/rlaas/audit", params={"cursor": everything["next_cursor"]},
                             headers=tenant.headers)).json()
    assert [e["id"] for e in rest["items"]] == [created["id"]] and rest["next_cursor"] is None
    assert (await client.get(f"{URL}/{uuid.uuid4()}/audit", headers=tenant.headers)).status_code == 404


# -- secrets -------------------------------------------------------------------------------------


async def test_credentials_never_come_back_out(client, tenant, sealing, database, state, caplog, capsys, spans):
    from flywheel.server.plugin_api import open_secret

    caplog.set_level(logging.DEBUG)
    texts = []

    async def call(method, url, **kwargs):
        r = await client.request(method, url, headers=tenant.headers, **kwargs)
        texts.append(r.text)
        return r

    first = (await call("POST", URL, json=body("a", status="active", secrets=True))).json()
    second = (await call("POST", URL, json=body("b", secrets=True))).json()
    await call("PATCH", f"{URL}/{second['id']}", params={"replace": "true"}, json={"status": "active"})
    await call("PATCH", f"{URL}/{first['id']}", json={"upstream": body(secrets=True)["upstream"]})
    await call("POST", URL, json=body("a", secrets=True))  # a 409
    bad = await call("POST", URL, json=body("c", secrets=True) | {"upstream": {
        "base_url": "https://api.example.com/v1", "model": "m", "api_key": API_KEY + " with a space"}})
    assert bad.status_code == 422 and bad.json()["field"] == "$.upstream.api_key"
    for url in (URL, f"{URL}/{first['id']}", f"{URL}/{first['id']}/audit", "/v1/rlaas/audit"):
        await call("GET", url)
    await call("DELETE", f"{URL}/{second['id']}")

    stored = await database.fetchrow("SELECT api_key_sealed, headers_sealed FROM rlaas_policies WHERE id = $1",
                                     uuid.UUID(first["id"]))
    assert open_secret(state, stored["api_key_sealed"]) == API_KEY, "sealed, and opens with the key"
    assert json.loads(open_secret(state, stored["headers_sealed"])) == {"X-Org": HEADER_VALUE, "Api-Version": "2"}
    rows = await database.fetch("SELECT t::text AS row FROM rlaas_policies t WHERE tenant_id = $1", tenant.id)
    audit = await database.fetch("SELECT before::text AS b, after::text AS a FROM rlaas_policy_audit"
                                 " WHERE tenant_id = $1", tenant.id)
    assert len(audit) >= 6
    assert any(s.name == "db.query" for s in spans.get_finished_spans()), "the queries were traced"
    out = capsys.readouterr()
    recorded = [*texts, *(r["row"] for r in rows), *(f"{r['b']} {r['a']}" for r in audit), caplog.text, out.out,
                out.err, *(json.dumps(dict(s.attributes or {})) + s.name for s in spans.get_finished_spans())]
    for secret in SECRETS:
        assert not [t for t in recorded if secret in t], f"{secret} leaked"


async def test_without_a_key_credentials_are_refused(client, tenant, no_key):
    r = await client.post(URL, json=body("k", secrets=True), headers=tenant.headers)
    assert r.status_code == 503 and r.json()["code"] == "secret_key_missing", r.text
    assert "FLYWHEEL_SECRET_KEY" in r.json()["message"]
    assert (await client.get(URL, headers=tenant.headers)).json()["items"] == [], "nothing was written"
    plain = await create(client, tenant, body("plain"))  # a policy without credentials needs no key
    r = await client.patch(f"{URL}/{plain['id']}", json={"upstream": body(secrets=True)["upstream"]},
                           headers=tenant.headers)
    assert r.status_code == 503 and r.json()["code"] == "secret_key_missing"
    assert (await client.get(f"{URL}/{plain['id']}", headers=tenant.headers)).json() == plain


async def test_any_sealed_tells_startup_whether_a_key_is_needed(client, tenant, sealing, database):
    async with database.acquire() as conn:
        await create(client, tenant, body("plain"))
        tx = conn.transaction()
        await tx.start()
        try:  # the session's other sealed rows are out of the way inside this transaction only
            await conn.execute("DELETE FROM rlaas_policies WHERE api_key_sealed IS NOT NULL"
                               " OR headers_sealed IS NOT NULL")
            assert not await any_sealed(conn)
            await conn.execute("UPDATE rlaas_policies SET headers_sealed = 'x' WHERE tenant_id = $1", tenant.id)
            assert await any_sealed(conn)
        finally:
            await tx.rollback()


# -- the CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(flywheel_settings, state):
    env = {"DATABASE_URL": flywheel_settings.database_url, "REDIS_URL": flywheel_settings.redis_url,
           "FLYWHEEL_STORE_URL": flywheel_settings.store_url, "FLYWHEEL_DATA_DIR": flywheel_settings.data_dir,
           "FLYWHEEL_SECRET_KEY": KEY, "UPSTREAM_KEY": API_KEY, "ORG_HEADER": HEADER_VALUE}
    yield env
    asyncio.run(_forget_sealed(flywheel_settings.database_url))


async def _forget_sealed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM rlaas_policies WHERE api_key_sealed IS NOT NULL OR headers_sealed IS NOT NULL")
    finally:
        await conn.close()


def flywheel(env, *args, code=0):
    result = CliRunner().invoke(cli, ["rlaas", "policies", *args], env=env)
    assert result.exit_code == code, result.output
    for secret in SECRETS:
        assert secret not in result.output
    return result.output


def test_the_cli_manages_policies(cli_env, tmp_path):
    tenant = json.loads(CliRunner().invoke(cli, ["tenants", "create", f"cli-{uuid.uuid4().hex[:8]}"],
                                           env=cli_env).output)["name"]
    t = ["--tenant", tenant]
    made = json.loads(flywheel(cli_env, "create", *t, "--route", "support-draft", "--name", "base", "--status",
                               "active", "--base-url", "https://api.example.com/v1", "--model", "gpt-4o-mini",
                               "--api-key-env", "UPSTREAM_KEY", "--header-env", "X-Org=ORG_HEADER", "--json"))
    assert made["status"] == "active" and made["upstream"]["has_api_key"]
    assert made["upstream"]["header_names"] == ["X-Org"]

    spec = tmp_path / "policy.json"
    spec.write_text(json.dumps(body("tuned", status="active") | {"description": "from a file"}))
    refused = flywheel(cli_env, "create", *t, "--from-file", str(spec), code=1)
    assert "already active" in refused and made["id"] in refused
    staged = json.loads(flywheel(cli_env, "create", *t, "--from-file", str(spec), "--api-key-env", "UPSTREAM_KEY",
                                 "--replace", "--json"))
    assert staged["status"] == "active" and staged["description"] == "from a file" and staged["upstream"]["has_api_key"]
    assert json.loads(flywheel(cli_env, "show", *t, made["id"], "--json"))["status"] == "retired"

    listed = json.loads(flywheel(cli_env, "list", *t, "--json"))
    assert [p["id"] for p in listed] == [staged["id"], made["id"]]
    assert [p["id"] for p in json.loads(flywheel(cli_env, "list", *t, "--status", "retired", "--json"))] == [made["id"]]
    assert "base" in flywheel(cli_env, "list", *t) and "support-draft" in flywheel(cli_env, "show", *t, made["id"])

    canary = json.loads(flywheel(cli_env, "set-status", *t, made["id"], "canary", "--canary-share", "0.1", "--json"))
    assert canary["status"] == "canary" and canary["canary_share"] == 0.1
    assert "canary_share" in flywheel(cli_env, "set-status", *t, made["id"], "canary", "--canary-share", "2", code=2)
    flywheel(cli_env, "delete", *t, made["id"], "--yes")
    assert "no such policy" in flywheel(cli_env, "show", *t, made["id"], code=1)

    log = json.loads(flywheel(cli_env, "audit", *t, "--json"))
    assert [e["action"] for e in log] == ["delete", "update", "create", "update", "create"]
    assert all(e["actor_key_id"] is None for e in log), "the CLI has no key: the audit says so"
    assert len(json.loads(flywheel(cli_env, "audit", *t, "--policy", made["id"], "--json"))) == 4
    assert "cli" in flywheel(cli_env, "audit", *t)


def test_the_cli_refuses_secrets_it_cannot_read(cli_env, tmp_path):
    tenant = json.loads(CliRunner().invoke(cli, ["tenants", "create", f"cli-{uuid.uuid4().hex[:8]}"],
                                           env=cli_env).output)["name"]
    base = ["create", "--tenant", tenant, "--route", "r", "--name", "n", "--base-url", "https://api.example.com/v1",
            "--model", "m"]
    assert "NOT_SET" in flywheel(cli_env, *base, "--api-key-env", "NOT_SET", code=2)
    assert "NAME=VAR" in flywheel(cli_env, *base, "--header-env", "X-Org", code=2)
    assert "--from-file" in flywheel(cli_env, "create", "--tenant", tenant, "--route", "r", code=2)
    assert "no tenant 'ghost'" in flywheel(cli_env, "list", "--tenant", "ghost", code=1)
    # No FLYWHEEL_SECRET_KEY, and a data folder without the test kit's secret.key.
    without_key = {k: v for k, v in cli_env.items() if k != "FLYWHEEL_SECRET_KEY"}
    without_key["FLYWHEEL_DATA_DIR"] = str(tmp_path)
    assert "FLYWHEEL_SECRET_KEY" in flywheel(without_key, *base, "--api-key-env", "UPSTREAM_KEY", code=1)


def test_reseal_moves_credentials_to_the_new_key(cli_env):
    tenant = json.loads(CliRunner().invoke(cli, ["tenants", "create", f"cli-{uuid.uuid4().hex[:8]}"],
                                           env=cli_env).output)["name"]
    made = json.loads(flywheel(cli_env, "create", "--tenant", tenant, "--route", "r", "--name", "n", "--base-url",
                               "https://api.example.com/v1", "--model", "m", "--api-key-env", "UPSTREAM_KEY", "--json"))
    newer = new_key()
    rotated = {**cli_env, "FLYWHEEL_SECRET_KEY": f"{newer},{KEY}"}
    assert "1 policy" in flywheel(rotated, "reseal", "--tenant", tenant)

    async def sealed() -> str:
        conn = await asyncpg.connect(cli_env["DATABASE_URL"])
        try:
            return await conn.fetchval("SELECT api_key_sealed FROM rlaas_policies WHERE id = $1",
                                       uuid.UUID(made["id"]))
        finally:
            await conn.close()

    assert SecretBox([newer.encode()]).open(asyncio.run(sealed())) == API_KEY, "the new key alone opens it"


def test_keys_secret_key_prints_a_fernet_key():
    result = CliRunner().invoke(cli, ["keys", "secret-key"])
    assert result.exit_code == 0
    key = result.output.strip()
    assert SecretBox([key.encode()]).open(SecretBox([key.encode()]).seal("x")) == "x"
    assert CliRunner().invoke(cli, ["keys", "secret-key"]).output.strip() != key
