"""The console in a real headless Chromium: sign-in, navigation, plugin pages, charts, sign-out.

Screenshots of every page land in test-artifacts/console/.
"""

from __future__ import annotations

import re
import uuid

import pytest

from flywheel.server.app import create_app
from flywheel.server.testing.browser import sign_in
from flywheel.server.testing.live import LiveServer
from tests.console_demo import DemoPlugin


@pytest.fixture(scope="module")
def demo_server(flywheel_settings, client):
    """An app with the demo plugin's pages, over real HTTP."""
    with LiveServer(create_app(flywheel_settings, [DemoPlugin()])) as live:
        yield live


async def _keyed_tenant(make_tenant, database, prefix: str):
    """A tenant with an admin key and a second, named key that marks its data."""
    from flywheel.contracts.tenants import Scope
    from flywheel.server.auth import service

    t = await make_tenant(name=f"{prefix}-{uuid.uuid4().hex[:6]}")
    marker = await service.create_key(database, t.id, f"{prefix}-marker-{uuid.uuid4().hex[:6]}", [Scope.READ])
    return t, marker


async def test_sign_in_browse_and_sign_out(demo_server, page, make_tenant, database, shots):
    url = demo_server.url
    a, marker = await _keyed_tenant(make_tenant, database, "acme")

    # Signed out: any page sends you to the sign-in form, remembering where you were going.
    await page.goto(f"{url}/console/demo")
    assert re.search(r"/console/login\?next=/console/demo$", page.url), page.url
    await page.screenshot(path=shots / "login.png", full_page=True)

    # A wrong key: an error on the page, the key not echoed back, no cookie.
    await page.fill("input[name=key]", "fw_aaaaaaaaaaaa_" + "B" * 43)
    async with page.expect_navigation():
        await page.click("button[type=submit]")
    error = page.get_by_role("alert")
    assert "not accepted" in await error.inner_text()
    assert "B" * 43 not in await page.content() and await page.input_value("input[name=key]") == ""
    assert not await page.context.cookies()
    await page.screenshot(path=shots / "login-error.png", full_page=True)

    # The real key: back to the page asked for.
    await page.fill("input[name=key]", a.key)
    async with page.expect_navigation():
        await page.click("button[type=submit]")
    assert page.url == f"{url}/console/demo"
    assert await page.get_by_test_id("tenant").inner_text() == a.name
    nav = page.get_by_role("navigation", name="Console")
    assert await nav.get_by_role("link").all_inner_texts() == [
        "Overview", "Jobs", "Models", "Events", "Alerts", "Demo keys", "API keys", "Plugins"]
    assert await nav.locator("[aria-current=page]").inner_text() == "Demo keys"
    assert marker.key.name in await page.get_by_test_id("keys").inner_text()
    charts = page.locator("svg[role=img]")
    assert await charts.count() == 3
    assert [await charts.nth(i).get_attribute("aria-label") for i in range(3)] == [
        "Keys by scope", "Keys created per day", "Key name lengths"]
    assert await page.locator("svg[data-chart=bar] rect title").count() == 4
    await page.screenshot(path=shots / "demo-keys.png", full_page=True)

    # The session cookie: HttpOnly, SameSite=Strict, only for /console, not the key.
    [cookie] = await page.context.cookies()
    assert cookie["name"] == "flywheel_session" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/console" and not cookie["secure"] and a.key not in cookie["value"]
    assert "flywheel_session" not in await page.evaluate("document.cookie")

    # A page that is not in the navigation, and a form on it (a real same-origin POST).
    await page.get_by_role("link", name=marker.key.name).click()
    await page.wait_for_url(f"{url}/console/demo/keys/{marker.key.id}")
    assert await page.get_by_test_id("key-name").inner_text() == marker.key.name
    assert await nav.locator("[aria-current=page]").inner_text() == "Demo keys"
    await page.screenshot(path=shots / "demo-key.png", full_page=True)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Touch").click()
    assert page.url.endswith("?touched=1") and await page.get_by_test_id("touched").is_visible()

    # The overview, through the navigation.
    await nav.get_by_role("link", name="Overview").click()
    await page.wait_for_url(f"{url}/console/")
    assert await page.locator("h1").inner_text() == "Overview"
    assert "demo" in await page.get_by_test_id("plugins").inner_text()
    await page.screenshot(path=shots / "overview.png", full_page=True)

    # An unknown page is an HTML page, not JSON.
    response = await page.goto(f"{url}/console/demo/keys/{uuid.uuid4()}")
    assert response.status == 404 and await page.get_by_test_id("error-message").inner_text() == "no such key"
    await page.screenshot(path=shots / "not-found.png", full_page=True)

    # Sign out: back to the form, cookie gone, pages closed again.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{url}/console/login")
    assert not await page.context.cookies()
    await page.goto(f"{url}/console/")
    assert page.url == f"{url}/console/login"
    await page.screenshot(path=shots / "signed-out.png", full_page=True)


async def test_a_session_of_tenant_a_never_shows_tenant_b(demo_server, browser, make_tenant, database, shots):
    url = demo_server.url
    a, a_marker = await _keyed_tenant(make_tenant, database, "tenant-a")
    b, b_marker = await _keyed_tenant(make_tenant, database, "tenant-b")
    contexts = [await browser.new_context(), await browser.new_context()]
    try:
        page_a, page_b = [await c.new_page() for c in contexts]
        await sign_in(page_a, url, a.key, next_path="/console/demo")
        await sign_in(page_b, url, b.key, next_path="/console/demo")
        for page, me, mine, theirs, other in ((page_a, a, a_marker, b_marker, b), (page_b, b, b_marker, a_marker, a)):
            await page.reload()
            text = await page.content()
            assert me.name in text and mine.key.name in text
            assert other.name not in text and theirs.key.name not in text
            for path in ("/console/", "/console/demo"):
                await page.goto(f"{url}{path}")
                assert other.name not in await page.content()
            # Naming the other tenant's key looks exactly like naming nothing.
            response = await page.goto(f"{url}/console/demo/keys/{theirs.key.id}")
            assert response.status == 404 and theirs.key.name not in await page.content()
        await page_a.goto(f"{url}/console/demo/keys/{b_marker.key.id}")
        await page_a.screenshot(path=shots / "tenant-a-asks-for-b.png", full_page=True)
    finally:
        for c in contexts:
            await c.close()


async def test_a_form_from_another_site_is_refused(demo_server, page, make_tenant, shots):
    """A page of another site posts the sign-out form: no cookie goes with it (SameSite=Strict)
    and its Origin is refused; the session survives."""
    url = demo_server.url
    t = await make_tenant()
    await sign_in(page, url, t.key)
    attacker = f"""<!doctype html><form method="post" action="{url}/console/logout">
        <button type="submit">Win a prize</button></form>"""
    # The attacker's site never touches the network: Playwright answers for it.
    await page.route("http://evil.test/**", lambda route: route.fulfill(body=attacker, content_type="text/html"))
    await page.goto("http://evil.test/prize")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Win a prize").click()
    assert page.url == f"{url}/console/logout" and "another site" in await page.content()
    await page.screenshot(path=shots / "cross-site-refused.png", full_page=True)
    await page.goto(f"{url}/console/")
    assert page.url == f"{url}/console/", "the cross-site sign-out must not end the session"


async def test_the_overview_with_the_installed_plugins(live_server, page, tenant, shots):
    """The `live_server` fixture serves the session's plugins (here: every installed one)."""
    await sign_in(page, live_server.url, tenant.key)
    assert page.url == f"{live_server.url}/console/"
    plugins = await page.get_by_test_id("plugins").inner_text()
    assert "example" in plugins and "drives" in plugins
    assert "example.note_reopen" in await page.get_by_test_id("models").inner_text()
    await page.screenshot(path=shots / "overview-installed-plugins.png", full_page=True)
