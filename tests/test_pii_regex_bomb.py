"""Tenants' allow-list patterns run on RE2: a catastrophic pattern cannot stall ingestion.

Through the HTTP API, with real Postgres: the patterns that made Python's
backtracking `re` freeze the server are accepted (RE2 runs them in linear
time), what RE2 cannot run is refused with a 422 naming the entry, and a list
stored before that check still ingests, minus the pattern RE2 refuses.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid

import structlog

from flywheel.server.ingest.pii import pattern_fingerprint
from tests.ingest_helpers import event

# Classic exponential-backtracking shapes. Measured here with Python's `re`:
# fullmatch of `([a-z@.]+)+!` on "a" * n took 0.08 ms at n=12 and 5.5 ms at
# n=18, 4x for every 2 more letters, so the 60-letter local part below alone
# would take ~10^10 s (the old code's scrub of one 33-letter address against
# these four ran past a 20 s timeout). `(a+)+$` and `(a|aa)+b` are the
# textbook ones; `(.*a){20}` is polynomial of degree 20.
BOMBS = [r"([a-z@.]+)+!", r"(a+)+$", r"(a|aa)+b", r"(.*a){20}"]
ALLOWED = r".*@example\.com"
SUBDOMAINS = r".*[@.]example\.com"  # also the long addresses below, whose domain has many labels
BOUND_S = 2.0  # generous: the request takes a few ms with RE2


def long_email(domain: str, labels: int = 40) -> str:
    """An e-mail address of several hundred letters, every label a-z only (worst for the bombs)."""
    local = "a" * 60
    return f"{local}@{'.'.join('aaaa' + chr(97 + i % 26) * 3 for i in range(labels))}.{domain}"


def test_python_re_is_exponential_on_the_bomb():
    """Why RE2: Python's `re` doubles its work with each letter the bomb sees (best of 5 runs)."""
    bomb = re.compile(BOMBS[0])

    def cost(n: int) -> float:
        text = "a" * n
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            assert bomb.fullmatch(text) is None
            best = min(best, time.perf_counter() - start)
        return best

    small, large = cost(12), cost(18)
    # Six more letters: 2**6 = 64 times the work in theory; 8x leaves room for timer noise.
    assert large > 8 * small, (small, large)


async def _put(client, tenant, patterns):
    return await client.put("/v1/pii/allow-list", json={"patterns": patterns},
                            headers=tenant.headers)


async def _body(database, tenant, e) -> str:
    return await database.fetchval(
        "SELECT body::text FROM events WHERE tenant_id = $1 AND event_id = $2",
                                   tenant.id, uuid.UUID(e["event_id"]))


async def _timed_post(client, tenant, events) -> tuple[float, dict]:
    start = time.perf_counter()
    r = await client.post("/v1/events", json=events, headers=tenant.headers)
    assert r.status_code == 200, r.text
    return time.perf_counter() - start, r.json()


async def test_catastrophic_patterns_cannot_stall_ingestion(client, tenant, make_tenant, database):
    r = await _put(client, tenant, [*BOMBS, SUBDOMAINS])
    assert r.status_code == 200, r.text
    scrubbed = [long_email(f"corp{i}.org") for i in range(4)]
    kept = [long_email("example.com"), "a@example.com"]
    assert all(len(e) > 250 for e in scrubbed)
    note = " and ".join([*scrubbed, *kept])
    events = [event(subject_id="jane@corp.org",
                    attributes={"note": note, "to": scrubbed[1:], "i": i}) for i in range(20)]
    other = await make_tenant()
    other_events = [event(attributes={"mail": long_email("corp.org"), "i": i}) for i in range(20)]

    # The other tenant's batch is in flight at the same time as the bombs.
    (took, result), (other_took, other_result) = await asyncio.gather(
        _timed_post(client, tenant, events), _timed_post(client, other, other_events))
    assert result["accepted"] == 20 and other_result["accepted"] == 20, (result, other_result)
    assert took < BOUND_S and other_took < BOUND_S, (took, other_took)

    body = await _body(database, tenant, events[0])
    for address in scrubbed:
        assert address not in body
    for address in kept:
        assert address in body, "the RE2-compatible allow rule still exempts its matches"
    assert json.loads(body)["subject_id"] == "[EMAIL]"
    other_body = await _body(database, other, other_events[0])
    assert "@" not in other_body and "[EMAIL]" in other_body


async def test_the_allow_rule_alone_keeps_its_matches(client, tenant, database):
    assert (await _put(client, tenant, [ALLOWED])).status_code == 200
    e = event(attributes={"a": "a@example.com", "b": "b@example.org", "c": "c@example.com.evil.io"})
    r = await client.post("/v1/events", json=[e], headers=tenant.headers)
    assert r.json()["accepted"] == 1
    attributes = json.loads(await _body(database, tenant, e))["attributes"]
    assert attributes == {"a": "a@example.com", "b": "[EMAIL]", "c": "[EMAIL]"}


async def _refused(client, tenant, pattern: str) -> str:
    r = await _put(client, tenant, [pattern, ALLOWED])
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "validation_error" and body["field"] == "$.patterns[0]", body
    return body["message"]


async def test_what_re2_cannot_run_is_refused_with_the_reason(client, tenant):
    message = await _refused(client, tenant, r"(\w+)@\1\.com")
    assert message.startswith("patterns[0]: backreferences are not supported"), message
    assert message.endswith("patterns run on a linear-time engine (RE2)"), message
    message = await _refused(client, tenant, r".*(?<!evil)@example\.com")
    assert message.startswith("patterns[0]: lookarounds are not supported"), message
    assert message.endswith("patterns run on a linear-time engine (RE2)"), message
    message = await _refused(client, tenant, r"(?=a)a")
    assert message.startswith("patterns[0]: lookarounds are not supported")
    # Nothing was stored by the refused PUTs.
    r = await client.get("/v1/pii/allow-list", headers=tenant.headers)
    assert r.status_code == 200 and r.json()["patterns"] == []


async def test_a_stored_pattern_re2_refuses_is_ignored_not_fatal(client, tenant, database):
    # Stored by the code before RE2 (Python's `re` accepted it); PUT would now refuse it.
    # Unique to this run: each refused pattern is logged once per process.
    domain = f"corp{uuid.uuid4().hex[:8]}"
    legacy = rf"(?<![.])\w+@{domain}\.org"
    await database.execute("INSERT INTO pii_allow_lists (tenant_id, allow) VALUES ($1, $2)",
                           tenant.id, {"paths": [], "patterns": [legacy, ALLOWED]})
    r = await client.get("/v1/pii/allow-list", headers=tenant.headers)
    assert r.status_code == 200 and r.json()["patterns"] == [legacy, ALLOWED]
    e = event(attributes={"a": f"jane@{domain}.org", "b": "a@example.com"})
    with structlog.testing.capture_logs() as logs:
        r = await client.post("/v1/events", json=[e], headers=tenant.headers)
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    attributes = json.loads(await _body(database, tenant, e))["attributes"]
    # The refused pattern exempts nothing (scrub more, never less); the good one still works.
    assert attributes == {"a": "[EMAIL]", "b": "a@example.com"}
    warnings = [entry for entry in logs if entry["event"] == "pii.allow_pattern_ignored"]
    assert [w["fingerprint"] for w in warnings] == [pattern_fingerprint(legacy)]
    assert "lookarounds" in warnings[0]["reason"]
    # The operator's query in server/ingest/pii.py finds the tenant from the fingerprint.
    found = await database.fetchval(
        "SELECT tenant_id FROM pii_allow_lists, jsonb_array_elements_text(allow->'patterns') p "
        "WHERE left(encode(sha256(convert_to(p, 'UTF8')), 'hex'), 16) = $1",
        warnings[0]["fingerprint"])
    assert found == tenant.id
