"""A tenant's PII settings through the HTTP API: phone regions and optional kinds, stored beside the allow-list."""

from __future__ import annotations

import json
import uuid

from ingest_helpers import event

from flywheel.contracts.pii import DEFAULT_PHONE_REGIONS


async def _stored(database, tenant, e) -> dict:
    body = await database.fetchval("SELECT body::text FROM events WHERE tenant_id = $1 AND event_id = $2",
                                   tenant.id, uuid.UUID(e["event_id"]))
    return json.loads(body)["attributes"]


async def test_defaults_until_put_then_applied_to_new_events(client, tenant, database):
    r = await client.get("/v1/pii/settings", headers=tenant.headers)
    assert r.status_code == 200 and r.json() == {"phone_regions": list(DEFAULT_PHONE_REGIONS), "optional_kinds": []}
    attributes = {"iban": "DE89 3704 0044 0532 0130 00", "mac": "00:1A:2B:3C:4D:5E", "mac2": "00-1A-2B-3C-4D-5F",
                  "mail": {"jane.doe@gmail.com": "key"}}
    e = event(attributes=attributes)
    assert (await client.post("/v1/events", json=[e], headers=tenant.headers)).json()["accepted"] == 1
    stored = await _stored(database, tenant, e)
    assert stored["iban"] == attributes["iban"] and stored["mac"] == attributes["mac"], "optional kinds are off"
    assert stored["mail"] == {"[EMAIL]": "key"}, "keys are scrubbed"

    settings = {"phone_regions": ["KR", "DE"], "optional_kinds": ["iban", "mac"]}
    r = await client.put("/v1/pii/settings", json=settings, headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert (await client.get("/v1/pii/settings", headers=tenant.headers)).json() == settings
    e2 = {**e, "event_id": str(uuid.uuid4())}
    await client.post("/v1/events", json=[e2], headers=tenant.headers)
    stored = await _stored(database, tenant, e2)
    assert stored["iban"] == "[IBAN]" and stored["mac"] == "[MAC]" and stored["mac2"] == "[MAC]"


async def test_bad_settings_are_a_422_naming_the_entry(client, tenant):
    cases = [({"phone_regions": ["DE", "XX"]}, "$.phone_regions[1]"),
             ({"phone_regions": ["de"]}, "$.phone_regions[0]"),
             ({"phone_regions": []}, "$.phone_regions"),
             ({"optional_kinds": ["mac", "passport"]}, "$.optional_kinds[1]")]
    for body, field in cases:
        r = await client.put("/v1/pii/settings", json=body, headers=tenant.headers)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["code"] == "validation_error" and r.json()["field"] == field, r.json()
    r = await client.put("/v1/pii/settings", json={"regions": ["DE"]}, headers=tenant.headers)
    assert r.status_code == 422, "unknown fields are refused"
    assert (await client.get("/v1/pii/settings", headers=tenant.headers)).json()["optional_kinds"] == []
