"""The drives pages in a real headless Chromium: fleet overview, a filtered list, a drive's detail.

Screenshots land in test-artifacts/drives_console/.
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import quote

import pytest

from flywheel.plugins.drives.features import build_features
from flywheel.plugins.drives.fleet import generate_fleet, load_fleet
from flywheel.plugins.drives.scoring import score_day
from flywheel.server.testing.browser import sign_in

END = date(2026, 8, 31)


@pytest.fixture(scope="module")
async def fleet_tenant(client, worker, make_tenant, database, state):
    t = await make_tenant()
    await load_fleet(database, t.id, generate_fleet(drives=600, days=90, end=END, seed=21))
    await build_features(database, t.id)
    r = await client.post("/v1/models/drives.h30/train", json={"split": "time", "auto_activate": True},
                          headers=t.headers)
    assert r.status_code == 202, r.text
    await worker()
    await score_day(state, t.id)
    return t


async def test_fleet_list_and_detail_pages(live_server, page, fleet_tenant, client, shots):
    t = fleet_tenant
    url = live_server.url
    fleet = (await client.get("/v1/drives/fleet", headers=t.headers)).json()
    await sign_in(page, url, t.key, next_path="/console/drives")

    # Fleet overview: the API's figures, three charts, the model table; the nav lists the drives pages.
    assert page.url.endswith("/console/drives")
    assert await page.get_by_test_id("active-drives").inner_text() == f"{fleet['drives']:,}"
    assert await page.get_by_test_id("at-risk").inner_text() == f"{fleet['at_risk']:,}"
    assert await page.locator("svg.chart").count() == 3
    assert await page.locator("[data-testid=by-model] tbody tr").count() == len(fleet["by_model"])
    nav = await page.locator("nav").inner_text()
    assert "Fleet" in nav and "Drives" in nav
    await page.screenshot(path=shots / "fleet.png", full_page=True)

    # The list with a filter: the high band only, riskiest first.
    await page.click("nav >> text=Drives")
    await page.select_option("select[name=band]", "high")
    async with page.expect_navigation():
        await page.click("form[data-testid=filters] button[type=submit]")
    assert "band=high" in page.url
    risks = [float(x.rstrip("%")) for x in await page.locator("[data-testid=drives] td.risk").all_inner_texts()]
    assert risks and all(r >= 50 for r in risks) and risks == sorted(risks, reverse=True)
    listed = (await client.get("/v1/drives", params={"band": "high", "limit": 50}, headers=t.headers)).json()
    assert len(risks) == len(listed["items"])
    await page.screenshot(path=shots / "list-high-risk.png", full_page=True)

    # Follow the riskiest drive: its summary, reasons and charts.
    first = page.locator("[data-testid=drives] tbody tr").first.locator("a")
    serial = await first.inner_text()
    async with page.expect_navigation():
        await first.click()
    assert page.url.endswith(f"/console/drives/{quote(serial, safe='')}")
    assert serial in await page.locator("h1").inner_text()
    assert await page.locator("[data-testid=reasons] tbody tr").count() >= 1
    assert await page.locator("svg.chart").count() == 3
    detail = (await client.get(f"/v1/drives/{quote(serial, safe='')}", headers=t.headers)).json()
    assert await page.locator("[data-testid=smart-history] tbody tr").count() == len(detail["smart_history"])
    assert re.search(r"\d+\.\d% \(high", await page.get_by_test_id("risk").inner_text())
    await page.screenshot(path=shots / "drive-detail.png", full_page=True)

    # Paging through the whole fleet follows the cursor.
    await page.goto(f"{url}/console/drives/list?sort=serial")
    assert await page.locator("[data-testid=drives] tbody tr").count() == 50
    async with page.expect_navigation():
        await page.get_by_test_id("next-page").click()
    assert "cursor=" in page.url and "sort=serial" in page.url
    second = await page.locator("[data-testid=drives] tbody tr").first.locator("a").inner_text()
    api = (await client.get("/v1/drives", params={"sort": "serial", "limit": 50}, headers=t.headers)).json()
    nxt = (await client.get("/v1/drives", params={"sort": "serial", "limit": 50, "cursor": api["next_cursor"]},
                            headers=t.headers)).json()
    assert second == nxt["items"][0]["serial_number"]
    assert await page.get_by_test_id("total").inner_text() == f"{api['total']:,} drives match"
    # Two pages on, then back twice: the same first rows as before, and no "Previous" on page one.
    async with page.expect_navigation():
        await page.get_by_test_id("next-page").click()
    third = await page.locator("[data-testid=drives] tbody tr").first.locator("a").inner_text()
    assert third not in (api["items"][0]["serial_number"], second)
    async with page.expect_navigation():
        await page.get_by_test_id("prev-page").click()
    assert await page.locator("[data-testid=drives] tbody tr").first.locator("a").inner_text() == second
    async with page.expect_navigation():
        await page.get_by_test_id("prev-page").click()
    assert await page.locator("[data-testid=drives] tbody tr").first.locator("a").inner_text() == \
        api["items"][0]["serial_number"]
    assert await page.get_by_test_id("prev-page").count() == 0

    # The serial search: plain text, any case; the total follows the filter.
    part = serial.lower()  # the whole serial in lower case: found all the same
    await page.fill("input[name=q]", part)
    async with page.expect_navigation():
        await page.click("form[data-testid=filters] button[type=submit]")
    shown = await page.locator("[data-testid=drives] tbody tr td:first-child").all_inner_texts()
    found = (await client.get("/v1/drives", params={"q": part, "limit": 1000}, headers=t.headers)).json()
    assert serial in shown and all(part in s.lower() for s in shown)
    assert found["total"] == len(found["items"]) == len(shown)
    none = (await client.get("/v1/drives", params={"q": "%"}, headers=t.headers)).json()
    assert none["total"] == 0 and none["items"] == []  # `%` is a character here, not a wildcard

    # An unknown drive: the console's 404 page.
    response = await page.goto(f"{url}/console/drives/NOPE")
    assert response.status == 404


async def test_empty_fleet_page(live_server, page, make_tenant):
    t = await make_tenant()
    await sign_in(page, live_server.url, t.key, next_path="/console/drives")
    assert "No drive data yet" in await page.locator("main").inner_text()
