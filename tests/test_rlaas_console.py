"""The rlaas console pages in a real headless Chromium: policies per route with their traffic
shares and audit log, a route's policies compared side by side, the interaction explorer and
one interaction with its request, answer, feedback and reward.

The data is small and hand-made, so every figure on the pages is checked against a value
worked out here. Screenshots land in test-artifacts/rlaas_console/.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flywheel.server.testing import eventually
from flywheel.server.testing.browser import sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")
ROUTE = "console-draft"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _policy(name: str, status: str, **extra) -> dict:
    return {"route": ROUTE, "name": name, "version": 1, "status": status,
            "upstream": {"base_url": "https://api.example.com/v1", "model": f"{name}-model"}, **extra}


def _interaction(policy: dict, *, hours: float, status: int = 200, latency: float = 100.0,
                 role: str = "primary") -> dict:
    return {"type": "rlaas.interaction", "event_id": str(uuid.uuid4()),
            "ts": (NOW - timedelta(hours=hours)).isoformat(), "interaction_id": str(uuid.uuid4()),
            "route": ROUTE, "endpoint": "chat.completions", "policy_id": policy["id"], "policy": policy["name"],
            "policy_version": 1, "role": role, "status": status, "latency_ms": latency,
            "request": {"model": ROUTE, "messages": [{"role": "user", "content": f"question {hours}"}]},
            "response": {"choices": [{"message": {"role": "assistant", "content": f"answer by {policy['name']}"}}]}}


def _thumbs(interaction: dict, value: str) -> dict:
    return {"type": "rlaas.feedback", "event_id": str(uuid.uuid4()), "ts": NOW.isoformat(),
            "interaction_id": interaction["interaction_id"], "signal": {"kind": "thumbs", "value": value},
            "comment": "checked by hand"}


@pytest.fixture(scope="module")
async def traffic(client, make_tenant, database):
    """An active policy with 4 calls (2 with feedback, 1 failed) and a 25% canary with 2 calls
    (1 with feedback); rewards 1.0 and -1.0 on the active's, 0.5 on the canary's."""
    t = await make_tenant()
    made = {}
    for name, status, extra in (("steady", "active", {}), ("fresh", "canary", {"canary_share": 0.25})):
        r = await client.post("/v1/rlaas/policies", json=_policy(name, status, **extra), headers=t.headers)
        assert r.status_code == 201, r.text
        made[name] = r.json()
    steady = [_interaction(made["steady"], hours=h, latency=lat, status=st)
              for h, lat, st in ((1, 100, 200), (2, 200, 200), (3, 300, 200), (4, 400, 502))]
    fresh = [_interaction(made["fresh"], hours=h, latency=50) for h in (1, 2)]
    events = steady + fresh + [_thumbs(steady[0], "up"), _thumbs(steady[1], "down"), _thumbs(fresh[0], "up")]
    r = await client.post("/v1/events", json=events, headers=t.headers)
    assert r.status_code == 200, r.text

    async def projected():
        n = await database.fetchval("SELECT count(*) FROM rlaas_feedback WHERE tenant_id = $1", t.id)
        m = await database.fetchval("SELECT count(*) FROM rlaas_interactions WHERE tenant_id = $1", t.id)
        return (n, m) if (n, m) == (3, 6) else None

    await eventually(projected, timeout=20, what="the interactions and feedback")
    for interaction, reward in ((steady[0], 1.0), (steady[1], -1.0), (fresh[0], 0.5)):
        await database.execute(
            """INSERT INTO rlaas_rewards (tenant_id, interaction_id, reward, inputs, weights_version, prompt_hash,
                                          route, policy, policy_version, ts)
               VALUES ($1, $2, $3, '{}', 1, 'h', $4, $5, 1, now())
               ON CONFLICT (tenant_id, interaction_id) DO UPDATE SET reward = EXCLUDED.reward""",
            t.id, uuid.UUID(interaction["interaction_id"]), reward, ROUTE, interaction["policy"])
    return {"tenant": t, "policies": made, "steady": steady, "fresh": fresh}


async def test_policies_page_shows_shares_and_the_audit_log(live_server, page, traffic, shots):
    t = traffic["tenant"]
    await sign_in(page, live_server.url, t.key, next_path="/console/rlaas")
    nav = await page.locator("nav").inner_text()
    assert "Policies" in nav and "Interactions" in nav
    rows = page.locator(f"[data-testid='policies-{ROUTE}'] tbody tr")
    assert await rows.count() == 2
    first, second = rows.nth(0), rows.nth(1)
    assert (await first.locator("td").first.inner_text(), await first.locator("td.configured").inner_text()) == (
        "steady v1", "75%")
    assert await second.locator("td.configured").inner_text() == "25%"
    # Observed over the last 7 days: 4 of the route's 6 primary calls, and 2 of 6.
    assert await first.locator("td.observed").inner_text() == "66.7%"
    assert await second.locator("td.observed").inner_text() == "33.3%"
    assert await page.locator("[data-testid=audit] tbody tr").count() == 2
    await page.screenshot(path=shots / "policies.png", full_page=True)

    async with page.expect_navigation():
        await first.locator("a").click()
    assert "steady v1" in await page.locator("h1").inner_text()
    assert await page.locator("[data-testid=audit] td.action").all_inner_texts() == ["create"]
    await page.screenshot(path=shots / "policy.png", full_page=True)


async def test_compare_page_puts_the_canary_beside_the_active_policy(live_server, page, traffic, shots):
    t = traffic["tenant"]
    await sign_in(page, live_server.url, t.key, next_path=f"/console/rlaas/compare?route={ROUTE}")
    steady = page.locator("[data-testid=summary] tr[data-series='steady v1']")
    fresh = page.locator("[data-testid=summary] tr[data-series='fresh v1']")
    assert await steady.locator("td.calls").inner_text() == "4"
    assert await steady.locator("td.feedback-rate").inner_text() == "50.0%"
    assert await steady.locator("td.mean-reward").inner_text() == "0.000"  # (1.0 + -1.0) / 2
    assert await steady.locator("td.error-rate").inner_text() == "25.0%"  # the 502
    assert await fresh.locator("td.feedback-rate").inner_text() == "50.0%"
    assert await fresh.locator("td.mean-reward").inner_text() == "0.500"
    assert await fresh.locator("td.error-rate").inner_text() == "0.0%"
    charts = page.locator("svg.chart")
    assert await charts.count() == 4
    assert await page.locator("svg.chart g.series[data-series='fresh v1']").count() >= 3  # no reward-less chart
    await page.screenshot(path=shots / "compare.png", full_page=True)


async def test_explorer_filters_and_opens_an_interaction(live_server, page, traffic, shots):
    t = traffic["tenant"]
    await sign_in(page, live_server.url, t.key, next_path="/console/rlaas/interactions")
    rows = page.locator("[data-testid=interactions] tbody tr")
    assert await rows.count() == 6
    await page.locator("[data-testid=filters] input[name=policy]").fill("fresh")
    await page.locator("[data-testid=filters] select[name=has_feedback]").select_option("true")
    async with page.expect_navigation():
        await page.locator("[data-testid=filters] button").click()
    assert await rows.count() == 1
    await page.screenshot(path=shots / "interactions.png", full_page=True)

    async with page.expect_navigation():
        await rows.first.locator("a").click()
    assert page.url.endswith(f"/console/rlaas/interactions/{traffic['fresh'][0]['interaction_id']}")
    assert "question 1" in await page.get_by_test_id("request").inner_text()
    assert "answer by fresh" in await page.get_by_test_id("response").inner_text()
    assert await page.locator("[data-testid=feedback] td.kind").all_inner_texts() == ["thumbs"]
    await page.screenshot(path=shots / "interaction.png", full_page=True)


async def test_bad_filters_are_clear_errors_not_500s(console_client, traffic):
    async with console_client(traffic["tenant"].key) as c:
        r = await c.get("/console/rlaas/compare")  # no route yet: the routes to choose from
        assert r.status_code == 200 and f"/console/rlaas/compare?route={ROUTE}" in r.text
        for path, field in (("/console/rlaas/compare?route=", "query.route"),
                            ("/console/rlaas/compare?route=x&days=0", "query.days"),
                            ("/console/rlaas/interactions?policy_version=two", "query.policy_version"),
                            ("/console/rlaas/interactions?since=yesterday", "query.since")):
            r = await c.get(path)
            assert r.status_code in (400, 422), (path, r.status_code)
            assert field in r.text, (path, r.text[:500])


async def test_another_tenants_interaction_and_policy_are_404_pages(console_client, traffic, make_tenant):
    other = await make_tenant()
    iid = traffic["fresh"][0]["interaction_id"]
    pid = traffic["policies"]["fresh"]["id"]
    async with console_client(other.key) as c:
        for path in (f"/console/rlaas/interactions/{iid}", f"/console/rlaas/policies/{pid}"):
            r = await c.get(path)
            assert r.status_code == 404 and "answer by fresh" not in r.text and "fresh-model" not in r.text
        r = await c.get(f"/console/rlaas/compare?route={ROUTE}")
        assert r.status_code == 200 and "steady v1" not in r.text


@pytest.fixture(scope="module")
async def training(client, state, worker, make_tenant, flywheel_settings):
    """A tenant with an SFT export and a LoRA adapter trained on it (the tiny model), attached
    to a shadow policy."""
    from test_rlaas_trainer import make_export, train
    from tiny_llm import save_tiny_llm

    path = Path(flywheel_settings.data_dir).resolve() / "base-models" / "tiny-llama"
    if not (path / "config.json").exists():
        save_tiny_llm(path)
    t = await make_tenant()
    export = await make_export(client, state, worker, t)
    created = await train(client, t, export, str(path))
    await worker()
    r = await client.post(f"/v1/rlaas/adapters/{created['id']}/policies", headers=t.headers,
                          json={"route": "support", "name": "lora", "status": "shadow", "upstream": {
                              "base_url": "https://vllm.example.com/v1", "model": "tiny-llama"}})
    assert r.status_code == 201, r.text
    adapter = (await client.get(f"/v1/rlaas/adapters/{created['id']}", headers=t.headers)).json()
    assert adapter["status"] == "succeeded", adapter
    return {"tenant": t, "export": export, "adapter": adapter, "policy": r.json()}


async def test_training_page_lists_exports_and_adapters_with_their_figures(live_server, page, training, shots):
    t, export, adapter = training["tenant"], training["export"], training["adapter"]
    await sign_in(page, live_server.url, t.key, next_path="/console/rlaas/training")
    assert "Training" in await page.locator("nav").inner_text()
    exports = page.locator("[data-testid=exports] tbody tr")
    assert await exports.count() == 1
    assert await exports.first.locator("td.rows").inner_text() == str(export["row_count"])
    assert await exports.first.locator("td.kind").inner_text() == "sft"
    adapters = page.locator("[data-testid=adapters] tbody tr")
    assert await adapters.count() == 1
    assert await adapters.first.locator("td.final-loss").inner_text() == f"{adapter['metrics']['final_loss']:.3f}"
    await page.screenshot(path=shots / "training.png", full_page=True)

    async with page.expect_navigation():
        await adapters.first.locator("a").click()
    assert page.url.endswith(f"/console/rlaas/adapters/{adapter['id']}")
    first, final = adapter["metrics"]["first_loss"], adapter["metrics"]["final_loss"]
    assert await page.get_by_test_id("loss").inner_text() == (
        f"{first:.3f} → {final:.3f} over {adapter['metrics']['steps']} steps")
    assert await page.locator("svg.chart").count() == 1
    assert "lora v1 on support (shadow)" in await page.get_by_test_id("serving").inner_text()
    await page.screenshot(path=shots / "adapter.png", full_page=True)


async def test_another_tenants_adapter_is_a_404_page(console_client, training, make_tenant):
    other = await make_tenant()
    async with console_client(other.key) as c:
        r = await c.get(f"/console/rlaas/adapters/{training['adapter']['id']}")
        assert r.status_code == 404 and training["adapter"]["base_model"] not in r.text
        r = await c.get("/console/rlaas/training")
        assert r.status_code == 200 and training["export"]["export_id"][:8] not in r.text
