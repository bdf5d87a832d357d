"""Model monitoring: PSI, missing rates, calibration and operations, per version and day.

The figures are checked against values worked out by hand. The families
under test belong to a small plugin below, trained on a table whose
quantiles are round numbers: `x` is 1 to 10, 100 rows each, so its training
bins are (-inf, 1], (1, 2], ..., (9, inf), a tenth of the rows each; `c` is
"a" or "b", half each. `mon.live` is scored over HTTP (the scoring path's
counts); `mon.batch` gives its own rows and outcomes per data day (hooks).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pytest
import pytest_asyncio

from flywheel.contracts.models import ModelFamily
from flywheel.contracts.tenants import Scope
from flywheel.server.app import create_app
from flywheel.server.jobs.worker import build_worker
from flywheel.server.monitoring import latency, recorder, stats
from flywheel.server.monitoring.bins import Position, build_layout
from flywheel.server.plugin_api import MonitoringOutcomes, MonitoringThresholds, hookimpl
from flywheel.server.testing.client import app_client

TODAY = datetime.now(UTC).date()
BATCH_DAY = date(2026, 3, 10)  # the batch family's data days are its own, far from today


class Features(msgspec.Struct, kw_only=True):
    x: float | None
    c: str | None


def training_table() -> pa.Table:
    """1,000 rows: x = 1..10 (100 each), c alternating a / b, a label following x with some noise."""
    x = np.repeat(np.arange(1, 11, dtype=np.float64), 100)
    c = ["a" if i % 2 else "b" for i in range(1000)]
    flip = np.random.default_rng(3).random(1000) < 0.15
    y = ((x >= 6) ^ flip).astype(np.int8)
    return pa.table({"x": x, "c": c, "y": y})


async def load(ctx, request) -> pa.Table:
    return training_table()


LIVE = ModelFamily(name="mon.live", features=Features, label="y", load_training_data=load,
                   params={"min_child_samples": 5})
BATCH = ModelFamily(name="mon.batch", features=Features, label="y", load_training_data=load,
                    params={"min_child_samples": 5})
BATCH_THRESHOLDS = MonitoringThresholds(psi_warn=0.2, psi_alert=0.5)
ROWS: dict[tuple, pa.Table] = {}  # (tenant, day) -> the rows mon.batch "scored" for that data day
OUTCOMES: dict[tuple, MonitoringOutcomes] = {}


class MonitorPlugin:
    __flywheel_plugin_name__ = "mon"

    @hookimpl
    def register_model_families(self):
        return [LIVE, BATCH]

    @hookimpl
    def monitoring_thresholds(self, family):
        return BATCH_THRESHOLDS if family == "mon.batch" else None

    @hookimpl
    async def monitoring_rows(self, state, tenant_id, family, version, day):
        if family != "mon.batch":
            return None
        return ROWS.get((tenant_id, day), pa.table({"x": pa.array([], pa.float64()), "c": pa.array([], pa.string()),
                                                    "margin": pa.array([], pa.float64())}))

    @hookimpl
    async def monitoring_outcomes(self, state, tenant_id, family, version, day):
        return OUTCOMES.get((tenant_id, family, day))


class Intruder:
    """Another plugin answering for mon's families: it must not be heard."""

    __flywheel_plugin_name__ = "intruder"

    @hookimpl
    def monitoring_thresholds(self, family):
        return MonitoringThresholds(psi_warn=0.0, psi_alert=0.0)


@dataclass
class Mon:
    app: Any
    client: Any
    state: Any
    worker: Any


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mon(flywheel_settings, tmp_path_factory):
    settings = msgspec.structs.replace(flywheel_settings, queue_name=f"mon-{uuid.uuid4().hex[:6]}",
                                       data_dir=str(tmp_path_factory.mktemp("mon-data")))
    # Scored rows are filed under the UTC day they are scored on, and the tests run the job for
    # TODAY (taken at import): the recorder's clock is pinned to it, so a run that crosses
    # midnight UTC files them under TODAY all the same.
    pinned = pytest.MonkeyPatch()
    pinned.setattr(recorder, "_today", lambda: (TODAY, math.inf))
    try:
        app = create_app(settings, [MonitorPlugin(), Intruder()])
        async with app_client(app) as client:
            state = app.state.flywheel

            async def work() -> None:
                w = build_worker(state, burst=True, handle_signals=False, poll_delay=0.05)
                try:
                    await w.main()
                finally:
                    await w.close()

            yield Mon(app, client, state, work)
    finally:
        pinned.undo()


async def train(mon: Mon, tenant, family: str) -> int:
    r = await mon.client.post(f"/v1/models/{family}/train", headers=tenant.headers,
                              json={"auto_activate": True, "num_boost_round": 30, "early_stopping_rounds": 0})
    assert r.status_code == 202, r.text
    await mon.worker()
    job = (await mon.client.get(f"/v1/jobs/{r.json()['id']}", headers=tenant.headers)).json()
    assert job["state"] == "succeeded", job
    return job["result"]["version"]


async def run_job(mon: Mon, tenant, payload: dict) -> dict:
    await mon.state.models.monitor.flush()  # what the API process would have flushed within seconds
    r = await mon.client.post("/v1/jobs", json={"name": "core.monitor_models", "payload": payload},
                              headers=tenant.headers)
    assert r.status_code == 202, r.text
    await mon.worker()
    job = (await mon.client.get(f"/v1/jobs/{r.json()['id']}", headers=tenant.headers)).json()
    return job


async def report(mon: Mon, tenant, family: str, **query) -> dict:
    r = await mon.client.get(f"/v1/models/{family}/monitoring", headers=tenant.headers, params=query)
    assert r.status_code == 200, r.text
    return r.json()


async def alerts_of(db, tenant) -> dict[tuple[str, str], Any]:
    rows = await db.fetch("SELECT rule, key, severity, count, details FROM alerts WHERE tenant_id = $1", tenant.id)
    return {(r["rule"], r["key"]): r for r in rows}


# -- the figures, by hand ---------------------------------------------------------------------


def test_psi_against_a_hand_computed_value():
    # expected a quarter per bin; observed 40, 30, 20, 10 of 100:
    #   0.15 ln(0.4/0.25) + 0.05 ln(0.3/0.25) - 0.05 ln(0.2/0.25) - 0.15 ln(0.1/0.25)
    # = 0.15 * 0.470004 + 0.05 * 0.182322 + 0.05 * 0.223144 + 0.15 * 0.916291 = 0.228217
    assert stats.psi(np.array([0.25] * 4), np.array([40, 30, 20, 10])) == pytest.approx(0.2282174, abs=1e-6)
    assert stats.psi(np.array([0.5, 0.5]), np.array([7, 7])) == 0.0
    # An empty bin is floored at 1e-4; both terms are (a - e) ln(a / e):
    # (1 - 0.5) ln(1 / 0.5) + (1e-4 - 0.5) ln(1e-4 / 0.5) = 0.346574 + 4.257745 = 4.604318
    assert stats.psi(np.array([0.5, 0.5]), np.array([10, 0])) == pytest.approx(4.604318, abs=1e-5)
    assert stats.psi(np.array([0.5, 0.5]), np.array([0, 0])) is None
    assert stats.missing_rate(np.array([6, 3, 1])) == 0.1


def test_calibration_against_hand_computed_values():
    # One edge at margin 0 (p = 0.5): band 0 holds 0.2, 0.2, 0.4 (1 of 3 positive), band 1 holds 0.6, 0.8 (both).
    # Band 0: predicted 0.266667, observed 0.333333, gap 0.066667; band 1: 0.7 against 1.0, gap 0.3.
    # Error: (3 * 0.066667 + 2 * 0.3) / 5 = 0.16.
    c = stats.calibration(np.array([0.2, 0.2, 0.4, 0.6, 0.8]), np.array([0, 1, 0, 1, 1]), (0.0,))
    assert c["error"] == pytest.approx(0.16, abs=1e-9)
    assert [(b["rows"], b["lower"], b["upper"]) for b in c["bands"]] == [(3, 0.0, 0.5), (2, 0.5, 1.0)]
    assert c["bands"][0]["mean_predicted"] == pytest.approx(0.8 / 3) and c["bands"][1]["observed_rate"] == 1.0
    assert (c["rows"], c["positives"], c["predicted_rate"], c["observed_rate"]) == (5, 3, pytest.approx(0.44), 0.6)


def test_training_bins_and_counting():
    X = training_table()
    matrix = np.column_stack([X.column("x").to_numpy(), np.where(np.array(X.column("c").to_pylist()) == "a", 0, 1)
                              ]).astype(np.float32)
    layout = build_layout(("x", "c"), ("float", "category"), (None, ("a", "b")), matrix, np.linspace(-2, 2, 1000))
    x, c, score = layout.positions
    assert x == Position("x", "numeric", edges=(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0))
    assert c == Position("c", "category", categories=("a", "b")) and c.bins == 4  # a, b, other, missing
    assert len(score.edges) == 9 and score.bins == 10 and x.bins == 11  # x: ten value bins and missing
    counts = layout.split(layout.count(np.array([[1.0, 0], [1.5, 1], [9.0, np.nan], [np.nan, 5], [12.0, 1]],
                                                np.float32), np.array([-3.0, 0.0, 0.0, 3.0, 0.1])))
    assert counts[0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1]  # <=1, (1,2], (8,9], >9, missing
    assert counts[1].tolist() == [1, 2, 1, 1]  # code 5 is past the trained categories: "other"
    assert counts[2].sum() == 5 and counts[2][0] == 1 and counts[2][-1] == 1
    # A mostly-zero feature collapses to the bins its quantiles make: "<= 0" and "> 0".
    zeros = build_layout(("z",), ("float",), (), np.array([[0.0]] * 95 + [[3.0]] * 5, np.float32), np.zeros(100))
    assert zeros.positions[0].edges == (0.0,)


def test_latency_percentiles_within_a_bucket():
    counts = latency.bucket_counts(np.array([0.001] * 98 + [0.1] * 2))
    assert counts.sum() == 100
    assert latency.percentile(counts, 0.5) == pytest.approx(0.001, rel=0.13)
    assert latency.percentile(counts, 0.99) == pytest.approx(0.1, rel=0.13)
    assert latency.percentile(np.zeros(latency.BUCKETS, np.int64), 0.5) is None


# -- the scoring path's counts, end to end --------------------------------------------------

SHIFTED = ([{"x": 1.0, "c": "a"}] * 50 + [{"x": 10.0, "c": "a"}] * 30 + [{"x": 10.0, "c": "b"}] * 10
           + [{"x": 10.0, "c": "never-seen"}] * 10)


@pytest.fixture(scope="module")
async def live(mon, make_tenant):
    """Tenant A scores 100 shifted rows of mon.live; tenant B scores the training rows themselves."""
    a, b = await make_tenant(), await make_tenant()
    for t in (a, b):
        assert await train(mon, t, "mon.live") == 1
    r = await mon.client.post("/v1/models/mon.live/score_batch", headers=a.headers, json={"rows": SHIFTED})
    assert r.status_code == 200, r.text
    bad = await mon.client.post("/v1/models/mon.live/score_batch", headers=a.headers, json={"rows": [{"x": "?"}]})
    assert bad.status_code == 422
    rows = training_table().select(["x", "c"]).to_pylist()
    r = await mon.client.post("/v1/models/mon.live/score_batch", headers=b.headers, json={"rows": rows[:900]})
    assert r.status_code == 200, r.text
    for row in rows[900:]:  # the single-row path, a hundred times
        assert (await mon.client.post("/v1/models/mon.live/score", headers=b.headers, json=row)).status_code == 200
    for t in (a, b):
        job = await run_job(mon, t, {"day": TODAY.isoformat()})
        assert job["state"] == "succeeded", job
    return a, b


async def test_psi_of_scored_rows_against_training(mon, live):
    a, _ = live
    body = await report(mon, a, "mon.live")
    (day,) = body["days"]
    assert (day["day"], day["version"], day["rows"], day["source"], day["reference"]) == \
        (TODAY.isoformat(), 1, 100, "scoring", True)
    x, c = day["features"]
    # x: half the rows in (-inf, 1], half in (9, inf); the eight bins between are empty (floored at 1e-4):
    #   2 * (0.5 - 0.1) ln(0.5 / 0.1) + 8 * (1e-4 - 0.1) ln(1e-4 / 0.1)
    # = 0.8 * 1.609438 + 0.7992 * 6.907755 = 1.287550 + 5.520678 = 6.808228 (missing: 1e-4 both sides, 0)
    assert x["name"] == "x" and x["psi"] == pytest.approx(6.808228, abs=1e-5) and x["missing_rate"] == 0.0
    # c: a 0.8, b 0.1, unseen 0.1 (scored as missing) against a 0.5, b 0.5:
    #   0.3 ln(1.6) + (-0.4) ln(0.2) + (0.1 - 1e-4) ln(0.1 / 1e-4)
    # = 0.141001 + 0.643775 + 0.690085 = 1.474861
    assert c["psi"] == pytest.approx(1.474861, abs=1e-5)
    assert (c["missing_rate"], c["reference_missing_rate"], c["level"]) == (0.1, 0.0, "alert")
    assert day["score"]["psi"] > 0 and sum(day["score"]["shares"]) == pytest.approx(1.0)
    # The model gives few distinct margins (two features), so some deciles tie and merge.
    assert len(day["score"]["edges"]) == len(day["score"]["shares"]) - 1 >= 1
    # The refused batch is counted against the version, its rows are not.
    (ops,) = day["operational"]["endpoints"]
    assert (ops["endpoint"], ops["requests"], ops["rows"], ops["client_errors"], ops["server_errors"]) == \
        ("score_batch", 2, 100, 1, 0)
    assert ops["latency_p50_ms"] > 0 and ops["latency_p99_ms"] >= ops["latency_p50_ms"]


async def test_training_rows_scored_again_do_not_drift(mon, live):
    _, b = live
    (day,) = (await report(mon, b, "mon.live"))["days"]
    assert day["rows"] == 1000 and day["breaches"] == []
    assert [f["psi"] for f in day["features"]] == [0.0, 0.0]
    assert day["score"]["psi"] == pytest.approx(0.0, abs=1e-12), "the same rows, the same ONNX margins"
    assert day["score"]["shares"] == pytest.approx(day["score"]["reference_shares"])
    assert {e["endpoint"]: e["requests"] for e in day["operational"]["endpoints"]} == {"score": 100,
                                                                                       "score_batch": 1}


async def test_thresholds_crossed_raise_alerts_deduplicated(mon, live, database):
    a, b = live
    (day,) = (await report(mon, a, "mon.live"))["days"]
    crossed = {(x["rule"], x["key"]): x["level"] for x in day["breaches"]}
    assert crossed[("monitoring.psi", "mon.live/v1/feature/x")] == "alert"
    assert crossed[("monitoring.psi", "mon.live/v1/feature/c")] == "alert"
    assert crossed[("monitoring.missing_rate", "mon.live/v1/feature/c")] == "warn"  # 0.1 rise: warn 0.05, alert 0.2
    assert ("monitoring.error_rate", "mon.live/v1/errors") not in crossed, "2 requests are too few to judge"
    stored = await alerts_of(database, a)
    assert stored[("monitoring.psi", "mon.live/v1/feature/x")]["severity"] == "critical"
    assert stored[("monitoring.missing_rate", "mon.live/v1/feature/c")]["severity"] == "warning"
    assert stored[("monitoring.psi", "mon.live/v1/feature/x")]["details"]["value"] == pytest.approx(6.808228, abs=1e-5)
    assert await alerts_of(database, b) == {}, "B's rows did not drift: no alert, and none of A's"
    # The same day again: the figures are replaced, the open alerts count a repeat.
    job = await run_job(mon, a, {"day": TODAY.isoformat()})
    assert job["state"] == "succeeded" and job["result"]["version_days"] == 1
    again = await alerts_of(database, a)
    assert again.keys() == stored.keys() and again[("monitoring.psi", "mon.live/v1/feature/x")]["count"] == 2
    assert len((await report(mon, a, "mon.live"))["days"]) == 1


async def test_tenant_overrides_change_what_counts(mon, make_tenant):
    t = await make_tenant()
    await train(mon, t, "mon.live")
    r = await mon.client.post("/v1/models/mon.live/score_batch", headers=t.headers, json={"rows": SHIFTED})
    assert r.status_code == 200
    r = await mon.client.put("/v1/models/mon.live/monitoring/thresholds", headers=t.headers,
                             json={"psi_alert": 10.0, "missing_warn": 0.2, "missing_alert": 0.5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["overrides"] == {"psi_alert": 10.0, "missing_warn": 0.2, "missing_alert": 0.5}
    assert body["effective"]["psi_alert"] == 10.0 and body["effective"]["psi_warn"] == 0.1
    assert body["defaults"]["psi_alert"] == 0.25 and body["updated_by"].startswith("key ")
    await run_job(mon, t, {"day": TODAY.isoformat()})
    (day,) = (await report(mon, t, "mon.live"))["days"]
    psi = {(x["key"], x["level"], x["threshold"]) for x in day["breaches"]
           if x["rule"] == "monitoring.psi" and "feature" in x["key"]}
    assert psi == {("mon.live/v1/feature/x", "warn", 0.1), ("mon.live/v1/feature/c", "warn", 0.1)}
    assert not [x for x in day["breaches"] if x["rule"] == "monitoring.missing_rate"]
    # Another tenant still has the defaults.
    other = await make_tenant()
    r = await mon.client.get("/v1/models/mon.live/monitoring/thresholds", headers=other.headers)
    assert r.json()["effective"]["psi_alert"] == 0.25 and r.json()["overrides"] == {}
    # {} returns to the defaults.
    r = await mon.client.put("/v1/models/mon.live/monitoring/thresholds", headers=t.headers, json={})
    assert r.json()["effective"] == r.json()["defaults"]


async def test_a_family_declares_its_own_defaults(mon, tenant):
    r = await mon.client.get("/v1/models/mon.batch/monitoring/thresholds", headers=tenant.headers)
    assert r.status_code == 200
    body = r.json()
    assert (body["defaults"]["psi_warn"], body["defaults"]["psi_alert"]) == (0.2, 0.5)
    live = (await mon.client.get("/v1/models/mon.live/monitoring/thresholds", headers=tenant.headers)).json()
    assert live["defaults"]["psi_warn"] == 0.1, "the intruder plugin does not speak for mon's families"


# -- a family's own rows and outcomes (hooks) ---------------------------------------------------


def batch_rows(n_per_value: int) -> pa.Table:
    x = np.repeat(np.arange(1, 11, dtype=np.float64), n_per_value)
    return pa.table({"x": x, "c": ["a" if i % 2 else "b" for i in range(len(x))], "margin": np.zeros(len(x))})


async def test_family_rows_by_data_day_backfill_volume_and_late_calibration(mon, make_tenant, database):
    t = await make_tenant()
    await train(mon, t, "mon.batch")
    days = [BATCH_DAY - timedelta(days=k) for k in (3, 2, 1)]
    for d in days:
        ROWS[(t.id, d)] = batch_rows(20)  # 200 rows like training's
    ROWS[(t.id, BATCH_DAY)] = batch_rows(2)  # 20 rows: nine in ten drives went quiet
    # Day -1's labels are known at the backfill; day -2's arrive afterwards.
    OUTCOMES[(t.id, "mon.batch", days[2])] = MonitoringOutcomes(scores=[0.0] * 100 + [1.0] * 100,
                                                                labels=[0] * 100 + [1] * 70 + [0] * 30)
    r = await mon.client.post("/v1/models/mon.batch/monitoring/backfill", headers=t.headers,
                              json={"from": days[0].isoformat(), "to": days[-1].isoformat()})
    assert r.status_code == 202, r.text
    await mon.worker()
    job = (await mon.client.get(f"/v1/jobs/{r.json()['id']}", headers=t.headers)).json()
    assert job["state"] == "succeeded" and job["result"]["version_days"] == 3 and job["result"]["alerts"] == 0, job
    body = await report(mon, t, "mon.batch", **{"from": days[0].isoformat(), "to": BATCH_DAY.isoformat()})
    assert [(d["day"], d["rows"], d["source"]) for d in body["days"]] == [(d.isoformat(), 200, "family") for d in days]
    assert all(f["psi"] == 0.0 for d in body["days"] for f in d["features"])
    # Calibration of day -1: p = 0 for 100 rows (none positive), p = 1 for 100 (70 positive):
    #   bands: the lowest (predicted 0, observed 0) and the highest (predicted 1, observed 0.7);
    #   error (100 * 0 + 100 * 0.3) / 200 = 0.15, above the alert level 0.1.
    cal = body["days"][2]["calibration"]
    assert cal["error"] == pytest.approx(0.15) and cal["level"] == "alert"
    assert (cal["predicted_rate"], cal["observed_rate"], cal["positives"]) == (0.5, pytest.approx(0.35), 70)
    assert [(b["rows"], b["mean_predicted"], b["observed_rate"]) for b in cal["bands"]] == \
        [(100, 0.0, 0.0), (100, 1.0, pytest.approx(0.7))]
    assert body["days"][0]["calibration"] is None and await alerts_of(database, t) == {}, "a backfill raises none"

    OUTCOMES[(t.id, "mon.batch", days[1])] = MonitoringOutcomes(scores=np.full(200, 0.5), labels=np.r_[
        np.ones(100), np.zeros(100)])
    job = await run_job(mon, t, {"day": BATCH_DAY.isoformat(), "family": "mon.batch"})
    assert job["state"] == "succeeded", job
    assert job["result"]["calibrated_late"] == 1, "day -2's labels arrived: its calibration is computed now"
    body = await report(mon, t, "mon.batch", **{"from": days[0].isoformat(), "to": BATCH_DAY.isoformat()})
    last = body["days"][-1]
    # 20 rows against a trailing mean of 200: a drop of 1 - 20 / 200 = 0.9, past the alert level 0.8.
    assert last["volume"] == {"rows": 20, "trailing_mean": 200.0, "drop": pytest.approx(0.9), "level": "alert"}
    assert body["days"][1]["calibration"]["error"] == 0.0, "p 0.5 in one band, observed half: calibrated"
    stored = await alerts_of(database, t)
    assert stored[("monitoring.volume_drop", "mon.batch/v1/volume")]["severity"] == "critical"
    assert ("monitoring.psi", "mon.batch/v1/feature/x") not in stored, "20 rows are fewer than min_rows"


# -- versions without a reference, validation ---------------------------------------------------


async def test_a_version_from_before_monitoring_says_so(mon, make_tenant, database):
    t = await make_tenant()
    await train(mon, t, "mon.live")
    # What a version trained by 0.3 looks like: no training distribution stored beside it.
    await database.execute("DELETE FROM model_reference_bins WHERE tenant_id = $1", t.id)
    r = await mon.client.post("/v1/models/mon.live/score", headers=t.headers, json={"x": 3.0, "c": "a"})
    assert r.status_code == 200
    job = await run_job(mon, t, {"day": TODAY.isoformat()})
    assert job["state"] == "succeeded", job
    body = await report(mon, t, "mon.live")
    (day,) = body["days"]
    assert (day["reference"], day["features"], day["score"], day["rows"]) == (False, [], None, 1)
    assert day["operational"]["requests"] == 1
    assert any("v1 was trained before monitoring" in n for n in body["notes"])
    assert body["versions"] == [{"version": 1, "active": True, "reference": False, "reference_rows": None,
                                 "days": 1}]


async def test_an_empty_range_says_how_to_fill_it(mon, tenant):
    body = await report(mon, tenant, "mon.live", **{"from": "2025-01-01", "to": "2025-01-31"})
    assert body["days"] == [] and (body["from"], body["to"]) == ("2025-01-01", "2025-01-31")
    assert any("backfill" in n for n in body["notes"])


@pytest.mark.parametrize(("query", "status", "field"), [
    ({"from": "2026-05-02", "to": "2026-05-01"}, 422, "query.from"),
    ({"from": "2024-01-01", "to": "2026-01-01"}, 422, "query.to"),
    ({"from": "yesterday"}, 422, "query.from"),
    ({"to": "2026-13-01"}, 422, "query.to"),
    ({"version": "0"}, 422, "query.version"),
])
async def test_monitoring_query_errors(mon, tenant, query, status, field):
    r = await mon.client.get("/v1/models/mon.live/monitoring", headers=tenant.headers, params=query)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field


@pytest.mark.parametrize(("payload", "field"), [
    ({"psi_warn": 0.3, "psi_alert": 0.2}, "$.psi_warn"),
    ({"psi_alert": 0.05}, "$.psi_alert"),  # below the default warning level, 0.1
    ({"bogus": 1}, "$.bogus"),
    ({"psi_warn": -1}, "$.psi_warn"),
    ({"min_rows": 0}, "$.min_rows"),
    ({"calibration_alert": "high"}, "$.calibration_alert"),
])
async def test_threshold_errors_name_the_field(mon, tenant, payload, field):
    r = await mon.client.put("/v1/models/mon.live/monitoring/thresholds", headers=tenant.headers, json=payload)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


async def test_unknown_families_versions_and_scopes(mon, tenant, make_tenant):
    r = await mon.client.get("/v1/models/nope.none/monitoring", headers=tenant.headers)
    assert r.status_code == 404 and r.json()["field"] == "$.family"
    r = await mon.client.post("/v1/models/mon.live/monitoring/backfill", headers=tenant.headers,
                              json={"from": "2026-01-01", "to": "2026-01-02", "version": 99})
    assert r.status_code == 404
    r = await mon.client.post("/v1/models/mon.live/monitoring/backfill", headers=tenant.headers,
                              json={"from": "2026-01-02", "to": "2026-01-01"})
    assert r.status_code == 422 and r.json()["field"] == "$.from"
    reader = await make_tenant(scopes=[Scope.READ])
    r = await mon.client.put("/v1/models/mon.live/monitoring/thresholds", headers=reader.headers, json={})
    assert r.status_code == 403
    assert (await mon.client.get("/v1/models/mon.live/monitoring", headers=reader.headers)).status_code == 200


def test_psi_floor_matches_the_documented_cap():
    # The module's promise: one empty bin of a tenth caps its term near 0.1 * ln(0.1 / 1e-4) = 0.69.
    term = (stats.EPSILON - 0.1) * math.log(stats.EPSILON / 0.1)
    assert term == pytest.approx(0.69, abs=0.01)


# -- the drives family: rows by data day, outcomes once the horizon has passed, the CLI ----------

DRIVES_END = date(2026, 6, 30)


@pytest.fixture(scope="module")
async def fleet(client, worker, make_tenant, database):
    """600 drives over 70 days, the drive model trained, five days 40 days before the end scored."""
    from flywheel.plugins.drives.features import build_features
    from flywheel.plugins.drives.fleet import generate_fleet, load_fleet

    t = await make_tenant()
    await load_fleet(database, t.id, generate_fleet(drives=600, days=70, end=DRIVES_END, seed=11))
    await build_features(database, t.id)
    r = await client.post("/v1/models/drives.h30/train", headers=t.headers,
                          json={"split": "time", "auto_activate": True, "holdout_fraction": 0.3,
                                "options": {"horizon": 14}})
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=t.headers)).json()
    assert job["state"] == "succeeded", job
    days = [DRIVES_END - timedelta(days=k) for k in range(40, 35, -1)]
    for day in days:
        await client.post("/v1/jobs", json={"name": "drives.score_fleet", "payload": {"day": day.isoformat()}},
                          headers=t.headers)
    await worker()
    return t, days


def test_drives_backfill_from_the_cli(fleet, flywheel_settings):
    import json

    from click.testing import CliRunner

    from flywheel.server.cli.main import cli

    t, days = fleet
    env = {"DATABASE_URL": flywheel_settings.database_url, "REDIS_URL": flywheel_settings.redis_url,
           "FLYWHEEL_STORE_URL": flywheel_settings.store_url, "FLYWHEEL_DATA_DIR": flywheel_settings.data_dir}
    span = ["--from", days[0].isoformat(), "--to", days[-1].isoformat()]
    out = CliRunner().invoke(cli, ["models", "monitoring", "drives.h30", "--tenant", t.name, *span, "--backfill",
                                   "--json"], env=env)
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert [d["day"] for d in body["days"]] == [d.isoformat() for d in days]
    for d in body["days"]:
        # Drift on the drives scored for that data day (not on the day they were scored: all today).
        assert d["source"] == "family" and 550 <= d["rows"] <= 600, (d["day"], d["rows"])
        assert {f["name"] for f in d["features"]} >= {"model", "age_days", "s5", "s197_d30"}
        # Trained on these very days: nothing has drifted.
        # The fleet's make-up is the same every day; 30-day changes are missing until 30 days of history exist
        # (the generator's first day is 69 days before the end), which training saw on only some of its days.
        psi = {f["name"]: f for f in d["features"]}
        assert psi["model"]["psi"] < 0.05 and d["score"]["psi"] >= 0
        no_history = date.fromisoformat(d["day"]) < DRIVES_END - timedelta(days=69 - 30)
        assert (psi["s5_d30"]["missing_rate"] == 1.0) if no_history else (psi["s5_d30"]["missing_rate"] < 0.05)
        assert 0 < psi["s5_d30"]["reference_missing_rate"] < 1
        crossed = {(b["rule"], b["what"]) for b in d["breaches"]}
        assert (("monitoring.missing_rate", "feature/s5_d30") in crossed) == no_history
        # 40 days before the end, every 14-day horizon is over: the outcomes are known.
        cal = d["calibration"]
        assert cal["rows"] == d["rows"] and 0 <= cal["error"] < 0.05 and cal["positives"] > 0
        assert sum(b["rows"] for b in cal["bands"]) == cal["rows"]
    assert body["thresholds"]["calibration_warn"] == 0.01, "the drives family's own default"
    table = CliRunner().invoke(cli, ["models", "monitoring", "drives.h30", "--tenant", t.name, *span], env=env)
    assert table.exit_code == 0 and days[0].isoformat() in table.output and "family" in table.output


async def test_drives_outcomes_wait_for_the_horizon(fleet, state):
    from flywheel.plugins.drives.monitoring import outcomes

    t, _ = fleet
    await state.db.fetchval("SELECT 1")
    assert await outcomes(state, t.id, "drives.h30", 1, DRIVES_END - timedelta(days=5)) is None, \
        "5 days before the end, a 14-day horizon is still open"
    assert await outcomes(state, t.id, "other.family", 1, DRIVES_END - timedelta(days=40)) is None


async def test_a_broken_hook_fails_the_job_naming_the_plugin_and_keeps_the_rest(mon, make_tenant, database):
    t = await make_tenant()
    await train(mon, t, "mon.live")
    await train(mon, t, "mon.batch")
    day = BATCH_DAY + timedelta(days=30)
    ROWS[(t.id, day)] = batch_rows(20)
    OUTCOMES[(t.id, "mon.batch", day)] = MonitoringOutcomes(scores=[0.5, 0.5], labels=[1, 2])
    job = await run_job(mon, t, {"day": day.isoformat()})
    assert job["state"] == "failed"
    assert "mon.batch v1" in job["error"] and "plugin 'mon'" in job["error"] and "labels must be 0 or 1" in job["error"]
    stored = await database.fetch("SELECT family FROM model_monitoring_days WHERE tenant_id = $1", t.id)
    assert [r["family"] for r in stored] == ["mon.live"], "the other family's figures are stored"


async def test_score_table_counts_served_rows_but_not_evaluations(mon, make_tenant, database):
    """A batch job's rows count as the version's traffic; an evaluation or backtest
    (`monitor=False`) does not, or a credit run's own test split would read as volume."""
    import pyarrow as pa

    from flywheel.server.plugin_api import score_table

    t = await make_tenant()
    assert await train(mon, t, "mon.live") == 1
    table = pa.table({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})

    async def rows() -> int:
        return await database.fetchval(
            "SELECT coalesce(sum(rows), 0) FROM model_scoring_counters "
            "WHERE tenant_id = $1 AND endpoint = 'score_table'", t.id)

    monitor = mon.state.models.monitor
    await score_table(mon.state, t.id, "mon.live", table, monitor=False)
    await monitor.flush()  # what this API process would have flushed within seconds
    assert await rows() == 0
    await score_table(mon.state, t.id, "mon.live", table)
    await monitor.flush()
    assert await rows() == 3
    # A worker has no periodic flush: score_table writes its counts before it returns.
    await monitor.stop()
    try:
        assert not monitor.flushing
        await score_table(mon.state, t.id, "mon.live", table)
        assert await rows() == 6
    finally:
        monitor.start()
