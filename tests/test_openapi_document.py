"""The OpenAPI document tells a client the truth: bodies, descriptions, errors, auth.

And its viewer (`/schema`) renders with the network cut off: every asset it
loads is served by the app itself.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import jsonschema_rs  # schemathesis's validator
import msgspec
import pytest

from flywheel.server.ingest.decode import CONTENT_TYPES

METHODS = ("get", "put", "post", "delete", "patch")
MSGPACK = {"application/msgpack", "application/x-msgpack", "application/vnd.msgpack"}


@pytest.fixture(scope="module")
async def doc(client) -> dict[str, Any]:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    return r.json()


def operations(doc: dict[str, Any]):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A validator of `schema` that resolves the document's `#/components/schemas/...` references."""
    return jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})


def test_raw_bodies_are_documented_with_what_the_handlers_accept(doc):
    events = doc["paths"]["/v1/events"]["post"]["requestBody"]
    assert events["required"] and set(events["content"]) == set(CONTENT_TYPES)  # JSON, NDJSON, msgpack and aliases
    score = doc["paths"]["/v1/models/{family}/score"]["post"]["requestBody"]
    assert set(score["content"]) == {"application/json"}  # the handler decodes JSON whatever the Content-Type
    batch = doc["paths"]["/v1/models/{family}/score_batch"]["post"]["requestBody"]
    assert set(batch["content"]) == {"application/json", *MSGPACK}
    # Activation takes no body (the version is in the path): documenting one would be a lie.
    activate = doc["paths"]["/v1/models/{family}/versions/{version}/activate"]["post"]
    assert "requestBody" not in activate and "No body" in activate["description"]


def test_every_reference_resolves(doc):
    refs = set(re.findall(r'"\$ref": ?"#/components/schemas/([^"]+)"', msgspec.json.encode(doc).decode()))
    assert refs and refs <= set(doc["components"]["schemas"]), refs - set(doc["components"]["schemas"])


def test_the_body_schemas_are_the_structs_the_handlers_decode_into(doc):
    batch = doc["components"]["schemas"]["EventBatch"]
    event_types = {m.split("/")[-1] for m in batch["items"]["discriminator"]["mapping"].values()}
    assert {"GenericEvent", "NoteViewed", "SmartDaily"} <= event_types and batch["maxItems"] == 10_000
    events = validator(doc, batch)
    example = doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["examples"]["one"]
    events.validate(example["value"])
    generic = example["value"][0]
    assert not events.is_valid([{**generic, "surprise": 1}]), "unknown fields are refused, as msgspec does"
    assert not events.is_valid([{**generic, "type": "no.such_type"}])

    row = validator(doc, {"$ref": "#/components/schemas/NoteFeatures"})
    good = {"length": 1200, "views_7d": 9.5, "has_title": True, "age_days": None, "hour": 14, "edits": 4.0}
    row.validate(good)
    assert not row.is_valid({**good, "extra": 1}) and not row.is_valid({k: v for k, v in good.items() if k != "hour"})
    rows = validator(doc, {"$ref": "#/components/schemas/NoteFeaturesBatch"})
    rows.validate({"rows": [good]})
    assert not rows.is_valid({"rows": []}), "an empty batch is a 422"
    for media in ("application/json",):
        for path in ("/v1/models/{family}/score", "/v1/models/{family}/score_batch"):
            body = doc["paths"][path]["post"]["requestBody"]["content"][media]
            schema = validator(doc, body["schema"])
            assert {"example.note_reopen", "drives.h30"} <= set(body["examples"])
            for example in body["examples"].values():
                schema.validate(example["value"])


async def test_the_documented_example_is_accepted(client, tenant, doc):
    content = doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    events = [{**e, "event_id": str(uuid.uuid4())} for e in content["examples"]["one"]["value"]]
    r = await client.post("/v1/events", json=events, headers=tenant.headers)
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text


def test_every_operation_is_described(doc):
    for path, method, op in operations(doc):
        assert op.get("summary") and op.get("description"), f"{method.upper()} {path}"
    ingest = doc["paths"]["/v1/events"]["post"]
    assert ingest["summary"] == "Store a batch of events of any registered type."
    assert "gzip" in ingest["description"]
    # A plugin's handler without a docstring still says whose route it is.
    assert "`example` plugin" in doc["paths"]["/v1/example/notes"]["get"]["description"]


def test_public_routes_need_no_key_and_cannot_answer_401(doc):
    for path in ("/healthz", "/readyz", "/metrics"):
        op = doc["paths"][path]["get"]
        assert op["security"] == [], path
        assert not {"401", "403"} & set(op["responses"]), path
    assert doc["security"] == [{"apiKey": []}]
    assert "security" not in doc["paths"]["/v1/events"]["post"]  # the document's default: a key
    assert not [p for p in doc["paths"] if p.startswith("/schema")], "the docs viewer is not an API operation"


# GETs that answer 409 while what they read is still being written (`export_not_ready`).
NOT_READY_YET = {"rlaasDownloadExport", "rlaasExportData"}


def test_only_the_errors_a_route_can_return_are_listed(doc):
    for path, method, op in operations(doc):
        statuses = {int(s) for s in op["responses"] if int(s) >= 400}
        where = f"{method.upper()} {path}"
        assert {400, 422, 500} <= statuses and 405 not in statuses, where
        if op.get("security") != []:
            assert {401, 403, 503} <= statuses, where
        if "{" not in path:
            assert 404 not in statuses or path == "/v1/jobs", where  # createJob: an unknown job name is a 404
        else:
            assert 404 in statuses, where
        if method == "get":  # a read conflicts with nothing, except a file that is not written yet
            assert 413 not in statuses, where
            assert 409 not in statuses or op["operationId"] in NOT_READY_YET, where
        for status in (statuses - {503}) if path == "/readyz" else statuses:  # /readyz: 503 is Readiness
            schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, where
    assert "415" in doc["paths"]["/v1/events"]["post"]["responses"]
    assert "415" in doc["paths"]["/v1/models/{family}/score_batch"]["post"]["responses"]
    assert "415" not in doc["paths"]["/v1/models/{family}/score"]["post"]["responses"]
    assert "404" in doc["paths"]["/v1/jobs"]["post"]["responses"]


async def test_the_docs_assets_are_served_without_a_key(client):
    page = await client.get("/schema")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    urls = re.findall(r'(?:src|href)=["\']([^"\']+)', page.text)
    assert urls and all(u.startswith("/schema/assets/") for u in urls), urls
    for url in urls:
        r = await client.get(url)
        assert r.status_code == 200 and len(r.content) > 100, url
        assert "max-age=86400" in r.headers["cache-control"]


async def test_the_docs_page_renders_with_the_network_blocked(live_server, page, artifacts_dir):
    blocked: list[str] = []

    async def only_local(route):
        if route.request.url.startswith(live_server.url + "/"):
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_local)
    await page.goto(f"{live_server.url}/schema")
    title = page.locator(".swagger-ui .info .title")
    await title.wait_for()
    assert (await title.inner_text()).startswith("Flywheel")
    ingest = page.locator(".opblock-summary-path", has_text=re.compile(r"^/v1/events$")).first
    await ingest.wait_for()
    await page.locator("#operations-events-ingestEvents").click()  # open it: the body and its schema render
    await page.locator("#operations-events-ingestEvents .opblock-section-request-body").wait_for()
    shots = artifacts_dir / "openapi"
    shots.mkdir(exist_ok=True)
    await page.screenshot(path=shots / "schema-offline.png", full_page=False)
    assert blocked == [], f"the docs page asked for outside resources: {blocked}"
