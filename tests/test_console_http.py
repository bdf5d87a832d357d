"""The console without a browser: sign-in, sessions, CSRF, redirects, errors, page registration."""

from __future__ import annotations

import hashlib
import uuid
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar import get, post

from flywheel.contracts.pages import Page
from flywheel.contracts.tenants import Scope
from flywheel.server import hookimpl
from flywheel.server.app import build_state, create_app
from flywheel.server.console.security import safe_next
from flywheel.server.contributions import ContributionError
from flywheel.server.testing.client import app_client
from flywheel.server.testing.console import console_client as make_console_client
from tests.console_demo import DemoPlugin

ORIGIN = {"Origin": "http://testserver"}


def set_cookie(response) -> SimpleCookie:
    jar = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return jar


async def test_pages_redirect_to_sign_in_without_a_session(console_client, tenant):
    async with console_client() as c:
        r = await c.get("/console/")
        assert r.status_code == 303 and r.headers["location"] == "/console/login"
        r = await c.get("/console/?tab=jobs&x=1")
        assert r.status_code == 303
        target = parse_qs(urlsplit(r.headers["location"]).query)["next"]
        assert urlsplit(r.headers["location"]).path == "/console/login" and target == ["/console/?tab=jobs&x=1"]
        # An API key is not a session: the console ignores it.
        r = await c.get("/console/", headers=tenant.headers)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
        form = await c.get("/console/login")
        assert form.status_code == 200 and "text/html" in form.headers["content-type"]
        assert 'name="key"' in form.text and "set-cookie" not in form.headers


async def test_sign_in_sets_a_strict_http_only_session_cookie(console_client, tenant, database):
    async with console_client() as c:
        r = await c.post("/console/login", data={"key": tenant.key, "next": "/console/?from=login"})
        assert r.status_code == 303 and r.headers["location"] == "/console/?from=login"
        morsel = set_cookie(r)["flywheel_session"]
        assert morsel["httponly"] and morsel["samesite"].lower() == "strict" and morsel["path"] == "/console"
        assert not morsel["secure"]  # plain http here; see the https test below
        assert int(morsel["max-age"]) == 12 * 3600
        session_id = morsel.value
        assert tenant.key not in session_id and len(session_id) >= 43  # 256 random bits
        row = await database.fetchrow("SELECT tenant_id, key_id, expires_at - created_at AS ttl FROM console_sessions "
                                      "WHERE id_hash = $1", hashlib.sha256(session_id.encode()).digest())
        assert row["tenant_id"] == tenant.id and row["ttl"].total_seconds() == 12 * 3600
        home = await c.get("/console/")
        assert home.status_code == 200 and tenant.name in home.text
        assert home.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
        # Already signed in: the form sends you on.
        again = await c.get("/console/login?next=/console/")
        assert again.status_code == 303 and again.headers["location"] == "/console/"


async def test_cookie_is_secure_over_https(app, client, tenant):
    async with make_console_client(app, base_url="https://testserver") as c:
        r = await c.post("/console/login", data={"key": tenant.key})
        assert r.status_code == 303 and set_cookie(r)["flywheel_session"]["secure"]


@pytest.mark.parametrize("key", ["", "not-a-key", "fw_aaaaaaaaaaaa_" + "A" * 43])
async def test_a_bad_key_shows_an_error_without_echoing_it(console_client, key):
    async with console_client() as c:
        r = await c.post("/console/login", data={"key": key, "next": "/console/"})
        assert r.status_code == 401 and "text/html" in r.headers["content-type"]
        assert "was not accepted" in r.text and "set-cookie" not in r.headers
        if key:
            assert key not in r.text


async def test_a_key_without_read_scope_cannot_sign_in(console_client, make_tenant):
    t = await make_tenant(scopes=[Scope.INGEST])
    async with console_client() as c:
        r = await c.post("/console/login", data={"key": t.key})
        assert r.status_code == 401 and "lacks the &#39;read&#39; scope" in r.text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/console", "/consolex", "/v1/keys",
                                    "/console/../v1/keys", "/console\\..\\x", "javascript:alert(1)",
                                    "/console/login?next=//evil.example", " /console/"])
async def test_next_is_only_ever_a_console_path(console_client, tenant, target):
    assert safe_next(target) is None
    async with console_client() as c:
        r = await c.post("/console/login", data={"key": tenant.key, "next": target})
        assert r.status_code == 303 and r.headers["location"] == "/console/"


def test_next_keeps_console_paths():
    for target in ("/console", "/console/", "/console/drives?page=2", "/console/drives/ZA1%2F"):
        assert safe_next(target) == target


async def test_forms_from_another_site_are_refused(console_client, tenant):
    async with console_client() as c:
        for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                        {"Origin": "http://testserver.evil.example"}):
            r = await c.post("/console/login", data={"key": tenant.key}, headers=headers)
            assert r.status_code == 403 and "another site" in r.text and "set-cookie" not in r.headers
        c.headers.pop("Origin")
        r = await c.post("/console/login", data={"key": tenant.key})
        assert r.status_code == 403, "no Origin and no Referer"
        r = await c.post("/console/login", data={"key": tenant.key}, headers={"Referer": "http://testserver/console/login"})
        assert r.status_code == 303, "a same-origin Referer is enough when Origin is absent"
        # Signed in now; a cross-site sign-out is refused and the session survives.
        r = await c.post("/console/logout", headers={"Origin": "https://evil.example"})
        assert r.status_code == 403
        assert (await c.get("/console/")).status_code == 200


async def test_sign_out_ends_the_session(console_client, tenant):
    async with console_client(tenant.key) as c:
        session_id = c.cookies["flywheel_session"]
        r = await c.post("/console/logout")
        assert r.status_code == 303 and r.headers["location"] == "/console/login"
        assert set_cookie(r)["flywheel_session"]["max-age"] == "0"
        assert (await c.get("/console/")).status_code == 303
    # The old id is dead even if someone kept a copy.
    async with console_client() as c:
        r = await c.get("/console/", headers={"Cookie": f"flywheel_session={session_id}"})
        assert r.status_code == 303 and set_cookie(r)["flywheel_session"]["max-age"] == "0"


async def test_revoking_the_key_ends_its_sessions(client, console_client, make_tenant):
    admin = await make_tenant()
    created = (await client.post("/v1/keys", json={"name": "viewer", "scopes": ["read"]}, headers=admin.headers)).json()
    async with console_client(created["secret"]) as c:
        assert (await c.get("/console/")).status_code == 200
        r = await client.delete(f"/v1/keys/{created['key']['id']}", headers=admin.headers)
        assert r.status_code == 200
        r = await c.get("/console/")
        assert r.status_code == 303 and r.headers["location"] == "/console/login"


async def test_expired_sessions_end(console_client, tenant, database):
    async with console_client(tenant.key) as c:
        digest = hashlib.sha256(c.cookies["flywheel_session"].encode()).digest()
        await database.execute("UPDATE console_sessions SET expires_at = now() - interval '1 second' "
                               "WHERE id_hash = $1", digest)
        assert (await c.get("/console/")).status_code == 303
        # The next sign-in sweeps expired rows.
        await c.post("/console/login", data={"key": tenant.key})
        assert await database.fetchval("SELECT count(*) FROM console_sessions WHERE id_hash = $1", digest) == 0


async def test_overview_shows_only_this_tenants_jobs_and_models(client, console_client, make_tenant, worker):
    a = await make_tenant()
    b = await make_tenant(name=f"b-secret-{uuid.uuid4().hex[:6]}")
    r = await client.post("/v1/jobs", json={"name": "example.count_notes"}, headers=b.headers)
    assert r.status_code in (200, 201, 202), r.text
    async with console_client(b.key) as c:
        page = (await c.get("/console/")).text
        assert b.name in page and "example.count_notes" in page and "example.note_reopen" in page
        assert "flywheel_example" in page or "example" in page  # the loaded plugins
    async with console_client(a.key) as c:
        page = (await c.get("/console/")).text
        assert a.name in page and b.name not in page and "example.count_notes" not in page
        assert "No jobs yet." in page


async def test_errors_on_console_pages_are_html(console_client, tenant):
    async with console_client(tenant.key) as c:
        r = await c.get("/console/no-such-page")
        assert r.status_code == 404 and "text/html" in r.headers["content-type"] and "Not found" in r.text
        r = await c.put("/console/login")
        assert r.status_code == 405 and "text/html" in r.headers["content-type"]
    # The API keeps its JSON errors.
    async with console_client() as c:
        r = await c.get("/v1/no-such-thing", headers=tenant.headers)
        assert r.status_code == 404 and r.json()["code"] == "not_found"


async def test_static_files_are_public(console_client):
    async with console_client() as c:
        r = await c.get("/console/static/console.css")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
        assert "no-store" not in r.headers.get("cache-control", "")


# ---------------------------------------------------------------------------
# Plugin pages: a test app with the demo plugin (tests/console_demo).
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def demo_app(flywheel_settings, client):
    app = create_app(flywheel_settings, [DemoPlugin()])
    async with app_client(app):
        yield app


async def _tenant(app, scopes=(Scope.ADMIN,), name=None):
    from flywheel.server.auth import service

    db = app.state.flywheel.db
    tenant = await service.create_tenant(db, name or f"t-{uuid.uuid4().hex[:8]}")
    created = await service.create_key(db, tenant.id, f"key-of-{tenant.name}", list(scopes))
    return tenant, created


async def test_plugin_pages_are_in_the_nav_and_scoped_to_the_tenant(demo_app):
    a, a_key = await _tenant(demo_app)
    b, b_key = await _tenant(demo_app, name=f"b-{uuid.uuid4().hex[:8]}")
    async with make_console_client(demo_app, a_key.secret) as c:
        home = (await c.get("/console/")).text
        assert '<a href="/console/demo">Demo keys</a>' in home and "/console/demo/keys" not in home
        page = await c.get("/console/demo")
        assert page.status_code == 200 and 'aria-current="page">Demo keys' in page.text
        assert a_key.key.name in page.text and b_key.key.name not in page.text
        assert page.text.count("<svg") == 3 and 'role="img"' in page.text
        mine = await c.get(f"/console/demo/keys/{a_key.key.id}")
        assert mine.status_code == 200 and a_key.key.name in mine.text
        # Tenant B's key looks exactly like no key at all.
        theirs = await c.get(f"/console/demo/keys/{b_key.key.id}")
        nothing = await c.get(f"/console/demo/keys/{uuid.uuid4()}")
        assert theirs.status_code == nothing.status_code == 404 and b_key.key.name not in theirs.text
        assert "text/html" in theirs.headers["content-type"] and "no such key" in theirs.text
        r = await c.post(f"/console/demo/keys/{a_key.key.id}/touch")
        assert r.status_code == 303 and r.headers["location"].endswith("?touched=1")


async def test_plugin_forms_need_the_scope_an_api_route_would(demo_app):
    _, reader = await _tenant(demo_app, scopes=[Scope.READ])
    async with make_console_client(demo_app, reader.secret) as c:
        assert (await c.get(f"/console/demo/keys/{reader.key.id}")).status_code == 200
        r = await c.post(f"/console/demo/keys/{reader.key.id}/touch")
        assert r.status_code == 403 and "text/html" in r.headers["content-type"] and "write" in r.text


async def test_a_broken_page_is_a_500_page_without_details(demo_app):
    _, key = await _tenant(demo_app)
    async with make_console_client(demo_app, key.secret) as c:
        r = await c.get("/console/demo/broken")
        assert r.status_code == 500 and "text/html" in r.headers["content-type"]
        assert "Something went wrong" in r.text and "no-such-template" not in r.text and "Traceback" not in r.text
        assert (await c.options("/console/demo")).status_code == 204


async def test_console_routes_are_not_in_the_api_schema(demo_app):
    async with make_console_client(demo_app) as c:
        paths = (await c.get("/schema/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith("/console")]


# ---------------------------------------------------------------------------
# Registration is validated at startup and names the plugin.
# ---------------------------------------------------------------------------


async def _page():
    ...


def _plugin(name: str, *pages: Page, routes=()):
    class P:
        __flywheel_plugin_name__ = name

        @hookimpl
        def register_pages(self):
            return list(pages)

        @hookimpl
        def register_routes(self):
            return list(routes)

    return P()


@get("/other/thing")
async def _outside() -> str:
    return "x"


@get("/demo")
async def _demo_get() -> str:
    return "x"


@post("/demo")
async def _demo_post() -> str:
    return "x"


@get("/console/sneaky")
async def _sneaky() -> str:
    return "x"


@pytest.mark.parametrize("plugin, message", [
    (_plugin("demo", Page(path="/other", nav_title="X", handler=_page)), "must start with '/demo'"),
    (_plugin("demo", Page(path="/demonstration", nav_title="X", handler=_page)), "must start with '/demo'"),
    (_plugin("demo", Page(path="demo", nav_title="X", handler=_page)), "must start with '/demo'"),
    (_plugin("login", Page(path="/login", nav_title="X", handler=_page)), "belongs to the console itself"),
    (_plugin("static", Page(path="/static", nav_title="X", handler=_page)), "belongs to the console itself"),
    (_plugin("demo", Page(path="/demo", nav_title="X", handler=_demo_post)), "serves no GET '/demo'"),
    (_plugin("demo", Page(path="/demo/x", nav_title="X", handler=_outside)), "outside '/demo'"),
    (_plugin("demo", Page(path="/demo", nav_title="", handler=_page)), "needs a nav_title"),
    (_plugin("demo", Page(path="/demo", nav_title="X", handler=42)), "handler must be"),
    (_plugin("demo", Page(path="/demo", nav_title="X", handler=_page, templates="no_such_pkg.templates")),
     "cannot be imported|must be an importable package"),
    (_plugin("demo", Page(path="/demo", nav_title="X", handler=_page),
             Page(path="/demo", nav_title="Y", handler=_page)), "page '/demo' is registered by both"),
    (_plugin("demo", Page(path="/demo", nav_title="X", handler=_demo_get),
             Page(path="/demo/", nav_title="Y", handler=_page, nav=False)), "GET /console/demo is registered twice"),
    (_plugin("demo", routes=[_sneaky]), "console pages come from register_pages"),
])
def test_bad_pages_stop_startup_naming_the_plugin(flywheel_settings, plugin, message):
    with pytest.raises(ContributionError, match=message) as info:
        build_state(flywheel_settings, [plugin])
    assert f"plugin '{plugin.__flywheel_plugin_name__}'" in str(info.value)


def test_one_controller_may_serve_several_pages(flywheel_settings):
    from litestar import Controller

    class Pages(Controller):
        path = "/demo"

        @get("/")
        async def fleet(self) -> str:
            return "x"

        @get("/list")
        async def listing(self) -> str:
            return "x"

    state = build_state(flywheel_settings, [_plugin("demo", Page(path="/demo", nav_title="Fleet", handler=Pages),
                                                    Page(path="/demo/list", nav_title="List", handler=Pages))])
    assert sorted(state.contributions.pages) == ["/demo", "/demo/list"]
    app = create_app(flywheel_settings, state=state)
    assert {r.path for r in app.routes} >= {"/console/demo", "/console/demo/list"}

