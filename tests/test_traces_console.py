"""The traces pages in a real headless Chromium: the list, and one trace's timeline, chain, QA and rubric.

Screenshots land in test-artifacts/traces_console/.
"""

from __future__ import annotations

import pytest

from flywheel.plugins.traces.demo import seed_demo
from flywheel.server.sandbox.bubblewrap import bwrap_path
from flywheel.server.testing.browser import sign_in

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")


@pytest.fixture(scope="module")
async def demo_tenant(make_tenant, state):
    t = await make_tenant()
    await seed_demo(state, t.id)
    await seed_demo(state, t.id)  # a second start loads nothing more
    return t


async def test_demo_is_loaded_once(client, demo_tenant):
    page = (await client.get("/v1/traces", headers=demo_tenant.headers)).json()
    assert len(page["items"]) == 1
    [trace] = page["items"]
    assert trace["status"] == "judged" and trace["qa"]["status"] == "passed" and trace["scores"]


async def test_list_and_detail_pages(live_server, page, demo_tenant, client, shots):
    [trace] = (await client.get("/v1/traces", headers=demo_tenant.headers)).json()["items"]
    await sign_in(page, live_server.url, demo_tenant.key, next_path="/console/traces")
    assert "Traces" in await page.locator("nav").inner_text()
    rows = page.locator("[data-testid=traces] tbody tr")
    assert await rows.count() == 1
    assert await rows.first.locator("td.qa").inner_text() == "passed"
    assert await rows.first.locator("td.score").inner_text() == f"{trace['scores'][0]['overall']:.2f}"
    assert await page.locator("svg.chart").count() == 1
    await page.screenshot(path=shots / "list.png", full_page=True)

    async with page.expect_navigation():
        await rows.first.locator("a").click()
    assert page.url.endswith(f"/console/traces/{trace['id']}")
    assert await page.get_by_test_id("chain").inner_text() == "verified (9 links)"
    assert (await page.get_by_test_id("qa").inner_text()).startswith("passed: 2 passed, 0 failed")
    assert await page.locator("[data-testid=timeline] li").count() == 9
    assert "-    return sum(xs) / (len(xs) - 1)" in await page.locator("pre.diff").inner_text()
    assert await page.locator("[data-testid=rubric] tbody tr").count() == 6
    assert "2 passed" in await page.get_by_test_id("qa-log").inner_text()
    await page.screenshot(path=shots / "detail.png", full_page=True)


async def test_another_tenants_trace_is_a_404_page(console_client, demo_tenant, make_tenant, client):
    [trace] = (await client.get("/v1/traces", headers=demo_tenant.headers)).json()["items"]
    other = await make_tenant()
    async with console_client(other.key) as c:
        r = await c.get(f"/console/traces/{trace['id']}")
    assert r.status_code == 404 and "example/stats" not in r.text
