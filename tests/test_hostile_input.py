"""A corpus of hostile input sent to every route the OpenAPI document
describes: into each body (JSON and msgpack), each query parameter and each
path parameter. Whatever the route, the answer is a 4xx with the error body
(never a 5xx), and the server is healthy afterwards.

The operations come from the app's own document, so a route added later is
attacked too. The corpus holds what broke servers before: NUL in every
string position, deep nesting, invalid UTF-8, lone surrogates, 400-digit
integers, NaN, and msgpack declaring huge lengths.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import msgspec
import pytest

DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000
DEEP_MSGPACK = b"\x91" * 100_000 + b"\xc0"
# Bodies no route may accept: each must be refused with a 4xx.
REFUSED_BODIES: dict[str, tuple[str, bytes]] = {
    "deep array": ("application/json", DEEP_JSON),
    "deep object": ("application/json", DEEP_OBJECT),
    "invalid utf-8": ("application/json", b'{"name": "\xff\xfe", "x": "\xc3"}'),
    "lone surrogate": ("application/json", b'{"name": "\\ud800"}'),
    "NaN": ("application/json", b'{"x": NaN}'),
    "Infinity": ("application/json", b'{"x": Infinity}'),
    "truncated": ("application/json", b'{"rows": [{"a": 1'),
    "msgpack deep": ("application/msgpack", DEEP_MSGPACK),
    "msgpack huge array": ("application/msgpack", b"\xdd\xff\xff\xff\xff"),
    "msgpack huge map": ("application/msgpack", b"\xdf\xff\xff\xff\xff"),
    "msgpack huge str": ("application/msgpack", b"\x81\xdb\xff\xff\xff\xff"),
    "msgpack invalid utf-8": ("application/msgpack", b"\x81\xa2\xff\xfe\x01"),
    "msgpack deep rows": ("application/msgpack", b"\x81\xa4rows" + DEEP_MSGPACK),
}
# Values for query and path parameters (percent-encoded into the URL).
PARAMETER_VALUES = {"nul": "%00", "nul inside": "a%00b", "invalid utf-8": "%ff%fe",
                    "lone surrogate": "%ed%a0%80", "400 digits": "9" * 400, "huge negative": "-" + "9" * 400,
                    "NaN": "NaN", "traversal": "..%2F..%2Fetc%2Fpasswd", "long": "x" * 5000}
MUST_REFUSE_PARAMETER = {"nul", "nul inside", "invalid utf-8", "lone surrogate"}


FAMILY = "example.note_reopen"  # the example plugin's family, trained below so scoring reaches its decoder


@pytest.fixture(scope="module")
async def tenant(client, make_tenant, worker):
    """A tenant with an active model: routes that need one get as far as decoding what they are sent."""
    t = await make_tenant()
    r = await client.post(f"/v1/models/{FAMILY}/train", json={"auto_activate": True, "options": {"rows": 300}},
                          headers=t.headers)
    assert r.status_code == 202, r.text
    await worker()
    info = await client.get(f"/v1/models/{FAMILY}", headers=t.headers)
    assert info.status_code == 200, info.text
    return t


@pytest.fixture(scope="module")
async def operations(client) -> list[dict[str, Any]]:
    doc = (await client.get("/schema/openapi.json")).json()
    out = []
    for path, item in doc["paths"].items():
        if path.startswith("/schema"):
            continue  # the document's own viewers (HTML), not the API
        for method, op in item.items():
            if method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                continue
            params = [*item.get("parameters", []), *op.get("parameters", [])]
            body = _body_schema(doc, op)
            declared = body is not None
            if body is None and method.upper() in ("POST", "PUT", "PATCH"):
                body = {}  # a handler may read a body the document does not describe: attack it anyway
            out.append({"method": method.upper(), "path": path, "id": op.get("operationId", path),
                        "params": params, "body": body, "declared": declared})
    assert len(out) >= 20, "the document should describe the core's and the plugins' routes"
    return out


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _body_schema(doc: dict, op: dict) -> dict | None:
    content = (op.get("requestBody") or {}).get("content") or {}
    media = content.get("application/json") or next(iter(content.values()), None)
    return _resolve(doc, media.get("schema", {})) if media else ({} if op.get("requestBody") else None)


def _shaped(path: str, params: list[dict], override: tuple[str, str] | None = None) -> str:
    def value(name: str) -> str:
        if override and override[0] == name:
            return override[1]
        if name == "family":
            return FAMILY
        schema = next((p.get("schema", {}) for p in params if p["name"] == name), {})
        if schema.get("format") == "uuid":
            return str(uuid.uuid4())
        return "1" if schema.get("type") == "integer" else "x"

    return re.sub(r"\{(\w+)\}", lambda m: value(m.group(1)), path)


def _nul_documents(schema: dict) -> list[dict[str, Any]]:
    """The body's own shape with a NUL-holding string in each property, and in a key."""
    props = schema.get("properties") or {}
    docs = [{name: "bad\x00value"} for name in props]
    docs += [{name: ["bad\x00", {"k\x00": 1}]} for name, p in props.items() if p.get("type") in ("array", None)]
    docs += [{name: 10**400 // 10**300} for name in props]  # a 100-digit integer where the body has a field
    return docs or [{"x\x00": "y"}, {"x": "a\x00b"}]


def assert_error(response, where: str) -> None:
    assert 400 <= response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    assert response.headers.get("content-type", "").startswith("application/json"), \
        f"{where}: {response.status_code} answered {response.headers.get('content-type')}: {response.text[:200]}"
    body = response.json()
    assert body["status"] == response.status_code and body["code"] and body["message"], f"{where}: {body}"


def _refused_event_batch(response) -> bool:
    """Ingestion refuses bad events one by one: 200 with every event rejected is a refusal."""
    if response.status_code != 200:
        return False
    body = response.json()
    return body.get("accepted") == 0 and body.get("rejected", 0) >= 1


async def test_hostile_bodies_are_refused_on_every_route(client, tenant, operations):
    sent = 0
    for op in operations:
        if op["body"] is None:
            continue
        url = _shaped(op["path"], op["params"])
        for name, (media, body) in REFUSED_BODIES.items():
            r = await client.request(op["method"], url, content=body,
                                     headers={**tenant.headers, "Content-Type": media})
            sent += 1
            where = f"{op['method']} {op['path']} with {name}"
            if op["declared"]:
                assert_error(r, where)
            else:  # a route that takes no body may ignore one; it must never fail on it
                assert r.status_code < 500, f"{where}: {r.status_code} {r.text[:300]}"
        for doc in _nul_documents(op["body"]):
            for media, encode in (("application/json", msgspec.json.encode), ("application/msgpack",
                                                                                msgspec.msgpack.encode)):
                try:
                    content = encode(doc)
                except OverflowError:  # msgpack has no integers that large: only JSON carries them
                    continue
                r = await client.request(op["method"], url, content=content,
                                         headers={**tenant.headers, "Content-Type": media})
                sent += 1
                where = f"{op['method']} {op['path']} with {media} {doc!r}"[:300]
                assert r.status_code < 500, f"{where}: {r.status_code} {r.text[:300]}"
                if media == "application/json" and "\x00" in repr(doc):
                    if not _refused_event_batch(r):
                        assert_error(r, where)
    assert sent >= 100
    scored = await client.post(f"/v1/models/{FAMILY}/score_batch", content=REFUSED_BODIES["msgpack deep rows"][1],
                               headers={**tenant.headers, "Content-Type": "application/msgpack"})
    assert scored.json()["code"] != "not_found", "scoring must have reached its decoder"


async def test_hostile_parameters_are_refused_on_every_route(client, tenant, operations):
    sent = 0
    for op in operations:
        for param in op["params"]:
            if param.get("in") not in ("query", "path"):
                continue
            for name, value in PARAMETER_VALUES.items():
                if param["in"] == "path":
                    url = _shaped(op["path"], op["params"], (param["name"], value))
                else:
                    url = f"{_shaped(op['path'], op['params'])}?{param['name']}={value}"
                body = b"{}" if op["body"] is not None else None
                r = await client.request(op["method"], url, content=body,
                                         headers={**tenant.headers, "Content-Type": "application/json"})
                sent += 1
                where = f"{op['method']} {url[:200]} ({param['in']} {param['name']}: {name})"
                assert r.status_code < 500, f"{where}: {r.status_code} {r.text[:300]}"
                if name in MUST_REFUSE_PARAMETER:
                    assert_error(r, where)
                elif r.status_code >= 400:
                    assert_error(r, where)
    assert sent >= 100


async def test_the_server_is_healthy_after_the_corpus(client, tenant, operations):
    await test_hostile_bodies_are_refused_on_every_route(client, tenant, operations)
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok", ready.text
    from ingest_helpers import batch

    events = batch(5)
    r = await client.post("/v1/events", json=events, headers=tenant.headers)
    assert r.status_code == 200 and r.json()["accepted"] == 5, r.text
