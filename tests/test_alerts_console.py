"""The console's alert pages: open alerts, acknowledging and resolving them through the forms,
the delivery log and the CSV export, in headless Chromium (screenshots in
test-artifacts/alerts_console/), and none of it visible to another tenant."""

from __future__ import annotations

import csv
import io

import pytest

from flywheel.server.alerts import raise_alert
from flywheel.server.testing.browser import sign_in
from tests.test_alerts_delivery import LOOPBACK, receiver, webhook_to

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}


async def screenshots(page, name: str, shots) -> str:
    """Desktop and phone screenshots; the page never scrolls sideways on a phone."""
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=shots / f"{name}-phone.png", full_page=True)
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{name} is {overflow}px wider than a phone"
    await page.set_viewport_size(DESKTOP)
    await page.screenshot(path=shots / f"{name}-desktop.png", full_page=True)
    return await page.locator("main").inner_text()


@pytest.fixture(scope="module")
async def world(client, state, worker, make_tenant):
    """Tenant A: a critical drive alert delivered to a webhook after one failed attempt, a warning
    and an info alert; tenant B: an alert of its own."""
    a, b = await make_tenant(), await make_tenant()
    mp = pytest.MonkeyPatch()
    mp.setenv("FLYWHEEL_ALERTS_HOSTS", LOOPBACK)
    mp.setenv("FLYWHEEL_ALERTS_RETRY_BASE_S", "0.05")
    try:
        async with receiver(statuses=[500]) as hook:
            await webhook_to(client, a, hook.url, rule_match="drives.*")
            disk = await raise_alert(state, a.id, rule="drives.top_risk_band", key="ZA1234", severity="critical",
                                     title="Drive ZA1234 (ST4000DM000) is in the top risk band",
                                     details={"risk": 0.61, "day": "2026-03-31"})
            await worker(wait_deferred=True)  # the deferred second attempt too
    finally:
        mp.undo()
    warn = await raise_alert(state, a.id, rule="test.queue", key="q7", severity="warning",
                             title="Queue 7 has not moved for an hour", details={"<b>": "<script>x</script>"})
    info = await raise_alert(state, a.id, rule="test.note", key="n1", severity="info", title="=cmd|' /C calc'!A0",
                             details={})
    theirs = await raise_alert(state, b.id, rule="test.queue", key="q7", severity="warning",
                               title="B's own queue alert", details={})
    return {"a": a, "b": b, "disk": disk, "warn": warn, "info": info, "theirs": theirs}


async def test_open_alerts_acknowledged_and_resolved_in_the_browser(live_server, page, world, shots):
    a, disk, warn = world["a"], world["disk"], world["warn"]
    url = live_server.url
    await sign_in(page, url, a.key, next_path="/console/alerts")
    text = await screenshots(page, "alerts", shots)
    nav = page.get_by_role("navigation", name="Console").locator("[aria-current=page]")
    assert await nav.inner_text() == "Alerts"
    rows = page.locator("[data-testid=alert-row]")
    assert await rows.count() == 3 and "B's own" not in text
    assert "Drive ZA1234 (ST4000DM000) is in the top risk band" in text

    # Filter to critical, then back.
    await page.select_option("select[name=severity]", "critical")
    async with page.expect_navigation():
        await page.click("form[data-testid=filters] button[type=submit]")
    assert "severity=critical" in page.url and await rows.count() == 1

    # The quick acknowledge on the list.
    await page.goto(f"{url}/console/alerts")
    row = rows.filter(has_text="Queue 7")
    async with page.expect_navigation():
        await row.get_by_test_id("quick-ack").click()
    assert page.url.endswith(f"/console/alerts/{warn.id}?done=acknowledged")
    assert await page.get_by_test_id("done").inner_text() == "The alert is acknowledged."
    assert " in the console, " in await page.get_by_test_id("acknowledged").inner_text()
    assert "<script>" in await page.get_by_test_id("details").inner_text()  # shown as text, escaped
    assert await page.locator("script").count() == 0

    # The drive alert: acknowledge with a note, then resolve with one.
    await page.goto(f"{url}/console/alerts/{disk.id}")
    await screenshots(page, "alert-open", shots)
    await page.get_by_test_id("ack-form").locator("input[name=note]").fill("Ordering a replacement")
    async with page.expect_navigation():
        await page.get_by_test_id("ack-form").get_by_role("button", name="Acknowledge").click()
    assert "Ordering a replacement" in await page.get_by_test_id("acknowledged").inner_text()
    assert await page.get_by_test_id("ack-form").count() == 0  # acknowledged: only resolving is left
    await page.get_by_test_id("resolve-form").locator("input[name=note]").fill("Swapped on shelf 4")
    async with page.expect_navigation():
        await page.get_by_test_id("resolve-form").get_by_role("button", name="Resolve").click()
    assert await page.get_by_test_id("done").inner_text() == "The alert is resolved."
    assert await page.get_by_test_id("state").inner_text() == "resolved"
    history = await page.get_by_test_id("history").inner_text()
    assert [line.split(": ", 1)[1].split(" by ")[0] for line in history.splitlines()] == [
        "opened", "acknowledged", "resolved"]
    assert "Ordering a replacement" in history and "Swapped on shelf 4" in history
    # Its deliveries: the opening (500, then 200) and the resolution.
    codes = [await c.inner_text() for c in await page.get_by_test_id("status-code").all()]
    assert codes[:2] == ["500", "200"]
    await screenshots(page, "alert-resolved", shots)

    await page.goto(f"{url}/console/alerts")  # open or acknowledged: the warning and the info alert
    assert await rows.count() == 2
    await page.goto(f"{url}/console/alerts?state=open")
    assert await rows.count() == 1


async def test_the_delivery_log_page_shows_every_attempt(live_server, page, world, shots):
    await sign_in(page, live_server.url, world["a"].key, next_path="/console/alerts/deliveries")
    text = await screenshots(page, "deliveries", shots)
    errors = [await e.inner_text() for e in await page.get_by_test_id("attempt-error").all()]
    codes = [await c.inner_text() for c in await page.get_by_test_id("status-code").all()]
    assert "500" in codes and "200" in codes and "HTTP 500: boom" in errors
    assert "hook" in text and "webhook" in text


async def test_the_console_exports_alerts_as_csv(live_server, page, world):
    await sign_in(page, live_server.url, world["a"].key, next_path="/console/alerts?state=all")
    href = await page.get_by_test_id("export").get_attribute("href")
    r = await page.request.get(f"{live_server.url}{href}")
    assert r.status == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await r.text())))
    assert {row["key"] for row in rows} == {"ZA1234", "q7", "n1"}
    assert next(row for row in rows if row["key"] == "n1")["title"] == "'=cmd|' /C calc'!A0"


async def test_another_tenant_sees_and_changes_none_of_it(console_client, client, world):
    a, b, warn = world["a"], world["b"], world["info"]
    async with console_client(b.key) as c:
        listed = await c.get("/console/alerts?state=all")
        assert listed.status_code == 200 and "B&#39;s own queue alert" in listed.text
        assert "ZA1234" not in listed.text and "Queue 7" not in listed.text
        assert (await c.get(f"/console/alerts/{warn.id}")).status_code == 404
        r = await c.post(f"/console/alerts/{warn.id}/resolve", data={"note": "not mine"})
        assert r.status_code == 404
        deliveries = await c.get("/console/alerts/deliveries")
        assert "No deliveries" in deliveries.text
        exported = await c.get("/console/alerts/export.csv")
        assert "ZA1234" not in exported.text and "q7" in exported.text  # B's own q7 only
    assert (await client.get(f"/v1/alerts/{warn.id}", headers=a.headers)).json()["state"] == "open"


async def test_a_form_sent_from_another_site_is_refused(console_client, client, world):
    a, info = world["a"], world["info"]
    async with console_client(a.key) as c:
        r = await c.post(f"/console/alerts/{info.id}/acknowledge", data={"note": "x"},
                         headers={"Origin": "https://evil.example"})
        assert r.status_code == 403
        c.headers.pop("Origin")
        assert (await c.post(f"/console/alerts/{info.id}/acknowledge", data={})).status_code == 403
        r = await c.post(f"/console/alerts/{info.id}/acknowledge", data={"note": "x" * 2001},
                         headers={"Origin": "http://testserver"})
        assert r.status_code == 422
    assert (await client.get(f"/v1/alerts/{info.id}", headers=a.headers)).json()["state"] == "open"
