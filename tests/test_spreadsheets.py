"""CSV exports never hand a spreadsheet a formula (server/spreadsheets.py)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

import pytest

from flywheel.contracts.tenants import Scope
from flywheel.server.spreadsheets import spreadsheet_safe


@pytest.mark.parametrize("text, cell", [
    ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'), ("+1+1", "'+1+1"),
    ("-2+3*cmd|' /C calc'!A0", "'-2+3*cmd|' /C calc'!A0"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"),
    ("-3.5", "-3.5"), ("+12", "+12"), ("1e-5", "1e-5"), ("drive-17", "drive-17"), ("", ""), (None, ""),
])
def test_formulas_become_text_and_numbers_stay(text, cell):
    assert spreadsheet_safe(text) == cell


@pytest.mark.asyncio(loop_scope="session")
async def test_the_console_events_csv_quotes_a_formula_subject(client, console_client, make_tenant):
    tenant = await make_tenant(scopes=[Scope.ADMIN])
    event = {"type": "core.generic", "event_id": str(uuid.uuid4()), "ts": datetime.now(UTC).isoformat(),
             "subject_id": '=HYPERLINK("http://evil.example","open me")', "attributes": {}}
    r = await client.post("/v1/events", json=[event], headers=tenant.headers)
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    async with console_client(tenant.key) as c:
        r = await c.get("/console/events/export", params={"format": "csv", "type": "core.generic"})
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text)))
    subjects = [row["subject_id"] for row in rows if row["event_id"] == event["event_id"]]
    assert subjects == ["'" + event["subject_id"]]
