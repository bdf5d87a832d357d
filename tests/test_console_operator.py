"""The operator's console pages (jobs, models, events, API keys, plugins) in a real headless Chromium.

Every page is opened at desktop (1280 px) and phone (375 px) width, with a
screenshot of each in test-artifacts/console_operator/; every chart on it must
pass the layout rule (server/console/chart_layout.py). Tenant A's data is
made through the API; tenant B signs in and must see none of it.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from flywheel.contracts.tenants import Scope
from flywheel.server.auth import service
from flywheel.server.console.chart_layout import layout_problems
from flywheel.server.testing.browser import sign_in

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
FAMILY = "example.note_reopen"


async def _train(client, worker, headers, *, auto_activate: bool) -> int:
    r = await client.post(f"/v1/models/{FAMILY}/train", headers=headers,
                          json={"auto_activate": auto_activate, "options": {"rows": 500}})
    assert r.status_code == 202, r.text
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=headers)).json()
    assert job["state"] == "succeeded", job
    return job["result"]["version"]


@pytest.fixture(scope="module")
async def world(client, worker, make_tenant, database):
    """Tenant A with jobs, two model versions, events and a marked key; an admin-less read key
    of A's; tenant B with its own (different) data."""
    a = await make_tenant(name=f"ops-a-{uuid.uuid4().hex[:6]}")
    b = await make_tenant(name=f"ops-b-{uuid.uuid4().hex[:6]}")
    marker = await service.create_key(database, a.id, f"a-marker-{uuid.uuid4().hex[:6]}", [Scope.READ])
    reader = await service.create_key(database, a.id, "a-reader", [Scope.READ])
    done = (await client.post("/v1/jobs", json={"name": "example.count_notes",
                                                "payload": {"note_prefix": "ops"}}, headers=a.headers)).json()
    v1 = await _train(client, worker, a.headers, auto_activate=True)
    v2 = await _train(client, worker, a.headers, auto_activate=False)
    now = datetime.now(UTC).replace(microsecond=0)
    subject = f"a-subject-{uuid.uuid4().hex[:6]}"
    events = [{"type": "core.generic", "event_id": str(uuid.uuid4()), "ts": (now - timedelta(minutes=i)).isoformat(),
               "subject_id": subject, "session_id": f"s{i % 2}", "attributes": {"n": i, "note": "<b>bold</b>"}}
              for i in range(5)]
    r = await client.post("/v1/events", json=events, headers=a.headers)
    assert r.status_code == 200 and r.json()["accepted"] == 5, r.text
    b_job = (await client.post("/v1/jobs", json={"name": "example.count_notes"}, headers=b.headers)).json()
    await worker()
    return {"a": a, "b": b, "marker": marker, "reader": reader, "job": done, "b_job": b_job, "v1": v1, "v2": v2,
            "events": events, "subject": subject}


async def _check_page(page, name: str, shots) -> str:
    """The open page at desktop then phone width: screenshots, no overflow, charts laid out."""
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)
        await page.screenshot(path=shots / f"{name}-{label}.png", full_page=True)
        for svg in await page.locator("svg.chart").evaluate_all("els => els.map(e => e.outerHTML)"):
            assert not layout_problems(svg), f"{name}: {layout_problems(svg)}"
        # Charts fill their column (the SVG scales by its viewBox).
        spare = await page.locator("svg.chart").evaluate_all(
            "els => els.map(e => parseFloat(getComputedStyle(e.parentElement).gridTemplateColumns) "
            "- e.getBoundingClientRect().width)")
        assert all(abs(s) < 2 for s in spare), f"{name}: charts do not fill their column: {spare}px spare"
        if label == "phone":
            # The page itself never scrolls sideways (wide tables scroll in their own box), and the
            # navigation sits above the content instead of beside it.
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name} is {overflow}px wider than a phone"
            nav = await page.locator("nav.sidenav").bounding_box()
            main = await page.locator("main").bounding_box()
            assert nav["y"] + nav["height"] <= main["y"] + 1 and main["width"] >= 340, (name, nav, main)
    await page.set_viewport_size(DESKTOP)
    return await page.locator("main").inner_text()


async def _current_nav(page) -> str:
    return await page.get_by_role("navigation", name="Console").locator("[aria-current=page]").inner_text()


async def test_jobs_pages(live_server, page, world, shots):
    a, job = world["a"], world["job"]
    url = live_server.url
    await sign_in(page, url, a.key, next_path="/console/jobs")
    text = await _check_page(page, "jobs", shots)
    assert "example.count_notes" in text and "core.train_model" in text and await _current_nav(page) == "Jobs"
    rows = page.locator("[data-testid=jobs] tbody tr")
    assert await rows.count() == 3  # one count, two trainings: A's only
    # Filters: by state, then by name.
    await page.select_option("select[name=name]", "core.train_model")
    async with page.expect_navigation():
        await page.click("form[data-testid=filters] button[type=submit]")
    assert "name=core.train_model" in page.url and await rows.count() == 2
    await page.goto(f"{url}/console/jobs?state=failed")
    assert await rows.count() == 0 and "No jobs match" in await page.locator("main").inner_text()

    # A job's page: payload, result, timing.
    await page.goto(f"{url}/console/jobs/{job['id']}")
    assert await page.get_by_test_id("job-name").inner_text() == "example.count_notes"
    assert json.loads(await page.get_by_test_id("payload").inner_text()) == {"note_prefix": "ops"}
    assert "notes" in json.loads(await page.get_by_test_id("result").inner_text())
    assert await _current_nav(page) == "Jobs" and not await page.get_by_role("button", name="Cancel this job").count()
    await _check_page(page, "job", shots)


async def test_paging_through_jobs(live_server, page, make_tenant, client):
    t = await make_tenant()
    for _ in range(27):  # queued, never run: more than a page of 25
        r = await client.post("/v1/jobs", json={"name": "example.count_notes"}, headers=t.headers)
        assert r.status_code == 202
    await sign_in(page, live_server.url, t.key, next_path="/console/jobs?state=queued")
    rows = page.locator("[data-testid=jobs] tbody tr")
    assert await rows.count() == 25
    async with page.expect_navigation():
        await page.get_by_test_id("next-page").click()
    assert "cursor=" in page.url and "state=queued" in page.url and await rows.count() == 2
    assert await page.get_by_test_id("first-page").is_visible()
    # Queued jobs are cancelled so that no later worker run picks them up.
    api = (await client.get("/v1/jobs", params={"state": "queued"}, headers=t.headers)).json()["items"]
    for item in api:
        await page.goto(f"{live_server.url}/console/jobs/{item['id']}")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Cancel this job").click()


async def test_cancelling_a_queued_job(live_server, page, world, client, worker, database, shots):
    a = world["a"]
    queued = (await client.post("/v1/jobs", json={"name": "example.count_notes"}, headers=a.headers)).json()
    await sign_in(page, live_server.url, a.key, next_path=f"/console/jobs/{queued['id']}")
    await _check_page(page, "job-queued", shots)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Cancel this job").click()
    assert page.url.endswith("?cancelled=1")
    assert await page.get_by_test_id("cancelled").inner_text() == "The job was cancelled."
    assert "cancelled" in await page.locator("h1").inner_text()
    assert not await page.get_by_role("button", name="Cancel this job").count()
    await page.screenshot(path=shots / "job-cancelled.png", full_page=True)
    await worker()  # the worker must not run it after all
    after = (await client.get(f"/v1/jobs/{queued['id']}", headers=a.headers)).json()
    assert after["state"] == "cancelled" and after["started_at"] is None
    by = await database.fetchval("SELECT cancelled_by FROM jobs WHERE id = $1", uuid.UUID(queued["id"]))
    assert by.startswith("key test (") and by.endswith("in the console")
    # Cancelling a finished job again: a 409 page, not a second outcome.
    r = await page.request.post(f"{live_server.url}/console/jobs/{queued['id']}/cancel",
                                headers={"Origin": live_server.url})
    assert r.status == 409 and "already cancelled" in await r.text()


async def test_cancelling_a_running_job_asks_its_worker_to_abort(console_client, make_tenant, client, database,
                                                                  state):
    """Without a worker mid-job in a test, the row is put in the state a worker leaves it in; what
    the worker then does is server/jobs/cancel.py's business (and its tests')."""
    t = await make_tenant()
    job = (await client.post("/v1/jobs", json={"name": "example.count_notes"}, headers=t.headers)).json()
    await database.execute("""UPDATE jobs SET state = 'running', started_at = now(),
                              progress = '{"current": 3, "total": 4, "message": "counting <notes>"}' WHERE id = $1""",
                           uuid.UUID(job["id"]))
    async with console_client(t.key) as c:
        listed = await c.get("/console/jobs?state=running")
        assert '<progress max="100" value="75.0"' in listed.text and "counting &lt;notes&gt;" in listed.text
        page = await c.get(f"/console/jobs/{job['id']}")
        assert "Cancel this job" in page.text and 'value="75.0"' in page.text
        r = await c.post(f"/console/jobs/{job['id']}/cancel")
        assert r.status_code == 303 and r.headers["location"].endswith("?cancelled=1")
        page = await c.get(r.headers["location"])
        assert "Cancelling: the job stops when its worker cancels it" in page.text
    assert await state.redis.zscore("arq:abort", job["id"]) is not None
    after = await database.fetchrow("SELECT state, cancel_requested_at FROM jobs WHERE id = $1", uuid.UUID(job["id"]))
    assert after["state"] == "running" and after["cancel_requested_at"] is not None
    await state.redis.zrem("arq:abort", job["id"])
    await state.redis.zrem(state.settings.queue_name, job["id"])


async def test_models_pages_compare_and_activate(live_server, page, world, client, shots):
    a, v1, v2 = world["a"], world["v1"], world["v2"]
    url = live_server.url
    await sign_in(page, url, a.key, next_path="/console/models")
    text = await _check_page(page, "models", shots)
    assert FAMILY in text and "drives.h30" in text and await _current_nav(page) == "Models"

    await page.get_by_role("link", name=FAMILY).click()
    await page.wait_for_url(f"{url}/console/models/{FAMILY}")
    assert await page.get_by_test_id("active-version").inner_text() == \
        f"v{v1}, since " + (await page.get_by_test_id("active-version").inner_text()).split("since ")[1]
    assert await page.locator("[data-testid=versions] tbody tr").count() == 2
    await _check_page(page, "model-family", shots)

    # One version: its metrics, calibration chart and model card.
    await page.goto(f"{url}/console/models/{FAMILY}/versions/{v2}")
    metrics = await page.get_by_test_id("metrics").inner_text()
    assert "roc_auc" in metrics and "brier" in metrics
    assert await page.locator("svg[aria-label=Calibration] g.series").count() == 2
    assert f"# {FAMILY} v{v2}" in await page.get_by_test_id("model-card").inner_text()
    await _check_page(page, "model-version", shots)

    # Side by side.
    await page.goto(f"{url}/console/models/{FAMILY}/compare?a={v1}&b={v2}")
    table = await page.get_by_test_id("compare").inner_text()
    assert f"v{v1} (active)" in table and f"v{v2}" in table and "log_loss" in table
    assert await page.locator("svg[aria-label=Calibration] g.series").count() == 3
    await _check_page(page, "model-compare", shots)

    # Activate v2 (an admin key): the page says so, and the API serves v2 from now on.
    await page.goto(f"{url}/console/models/{FAMILY}")
    async with page.expect_navigation():
        await page.get_by_test_id(f"activate-{v2}").click()
    notice = await page.get_by_test_id("activation").inner_text()
    assert f"Activated v{v2}" in notice and f"replaces v{v1}" in notice and "UTC" in notice
    assert (await page.get_by_test_id("active-version").inner_text()).startswith(f"v{v2},")
    await page.screenshot(path=shots / "model-activated.png", full_page=True)
    active = (await client.get(f"/v1/models/{FAMILY}", headers=a.headers)).json()
    assert active["version"] == v2
    # The audit entries: this activation (its key, through the console) above v1's automatic one.
    rows = await page.locator("[data-testid=activations] tbody tr").all_inner_texts()
    assert f"v{v2}\tv{v1}\tkey " in rows[0] and "(console)" in rows[0], rows
    assert f"v{v1}\tnone\tauto-activation (job " in rows[1], rows
    trail = (await client.get(f"/v1/models/{FAMILY}/activations", headers=a.headers)).json()
    assert [(e["version"], e["previous_version"]) for e in trail] == [(v2, v1), (v1, None)]
    assert trail[0]["activated_by"].endswith("(console)") and trail[1]["activated_by"].startswith("auto-activation")


async def test_events_explorer_body_and_download(live_server, page, world, shots):
    a, events, subject = world["a"], world["events"], world["subject"]
    url = live_server.url
    await sign_in(page, url, a.key, next_path="/console/events")
    assert await page.locator("[data-testid=events] tbody tr").count() == 5
    await _check_page(page, "events", shots)
    assert await _current_nav(page) == "Events"

    # Filter by session: three of the five.
    await page.select_option("select[name=type]", "core.generic")
    await page.fill("input[name=session_id]", "s0")
    async with page.expect_navigation():
        await page.click("form[data-testid=filters] button[type=submit]")
    assert await page.locator("[data-testid=events] tbody tr").count() == 3
    # A time range: the newest two minutes only (since inclusive, until exclusive).
    newest = datetime.fromisoformat(events[0]["ts"])
    since = (newest - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    await page.goto(f"{url}/console/events?since={since}&subject_id={subject}")
    assert await page.locator("[data-testid=events] tbody tr").count() == 2

    # One event's body, escaped (the attribute holds markup).
    async with page.expect_navigation():
        await page.get_by_test_id("show-event").first.click()
    body = json.loads(await page.get_by_test_id("event-body").inner_text())
    assert body["event_id"] == events[0]["event_id"] and body["attributes"]["note"] == "<b>bold</b>"
    assert await page.locator("[data-testid=event-body] b").count() == 0
    await _check_page(page, "event", shots)

    # Downloads of the current filter, in both formats.
    await page.goto(f"{url}/console/events?session_id=s1")
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    async with httpx.AsyncClient(base_url=url, cookies=cookies) as http:
        jsonl = await http.get(await page.get_by_test_id("download-jsonl").get_attribute("href"))
        rows = [json.loads(line) for line in jsonl.text.splitlines()]
        assert jsonl.status_code == 200 and "attachment" in jsonl.headers["content-disposition"]
        assert [r["event"]["session_id"] for r in rows] == ["s1", "s1"]
        got = await http.get(await page.get_by_test_id("download-csv").get_attribute("href"))
        table = list(csv.DictReader(io.StringIO(got.text)))
        assert got.headers["content-type"].startswith("text/csv")
        assert {r["event_id"] for r in table} == {e["event_id"] for e in events if e["session_id"] == "s1"}
        assert json.loads(table[0]["event"])["attributes"]["note"] == "<b>bold</b>"
    await page.goto(f"{url}/console/events/export?session_id=s1")
    await _check_page(page, "events-export", shots)


async def test_api_keys_create_once_and_revoke(live_server, page, world, shots):
    a = world["a"]
    url = live_server.url
    await sign_in(page, url, a.key, next_path="/console/keys")
    assert world["marker"].key.name in await page.get_by_test_id("active-keys").inner_text()
    assert await _current_nav(page) == "API keys"
    await _check_page(page, "keys", shots)

    name = f"made-in-console-{uuid.uuid4().hex[:6]}"
    await page.fill("input[name=name]", name)
    await page.check("input[name=scopes][value=write]")
    async with page.expect_navigation():
        await page.click("form[data-testid=create-key] button[type=submit]")
    secret = (await page.get_by_test_id("new-secret").inner_text()).strip()
    assert secret.startswith("fw_") and name in await page.get_by_test_id("active-keys").inner_text()
    await _check_page(page, "key-created", shots)
    # The secret works (asked of the same server: each replica caches keys briefly), and is never shown again.
    bearer = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=url) as api:
        r = await api.get("/v1/tenant", headers=bearer)
    assert r.status_code == 200 and r.json()["name"] == a.name
    await page.goto(f"{url}/console/keys")
    assert secret not in await page.content()

    # Revoke it: gone from the active keys, listed as revoked, refused by the API.
    async with page.expect_navigation():
        await page.get_by_test_id(f"revoke-{name}").click()
    assert name in await page.get_by_test_id("revoked-notice").inner_text()
    assert name not in await page.get_by_test_id("active-keys").inner_text()
    assert name in await page.get_by_test_id("revoked-keys").inner_text()
    async with httpx.AsyncClient(base_url=url) as api:
        assert (await api.get("/v1/tenant", headers=bearer)).status_code == 401
    await page.screenshot(path=shots / "key-revoked.png", full_page=True)

    # A bad name: the form says why, nothing is created.
    await page.fill("input[name=name]", "  ")
    await page.evaluate("document.querySelector('input[name=name]').removeAttribute('required')")
    async with page.expect_navigation():
        await page.click("form[data-testid=create-key] button[type=submit]")
    assert "not created" in await page.get_by_test_id("create-error").inner_text()


async def test_plugins_page_and_the_overview(live_server, page, world, shots):
    await sign_in(page, live_server.url, world["a"].key)
    overview = await _check_page(page, "overview", shots)
    assert "example.count_notes" in overview and await _current_nav(page) == "Overview"
    await page.get_by_role("link", name="what they add").click()
    await page.wait_for_url(f"{live_server.url}/console/plugins")
    text = await _check_page(page, "plugins", shots)
    assert await _current_nav(page) == "Plugins"
    drives = await page.locator("[data-plugin=drives]").inner_text()
    assert "API routes" in drives and "drives.score_fleet" in drives and "drives.smart_daily" in drives
    assert "Fleet" in drives and "drives.h30" in drives and "flywheel drives" in drives
    example = await page.locator("[data-plugin=example]").inner_text()
    assert "example.count_notes" in example and "Runs on a schedule" in example
    assert "register_" not in text and "on_startup" not in text  # words, not hook names


async def test_a_read_key_sees_pages_but_cannot_act(live_server, page, world, shots):
    a, reader, url = world["a"], world["reader"], live_server.url
    await sign_in(page, url, reader.secret, next_path=f"/console/models/{FAMILY}")
    assert await page.locator("[data-testid=versions] tbody tr").count() == 2
    # Activating is refused with the 403 page, and the active version stays.
    before = await page.get_by_test_id("active-version").inner_text()
    async with page.expect_navigation():
        await page.locator("[data-testid^=activate-]").first.click()
    assert page.url.endswith("/activate") and "admin" in await page.get_by_test_id("error-message").inner_text()
    assert await page.locator("h1").inner_text() == "Not allowed (403)"
    await page.screenshot(path=shots / "read-key-activate-refused.png", full_page=True)
    await page.goto(f"{url}/console/models/{FAMILY}")
    assert await page.get_by_test_id("active-version").inner_text() == before
    # The keys page is for admins, as /v1/keys is; cancelling needs `write`.
    response = await page.goto(f"{url}/console/keys")
    assert response.status == 403 and "admin" in await page.get_by_test_id("error-message").inner_text()
    for path in ("/console/keys", f"/console/keys/{world['marker'].key.id}/revoke",
                 f"/console/jobs/{world['job']['id']}/cancel"):
        r = await page.request.post(f"{url}{path}", headers={"Origin": url}, form={"name": "x", "scopes": "admin"})
        assert r.status == 403, path
    # Reading still works.
    for path in ("/console/jobs", "/console/events", "/console/plugins", f"/console/jobs/{world['job']['id']}"):
        assert (await page.goto(f"{url}{path}")).status == 200, path
    assert a.name in await page.get_by_test_id("tenant").inner_text()


async def test_tenant_b_sees_none_of_tenant_a(live_server, browser, world, database, shots):
    a, b, url = world["a"], world["b"], live_server.url
    context = await browser.new_context(viewport=DESKTOP)
    try:
        page = await context.new_page()
        await sign_in(page, url, b.key)
        secrets = [a.name, world["marker"].key.name, world["subject"], world["job"]["id"],
                   *(e["event_id"] for e in world["events"])]
        for path in ("/console/jobs", "/console/models", f"/console/models/{FAMILY}", "/console/events",
                     "/console/keys", "/console/events/export?format=jsonl"):
            response = await page.request.get(f"{url}{path}")
            body = await response.text()
            assert response.status == 200, path
            assert not [s for s in secrets if s in body], f"{path} shows tenant A's data to B"
        await page.goto(f"{url}/console/jobs")
        assert world["b_job"]["id"] in await page.content()  # B's own job is there
        await page.screenshot(path=shots / "tenant-b-jobs.png", full_page=True)
        # Naming A's things directly looks exactly like naming nothing.
        e = world["events"][0]
        for path in (f"/console/jobs/{world['job']['id']}", f"/console/models/{FAMILY}/versions/{world['v1']}",
                     f"/console/models/{FAMILY}/compare?a={world['v1']}&b={world['v2']}",
                     f"/console/events?event_id={e['event_id']}&at={e['ts'].replace('+', '%2B')}"):
            response = await page.goto(f"{url}{path}")
            assert response.status == 404, path
            assert not [s for s in secrets if s in await page.content()], path
        await page.screenshot(path=shots / "tenant-b-asks-for-a.png", full_page=True)
        for path in (f"/console/jobs/{world['job']['id']}/cancel", f"/console/keys/{world['marker'].key.id}/revoke",
                     f"/console/models/{FAMILY}/versions/{world['v1']}/activate"):
            r = await page.request.post(f"{url}{path}", headers={"Origin": url})
            assert r.status == 404, path
        keys = await service.list_keys(database, a.id)
        assert any(k.id == world["marker"].key.id and k.revoked_at is None for k in keys), "B revoked A's key"
    finally:
        await context.close()


@pytest.mark.parametrize("path", [
    "/console/jobs?cursor=not-a-cursor", "/console/jobs?state=lost", "/console/events?cursor=x",
    "/console/events?since=yesterday", "/console/events?event_id=not-a-uuid",
    f"/console/events?event_id={uuid.uuid4()}", "/console/events/export?format=xml",
    "/console/events/export?format=csv&until=soon", f"/console/models/{FAMILY}/versions/99999999999",
    f"/console/models/{FAMILY}/compare?a=0", "/console/models/no.such_family", f"/console/jobs/{uuid.uuid4()}",
])
async def test_bad_addresses_are_error_pages_not_crashes(console_client, tenant, path):
    async with console_client(tenant.key) as c:
        r = await c.get(path)
    assert r.status_code in (400, 404, 422) and "text/html" in r.headers["content-type"], (path, r.status_code, r.text)
