"""The typed event archive: one Parquet schema per event type, read by DuckDB.

Events of three types go through `POST /v1/events`, a day is compacted, and
DuckDB reads the tenant's `events/typed/` folder (the file store's own path)
as a hive-partitioned data set: `attributes.temp_c` is a DOUBLE column,
`type` and `dt` are partition columns to filter on, nested and list fields are
structs and lists, and `body` is still the raw event.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb
import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
from ingest_helpers import event

from flywheel.contracts.events import Event
from flywheel.server.ingest.archive import compact_day, parquet_key, typed_key
from flywheel.server.ingest.archive_schema import EventTable, Seen, arrow_schema


def store_root(state, tenant) -> Path:
    url = state.settings.store_url
    assert url.startswith("file://"), url
    return Path(url.removeprefix("file://")) / "tenants" / str(tenant.id)


def generic(ts: datetime, i: int) -> dict[str, Any]:
    # temp_c is sent as an int for some events and a float for others: one DOUBLE column.
    # `mixed` is an int or a string: a JSON-text column.
    attrs = {"temp_c": i if i % 3 == 0 else i + 0.25, "count": i, "host": f"web-{i % 2}", "ok": i % 2 == 0,
             "mixed": i if i % 2 else f"n{i}"}
    return event(ts=ts + timedelta(seconds=i), attributes=attrs)


def feedback(ts: datetime, i: int) -> dict[str, Any]:
    signal = {"kind": "thumbs", "value": "up"} if i % 2 else {"kind": "rating", "value": 4}
    return event("rlaas.feedback", ts=ts + timedelta(seconds=i), interaction_id=str(uuid.uuid4()),
                 signal=signal, attributes={"temp_c": 1.5})


def commit(ts: datetime, i: int) -> dict[str, Any]:
    return event("traces.commit", ts=ts + timedelta(seconds=i), seq=i + 1, sha=f"{i:07x}abc",
                 message=f"change {i}", files=[f"src/f{j}.py" for j in range(i % 3 + 1)])


async def post_day(client, tenant, day: date) -> dict[str, list[dict]]:
    ts = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    sent = {"core.generic": [generic(ts, i) for i in range(12)],
            "rlaas.feedback": [feedback(ts, i) for i in range(6)],
            "traces.commit": [commit(ts, i) for i in range(5)]}
    everything = [e for events in sent.values() for e in events]
    r = await client.post("/v1/events", json=everything, headers=tenant.headers)
    assert r.status_code == 200 and r.json()["accepted"] == len(everything), r.text
    return sent


async def test_duckdb_reads_typed_columns_from_the_hive_partitioned_archive(client, tenant, state):
    day = datetime.now(UTC).date() - timedelta(days=4)
    other_day = day - timedelta(days=1)
    sent = await post_day(client, tenant, day)
    other_ts = datetime(other_day.year, other_day.month, other_day.day, tzinfo=UTC)
    await client.post("/v1/events", json=[generic(other_ts, 1)], headers=tenant.headers)
    result = await compact_day(state, tenant.id, day)
    await compact_day(state, tenant.id, other_day)
    assert result["rows"] == 23 and result["typed"] == {t: typed_key(t, day) for t in sorted(sent)}

    folder = store_root(state, tenant) / "events" / "typed"
    db = duckdb.connect()
    db.execute(f"CREATE VIEW ev AS SELECT * FROM read_parquet('{folder}/**/*.parquet', hive_partitioning=true, "
               "union_by_name=true)")
    counts = dict(db.execute("SELECT type, count(*) FROM ev WHERE dt = ? GROUP BY type", [day]).fetchall())
    assert counts == {t: len(events) for t, events in sent.items()}
    assert db.execute("SELECT count(*) FROM ev WHERE dt = ?", [other_day]).fetchone() == (1,)

    generic_day = "FROM ev WHERE type = 'core.generic' AND dt = ?"
    types = db.execute(f"""SELECT DISTINCT typeof(attributes.temp_c), typeof(attributes.count), typeof(attributes.ok),
                       typeof(attributes.host), typeof(ts) {generic_day}""", [day]).fetchall()
    assert types == [("DOUBLE", "BIGINT", "BOOLEAN", "VARCHAR", "TIMESTAMP WITH TIME ZONE")]
    total = db.execute(f"SELECT sum(attributes.temp_c), sum(attributes.count) {generic_day}", [day]).fetchone()
    assert total == (sum(e["attributes"]["temp_c"] for e in sent["core.generic"]),
                     sum(e["attributes"]["count"] for e in sent["core.generic"]))
    hot = db.execute(f"SELECT count(*) {generic_day} AND attributes.temp_c > 6 AND attributes.ok", [day]).fetchone()
    assert hot == (sum(1 for e in sent["core.generic"] if e["attributes"]["temp_c"] > 6 and e["attributes"]["ok"]),)
    mixed = db.execute(f"SELECT event_id, attributes.mixed {generic_day}", [day]).fetchall()
    by_id = {e["event_id"]: e["attributes"]["mixed"] for e in sent["core.generic"]}
    assert dict(mixed) == {eid: v if isinstance(v, str) else str(v) for eid, v in by_id.items()}, "mixed: text"

    bodies = db.execute(f"SELECT body {generic_day} ORDER BY ts", [day]).fetchall()
    first = msgspec.json.decode(bodies[0][0])
    assert first["event_id"] == sent["core.generic"][0]["event_id"]
    assert first["attributes"] == sent["core.generic"][0]["attributes"], "body keeps the raw event"

    signals = db.execute("SELECT signal.kind, count(*) FROM ev WHERE type = 'rlaas.feedback' GROUP BY 1").fetchall()
    assert dict(signals) == {"thumbs": 3, "rating": 3}, "a nested Struct is a struct column"
    files = db.execute("SELECT seq, len(files), files[1] FROM ev WHERE type = 'traces.commit' ORDER BY seq").fetchall()
    assert files == [(e["seq"], len(e["files"]), e["files"][0]) for e in sent["traces.commit"]], "a list is a list"


async def test_recompaction_is_idempotent_and_the_day_file_keeps_its_layout(client, tenant, state):
    day = datetime.now(UTC).date() - timedelta(days=6)
    sent = await post_day(client, tenant, day)
    store = state.tenant_store(tenant.id)
    first = await compact_day(state, tenant.id, day)
    before = {key: await store.get(key) for key in [first["key"], *first["typed"].values()]}
    again = await compact_day(state, tenant.id, day)
    assert again == first
    assert {key: await store.get(key) for key in before} == before, "the same bytes"

    assert first["key"] == parquet_key(day)
    day_file = pq.read_table(io.BytesIO(before[first["key"]]))
    assert day_file.column_names == ["event_id", "type", "ts", "subject_id", "session_id", "received_at", "body"]
    assert sorted(set(day_file.column("type").to_pylist())) == sorted(sent)
    # Readers of the old path see the same data set as before: one schema, every type.
    old = store_root(state, tenant) / "events" / "parquet"
    count = duckdb.execute(f"SELECT count(DISTINCT type), count(*) FROM read_parquet('{old}/**/*.parquet', "
                       "hive_partitioning=true) WHERE dt = ?", [day]).fetchone()
    assert count == (3, sum(len(v) for v in sent.values()))


class Reading(msgspec.Struct):
    sensor: str
    value: float | None = None


class Probe(Event, tag="probe.sample", kw_only=True):
    when: datetime
    on: date
    level: Literal["low", "high"]
    readings: list[Reading] = []
    limits: dict[str, int] = {}
    origin: Reading | None = None
    body: str = ""  # the name of the raw-event column: stored as `body_field`


def test_struct_fields_map_to_arrow_types():
    table = EventTable(Probe)
    seen: dict[str, Seen] = {}
    for attrs in ({"a": 1, "b": {"c": "x"}, "tags": ["p"], "Key": 1},
                  {"a": 2.5, "b": {"c": "y", "d": True}, "tags": [], "key": 2, "": 3}):
        table.observe(seen, msgspec.json.encode({"attributes": attrs}))
    schema = arrow_schema(table.columns(seen))
    assert schema.field("when").type == pa.timestamp("us", tz="UTC")
    assert schema.field("on").type == pa.date32() and schema.field("level").type == pa.string()
    reading = pa.struct([("sensor", pa.string()), ("value", pa.float64())])
    assert schema.field("readings").type == pa.list_(reading) and schema.field("origin").type == reading
    assert schema.field("limits").type == pa.map_(pa.string(), pa.int64())
    assert schema.field("body_field").type == pa.string() and schema.field("body").type == pa.string()
    # Inferred: int+float widen to double, nested objects are structs; keys equal but for case,
    # and the empty key, cannot be struct fields (they stay in `body`).
    b, tags = pa.struct([("c", pa.string()), ("d", pa.bool_())]), pa.list_(pa.string())
    assert schema.field("attributes").type == pa.struct([("a", pa.float64()), ("b", b), ("tags", tags)])
    assert "attributes" not in arrow_schema(table.columns({})).names, "no attributes on the day: no column"
    columns = {c.name: c for c in table.columns(seen)}
    assert columns["when"].shape.convert("2026-01-02T03:04:05+01:00") == datetime(2026, 1, 2, 2, 4, 5, tzinfo=UTC)
    assert columns["limits"].shape.convert({"x": 1, "y": "no"}) == [("x", 1), ("y", None)], "a misfit is null"


def test_every_installed_event_type_has_a_schema_parquet_can_hold(state):
    assert len(state.contributions.event_types) >= 10
    for tag, (_, event_type) in state.contributions.event_types.items():
        table = EventTable(event_type)
        seen: dict[str, Seen] = {}
        table.observe(seen, msgspec.json.encode({"attributes": {"temp_c": 20.5}}))
        schema = arrow_schema(table.columns(seen))
        assert schema.field("attributes").type == pa.struct([("temp_c", pa.float64())]), tag
        buf = io.BytesIO()
        pq.write_table(schema.empty_table(), buf)  # Parquet refuses e.g. a struct with no fields
        assert pq.read_schema(io.BytesIO(buf.getvalue())).names == schema.names, tag


async def test_a_type_no_longer_registered_is_archived_with_the_envelope(client, tenant, state, database):
    # Rows of a plugin since uninstalled: no Struct to read, so the envelope and attributes.
    day = datetime.now(UTC).date() - timedelta(days=7)
    await client.post("/v1/events", json=[generic(datetime(day.year, day.month, day.day, tzinfo=UTC), 2)],
                      headers=tenant.headers)  # creates the day's partition
    ts = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    body = {"type": "gone.reading", "event_id": str(uuid.uuid4()), "ts": ts.isoformat(),
            "attributes": {"temp_c": 3.5}, "probe": {"id": 7}}
    await database.execute(
        """INSERT INTO events (tenant_id, event_id, day, ts, type, body, received_at)
           VALUES ($1, $2, $3, $4, 'gone.reading', $5::jsonb, now())""",
        tenant.id, uuid.UUID(body["event_id"]), day, ts, body)
    result = await compact_day(state, tenant.id, day)
    assert sorted(result["typed"]) == ["core.generic", "gone.reading"]
    path = store_root(state, tenant) / result["typed"]["gone.reading"]
    rows = duckdb.connect().execute(f"SELECT event_id, attributes.temp_c, body FROM read_parquet('{path}')").fetchall()
    assert [(r[0], r[1], msgspec.json.decode(r[2])) for r in rows] == [(body["event_id"], 3.5, body)]
