"""Every route against a key of every scope, with and without Idempotency-Key.

The routes and the scope each needs come from the app (a route's
`opt["scope"]`, else its method), so a route added later is in the matrix
without anyone remembering to. Replays are the way a weaker key could
borrow a stronger one's answer: a stored response belongs to the key that
made the request, and a key without the scope gets 403 whether or not
another key used the same Idempotency-Key first.
"""

from __future__ import annotations

import uuid

import pytest
from route_sweep import fill_shaped, handler_of, protected_routes

from flywheel.contracts.tenants import Scope
from flywheel.server.auth.middleware import required_scope
from flywheel.server.auth.principal import Principal

SCOPES = ("ingest", "read", "write", "admin")


@pytest.fixture
async def keys(client, make_tenant) -> dict[str, dict[str, str]]:
    """One tenant, a key of every scope."""
    admin = await make_tenant()
    out = {"admin": admin.headers}
    for scope in SCOPES[:-1]:
        r = await client.post("/v1/keys", json={"name": f"k-{scope}", "scopes": [scope]}, headers=admin.headers)
        assert r.status_code == 201, r.text
        out[scope] = {"Authorization": f"Bearer {r.json()['secret']}"}
    return out


def allowed(app, method: str, path: str, scope: str) -> bool:
    principal = Principal(uuid.uuid4(), uuid.uuid4(), frozenset({Scope(scope)}))
    return principal.allows(required_scope(handler_of(app, method, path), method))


def _body(method: str) -> dict | None:
    return {} if method in ("POST", "PUT", "PATCH") else None


async def test_every_route_refuses_every_key_without_its_scope(app, client, keys):
    checked = 0
    for method, path, _ in protected_routes(app):
        url = fill_shaped(path)
        for scope in SCOPES:
            r = await client.request(method, url, headers=keys[scope], json=_body(method))
            where = f"{method} {path} with a {scope} key"
            assert r.status_code < 500, f"{where}: {r.status_code} {r.text}"
            if allowed(app, method, path, scope):
                assert r.status_code not in (401, 403), f"{where} was refused: {r.text}"
            else:
                assert r.status_code == 403 and r.json()["code"] == "forbidden", f"{where}: {r.status_code}"
            checked += 1
    assert checked >= 4 * 15


async def test_a_replay_never_skips_the_scope_check(app, client, keys):
    """For every write route: the strongest key goes first with K, then each
    weaker key sends the same request with K, and the other way round."""
    writes = [(m, p) for m, p, _ in protected_routes(app) if m in ("POST", "PUT", "PATCH", "DELETE")]
    assert len(writes) >= 8
    for method, path in writes:
        url = fill_shaped(path)
        refused = [s for s in SCOPES if not allowed(app, method, path, s)]
        if not refused:
            continue
        # Strong first: its answer is stored for its key alone.
        k = f"strong-first-{uuid.uuid4()}"
        first = await client.request(method, url, headers={**keys["admin"], "Idempotency-Key": k},
                                     json=_body(method))
        for scope in refused:
            r = await client.request(method, url, headers={**keys[scope], "Idempotency-Key": k}, json=_body(method))
            where = f"{method} {path}: {scope} key replaying the admin's Idempotency-Key"
            assert r.status_code == 403 and "idempotent-replayed" not in r.headers, f"{where}: {r.status_code}"
            assert first.status_code == 403 or r.content != first.content, where
        # Weak first: its 403 is never stored, so the admin's request really runs.
        k = f"weak-first-{uuid.uuid4()}"
        for scope in refused:
            r = await client.request(method, url, headers={**keys[scope], "Idempotency-Key": k}, json=_body(method))
            assert r.status_code == 403
        r = await client.request(method, url, headers={**keys["admin"], "Idempotency-Key": k}, json=_body(method))
        where = f"{method} {path}: admin after a refused key used its Idempotency-Key"
        assert r.status_code != 403 and "idempotent-replayed" not in r.headers, f"{where}: {r.status_code} {r.text}"


async def test_a_new_admin_secret_is_never_replayed_to_another_key(client, keys, database):
    """The attack as found: an admin creates a key with K; a read key of the same tenant sends K."""
    body = {"name": "deploy", "scopes": ["admin"]}
    created = await client.post("/v1/keys", json=body, headers={**keys["admin"], "Idempotency-Key": "K"})
    assert created.status_code == 201
    secret = created.json()["secret"]
    for scope in ("ingest", "read", "write"):
        r = await client.post("/v1/keys", json=body, headers={**keys[scope], "Idempotency-Key": "K"})
        assert r.status_code == 403 and secret not in r.text, (scope, r.status_code)
    # The admin's own retry replays its answer (the guarantee still holds for the key that made it).
    again = await client.post("/v1/keys", json=body, headers={**keys["admin"], "Idempotency-Key": "K"})
    assert again.headers.get("idempotent-replayed") == "true" and again.json()["secret"] == secret
    stored = await database.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = 'K' AND status = 403")
    assert stored == 0, "a refused request's answer was stored"


async def test_two_admin_keys_of_one_tenant_do_not_share_answers(client, keys):
    r = await client.post("/v1/keys", json={"name": "second-admin", "scopes": ["admin"]}, headers=keys["admin"])
    other = {"Authorization": f"Bearer {r.json()['secret']}"}
    body = {"name": "x", "scopes": ["read"]}
    first = await client.post("/v1/keys", json=body, headers={**keys["admin"], "Idempotency-Key": "shared"})
    second = await client.post("/v1/keys", json=body, headers={**other, "Idempotency-Key": "shared"})
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in second.headers and first.json()["secret"] != second.json()["secret"]
