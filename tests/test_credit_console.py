"""The credit pages in a real headless Chromium: datasets with profiles, feature sets, runs with their
metrics, pass/fail and report, models. Screenshots land in test-artifacts/credit_console/."""

from __future__ import annotations

import pytest

from flywheel.plugins.credit.demo import seed_demo
from flywheel.server.testing.browser import sign_in


@pytest.fixture(scope="module")
async def demo_tenant(make_tenant, state):
    t = await make_tenant()
    await seed_demo(state, t.id)
    return t


async def test_credit_pages(live_server, page, demo_tenant, client, shots):
    t = demo_tenant
    url = live_server.url
    [run] = (await client.get("/v1/credit/runs", headers=t.headers)).json()["items"]
    await sign_in(page, url, t.key, next_path="/console/credit")

    nav = await page.locator("nav").inner_text()
    assert all(x in nav for x in ("Credit datasets", "Feature sets", "Credit runs", "Credit models"))
    rows = page.locator("[data-testid=datasets] tbody tr")
    assert await rows.count() == 1 and "demo-applicants" in await rows.first.inner_text()
    await page.screenshot(path=shots / "datasets.png", full_page=True)

    async with page.expect_navigation():
        await rows.first.locator("a").click()
    assert await page.get_by_test_id("rows").inner_text() == "5,000"
    profile = await page.locator("[data-testid=profile] tbody").inner_text()
    assert "region" in profile and "capital" in profile and "income" in profile
    await page.screenshot(path=shots / "dataset-profile.png", full_page=True)

    await page.click("nav >> text=Feature sets")
    assert await page.locator("[data-testid=features] tbody tr").count() == 7
    assert "Too many recent delinquencies" in await page.locator("main").inner_text()
    await page.screenshot(path=shots / "feature-sets.png", full_page=True)

    await page.click("nav >> text=Credit runs")
    table = page.locator("[data-testid=runs] tbody tr")
    assert await table.count() == 1
    assert await table.first.locator("td.auc").inner_text() == f"{run['metrics']['auc']:.4f}"
    assert await table.first.locator("td.policy").inner_text() == ("passed" if run["passed"] else "failed")
    await page.screenshot(path=shots / "runs.png", full_page=True)

    async with page.expect_navigation():
        await table.first.locator("a").first.click()
    assert await page.get_by_test_id("state").inner_text() == "succeeded"
    assert await page.locator("svg.chart").count() == 1
    await page.screenshot(path=shots / "run.png", full_page=True)
    async with page.expect_navigation():
        await page.get_by_test_id("report-link").click()
    assert "Credit run report" in await page.locator("h1").inner_text()
    assert await page.locator("svg").count() >= 4  # ROC, KS, distribution, calibration
    # Its style block applies (allowed by its hash), though the console allows no inline style.
    assert await page.evaluate("getComputedStyle(document.body).maxWidth") == "960px"
    await page.screenshot(path=shots / "report.png", full_page=True)

    await page.goto(f"{url}/console/credit/models")
    assert await page.locator("[data-testid=models] tbody tr").count() == 1
    await page.screenshot(path=shots / "models.png", full_page=True)

    response = await page.goto(f"{url}/console/credit/runs/00000000-0000-4000-8000-000000000000")
    assert response.status == 404


async def test_empty_credit_pages(live_server, page, make_tenant):
    t = await make_tenant()
    await sign_in(page, live_server.url, t.key, next_path="/console/credit/runs")
    assert "No runs yet" in await page.locator("main").inner_text()
