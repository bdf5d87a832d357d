"""The drives plugin's data: Backblaze drive-stats CSV import and the `drives.smart_daily` event."""

from __future__ import annotations

import asyncio
import csv
import gzip
import shutil
import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest

from flywheel.plugins.drives.daily import DrivesImportError, import_file
from flywheel.server.testing import eventually


def expected_counts(path) -> tuple[int, int]:
    """Rows and failures of a file, read with the csv module (independently of the importer)."""
    with gzip.open(path, "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    return len(rows), sum(r["failure"] == "1" for r in rows)


@pytest.fixture(scope="module")
def backblaze(shared_data):
    files = sorted((shared_data / "backblaze").glob("*.csv.gz"))
    assert len(files) == 5
    return files


async def counts(database, tenant_id) -> dict[date, tuple[int, int]]:
    rows = await database.fetch(
        "SELECT day, count(*) AS n, count(*) FILTER (WHERE failure) AS f FROM drives_smart_daily "
        "WHERE tenant_id = $1 GROUP BY day ORDER BY day", tenant_id)
    return {r["day"]: (r["n"], r["f"]) for r in rows}


async def test_real_sample_files_import_whole_and_once(backblaze, make_tenant, database, open_tmp):
    t = await make_tenant()
    results = [await import_file(database, t.id, path) for path in backblaze]
    stored = await counts(database, t.id)
    for path, result in zip(backblaze, results):
        day = date.fromisoformat(path.name[:10])
        rows, failures = expected_counts(path)
        assert result.days == [day] and result.rows == rows == result.inserted and result.failures == failures
        assert stored[day] == (rows, failures), path.name
    assert sum(f for _, f in stored.values()) == 1, "the 2013-04-10 file holds the only failure"

    # Typed columns and the rest of the row both survive.
    row = await database.fetchrow(
        "SELECT * FROM drives_smart_daily WHERE tenant_id = $1 AND day = '2013-04-10' AND serial_number = $2",
        t.id, "MJ0351YNG9Z0XA")
    assert row["model"] == "Hitachi HDS5C3030ALA630" and row["capacity_bytes"] == 3000592982016
    assert row["smart_9_raw"] == 4031 and row["smart_5_raw"] == 0 and row["smart_194_raw"] == 26
    assert row["smart"]["smart_1_raw"] == 0 and row["source"] == "2013-04-10.csv.gz"

    # Importing again changes nothing: the same file is skipped, the same data under another name adds nothing.
    again = await import_file(database, t.id, backblaze[0])
    assert again.skipped and again.inserted == 0
    plain = open_tmp / "2013-04-10.csv"
    with gzip.open(backblaze[0], "rb") as src, plain.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    copy = await import_file(database, t.id, plain)
    assert not copy.skipped and copy.rows == results[0].rows and copy.inserted == 0
    assert await counts(database, t.id) == stored

    other = await make_tenant()
    assert await counts(database, other.id) == {}, "imports are per tenant"


@pytest.mark.parametrize("content, message", [
    ("day,serial,model\n2013-04-10,A,B\n", "not a drive-stats file: missing column(s) date, serial_number"),
    ("date,serial_number,model,capacity_bytes,failure,temperature\n", "unknown column(s) 'temperature'"),
    ("date,serial_number,model,capacity_bytes,failure,smart_5_raw\n2013-04-10,A,M,1,0,3\n2013-04-10,B,M,1,0,abc\n",
     "line 3, column smart_5_raw: invalid value 'abc' (expected a number)"),
    ("date,serial_number,model,capacity_bytes,failure,smart_5_raw\n2013-04-10,A,M,1,0,3\n2013-04-10,B\n",
     "line 3: 2 value(s) where the header has 6 columns"),
    ("date,serial_number,model,capacity_bytes,failure\n2013-04-10,A,M,1,0\n2013-04-10,B,M,1,2\n",
     "line 3, column failure: a value other than 0 or 1"),
    ("date,serial_number,model,capacity_bytes,failure\n2013-04-10,,M,1,0\n2013-04-10,,M,1,0\n",
     "line 2, column serial_number: an empty value (2 rows in all)"),
    ("date,serial_number,model,capacity_bytes,failure\nyesterday,A,M,1,0\n",
     "line 2, column date: invalid value 'yesterday' (expected a date (YYYY-MM-DD))"),
    ("date,serial_number,model,capacity_bytes,failure\n", "no rows"),
])
async def test_bad_files_are_refused_and_nothing_is_written(content, message, make_tenant, database, open_tmp):
    t = await make_tenant()
    good = "date,serial_number,model,capacity_bytes,failure\n2013-04-09,OK1,M,1,0\n"
    (open_tmp / "good.csv").write_text(good)
    await import_file(database, t.id, open_tmp / "good.csv")
    path = open_tmp / f"bad-{uuid.uuid4().hex[:6]}.csv"
    path.write_text(content)
    with pytest.raises(DrivesImportError) as err:
        await import_file(database, t.id, path)
    assert path.name in str(err.value) and message in str(err.value)
    assert await counts(database, t.id) == {date(2013, 4, 9): (1, 0)}, "the good file stays, nothing of the bad one"
    assert await database.fetchval("SELECT count(*) FROM drives_imports WHERE tenant_id = $1", t.id) == 1


async def test_cli_imports_with_progress_and_refuses_bad_files(backblaze, make_tenant, database, flywheel_settings,
                                                             open_tmp):
    from click.testing import CliRunner

    from flywheel.server.cli.main import cli

    t = await make_tenant()
    folder = open_tmp / "bb"
    folder.mkdir()
    shutil.copy(backblaze[1], folder)
    (folder / "broken.csv").write_text("nope\n")
    env = {"DATABASE_URL": flywheel_settings.database_url, "REDIS_URL": flywheel_settings.redis_url,
           "FLYWHEEL_STORE_URL": flywheel_settings.store_url, "FLYWHEEL_DATA_DIR": flywheel_settings.data_dir}
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["drives", "import", str(folder), "--tenant", t.name],
                                     env=env)
    assert result.exit_code == 1, result.output
    rows, _ = expected_counts(backblaze[1])
    assert f"2013-04-11.csv.gz: {rows:,} new of {rows:,} rows" in result.output
    assert "refused broken.csv: not a drive-stats file" in result.output
    assert "1 file(s) refused" in result.output
    again = await asyncio.to_thread(CliRunner().invoke, cli, ["drives", "import", str(backblaze[1]), "--tenant",
                                                              t.name], env=env)
    assert again.exit_code == 0 and "already imported" in again.output
    assert await counts(database, t.id) == {date(2013, 4, 11): (rows, 0)}


async def test_streamed_daily_records_join_the_table(client, tenant, database):
    day = datetime.now(UTC).date() - timedelta(days=10)  # recent: the ingest refuses events over a year old
    ts = datetime.combine(day, time(23, 59), tzinfo=UTC).isoformat()
    events = [{"type": "drives.smart_daily", "event_id": str(uuid.uuid4()), "ts": ts, "date": day.isoformat(),
               "serial_number": f"SN{i}", "model": "ST4000DM000", "capacity_bytes": 4000787030016,
               "failure": i == 2, "smart": {"smart_5_raw": i * 8, "smart_194_raw": 30 + i, "smart_1_normalized": 100}}
              for i in range(3)]
    bad = {**events[0], "event_id": str(uuid.uuid4()), "smart": {"temperature": 3}}
    r = await client.post("/v1/events", json=[*events, bad], headers=tenant.headers)
    body = r.json()
    assert body["accepted"] == 3 and body["rejected"] == 1 and body["errors"][0]["field"].startswith("$[3].smart")
    stored = await eventually(lambda: counts(database, tenant.id), what="the subscriber")  # off the request path
    assert stored == {day: (3, 1)}
    row = await database.fetchrow("SELECT * FROM drives_smart_daily WHERE tenant_id = $1 AND serial_number = 'SN2'",
                                  tenant.id)
    assert row["smart_5_raw"] == 16 and row["smart_194_raw"] == 32 and row["smart"] == {"smart_1_normalized": 100}
    assert row["source"] == "event" and row["failure"] is True


async def test_records_the_subscriber_missed_are_synced_from_the_events_table(client, worker, tenant, database):
    ts = datetime.now(UTC) - timedelta(hours=2)
    day = ts.date()
    events = [{"type": "drives.smart_daily", "event_id": str(uuid.uuid4()), "ts": ts.isoformat(),
               "date": day.isoformat(), "serial_number": f"SYNC{i}", "model": "ST4000DM000",
               "smart": {"smart_5_raw": i}} for i in range(5)]
    assert (await client.post("/v1/events", json=events, headers=tenant.headers)).json()["accepted"] == 5
    async def all_stored() -> bool:
        return (await counts(database, tenant.id)).get(day) == (5, 0)

    await eventually(all_stored, what="the subscriber")
    # As if the subscriber had been dropped under backpressure for two of them:
    await database.execute(
        "DELETE FROM drives_smart_daily WHERE tenant_id = $1 AND serial_number IN ('SYNC1', 'SYNC3')", tenant.id)
    r = await client.post("/v1/jobs", json={"name": "drives.sync_events", "payload": {"hours": 6}},
                          headers=tenant.headers)
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=tenant.headers)).json()
    assert job["state"] == "succeeded" and job["result"] == {"tenants": 1, "events": 5, "added": 2}, job
    assert (await counts(database, tenant.id))[day] == (5, 0)
    r = await client.post("/v1/jobs", json={"name": "drives.sync_events", "payload": {}}, headers=tenant.headers)
    await worker()
    again = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=tenant.headers)).json()
    assert again["result"]["added"] == 0, "a second run changes nothing"


async def test_backblaze_2024_location_columns_are_accepted_and_left_out(make_tenant, database, open_tmp):
    """From 2024 on, Backblaze's files say where each drive sits, between `failure` and SMART."""
    t = await make_tenant()
    path = open_tmp / "2024-04-01.csv"
    path.write_text("date,serial_number,model,capacity_bytes,failure,datacenter,cluster_id,vault_id,pod_id,"
                    "pod_slot_num,is_legacy_format,smart_1_raw,smart_5_raw\n"
                    "2024-04-01,LOC1,M,1,0,phx1,0,1042,3,17,False,7,4\n"
                    "2024-04-01,LOC2,M,1,1,sac0,1,1043,,,True,,\n")
    result = await import_file(database, t.id, path)
    assert result.rows == 2 and result.inserted == 2
    assert await counts(database, t.id) == {date(2024, 4, 1): (2, 1)}
    row = await database.fetchrow(
        "SELECT smart, smart_5_raw FROM drives_smart_daily WHERE tenant_id = $1 AND serial_number = 'LOC1'", t.id)
    assert row["smart_5_raw"] == 4 and "smart_1_raw" in row["smart"] and "datacenter" not in row["smart"]
