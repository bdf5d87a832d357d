"""Drive features: built incrementally, equal to a full rebuild, correct around gaps; the fleet generator."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow.compute as pc
import pytest

from flywheel.plugins.drives.features import build_features
from flywheel.plugins.drives.fleet import generate_fleet, load_fleet

END = date(2026, 10, 31)


@pytest.fixture(scope="module")
def fleet():
    return generate_fleet(drives=300, days=45, end=END, seed=1)


async def snapshot(database, tenant_id) -> list[tuple]:
    rows = await database.fetch("SELECT * FROM drives_features WHERE tenant_id = $1 ORDER BY day, serial_number",
                                tenant_id)
    return [tuple(r.values()) for r in rows]


def test_failing_drives_degrade_before_they_fail(fleet):
    assert fleet.num_rows > 300 * 40
    failed = set(fleet.filter(pc.equal(fleet["failure"], 1))["serial_number"].to_pylist())
    assert 3 <= len(failed) <= 60, len(failed)
    rows = fleet.to_pylist()
    last = {}
    for r in rows:
        last[r["serial_number"]] = max(last.get(r["serial_number"], r["date"]), r["date"])
    for serial in failed:  # a failed drive reports nothing after its failure day
        days = [r for r in rows if r["serial_number"] == serial]
        assert max(r["date"] for r in days) == next(r["date"] for r in days if r["failure"] == 1)
    # Reallocated sectors at the last record: failing drives far above healthy ones.
    final = {r["serial_number"]: r["smart_5_raw"] for r in rows if r["date"] == last[r["serial_number"]]}
    sick = sorted(final[s] for s in failed)
    healthy = sorted(v for s, v in final.items() if s not in failed)
    assert sick[len(sick) // 2] > 10 * max(1, healthy[int(len(healthy) * 0.9)])


async def test_incremental_features_equal_a_full_rebuild(fleet, make_tenant, database):
    t = await make_tenant()
    cut = END - timedelta(days=15)
    early = fleet.filter(pc.less_equal(fleet["date"], cut))
    late = fleet.filter(pc.greater(fleet["date"], cut))
    assert await load_fleet(database, t.id, early) == early.num_rows
    first = await build_features(database, t.id)
    assert first["days"] == 30 and first["drive_days"] == early.num_rows
    assert (await build_features(database, t.id))["days"] == 0, "nothing new: nothing built"
    await load_fleet(database, t.id, late)
    second = await build_features(database, t.id)
    assert second["days"] == 15 and second["drive_days"] == late.num_rows
    incremental = await snapshot(database, t.id)

    rebuilt = await build_features(database, t.id, rebuild=True)
    assert rebuilt["days"] == 45 and rebuilt["drive_days"] == fleet.num_rows
    assert await snapshot(database, t.id) == incremental


async def test_feature_values_and_gaps(fleet, make_tenant, database):
    t = await make_tenant()
    await load_fleet(database, t.id, fleet)
    await build_features(database, t.id)
    by_key = {(r["serial_number"], r["date"]): r for r in fleet.to_pylist()}

    rows = await database.fetch("SELECT * FROM drives_features WHERE tenant_id = $1", t.id)
    assert len(rows) == fleet.num_rows
    checked_gap = checked_value = 0
    for r in rows:
        key = (r["serial_number"], r["day"])
        week_ago = by_key.get((r["serial_number"], r["day"] - timedelta(days=7)))
        month_ago = by_key.get((r["serial_number"], r["day"] - timedelta(days=30)))
        now = by_key[key]
        # Age is power-on hours in 30-day steps, whenever the drive was first imported.
        assert r["age_days"] == 30 * int(now["smart_9_raw"] // (24 * 30))
        assert r["s5"] == now["smart_5_raw"] and r["temperature"] == now["smart_194_raw"]
        if week_ago is None:
            assert r["s5_d7"] is None and r["temperature_d7"] is None
            checked_gap += 1
        else:
            assert r["s5_d7"] == now["smart_5_raw"] - week_ago["smart_5_raw"]
            assert r["s197_d7"] == now["smart_197_raw"] - week_ago["smart_197_raw"]
            assert r["temperature_d7"] == now["smart_194_raw"] - week_ago["smart_194_raw"]
            checked_value += 1
        if month_ago is not None:
            assert r["s187_d30"] == now["smart_187_raw"] - month_ago["smart_187_raw"]
    # Both kinds occur: the first week of the window and the days drives skipped.
    assert checked_gap > 300 * 7 and checked_value > 0


async def test_feature_job_through_the_worker(client, worker, make_tenant, database):
    t = await make_tenant()
    small = generate_fleet(drives=50, days=10, end=END, seed=2)
    await load_fleet(database, t.id, small)
    r = await client.post("/v1/jobs", json={"name": "drives.build_features", "payload": {}}, headers=t.headers)
    assert r.status_code == 202, r.text
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=t.headers)).json()
    assert job["state"] == "succeeded", job
    assert job["result"] == {"tenants": 1, "days": 10, "drive_days": small.num_rows}
    assert job["progress"]["current"] == 10 and job["progress"]["total"] == 10
    other = await make_tenant()
    assert await database.fetchval("SELECT count(*) FROM drives_features WHERE tenant_id = $1", other.id) == 0


async def test_a_late_day_refreshes_the_changes_of_the_days_after_it(fleet, make_tenant, database):
    t = await make_tenant()
    late = END - timedelta(days=20)
    early = fleet.filter(pc.not_equal(fleet["date"], late))
    await load_fleet(database, t.id, early)
    await build_features(database, t.id)
    week_after = late + timedelta(days=7)
    before = await database.fetchval("SELECT count(s5_d7) FROM drives_features WHERE tenant_id = $1 AND day = $2",
                                     t.id, week_after)
    assert before == 0, "no record 7 days earlier: no 7-day change yet"
    await load_fleet(database, t.id, fleet.filter(pc.equal(fleet["date"], late)))
    r = await build_features(database, t.id)
    assert r["days"] == 2, "the late day and the day 7 days after it (30 days after is past the data)"
    incremental = await snapshot(database, t.id)
    after = await database.fetchval("SELECT count(s5_d7) FROM drives_features WHERE tenant_id = $1 AND day = $2",
                                    t.id, week_after)
    assert after > 250
    await build_features(database, t.id, rebuild=True)
    assert await snapshot(database, t.id) == incremental, "the same as a full rebuild"
