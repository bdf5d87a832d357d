"""Alerts: raised, deduplicated while open, acknowledged and resolved; tenant rules; conditions
(a plugin's, and the drives plugin's on crafted data); listing, export, tenant isolation."""

from __future__ import annotations

import csv
import io
import math
import types
import uuid
from datetime import date, timedelta

import pytest

from flywheel.contracts.tenants import Scope
from flywheel.plugins.drives.alerts import CONDITIONS as DRIVE_CONDITIONS
from flywheel.plugins.drives.alerts import poisson_at_least
from flywheel.server import hookimpl
from flywheel.server.alerts import raise_alert
from flywheel.server.alerts.conditions import ConditionError, alert_conditions, evaluate_condition
from flywheel.server.app import build_state
from flywheel.server.plugin_api import AlertCondition, Finding
from flywheel.server.plugin_api import raise_alert as api_raise_alert
from flywheel.server.settings import load_settings


async def raise_(state, tenant, key="disk-1", severity="warning", rule="test.disk_full", title="Disk 1 is full",
                 **details):
    return await raise_alert(state, tenant.id, rule=rule, key=key, severity=severity, title=title,
                             details=details or {"used": 0.97})


# -- the life of an alert ----------------------------------------------------------------


async def test_an_alert_is_raised_deduplicated_acknowledged_and_resolved(client, state, tenant):
    first = await raise_(state, tenant)
    again = await raise_(state, tenant, severity="critical", used=0.99)
    assert again.id == first.id and again.count == 2 and again.state == "open"
    assert again.severity == "critical" and again.details == {"used": 0.99}  # escalated, newer details
    assert again.last_seen >= first.last_seen and again.first_seen == first.first_seen
    lower = await raise_(state, tenant, severity="info")
    assert lower.severity == "critical" and lower.count == 3  # a repeat never lowers the severity

    r = await client.post(f"/v1/alerts/{first.id}/acknowledge", json={"note": "on it"}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    acked = r.json()
    assert acked["state"] == "acknowledged" and acked["ack_note"] == "on it"
    assert acked["acknowledged_by"].startswith("key test (")  # the key's name and prefix, not its secret
    assert tenant.key not in acked["acknowledged_by"]
    r = await client.post(f"/v1/alerts/{first.id}/acknowledge", json={}, headers=tenant.headers)
    assert r.status_code == 409 and r.json()["code"] == "alert_acknowledged"

    still = await raise_(state, tenant)  # acknowledged is still open to repeats
    assert still.id == first.id and still.count == 4 and still.state == "acknowledged"

    r = await client.post(f"/v1/alerts/{first.id}/resolve", json={"note": "replaced the disk"}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "resolved" and r.json()["resolve_note"] == "replaced the disk"
    assert (await client.post(f"/v1/alerts/{first.id}/resolve", json={}, headers=tenant.headers)).status_code == 409

    reopened = await raise_(state, tenant)
    assert reopened.id != first.id and reopened.count == 1 and reopened.state == "open"

    detail = (await client.get(f"/v1/alerts/{first.id}", headers=tenant.headers)).json()
    assert [h["action"] for h in detail["history"]] == ["opened", "escalated", "acknowledged", "resolved"]
    assert [h["severity"] for h in detail["history"]][:2] == ["warning", "critical"]
    assert detail["history"][2]["note"] == "on it" and detail["history"][3]["note"] == "replaced the disk"
    assert detail["resolved_by"] == detail["history"][3]["actor"] and detail["resolved_at"]

    resolved = (await client.get("/v1/alerts?state=resolved", headers=tenant.headers)).json()["items"]
    active = (await client.get("/v1/alerts?state=active", headers=tenant.headers)).json()["items"]
    assert [a["id"] for a in resolved] == [str(first.id)] and [a["id"] for a in active] == [str(reopened.id)]


async def test_concurrent_raises_make_one_alert(state, tenant):
    import asyncio

    raised = await asyncio.gather(*(raise_(state, tenant, key="racy") for _ in range(20)))
    assert len({a.id for a in raised}) == 1
    assert sorted(a.count for a in raised) == list(range(1, 21))  # every raise counted exactly once


async def test_the_plugin_api_raises_the_same_alert(state, tenant):
    a = await api_raise_alert(state, tenant.id, rule="test.api", key="k", severity="info", title="t", details={})
    b = await raise_alert(state, tenant.id, rule="test.api", key="k", severity="info", title="t", details={})
    assert a.id == b.id and b.count == 2


async def test_a_bad_alert_is_refused_naming_the_field(state, tenant):
    from flywheel.server.errors import InvalidInput

    for kwargs, field in [({"rule": "NoNamespace"}, "rule"), ({"key": ""}, "key"), ({"severity": "fatal"}, "severity"),
                          ({"title": "x" * 301}, "title"), ({"blob": "x" * 20_000}, "details")]:
        with pytest.raises(InvalidInput) as err:
            await raise_(state, tenant, **kwargs)
        assert err.value.field == field


async def test_acting_on_an_alert_needs_write(client, state, make_tenant):
    t = await make_tenant()
    alert = await raise_(state, t)
    from flywheel.server.auth import service

    reader = await service.create_key(state.db, t.id, "reader", [Scope.READ])
    headers = {"Authorization": f"Bearer {reader.secret}"}
    assert (await client.get(f"/v1/alerts/{alert.id}", headers=headers)).status_code == 200
    assert (await client.post(f"/v1/alerts/{alert.id}/acknowledge", json={}, headers=headers)).status_code == 403
    r = await client.post("/v1/alerts/rules", json={"match": "*"}, headers={
        "Authorization": f"Bearer {(await service.create_key(state.db, t.id, 'writer', [Scope.WRITE])).secret}"})
    assert r.status_code == 403  # rules and channels are the admin's


# -- rules ----------------------------------------------------------------------------------


async def test_rules_drop_disabled_alerts_and_those_below_their_minimum(client, state, tenant):
    h = tenant.headers
    r = await client.post("/v1/alerts/rules", json={"match": "test.*", "min_severity": "warning"}, headers=h)
    assert r.status_code == 201, r.text
    assert (await client.post("/v1/alerts/rules", json={"match": "test.noisy", "enabled": False},
                              headers=h)).status_code == 201
    assert await raise_(state, tenant, rule="test.quiet", severity="info") is None  # below the prefix rule's minimum
    assert await raise_(state, tenant, rule="test.quiet", severity="warning") is not None
    assert await raise_(state, tenant, rule="test.noisy", severity="critical") is None  # the exact rule wins
    assert await raise_(state, tenant, rule="other.thing", severity="info") is not None  # no rule: kept

    rules = (await client.get("/v1/alerts/rules", headers=h)).json()
    assert [x["match"] for x in rules] == ["test.*", "test.noisy"]
    noisy = rules[1]["id"]
    r = await client.patch(f"/v1/alerts/rules/{noisy}", json={"enabled": True}, headers=h)
    assert r.status_code == 200 and r.json()["enabled"] is True and r.json()["min_severity"] == "info"
    assert await raise_(state, tenant, rule="test.noisy", severity="info") is not None
    assert (await client.delete(f"/v1/alerts/rules/{noisy}", headers=h)).status_code == 204
    assert (await client.get(f"/v1/alerts/rules/{noisy}", headers=h)).status_code == 404


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"match": "drives"}, "$.match", "invalid_match"),
    ({"match": "drives.**"}, "$.match", "invalid_match"),
    ({"match": "*", "min_severity": "fatal"}, "$.min_severity", "validation_error"),
    ({"match": "*", "channel_ids": [str(uuid.uuid4())]}, "$.channel_ids[0]", "unknown_channel"),
    ({"match": "*", "extra": 1}, "$.extra", "validation_error"),
])
async def test_a_bad_rule_is_refused_naming_the_field(client, tenant, body, field, code):
    r = await client.post("/v1/alerts/rules", json=body, headers=tenant.headers)
    assert r.status_code == 422 and r.json()["field"] == field and r.json()["code"] == code, r.text


async def test_a_second_rule_for_the_same_match_conflicts(client, tenant):
    assert (await client.post("/v1/alerts/rules", json={"match": "*"}, headers=tenant.headers)).status_code == 201
    r = await client.post("/v1/alerts/rules", json={"match": "*"}, headers=tenant.headers)
    assert r.status_code == 409 and r.json()["code"] == "rule_exists"


# -- listing and export ---------------------------------------------------------------------


async def test_alerts_are_listed_in_keyset_pages_with_filters(client, state, tenant):
    for i in range(7):
        await raise_(state, tenant, key=f"k{i}", severity="critical" if i % 2 else "info", rule="test.pages")
    await raise_(state, tenant, key="elsewhere", rule="test.other")
    seen, cursor = [], None
    while True:
        r = await client.get("/v1/alerts", params={"rule": "test.pages", "limit": 3, **({"cursor": cursor} if cursor
                                                                                     else {})}, headers=tenant.headers)
        body = r.json()
        seen.append([a["key"] for a in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in seen] == [3, 3, 1]
    assert sum(seen, []) == [f"k{i}" for i in reversed(range(7))]  # newest opened first, none twice
    critical = (await client.get("/v1/alerts?severity=critical&rule=test.pages", headers=tenant.headers)).json()
    assert sorted(a["key"] for a in critical["items"]) == ["k1", "k3", "k5"]
    r = await client.get("/v1/alerts?cursor=bogus", headers=tenant.headers)
    assert r.status_code == 422 and r.json()["field"] == "query.cursor"


async def test_alerts_export_as_csv_with_formulas_defused(client, state, tenant):
    await raise_(state, tenant, key="=HYPERLINK(\"http://evil\")", title="@SUM(A1:A9) is bad", rule="test.csv")
    await raise_(state, tenant, key="plain", title="Plain title", rule="test.csv", severity="critical")
    r = await client.get("/v1/alerts/export.csv?rule=test.csv", headers=tenant.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["key"] for row in rows] == ["plain", "'=HYPERLINK(\"http://evil\")"]
    assert rows[1]["title"] == "'@SUM(A1:A9) is bad" and rows[0]["severity"] == "critical"
    assert rows[0]["count"] == "1" and rows[0]["state"] == "open" and rows[0]["details"] == '{"used":0.97}'


# -- tenants ---------------------------------------------------------------------------------


async def test_another_tenants_alerts_rules_and_channels_are_invisible(client, state, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    alert = await raise_(state, a)
    rule = (await client.post("/v1/alerts/rules", json={"match": "*"}, headers=a.headers)).json()
    channel = (await client.post("/v1/alerts/channels", json={"name": "ops", "kind": "email",
                                                              "recipients": ["ops@example.com"]},
                                 headers=a.headers)).json()
    for path in (f"/v1/alerts/{alert.id}", f"/v1/alerts/rules/{rule['id']}", f"/v1/alerts/channels/{channel['id']}"):
        assert (await client.get(path, headers=b.headers)).status_code == 404, path
    for path in (f"/v1/alerts/{alert.id}/acknowledge", f"/v1/alerts/{alert.id}/resolve"):
        assert (await client.post(path, json={}, headers=b.headers)).status_code == 404, path
    assert (await client.patch(f"/v1/alerts/rules/{rule['id']}", json={"enabled": False},
                               headers=b.headers)).status_code == 404
    assert (await client.delete(f"/v1/alerts/channels/{channel['id']}", headers=b.headers)).status_code == 404
    r = await client.post("/v1/alerts/rules", json={"match": "*", "channel_ids": [channel["id"]]}, headers=b.headers)
    assert r.status_code == 422 and r.json()["code"] == "unknown_channel"  # another tenant's channel is unknown
    for path in ("/v1/alerts", "/v1/alerts/rules", "/v1/alerts/channels"):
        body = (await client.get(path, headers=b.headers)).json()
        assert (body["items"] if isinstance(body, dict) else body) == [], path
    assert "key" not in (await client.get("/v1/alerts/export.csv", headers=b.headers)).text.split("\n", 1)[1]
    # The same rule and key in B opens B's own alert, not a repeat of A's.
    other = await raise_(state, b)
    assert other.id != alert.id and other.count == 1
    assert (await client.get(f"/v1/alerts/{alert.id}", headers=a.headers)).json()["state"] == "open"


# -- conditions -----------------------------------------------------------------------------


def condition_plugin(name: str, *conditions):
    ns = types.SimpleNamespace(__flywheel_plugin_name__=name, __version__="1.0")

    def register_alert_conditions():
        return list(conditions)

    ns.register_alert_conditions = hookimpl(register_alert_conditions)
    return ns


async def nothing(state, tenant_id):
    return []


def test_conditions_are_collected_from_plugins_and_checked():
    good = AlertCondition(name="probe.stuck", description="d", severity="info", evaluate=nothing)
    state = build_state(load_settings({}), [condition_plugin("probe", good)])
    assert alert_conditions(state) == {"probe.stuck": ("probe", good)}
    for bad, message in [(AlertCondition(name="other.stuck", description="d", severity="info", evaluate=nothing),
                          "name it probe.<condition>"),
                         ({"name": "probe.x"}, "not an AlertCondition"),
                         (AlertCondition(name="probe.loud", description="d", severity="fatal", evaluate=nothing),
                          "severity 'fatal'")]:
        with pytest.raises(ConditionError, match=message):
            alert_conditions(build_state(load_settings({}), [condition_plugin("probe", bad)]))


async def test_a_condition_raises_what_it_finds_and_resolves_what_cleared(client, state, tenant):
    found: list[Finding] = [Finding(key="q1", title="Queue 1 is stuck"), Finding(key="q2", title="Queue 2 is stuck",
                                                                             severity="critical")]
    calls = []

    async def evaluate(s, tenant_id):
        calls.append(tenant_id)
        return list(found)

    condition = AlertCondition(name="probe.stuck", description="stuck queues", severity="warning", evaluate=evaluate)
    assert await evaluate_condition(state, tenant.id, condition) == {"found": 2, "raised": 2, "resolved": 0}
    assert await evaluate_condition(state, tenant.id, condition) == {"found": 2, "raised": 2, "resolved": 0}
    alerts = {a["key"]: a for a in (await client.get("/v1/alerts?rule=probe.stuck", headers=tenant.headers)).json()[
        "items"]}
    assert {k: (a["severity"], a["count"]) for k, a in alerts.items()} == {"q1": ("warning", 2), "q2": ("critical", 2)}

    found.pop()  # q2 cleared
    assert await evaluate_condition(state, tenant.id, condition) == {"found": 1, "raised": 1, "resolved": 1}
    q2 = (await client.get(f"/v1/alerts/{alerts['q2']['id']}", headers=tenant.headers)).json()
    assert q2["state"] == "resolved" and q2["resolved_by"] == "auto"

    # The tenant's rule: keep alerts open when they clear, then stop evaluating altogether.
    rule = (await client.post("/v1/alerts/rules", json={"match": "probe.stuck", "auto_resolve": False},
                              headers=tenant.headers)).json()
    found.clear()
    assert await evaluate_condition(state, tenant.id, condition) == {"found": 0, "raised": 0, "resolved": 0}
    assert (await client.get(f"/v1/alerts/{alerts['q1']['id']}", headers=tenant.headers)).json()["state"] == "open"
    await client.patch(f"/v1/alerts/rules/{rule['id']}", json={"enabled": False}, headers=tenant.headers)
    before = len(calls)
    await evaluate_condition(state, tenant.id, condition)
    assert len(calls) == before  # a disabled condition is not evaluated for the tenant


# -- the drives plugin's conditions, on crafted data ----------------------------------------

DAY = date(2026, 3, 31)


async def inventory(database, tenant_id, rows):
    """Drives as (serial, first_day, last_day, failure_day)."""
    await database.executemany(
        "INSERT INTO drives_inventory (tenant_id, serial_number, model, first_day, last_day, failure_day) "
        "VALUES ($1, $2, 'ST4000DM000', $3, $4, $5)", [(tenant_id, *r) for r in rows])


async def risks(database, tenant_id, day, bands: dict[str, str]):
    await database.executemany(
        "INSERT INTO drives_risk (tenant_id, day, serial_number, risk, margin, band, model_version) "
        "VALUES ($1, $2, $3, $4, $5, $6, 1)",
        [(tenant_id, day, serial, 0.5 if band == "high" else 0.01, 2.0 if band == "high" else -4.0, band)
         for serial, band in bands.items()])


def drives_condition(name):
    return next(c for c in DRIVE_CONDITIONS if c.name == name)


async def test_a_drive_entering_the_top_band_raises_an_alert_until_it_leaves(client, state, database, tenant):
    day1, day2 = DAY - timedelta(days=1), DAY
    await inventory(database, tenant.id, [("A", day1, day2, None), ("B", day1, day2, None), ("C", day1, day1, day1),
                                          ("D", day1, day2, None)])
    await risks(database, tenant.id, day1, {"A": "high", "B": "medium", "C": "high", "D": "low"})
    top = drives_condition("drives.top_risk_band")
    assert await evaluate_condition(state, tenant.id, top) == {"found": 1, "raised": 1, "resolved": 0}
    (a,) = (await client.get("/v1/alerts?rule=drives.top_risk_band", headers=tenant.headers)).json()["items"]
    assert a["key"] == "A" and a["severity"] == "warning" and "ST4000DM000" in a["title"]
    assert a["details"]["day"] == day1.isoformat() and a["details"]["previous_band"] is None  # C failed: left out

    await risks(database, tenant.id, day2, {"A": "low", "B": "high", "D": "low"})
    assert await evaluate_condition(state, tenant.id, top) == {"found": 1, "raised": 1, "resolved": 1}
    items = (await client.get("/v1/alerts?rule=drives.top_risk_band", headers=tenant.headers)).json()["items"]
    assert {x["key"]: x["state"] for x in items} == {"A": "resolved", "B": "open"}
    b = next(x for x in items if x["key"] == "B")
    assert b["details"]["previous_band"] == "medium" and b["details"]["previous_day"] == day1.isoformat()


def poisson_tail(k: int, mean: float) -> float:
    """P(X >= k), summed term by term (independent of the condition's incomplete gamma)."""
    return 1 - sum(math.exp(-mean) * mean ** i / math.factorial(i) for i in range(k))


async def test_a_fleet_failing_above_its_trailing_rate_raises_one_alert(client, state, database, make_tenant):
    start = DAY - timedelta(days=90)
    healthy = [(f"H{i}", start, DAY, None) for i in range(1000)]
    # 2 failures over the trailing 84 days, 6 in the last week.
    old = [(f"O{i}", start, DAY - timedelta(days=30 + i), DAY - timedelta(days=30 + i)) for i in range(2)]
    new = [(f"N{i}", start, DAY - timedelta(days=i), DAY - timedelta(days=i)) for i in range(6)]
    hot, calm = await make_tenant(), await make_tenant()
    await inventory(database, hot.id, healthy + old + new)
    await inventory(database, calm.id, healthy + old + new[:1])  # one failure this week: as usual
    rate = drives_condition("drives.failure_rate")
    assert (await evaluate_condition(state, calm.id, rate))["found"] == 0
    assert await evaluate_condition(state, hot.id, rate) == {"found": 1, "raised": 1, "resolved": 0}

    (alert,) = (await client.get("/v1/alerts?rule=drives.failure_rate", headers=hot.headers)).json()["items"]
    d = alert["details"]
    # By hand: recent window DAY-6..DAY; trailing DAY-90..DAY-7 (84 days).
    recent_dd = 1000 * 7 + 2 * 0 + sum(7 - i for i in range(6))  # a failed drive counts to its failure day
    trailing_dd = 1000 * 84 + sum((DAY - timedelta(days=30 + i) - start).days + 1 for i in range(2)) + 6 * 84
    expected = (2 + 0.5) / trailing_dd * recent_dd
    assert alert["key"] == "fleet" and d["failures"] == 6 and d["drive_days"] == recent_dd
    assert d["trailing_drive_days"] == trailing_dd and d["trailing_failures"] == 2
    assert d["expected_failures"] == round(expected, 3)
    assert d["p_value"] == pytest.approx(poisson_tail(6, expected), rel=1e-9)
    assert alert["severity"] == ("critical" if d["p_value"] < 1e-4 else "warning")
    assert d["window"] == f"{DAY - timedelta(days=6)}..{DAY}"
    assert d["trailing_window"] == f"{DAY - timedelta(days=90)}..{DAY - timedelta(days=7)}"


def test_poisson_tail_matches_the_sum():
    for k, mean in [(0, 1.0), (1, 0.3), (6, 0.25), (12, 4.0)]:
        assert poisson_at_least(k, mean) == pytest.approx(poisson_tail(k, mean), rel=1e-9, abs=1e-15)


async def test_the_evaluation_job_runs_for_the_tenant_that_queued_it(client, state, database, worker, make_tenant):
    mine, other = await make_tenant(), await make_tenant()
    for t in (mine, other):
        await inventory(database, t.id, [("Z1", DAY, DAY, None)])
        await risks(database, t.id, DAY, {"Z1": "high"})
    r = await client.post("/v1/jobs", json={"name": "core.evaluate_alerts"}, headers=mine.headers)
    assert r.status_code == 202, r.text
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=mine.headers)).json()
    assert job["state"] == "succeeded" and job["result"]["raised"] >= 1 and job["result"]["failed"] == []
    keys = [a["key"] for a in (await client.get("/v1/alerts", headers=mine.headers)).json()["items"]]
    assert keys == ["Z1"]
    assert (await client.get("/v1/alerts", headers=other.headers)).json()["items"] == []

    conditions = (await client.get("/v1/alerts/conditions", headers=mine.headers)).json()
    assert {c["name"]: c["plugin"] for c in conditions if c["plugin"] == "drives"} == {
        "drives.failure_rate": "drives", "drives.top_risk_band": "drives"}
