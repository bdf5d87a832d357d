"""The drives API beyond the fleet views: a drive's score history, the risk-band settings, backtests."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from flywheel.contracts.tenants import Scope
from flywheel.plugins.drives.features import build_features
from flywheel.plugins.drives.fleet import generate_fleet, load_fleet
from flywheel.plugins.drives.scoring import score_day
from flywheel.server.testing import eventually

END = datetime.now(UTC).date() - timedelta(days=7)  # recent: the ingest refuses events over a year old
SCORED_DAYS = [END - timedelta(days=k) for k in (2, 1, 0)]
# Serials that test the `{serial}/scores` dispatch: one holding `/`, one ending in "/scores" itself.
ODD = ["ZA/1", "x/scores"]
# The backtest's week: early enough that every scored day's 7-day window is in the data.
FROM, TO = END - timedelta(days=30), END - timedelta(days=23)


@pytest.fixture(scope="module")
async def fleet(client, worker, make_tenant, database, state):
    """A trained, active model and three scored days, plus two odd-serialled drives with a risk history."""
    t = await make_tenant()
    await load_fleet(database, t.id, generate_fleet(drives=600, days=90, end=END, seed=21))
    await build_features(database, t.id)
    r = await client.post("/v1/models/drives.h30/train", json={"split": "time", "auto_activate": True},
                          headers=t.headers)
    assert r.status_code == 202, r.text
    await worker()
    for day in SCORED_DAYS:
        await score_day(state, t.id, day)
    events = [{"type": "drives.smart_daily", "event_id": str(uuid.uuid4()), "ts": f"{END}T23:00:00Z",
               "date": END.isoformat(), "serial_number": s, "model": "ST4000DM000", "smart": {"smart_5_raw": 1}}
              for s in ODD]
    assert (await client.post("/v1/events", json=events, headers=t.headers)).json()["accepted"] == 2

    async def listed() -> bool:
        codes = [(await client.get(f"/v1/drives/{quote(s, safe='')}", headers=t.headers)).status_code for s in ODD]
        return codes == [200, 200]

    await eventually(listed, what="the odd drives")
    # Their risks, written as the scoring job would (they have no features to score): a distinct
    # margin per drive and day, so a test can tell whose history it got.
    for i, s in enumerate(ODD):
        await database.executemany(
            "INSERT INTO drives_risk (tenant_id, day, serial_number, risk, margin, band, model_version) "
            "VALUES ($1, $2, $3, 0.5, $4, 'low', 1)",
            [(t.id, day, s, float(10 * i + k)) for k, day in enumerate(SCORED_DAYS)])
    return t


def enc(serial: str) -> str:
    return quote(serial, safe="")


async def test_score_history_is_newest_first_and_pages(client, fleet, database):
    t = fleet
    serial = await database.fetchval(
        "SELECT serial_number FROM drives_risk WHERE tenant_id = $1 AND day = $2 ORDER BY margin DESC LIMIT 1",
        t.id, END)
    stored = await database.fetch("SELECT day, risk, margin, band, model_version FROM drives_risk "
                                  "WHERE tenant_id = $1 AND serial_number = $2 ORDER BY day DESC", t.id, serial)
    assert [r["day"] for r in stored] == SCORED_DAYS[::-1]
    r = await client.get(f"/v1/drives/{enc(serial)}/scores", params={"limit": 2}, headers=t.headers)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["serial_number"] == serial and first["next_cursor"]
    assert [p["day"] for p in first["items"]] == [d.isoformat() for d in SCORED_DAYS[:0:-1]]
    assert first["items"][0] == {"day": END.isoformat(), "risk": stored[0]["risk"], "margin": stored[0]["margin"],
                                 "band": stored[0]["band"], "model_version": stored[0]["model_version"]}
    rest = (await client.get(f"/v1/drives/{enc(serial)}/scores", headers=t.headers,
                             params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [p["day"] for p in rest["items"]] == [SCORED_DAYS[0].isoformat()] and rest["next_cursor"] is None

    csv_r = await client.get(f"/v1/drives/{enc(serial)}/scores.csv", headers=t.headers)
    assert csv_r.status_code == 200 and csv_r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_r.text)))
    assert [row["day"] for row in rows] == [d.isoformat() for d in SCORED_DAYS[::-1]]
    assert [float(row["margin"]) for row in rows] == [r["margin"] for r in stored], "every float64 digit"
    assert {row["serial_number"] for row in rows} == {serial}


async def test_scores_of_a_serial_with_slashes_and_of_one_ending_in_scores(client, fleet):
    t = fleet
    for i, serial in enumerate(ODD):
        r = await client.get(f"/v1/drives/{enc(serial)}/scores", headers=t.headers)
        assert r.status_code == 200, (serial, r.text)
        assert r.json()["serial_number"] == serial
        assert [p["margin"] for p in r.json()["items"]] == [10 * i + 2, 10 * i + 1, 10 * i]
    # Unencoded slashes reach the history too; the literal last segment is what asks for it.
    assert (await client.get("/v1/drives/ZA/1/scores", headers=t.headers)).json()["serial_number"] == "ZA/1"
    # "x/scores" percent-encoded is one segment: the drive itself, not the history of "x".
    r = await client.get(f"/v1/drives/{enc('x/scores')}", headers=t.headers)
    assert r.status_code == 200 and r.json()["drive"]["serial_number"] == "x/scores"
    assert (await client.get("/v1/drives/x/scores", headers=t.headers)).status_code == 404, "no drive 'x'"


async def test_score_history_errors(client, fleet, make_tenant):
    t = fleet
    r = await client.get("/v1/drives/NO-SUCH/scores", headers=t.headers)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert (await client.get("/v1/drives/NO-SUCH/scores.csv", headers=t.headers)).status_code == 404
    for params, field in (({"limit": 0}, "query.limit"), ({"limit": "x"}, "query.limit"),
                          ({"cursor": "nope"}, "query.cursor")):
        r = await client.get(f"/v1/drives/{enc('ZA/1')}/scores", params=params, headers=t.headers)
        assert r.status_code == 422 and r.json()["field"] == field, (params, r.text)
    other = await make_tenant()
    r = await client.get(f"/v1/drives/{enc('ZA/1')}/scores", headers=other.headers)
    assert r.status_code == 404, "another tenant's drive is no drive"


def test_the_schema_documents_the_history_routes(app):
    paths = app.openapi_schema.paths
    op = paths["/v1/drives/{serial}/scores"].get
    assert op.operation_id == "driveScores" and {p.name for p in op.parameters} == {"serial", "limit", "cursor"}
    assert paths["/v1/drives/{serial}/scores.csv"].get.operation_id == "driveScoresCsv"


async def test_risk_band_settings_bound_the_bands_of_the_next_scoring(client, fleet, make_tenant, state, database):
    t = fleet
    assert (await client.get("/v1/drives/settings", headers=t.headers)).json() == \
        {"high_share": 0.01, "medium_share": 0.04}, "the defaults until an admin sets them"
    r = await client.put("/v1/drives/settings", json={"high_share": 0.1, "medium_share": 0.2}, headers=t.headers)
    assert r.status_code == 200 and r.json() == {"high_share": 0.1, "medium_share": 0.2}
    result = await score_day(state, t.id, END)
    n = result["drives"]
    assert result["high"] == -(-n // 10) and result["high"] + result["medium"] == -(-n * 3 // 10)
    assert (await client.get("/v1/drives/fleet", headers=t.headers)).json()["high_share"] == 0.1

    for body, field in (({"high_share": 0}, "high_share"), ({"high_share": 0.9}, "high_share"),
                        ({"medium_share": -0.1}, "medium_share"), ({"low_share": 0.5}, "low_share")):
        r = await client.put("/v1/drives/settings", json=body, headers=t.headers)
        assert r.status_code == 422, (body, r.text)
        err = r.json()
        assert err["code"] == "validation_error" and err["field"].endswith(field), (body, err)
    writer = await make_tenant(scopes=[Scope.WRITE])
    r = await client.put("/v1/drives/settings", json={"high_share": 0.2}, headers=writer.headers)
    assert r.status_code == 403, "changing bands needs admin"
    assert (await client.get("/v1/drives/settings", headers=writer.headers)).json()["high_share"] == 0.01, \
        "each tenant has its own"
    # A PUT replaces both: a field left out takes its default.
    r = await client.put("/v1/drives/settings", json={"high_share": 0.02}, headers=t.headers)
    assert r.json() == {"high_share": 0.02, "medium_share": 0.04}
    await client.put("/v1/drives/settings", json={}, headers=t.headers)
    await score_day(state, t.id, END)  # back to the default bands for the other tests


def cli_env(settings) -> dict:
    return {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
            "FLYWHEEL_STORE_URL": settings.store_url, "FLYWHEEL_DATA_DIR": settings.data_dir}


async def test_settings_cli_shows_changes_one_share_and_refuses_out_of_bounds(flywheel_settings, make_tenant):
    import asyncio

    from click.testing import CliRunner

    from flywheel.server.cli.main import cli

    t = await make_tenant()

    async def run(*args: str):
        return await asyncio.to_thread(CliRunner().invoke, cli, ["drives", "settings", "--tenant", t.name, *args],
                                       env=cli_env(flywheel_settings))

    shown = await run()
    assert shown.exit_code == 0 and "riskiest 0.01 " in shown.output and "next 0.04" in shown.output
    changed = await run("--medium-share", "0.1")
    assert changed.exit_code == 0 and "riskiest 0.01 " in changed.output and "next 0.1" in changed.output
    refused = await run("--high-share", "0.7")
    assert refused.exit_code == 2 and "--high-share" in refused.output and "0.5" in refused.output
    assert "next 0.1" in (await run()).output, "a refused change writes nothing"


@pytest.fixture(scope="module")
async def backtested(client, worker, fleet):
    """A backtest queued through the API and run by a worker: (job id, its job record)."""
    body = {"train_until": FROM.isoformat(), "from": (FROM + timedelta(days=1)).isoformat(), "to": TO.isoformat(),
            "horizon": 7}
    r = await client.post("/v1/drives/backtests", json=body, headers=fleet.headers)
    assert r.status_code == 202, r.text
    assert r.json()["name"] == "drives.backtest" and r.json()["state"] == "queued"
    job_id = r.json()["id"]
    await worker()
    job = (await client.get(f"/v1/jobs/{job_id}", headers=fleet.headers)).json()
    assert job["state"] == "succeeded", job
    return job_id, job


async def test_a_queued_backtest_reports_through_the_api(client, fleet, backtested, make_tenant):
    job_id, job = backtested
    page = (await client.get("/v1/drives/backtests", headers=fleet.headers)).json()
    (report,) = page["items"]
    assert report["job_id"] == job_id and report["key"] == job["result"]["report_key"]
    assert report["from"] == (FROM + timedelta(days=1)).isoformat() and report["to"] == TO.isoformat()
    assert report["train_until"] == FROM.isoformat() and report["horizon_days"] == 7
    assert report["features"] == "current" and report["model_version"] == job["result"]["model_version"]
    assert report["model"] == job["result"]["model"] and report["smart_rule"] == job["result"]["smart_rule"]
    assert report["counts"]["failing_drives"] > 0 and 0.5 < report["model"]["roc_auc"] <= 1
    only = (await client.get("/v1/drives/backtests", params={"job_id": job_id}, headers=fleet.headers)).json()
    assert [r["job_id"] for r in only["items"]] == [job_id]
    other_job = str(uuid.uuid4())
    none = (await client.get("/v1/drives/backtests", params={"job_id": other_job}, headers=fleet.headers)).json()
    assert none["items"] == []
    stranger = await make_tenant()
    assert (await client.get("/v1/drives/backtests", headers=stranger.headers)).json()["items"] == [], \
        "reports live in the tenant's own store"


async def test_backtest_requests_are_validated_and_need_write(client, fleet, make_tenant):
    r = await client.post("/v1/drives/backtests", json={"train_until": "2026-08-30", "from": "2026-08-20"},
                          headers=fleet.headers)
    assert r.status_code == 422 and "train_until < from <= to" in r.json()["message"], r.text
    r = await client.post("/v1/drives/backtests", json={"drop_features": ["model_code"]}, headers=fleet.headers)
    assert r.status_code == 422 and r.json()["field"] == "$.drop_features[0]", r.text
    r = await client.post("/v1/drives/backtests", json={"horizon": 5}, headers=fleet.headers)
    assert r.status_code == 422 and r.json()["field"] == "$.horizon", r.text
    reader = await make_tenant(scopes=[Scope.READ])
    assert (await client.post("/v1/drives/backtests", json={}, headers=reader.headers)).status_code == 403


async def test_backtest_page_compares_the_model_with_the_rule(live_server, page, client, fleet, backtested, shots):
    from flywheel.server.testing.browser import sign_in

    _, job = backtested
    result = job["result"]
    await sign_in(page, live_server.url, fleet.key, next_path="/console/drives/backtests")
    assert "Backtests" in await page.locator("nav").inner_text()
    assert await page.get_by_test_id("drive-days").inner_text() == f"{result['counts']['drive_days']:,}"
    rows = page.locator("[data-testid=comparison] tbody tr")
    assert await rows.count() == 6
    roc = await rows.nth(0).locator("td").all_inner_texts()
    assert roc == [f"{result['model']['roc_auc']:.3f}", f"{result['smart_rule']['roc_auc']:.3f}"]
    better = "td.better >> nth=0"
    if result["model"]["roc_auc"] != result["smart_rule"]["roc_auc"]:
        expected = roc[0] if result["model"]["roc_auc"] > result["smart_rule"]["roc_auc"] else roc[1]
        assert await rows.nth(0).locator(better).inner_text() == expected
    charts = page.locator("svg.chart")
    assert await charts.count() == 2, "the model's figures and the rule's, side by side"
    model_svg, rule_svg = await charts.nth(0).inner_html(), await charts.nth(1).inner_html()
    assert "<title>Model</title>" in model_svg and "<title>SMART rule</title>" in rule_svg
    assert "ROC-AUC: " in model_svg and "at 1%: " in rule_svg
    assert "<title>PR-AUC: " in rule_svg and "#E69F00" in await charts.nth(1).evaluate("e => e.outerHTML")
    assert await page.locator("[data-testid=backtests] tbody tr").count() == 1
    await page.screenshot(path=shots / "backtests.png", full_page=True)
    # The list's link opens the same report; an unknown key is a 404 page.
    await page.click("[data-testid=backtests] tbody a")
    assert "key=" in page.url and await page.get_by_test_id("drive-days").inner_text() != ""
    r = await page.goto(f"{live_server.url}/console/drives/backtests?key=reports/drives-backtest/nope.json")
    assert r.status == 404
