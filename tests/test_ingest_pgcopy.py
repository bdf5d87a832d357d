"""The hand-written binary COPY encoder against real Postgres: every column
of `events` comes back as encoded, NULLs, non-ASCII text and JSON included."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import msgspec

from flywheel.server.ingest.pgcopy import copy_source, encode_rows
from flywheel.server.ingest.rows import COLUMNS, EventRow


def rows() -> list[EventRow]:
    a, b = uuid.uuid4(), uuid.uuid4()
    received = datetime.now(UTC)
    later = received + timedelta(microseconds=1)
    base = datetime(2026, 3, 4, 23, 59, 59, 999_999, tzinfo=UTC)
    out = []
    for i in range(7):
        ts = base + timedelta(hours=i * 5, microseconds=i)  # crosses midnight: several days
        body = msgspec.json.encode({"i": i, "note": "naïve 東京 \\ \"quoted\"\n", "n": 10**15 + i})
        out.append(EventRow(
            a if i % 3 else b, uuid.uuid4(), ts.date(), ts, "core.generic" if i % 2 else "drives.smart_daily",
            None if i % 2 else f"subject-{i}-é", None if i % 3 == 0 else f"s-{i}", body,
            received if i < 4 else later))
    # A timestamp given in another zone, and one before 2000 (negative offsets).
    zone = timezone(timedelta(hours=-7))
    old = datetime(1999, 12, 31, 23, 0, tzinfo=zone)
    out.append(EventRow(a, uuid.uuid4(), old.astimezone(UTC).date(), old, "core.generic", "", "", b"{}", received))
    return out


async def test_encoded_rows_read_back_as_written(database):
    sent = rows()
    async with database.acquire() as conn:
        await conn.execute("CREATE TEMP TABLE copy_check (LIKE events)")
        try:
            # Two chunks, as two requests would hand them to one group commit.
            chunks = [encode_rows(sent[:3]), encode_rows(sent[3:])]
            await conn.copy_to_table("copy_check", source=copy_source(chunks), columns=COLUMNS, format="binary")
            got = await conn.fetch(f"SELECT {', '.join(COLUMNS)}, body::text AS json FROM copy_check")
        finally:
            await conn.execute("DROP TABLE copy_check")
    assert len(got) == len(sent)
    by_id = {r["event_id"]: r for r in got}
    for row in sent:
        back = by_id[row.event_id]
        assert back["tenant_id"] == row.tenant_id
        assert back["day"] == row.day and isinstance(back["day"], date)
        assert back["ts"] == row.ts, "to the microsecond, whatever the zone"
        assert back["type"] == row.type
        assert (back["subject_id"], back["session_id"]) == (row.subject_id, row.session_id)
        assert back["received_at"] == row.received_at
        assert msgspec.json.decode(back["json"]) == msgspec.json.decode(row.body)


def test_an_empty_list_encodes_to_nothing():
    assert encode_rows([]) == b""
