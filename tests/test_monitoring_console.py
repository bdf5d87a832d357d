"""The console's monitoring page: heat maps, score, calibration and operations charts, in Chromium.

Two weeks of a drifting batch family (its own rows by data day, labels for
the first days) and a day of HTTP scoring, through the real jobs; a
screenshot of the page lands in test-artifacts/monitoring_console/.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest
from test_monitoring import OUTCOMES, ROWS, TODAY, MonitorPlugin, mon, train  # noqa: F401  (mon: a fixture)

from flywheel.server.app import create_app
from flywheel.server.monitoring.heatmap import heat_map, ratio_color
from flywheel.server.plugin_api import MonitoringOutcomes, score_table
from flywheel.server.testing.browser import sign_in
from flywheel.server.testing.console import console_client
from flywheel.server.testing.live import LiveServer

DAYS = [TODAY - timedelta(days=k) for k in range(13, -1, -1)]


def drifting_rows(k: int) -> pa.Table:
    """Day k of 14: x drifts from training's uniform 1..10 towards 10, c goes missing more and more."""
    rng = np.random.default_rng(k)
    x = np.clip(np.round(rng.uniform(1, 10, 400) + k * 0.45), 1, 10)
    c = [None if rng.random() < k * 0.02 else ("a" if rng.random() < 0.5 else "b") for _ in range(400)]
    return pa.table({"x": x, "c": pa.array(c, pa.string())})


@pytest.fixture(scope="module")
async def drifted(mon, make_tenant):  # noqa: F811
    t = await make_tenant()
    await train(mon, t, "mon.batch")
    for k, day in enumerate(DAYS):
        rows = drifting_rows(k)  # scored as a batch job would: the version's own margins
        _, margins = await score_table(mon.state, t.id, "mon.batch", rows, margin=True)
        ROWS[(t.id, day)] = rows.append_column("margin", pa.array(margins))
        if k < 8:  # labels for the first eight days; fewer failures than predicted as x drifts
            p = 1 / (1 + np.exp(-margins))
            labels = np.random.default_rng(100 + k).random(len(p)) < p * (1 - k * 0.08)
            OUTCOMES[(t.id, "mon.batch", day)] = MonitoringOutcomes(scores=p, labels=labels.astype(int))
    r = await mon.client.post("/v1/models/mon.batch/score_batch", headers=t.headers,
                              json={"rows": [{"x": float(v), "c": "a"} for v in range(1, 11)] * 5})
    assert r.status_code == 200
    await mon.state.models.monitor.flush()
    r = await mon.client.post("/v1/models/mon.batch/monitoring/backfill", headers=t.headers,
                              json={"from": DAYS[0].isoformat(), "to": DAYS[-1].isoformat()})
    assert r.status_code == 202, r.text
    await mon.worker()
    assert (await mon.client.get(f"/v1/jobs/{r.json()['id']}", headers=t.headers)).json()["state"] == "succeeded"
    return t


@pytest.fixture(scope="module")
def mon_server(flywheel_settings, client):
    with LiveServer(create_app(flywheel_settings, [MonitorPlugin()])) as live:
        yield live


def test_heat_map_is_accessible_escaped_and_colours_by_attribute():
    svg = str(heat_map(["<x>", "score"], DAYS[:2], {("<x>", DAYS[0]): ("#d9534f", "PSI 0.31")}, title="T & t",
                       legend=[("#cde8cf", "ok")]))
    assert svg.startswith('<svg class="chart heatmap"') and 'role="img"' in svg and "<title>T &amp; t</title>" in svg
    assert "&lt;x&gt;" in svg and "<x>" not in svg
    assert 'fill="#d9534f"><title>&lt;x&gt;, ' + DAYS[0].isoformat() + ": PSI 0.31</title>" in svg
    assert svg.count('fill="#ececec"') == 3, "the three cells without data are grey"
    assert "style=" not in svg, "no inline styles: the console's CSP forbids them"
    assert ratio_color(0.1, 0.1) == "#f7f7f7" and ratio_color(0.4, 0.1) == "#b2182b" and ratio_color(0.0, 0.1) == \
        "#2166ac"


async def test_the_page_in_process_and_only_for_its_tenant(mon, drifted, make_tenant):  # noqa: F811
    async with console_client(mon.app, drifted.key) as c:
        r = await c.get("/console/models/mon.batch/monitoring", params={"from": DAYS[0], "to": DAYS[-1]})
        assert r.status_code == 200, r.text
        assert 'data-testid="psi-heatmap"' in r.text and "PSI against training, by feature and day" in r.text
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
        bad = await c.get("/console/models/mon.batch/monitoring", params={"from": "soon"})
        assert bad.status_code == 422 and "ISO date" in bad.text
    other = await make_tenant()
    async with console_client(mon.app, other.key) as c:
        r = await c.get("/console/models/mon.batch/monitoring", params={"from": DAYS[0], "to": DAYS[-1]})
    assert r.status_code == 200 and 'data-testid="no-figures"' in r.text and "psi-heatmap" not in r.text


async def test_monitoring_page_in_chromium(mon_server, page, drifted, shots):
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    await sign_in(page, mon_server.url, drifted.key)
    await page.goto(f"{mon_server.url}/console/models/mon.batch/monitoring?from={DAYS[0]}&to={DAYS[-1]}")
    assert await page.locator("h1").inner_text() == "Monitoring mon.batch v1"
    heat = page.get_by_test_id("psi-heatmap").locator("svg")
    # Three rows (x, c, score), fourteen days: every cell drawn, the last days of x at the alert colour.
    assert await heat.locator("rect[height='17']").count() == 3 * 14
    last_x = heat.locator("rect[height='17']").nth(13)
    assert await last_x.get_attribute("fill") == "#d9534f"
    assert "PSI" in await last_x.locator("title").text_content()
    assert await page.get_by_test_id("score-heatmap").locator("svg").count() == 1
    assert await page.get_by_test_id("calibration").locator("svg").count() == 2
    assert await page.get_by_test_id("operations").locator("svg").count() == 3
    breaches = await page.get_by_test_id("breaches").inner_text()
    assert "monitoring.psi" in breaches and "feature/x" in breaches
    assert not [p for p in problems if "Content Security Policy" in p], problems
    await page.screenshot(path=shots / "monitoring.png", full_page=True)
    # A phone: the page never scrolls sideways.
    await page.set_viewport_size({"width": 390, "height": 800})
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    await page.screenshot(path=shots / "monitoring-phone.png", full_page=True)
