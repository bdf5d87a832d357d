"""The core HTTP surface: auth, scopes, errors, keys, jobs, health, OpenAPI."""

from __future__ import annotations

import uuid

import msgspec
import pytest
from litestar import get

from flywheel.contracts.jobs import JobSpec
from flywheel.contracts.tenants import Scope
from flywheel.server import hookimpl
from flywheel.server.app import create_app
from flywheel.server.testing.client import app_client


class NotePayload(msgspec.Struct):
    text: str


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


async def test_health_is_public(client):
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_readiness_checks_every_dependency(client):
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "redis": "ok", "store": "ok", "spool": "ok"}


async def test_no_key_wrong_key_revoked_key(client, make_tenant):
    error_of(await client.get("/v1/tenant"), 401, "unauthorized")
    error_of(await client.get("/v1/tenant", headers={"Authorization": "Bearer fw_nope"}), 401, "unauthorized")
    error_of(await client.get("/v1/tenant", headers={"Authorization": "Basic abc"}), 401, "unauthorized")
    t = await make_tenant()
    forged = t.key[:-4] + ("AAAA" if not t.key.endswith("AAAA") else "BBBB")
    error_of(await client.get("/v1/tenant", headers={"Authorization": f"Bearer {forged}"}), 401, "unauthorized")
    r = await client.get("/v1/tenant", headers=t.headers)
    assert r.status_code == 200 and r.json()["id"] == str(t.id)


async def test_keys_are_shown_once_stored_hashed_and_revocable(client, tenant, database):
    r = await client.post("/v1/keys", json={"name": "reader", "scopes": ["read"]}, headers=tenant.headers)
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["secret"]
    assert secret.startswith("fw_") and created["key"]["scopes"] == ["read"]
    stored = await database.fetchrow("SELECT * FROM api_keys WHERE id = $1", uuid.UUID(created["key"]["id"]))
    assert secret.encode() not in bytes(stored["secret_hash"]) and len(stored["secret_hash"]) == 32
    listed = (await client.get("/v1/keys", headers=tenant.headers)).json()
    assert created["key"]["id"] in [k["id"] for k in listed] and all("secret" not in k for k in listed)
    reader = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/v1/tenant", headers=reader)).status_code == 200
    r = await client.delete(f"/v1/keys/{created['key']['id']}", headers=tenant.headers)
    assert r.status_code == 200 and r.json()["revoked_at"]
    error_of(await client.get("/v1/tenant", headers=reader), 401, "unauthorized")


@pytest.mark.parametrize("scopes,method,path,allowed", [
    (["ingest"], "GET", "/v1/tenant", False),
    (["read"], "GET", "/v1/tenant", True),
    (["read"], "GET", "/v1/keys", False),
    (["write"], "GET", "/v1/keys", False),
    (["read"], "POST", "/v1/jobs", False),
    (["admin"], "GET", "/v1/keys", True),
])
async def test_scopes(client, make_tenant, scopes, method, path, allowed):
    t = await make_tenant(scopes=[Scope(s) for s in scopes])
    body = {"name": "example.count_notes"} if method == "POST" else None
    r = await client.request(method, path, headers=t.headers, json=body)
    if allowed:
        assert r.status_code < 400, r.text
    else:
        error_of(r, 403, "forbidden")


@pytest.mark.parametrize("body,field", [
    ({"name": "x", "scopes": ["root"]}, "$.scopes[0]"),
    ({"name": "x", "scopes": []}, "$.scopes"),
    ({"name": "", "scopes": ["read"]}, "$.name"),
    ({"scopes": ["read"]}, "$.name"),
    ({"name": "x", "scopes": ["read"], "extra": 1}, "$.extra"),
])
async def test_validation_errors_name_the_field(client, tenant, body, field):
    r = await client.post("/v1/keys", json=body, headers=tenant.headers)
    err = error_of(r, 422, "validation_error")
    if field:
        assert err["field"] == field, err
    else:
        assert err["details"], err


async def test_malformed_json_and_unknown_route(client, tenant):
    r = await client.post("/v1/keys", content=b"{not json",
                          headers={**tenant.headers, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] in ("validation_error", "bad_request", "malformed_body")
    error_of(await client.get("/v1/no-such-thing", headers=tenant.headers), 404, "not_found")
    error_of(await client.put("/v1/tenant", headers=tenant.headers), 405, "method_not_allowed")
    error_of(await client.get("/v1/jobs/not-a-uuid", headers=tenant.headers), 404, "not_found")


async def test_unexpected_errors_are_500_without_a_trace(flywheel_settings):
    @get("/v1/boom", sync_to_thread=False)
    def boom() -> dict:
        raise RuntimeError("secret internal detail")

    class Boom:
        __flywheel_plugin_name__ = "boom"

        @hookimpl
        def register_routes(self):
            return [boom]

    app = create_app(flywheel_settings, [Boom()])
    async with app_client(app) as c:
        t = await _tenant(app)
        r = await c.get("/v1/boom", headers=t)
    body = error_of(r, 500, "internal_error")
    assert "secret internal detail" not in r.text and "Traceback" not in r.text
    assert body == {"status": 500, "code": "internal_error", "message": "internal server error"}


async def _tenant_and_headers(app) -> tuple[uuid.UUID, dict]:
    from flywheel.server.auth import service

    db = app.state.flywheel.db
    tenant = await service.create_tenant(db, f"t-{uuid.uuid4().hex[:8]}")
    key = await service.create_key(db, tenant.id, "k", [Scope.ADMIN])
    return tenant.id, {"Authorization": f"Bearer {key.secret}"}


async def _tenant(app) -> dict:
    return (await _tenant_and_headers(app))[1]


async def test_jobs_run_through_the_worker_and_report_progress(client, tenant, worker):
    await client.post("/v1/example/notes", json={"title": "a"}, headers=tenant.headers)
    await client.post("/v1/example/notes", json={"title": "b"}, headers=tenant.headers)
    r = await client.post("/v1/jobs", json={"name": "example.count_notes", "payload": {}}, headers=tenant.headers)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] == "queued"
    await worker()
    done = (await client.get(f"/v1/jobs/{job['id']}", headers=tenant.headers)).json()
    assert done["state"] == "succeeded", done
    assert done["result"] == {"tenants": 1, "notes": 2}
    assert done["progress"]["current"] == 1 or done["attempts"] == 1
    assert done["started_at"] and done["finished_at"]
    stats = (await client.get("/v1/example/stats", headers=tenant.headers)).json()
    assert stats["notes"] == 2
    page = (await client.get("/v1/jobs", params={"name": "example.count_notes"}, headers=tenant.headers)).json()
    assert [j["id"] for j in page["items"]] == [job["id"]]


async def test_job_errors(client, tenant):
    err = error_of(await client.post("/v1/jobs", json={"name": "nope.nothing"}, headers=tenant.headers), 404,
                   "not_found")
    assert err["field"] == "$.name"
    r = await client.post("/v1/jobs", json={"name": "example.count_notes", "payload": {"note_prefix": 5}},
                          headers=tenant.headers)
    assert error_of(r, 422, "validation_error")["field"] == "$.payload.note_prefix"


async def test_failing_job_is_recorded_with_its_error(flywheel_settings):
    from flywheel.server.jobs.queue import enqueue
    from flywheel.server.jobs.worker import build_worker

    async def explode(ctx, payload: NotePayload) -> None:
        await ctx.progress(1, 2, "about to fail")
        raise ValueError(f"kaboom {payload.text}")

    class Failing:
        __flywheel_plugin_name__ = "failing"

        @hookimpl
        def register_jobs(self):
            return [JobSpec(name="failing.explode", func=explode, payload=NotePayload)]

    # An app of its own, on a queue of its own, so the shared worker never sees this job.
    settings = msgspec.structs.replace(flywheel_settings, queue_name=f"failing-{uuid.uuid4().hex[:6]}")
    app = create_app(settings, [Failing()])
    async with app_client(app) as c:
        state = app.state.flywheel
        tenant_id, t = await _tenant_and_headers(app)
        job_id = await enqueue(state, "failing.explode", {"text": "bad input"}, tenant_id=tenant_id)
        w = build_worker(state, burst=True, handle_signals=False, poll_delay=0.05)
        try:
            await w.main()
        finally:
            await w.close()
        job = (await c.get(f"/v1/jobs/{job_id}", headers=t)).json()
    assert job["state"] == "failed", job
    assert job["error"] == "ValueError: kaboom bad input"
    assert job["progress"]["message"] == "about to fail"


async def test_nul_characters_are_refused_with_the_field(client, tenant):
    r = await client.post("/v1/jobs", json={"name": "example.count_notes", "payload": {"note_prefix": "a\u0000"}},
                          headers=tenant.headers)
    assert error_of(r, 422, "validation_error")["field"] == "$.payload.note_prefix"


async def test_job_list_paginates(client, make_tenant):
    t = await make_tenant()
    ids = []
    for _ in range(5):
        r = await client.post("/v1/jobs", json={"name": "example.count_notes"}, headers=t.headers)
        ids.append(r.json()["id"])
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/jobs", params=params, headers=t.headers)).json()
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    error_of(await client.get("/v1/jobs", params={"cursor": "garbage"}, headers=t.headers), 422, "validation_error")


async def test_plugins_endpoint(client, tenant):
    r = await client.get("/v1/plugins", headers=tenant.headers)
    assert r.status_code == 200
    example = {p["name"]: p for p in r.json()}["example"]
    assert example["version"] == "0.1.0" and "register_routes" in example["hooks"]


async def test_openapi_document_lists_core_and_plugin_routes(client):
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert {"/v1/plugins", "/v1/jobs/{job_id}", "/v1/example/notes", "/healthz"} <= set(paths)


async def test_metrics_count_requests_and_jobs(client, tenant):
    await client.get("/v1/tenant", headers=tenant.headers)
    text = (await client.get("/metrics")).text
    assert "flywheel_requests_total" in text or "litestar_requests_total" in text or "requests_total" in text
    assert "flywheel_jobs_total" in text


async def test_a_misspelt_payload_field_lists_the_fields_the_job_takes(client, tenant):
    r = await client.post("/v1/jobs", json={"name": "drives.score_fleet", "payload": {"date": "2013-04-30"}},
                          headers=tenant.headers)
    body = error_of(r, 422, "validation_error")
    assert body["field"] == "$.payload.date"
    assert "drives.score_fleet takes: day" in body["message"]
    assert [d["field"] for d in body["details"]] == ["$.payload.day"]
