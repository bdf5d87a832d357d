"""The ingest fast path (server/ingest/fastpath.py) answers exactly as the
Litestar route does: the same requests go to an app with the fast path and
to one without it, and must get the same status, headers that matter and
body. Requests it must not serve itself (no key, wrong scope, an
Idempotency-Key, a body over the limit) still get Litestar's answer."""

from __future__ import annotations

import gzip
import uuid
from datetime import UTC, datetime

import msgspec
import pytest
import pytest_asyncio
from ingest_helpers import batch, event

from flywheel.contracts.tenants import Scope
from flywheel.server.app import create_app
from flywheel.server.ingest.fastpath import IngestFastPath
from flywheel.server.testing.client import app_client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def plain_client(flywheel_settings, tmp_path_factory):
    """An app with the fast path turned off: every request through Litestar."""
    settings = msgspec.structs.replace(flywheel_settings, ingest_fast_path=False,
                                       data_dir=str(tmp_path_factory.mktemp("plain-data")))
    app = create_app(settings)
    assert not any(isinstance(layer, IngestFastPath) for layer in _layers(app))
    async with app_client(app) as client:
        yield client


def _layers(app):
    """The ASGI wrappers in front of Litestar, outermost first (each holds the next as `.app`)."""
    handler = app.asgi_handler
    while handler is not None and not isinstance(handler, type(app)):
        yield handler
        handler = getattr(handler, "app", None)


def test_the_default_app_has_the_fast_path(app):
    assert any(isinstance(layer, IngestFastPath) for layer in _layers(app))


def normalized(response) -> tuple:
    body = response.json()
    return (response.status_code, response.headers.get("content-type"), response.headers.get("retry-after"),
            response.headers.get("www-authenticate"), body)


def cases(key: str, read_key: str):
    auth = {"Authorization": f"Bearer {key}"}
    now = datetime.now(UTC)
    fixed = [event(event_id=str(uuid.UUID(int=i + 1)), ts=datetime.now(UTC)) for i in range(3)]
    return {
        "mixed batch": dict(content=msgspec.json.encode([*fixed, event(subject_id=5), {"type": "x.unknown"}]),
                            headers={**auth, "Content-Type": "application/json"}),
        "ndjson": dict(content=b"\n".join(msgspec.json.encode(e) for e in fixed) + b"\n{oops",
                       headers={**auth, "Content-Type": "application/x-ndjson"}),
        "gzip msgpack": dict(content=gzip.compress(msgspec.msgpack.encode(fixed)),
                             headers={**auth, "Content-Type": "application/msgpack", "Content-Encoding": "gzip"}),
        "not json": dict(content=b"{not json", headers={**auth, "Content-Type": "application/json"}),
        "not a list": dict(content=b'{"type": "core.generic"}', headers=auth),
        "wrong media type": dict(content=b"a,b", headers={**auth, "Content-Type": "text/csv"}),
        "bad encoding": dict(content=b"[]", headers={**auth, "Content-Encoding": "br"}),
        "broken gzip": dict(content=b"not gzip", headers={**auth, "Content-Encoding": "gzip"}),
        "no key": dict(content=b"[]", headers={"Content-Type": "application/json"}),
        "unknown key": dict(content=b"[]", headers={"Authorization": "Bearer fw_nope_nope"}),
        "basic auth": dict(content=b"[]", headers={"Authorization": "Basic abc"}),
        "read-only key": dict(content=msgspec.json.encode([event(ts=now)]),
                              headers={"Authorization": f"Bearer {read_key}"}),
    }


async def test_both_paths_answer_alike(client, plain_client, make_tenant):
    tenant = await make_tenant(scopes=[Scope.INGEST])
    reader = await make_tenant(scopes=[Scope.READ])
    # The same events to both apps: the first app stores them, the second
    # finds them stored (duplicates), so compare each path against itself
    # on a fresh tenant for anything that stores.
    fresh = await make_tenant(scopes=[Scope.INGEST])
    for name, request in cases(tenant.key, reader.key).items():
        fast = await client.post("/v1/events", **request)
        if name in ("mixed batch", "ndjson", "gzip msgpack"):
            again = cases(fresh.key, reader.key)[name]
            plain = await plain_client.post("/v1/events", **again)
        else:
            plain = await plain_client.post("/v1/events", **request)
        assert normalized(fast) == normalized(plain), name


async def test_stored_events_are_the_same_either_way(client, plain_client, make_tenant, database):
    a, b = await make_tenant(scopes=[Scope.INGEST]), await make_tenant(scopes=[Scope.INGEST])
    events = batch(5)
    events[0]["attributes"]["mail"] = "jane@example.com"
    for c, t in ((client, a), (plain_client, b)):
        r = await c.post("/v1/events", json=events, headers=t.headers)
        assert r.json()["accepted"] == 5
    rows = {}
    for t in (a, b):
        got = await database.fetch("SELECT event_id, ts, type, subject_id, body::text AS body FROM events "
                                   "WHERE tenant_id = $1 ORDER BY event_id", t.id)
        rows[t.id] = [(r["event_id"], r["ts"], r["type"], r["subject_id"], msgspec.json.decode(r["body"]))
                      for r in got]
    assert rows[a.id] == rows[b.id] and len(rows[a.id]) == 5
    assert "[EMAIL]" in msgspec.json.encode(rows[a.id]).decode()


async def test_an_idempotency_key_goes_through_litestar(client, make_tenant):
    tenant = await make_tenant(scopes=[Scope.INGEST])
    events = batch(2)
    headers = {**tenant.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    first = await client.post("/v1/events", json=events, headers=headers)
    second = await client.post("/v1/events", json=events, headers=headers)
    assert first.json() == second.json() and first.json()["accepted"] == 2
    assert second.headers.get("idempotent-replayed") == "true", "replayed by the idempotency middleware"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
async def test_a_body_over_the_limit_gets_litestars_413(flywheel_settings, tmp_path, make_tenant, declared):
    settings = msgspec.structs.replace(flywheel_settings, max_body_bytes=2_000, data_dir=str(tmp_path))
    app = create_app(settings)
    tenant = await make_tenant(scopes=[Scope.INGEST])
    body = msgspec.json.encode(batch(40))
    assert len(body) > 2_000
    async with app_client(app) as c:
        if declared:
            r = await c.post("/v1/events", content=body, headers=tenant.headers)
        else:
            async def chunks():
                for i in range(0, len(body), 500):
                    yield body[i:i + 500]
            r = await c.post("/v1/events", content=chunks(), headers=tenant.headers)
        assert r.status_code == 413, r.text
        assert r.json()["code"] == "body_too_large"


async def test_the_fast_path_counts_in_the_http_metrics(client, make_tenant):
    tenant = await make_tenant(scopes=[Scope.INGEST])

    async def count() -> float:
        text = (await client.get("/metrics")).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("litestar_requests_total{") and 'path="/v1/events"' in line \
                    and 'method="POST"' in line and 'status_code="200"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    before = await count()
    for _ in range(3):
        assert (await client.post("/v1/events", json=batch(1), headers=tenant.headers)).status_code == 200
    assert await count() == before + 3


async def test_requests_it_serves_get_a_server_span(client, make_tenant, spans):
    tenant = await make_tenant(scopes=[Scope.INGEST])
    assert (await client.post("/v1/events", json=batch(2), headers=tenant.headers)).status_code == 200
    served = [s for s in spans.get_finished_spans() if s.name == "POST /v1/events" and s.kind.name == "SERVER"]
    assert len(served) == 1
    assert served[0].attributes["http.response.status_code"] == 200
    assert served[0].attributes["flywheel.tenant_id"] == str(tenant.id)
