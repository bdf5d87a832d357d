"""Plugin routes marked `opt={"fast_path": serve}` (server/fast_routes.py).

A test plugin registers one route whose handler and fast `serve` answer
alike but say which of them answered (`via`). The fast path must take the
ordinary request and hand everything else to the handler with the body
intact; with `FLYWHEEL_FAST_ROUTES=0` the handler answers everything.
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest
import pytest_asyncio
from litestar import Request, get, post
from litestar.params import FromPath, JSONBody

from flywheel.contracts.tenants import Scope
from flywheel.server.app import create_app
from flywheel.server.fast_routes import FastRoutes
from flywheel.server.plugin_api import FAST_PATH, FastRequest, FastResponse, InvalidInput
from flywheel.server.testing.client import app_client
from tests.test_ingest_fastpath import _layers
from tests.test_ingest_hooks import plugin

pytestmark = pytest.mark.asyncio(loop_scope="session")
CLOSED: list[str] = []  # streams whose generator cleanup ran


async def serve(request: FastRequest) -> FastResponse | None:
    body = msgspec.json.decode(request.body)
    if not isinstance(body, dict) or body.get("defer"):
        return None
    if body.get("fail"):
        raise InvalidInput("fail was set", field="$.fail", code="told_to_fail")
    if body.get("crash"):
        raise RuntimeError("not one the fast path expected")
    if body.get("stream"):
        return FastResponse(200, media_type="text/plain", stream=pieces(body["stream"]))
    answer = {"via": "fast", "tenant": str(request.principal.tenant_id), "echo": body,
              "user": request.headers.get("x-user")}
    return FastResponse(201, msgspec.json.encode(answer), {"X-Answered": "fast"})


async def pieces(count: int):
    try:
        for i in range(count):
            yield f"piece {i}\n".encode()
            await asyncio.sleep(0.01)
    finally:
        CLOSED.append("closed")


@post("/v1/echo", opt={"scope": "ingest", FAST_PATH: serve}, status_code=201)
async def echo(request: Request, data: JSONBody[dict]) -> dict:
    return {"via": "litestar", "echo": data}


@get("/v1/echo/{name:str}", opt={FAST_PATH: serve})
async def named(name: FromPath[str]) -> dict:
    return {"name": name}


def echo_plugin():
    return plugin("fastecho", register_routes=lambda: [echo])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fast_app(flywheel_settings, tmp_path_factory):
    settings = msgspec.structs.replace(flywheel_settings, data_dir=str(tmp_path_factory.mktemp("fast-data")))
    app = create_app(settings, [echo_plugin()])
    async with app_client(app) as client:
        yield app, client


@pytest_asyncio.fixture(loop_scope="session")
async def ingest_tenant(make_tenant):
    return await make_tenant(scopes=[Scope.INGEST])


def via(response) -> str:
    return response.json()["via"]


async def test_an_ordinary_request_is_answered_in_front_of_litestar(fast_app, ingest_tenant):
    app, client = fast_app
    assert any(isinstance(layer, FastRoutes) for layer in _layers(app))
    r = await client.post("/v1/echo", json={"a": 1}, headers={**ingest_tenant.headers, "X-User": "u1"})
    assert r.status_code == 201 and r.headers["x-answered"] == "fast"
    assert r.json() == {"via": "fast", "tenant": str(ingest_tenant.id), "echo": {"a": 1}, "user": "u1"}
    assert r.headers["content-type"] == "application/json"


@pytest.mark.parametrize("case", ["no key", "wrong key", "missing scope", "idempotency key", "defer",
                                  "form body", "NUL in body"])
async def test_everything_else_goes_to_the_handler_with_its_body(fast_app, ingest_tenant, make_tenant, case):
    _, client = fast_app
    headers = dict(ingest_tenant.headers)
    content = b'{"a": 2}'
    if case == "no key":
        headers.pop("Authorization")
    elif case == "wrong key":
        headers["Authorization"] = "Bearer fw_not_a_key"
    elif case == "missing scope":
        headers = (await make_tenant(scopes=[Scope.READ])).headers
    elif case == "idempotency key":
        headers["Idempotency-Key"] = "k-1"
    elif case == "defer":
        content = b'{"a": 2, "defer": true}'
    elif case == "form body":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        content = b"a=2"
    elif case == "NUL in body":
        content = b'{"a": "x\\u0000y"}'
    r = await client.post("/v1/echo", content=content, headers={"Content-Type": "application/json", **headers})
    expected = {"no key": 401, "wrong key": 401, "missing scope": 403, "NUL in body": 422}.get(case)
    if expected is not None:
        assert r.status_code == expected, r.text
        assert r.json()["status"] == expected and "via" not in r.json()
    elif case == "form body":
        assert r.status_code in (400, 415, 422) and "via" not in r.json()
    else:
        assert r.status_code == 201, r.text
        assert via(r) == "litestar" and r.json()["echo"] == msgspec.json.decode(content)


async def test_errors_raised_by_serve(fast_app, ingest_tenant):
    _, client = fast_app
    r = await client.post("/v1/echo", json={"fail": True}, headers=ingest_tenant.headers)
    assert r.status_code == 422
    assert r.json() == {"status": 422, "code": "told_to_fail", "message": "fail was set", "field": "$.fail",
                        "details": None} or (r.json()["code"], r.json()["field"]) == ("told_to_fail", "$.fail")
    r = await client.post("/v1/echo", json={"crash": True}, headers=ingest_tenant.headers)
    assert r.status_code == 500 and r.json()["code"] == "internal_error"
    assert "not one the fast path expected" not in r.text  # logged, never shown


async def test_a_stream_is_sent_as_it_comes(fast_app, ingest_tenant):
    _, client = fast_app
    async with client.stream("POST", "/v1/echo", json={"stream": 3}, headers=ingest_tenant.headers) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "text/plain; charset=utf-8"
        assert [line async for line in r.aiter_lines()] == ["piece 0", "piece 1", "piece 2"]


async def test_a_client_that_leaves_mid_stream_stops_it(fast_app, ingest_tenant):
    """Raw ASGI, to leave at an exact point: after the first chunk the client disconnects; the
    stream stops being read and its generator's cleanup runs (rlaas records the call there)."""
    app, _ = fast_app
    CLOSED.clear()
    sent, told, left = [], [], asyncio.Event()
    body = iter([{"type": "http.request", "body": b'{"stream": 1000}', "more_body": False}])

    async def receive():
        message = next(body, None)
        if message is not None:
            return message
        if told:
            await asyncio.Event().wait()  # told once; a server asking again waits, as on a real socket
        await left.wait()
        told.append(True)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            left.set()

    scope = {"type": "http", "method": "POST", "path": "/v1/echo", "query_string": b"", "headers": [
        (b"host", b"localhost"), (b"authorization", ingest_tenant.headers["Authorization"].encode()),
        (b"content-type", b"application/json")]}
    async with asyncio.timeout(5):  # 1,000 pieces would take 10 s
        await app(scope, receive, send)
    chunks = [m for m in sent if m["type"] == "http.response.body" and m.get("body")]
    assert 1 <= len(chunks) < 10 and CLOSED == ["closed"]


async def test_requests_it_serves_count_in_the_http_metrics_and_get_a_span(fast_app, ingest_tenant, spans):
    _, client = fast_app

    async def count() -> float:
        lines = (await client.get("/metrics")).text.splitlines()
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("litestar_requests_total{")
                   and 'path="/v1/echo"' in line and 'status_code="201"' in line)

    before = await count()
    for _ in range(3):
        assert via(await client.post("/v1/echo", json={}, headers=ingest_tenant.headers)) == "fast"
    assert await count() == before + 3
    served = [s for s in spans.get_finished_spans() if s.name == "POST /v1/echo" and s.kind.name == "SERVER"]
    assert len(served) == 3 and served[0].attributes["flywheel.tenant_id"] == str(ingest_tenant.id)


async def test_turned_off_the_handler_answers_everything(flywheel_settings, tmp_path_factory, ingest_tenant):
    settings = msgspec.structs.replace(flywheel_settings, fast_routes=False,
                                       data_dir=str(tmp_path_factory.mktemp("slow-data")))
    app = create_app(settings, [echo_plugin()])
    assert not any(isinstance(layer, FastRoutes) for layer in _layers(app))
    async with app_client(app) as client:
        r = await client.post("/v1/echo", json={"a": 1}, headers=ingest_tenant.headers)
    assert r.status_code == 201 and via(r) == "litestar"


async def test_a_route_with_path_parameters_cannot_be_fast(flywheel_settings):
    with pytest.raises(ValueError, match="path parameters"):
        create_app(flywheel_settings, [plugin("fastnamed", register_routes=lambda: [named])])
