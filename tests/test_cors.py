"""CORS, for pages of other origins that call the API with a key they hold (the TypeScript
SDK in a web app): off unless FLYWHEEL_CORS_ORIGINS names the origins, never with credentials,
and the same headers whether a fast path or Litestar would have answered."""

from __future__ import annotations

import http.server
import threading
import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from flywheel.server.app import create_app
from flywheel.server.settings import SettingsError, load_settings
from flywheel.server.testing.live import LiveServer

pytestmark = pytest.mark.asyncio(loop_scope="session")
ALLOWED = "https://app.example.com"


@pytest.fixture(scope="module")
def cors_server(flywheel_settings):
    settings = msgspec.structs.replace(flywheel_settings, cors_origins=[ALLOWED, "http://127.0.0.1:1"])
    with LiveServer(create_app(settings, load_entrypoints=True)) as live:
        yield live


def _preflight(client, url, origin):
    return client.options(url, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"})


async def test_a_preflight_from_an_allowed_origin_is_answered(cors_server, tenant):
    import httpx

    async with httpx.AsyncClient(base_url=cors_server.url) as c:
        r = await _preflight(c, "/v1/events", ALLOWED)
        assert r.status_code in (200, 204), r.text
        assert r.headers["access-control-allow-origin"] == ALLOWED
        allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "idempotency-key"} <= allowed
        assert "access-control-allow-credentials" not in r.headers
        other = await _preflight(c, "/v1/events", "https://evil.example.net")
        assert other.headers.get("access-control-allow-origin") != "https://evil.example.net"


@pytest.mark.parametrize("idempotent", [False, True], ids=["fast path", "litestar"])
async def test_posts_from_a_browser_carry_the_headers_on_either_path(cors_server, tenant, idempotent):
    import httpx

    extra = {"Idempotency-Key": f"cors-{idempotent}-{tenant.id}"} if idempotent else {}
    body = [{"type": "core.generic", "event_id": str(uuid.uuid4()), "ts": datetime.now(UTC).isoformat(),
             "attributes": {"page": "home"}}]
    async with httpx.AsyncClient(base_url=cors_server.url) as c:
        r = await c.post("/v1/events", json=body, headers={**tenant.headers, "Origin": ALLOWED, **extra})
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
        assert r.headers["access-control-allow-origin"] == ALLOWED
        assert "retry-after" in r.headers["access-control-expose-headers"].lower()
        plain = await c.post("/v1/events", json=body, headers={**tenant.headers, "Origin": "https://evil.example.net"})
        assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers


async def test_without_the_setting_no_cors_headers_are_sent(live_server, tenant):
    import httpx

    async with httpx.AsyncClient(base_url=live_server.url) as c:
        r = await c.post("/v1/events", json=[{"type": "core.generic", "event_id": str(uuid.uuid4()),
                                                 "ts": datetime.now(UTC).isoformat()}],
                         headers={**tenant.headers, "Origin": ALLOWED})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("value", ["https://app.example.com/path", "ftp://x", "app.example.com", "https://a b"])
def test_bad_origins_stop_startup_naming_the_variable(value):
    with pytest.raises(SettingsError) as err:
        load_settings({"FLYWHEEL_CORS_ORIGINS": value})
    assert "FLYWHEEL_CORS_ORIGINS" in str(err.value)


class _Page(http.server.BaseHTTPRequestHandler):
    html = b""

    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args):
        pass


async def test_a_page_of_an_allowed_origin_posts_events_in_chromium(page, flywheel_settings, tenant, database):
    """The browser's own CORS check, for real: a page on one port calls Flywheel on another."""
    pages = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    origin = f"http://127.0.0.1:{pages.server_address[1]}"
    threading.Thread(target=pages.serve_forever, daemon=True).start()
    settings = msgspec.structs.replace(flywheel_settings, cors_origins=[origin])
    try:
        with LiveServer(create_app(settings, load_entrypoints=True)) as api:
            await page.goto(f"{origin}/")
            script = """async ([url, key, name]) => {
                const r = await fetch(url + '/v1/events', {method: 'POST', body: JSON.stringify(
                    [{type: 'core.generic', event_id: crypto.randomUUID(), ts: new Date().toISOString(),
                      attributes: {name: name}}]),
                    headers: {'Authorization': 'Bearer ' + key, 'Content-Type': 'application/json',
                              'Idempotency-Key': 'browser-' + name}});
                return [r.status, await r.text()];
            }"""
            status, text = await page.evaluate(script, [api.url, tenant.key, "from-the-browser"])
            assert status == 200, text
            assert msgspec.json.decode(text)["accepted"] == 1
        # The same page against a server that does not name its origin: the browser refuses it.
        with LiveServer(create_app(flywheel_settings, load_entrypoints=True)) as closed:
            refused = await page.evaluate("""async (url) => {
                try { await fetch(url + '/v1/events', {method: 'POST', body: '[]',
                          headers: {'Authorization': 'Bearer x', 'Content-Type': 'application/json'}});
                      return 'answered'; } catch (e) { return 'refused'; } }""", closed.url)
            assert refused == "refused"
    finally:
        pages.shutdown()
