"""Serial numbers are free text: any of them opens in the API and the console once percent-encoded.

Routes use a `path` parameter (a serial may hold `/`), so these tests also pin that the static
routes beside it (`/v1/drives/fleet`, `/console/drives`, `/console/drives/list`) still win.
"""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from markupsafe import escape

from flywheel.server.testing import eventually

# The review's cases, then ones that routing would fold into another serial if it were read
# from the decoded path ("ZA//1" -> "ZA/1"), ones that start like a static route, and the longest.
SERIALS = ["ZA/1", "a b", "50%", "x?y#z", "ü/ß"]
EDGES = ["ZA//1", "/lead", "trail/", "fleet/x", "list/x", "%2F", "W/" + "9" * 98]
ALL = SERIALS + EDGES
DAY = datetime.now(UTC).date() - timedelta(days=10)  # recent: the ingest refuses events over a year old


def enc(serial: str) -> str:
    return quote(serial, safe="")


@pytest.fixture(scope="module")
async def fleet(client, make_tenant):
    """A tenant whose drives carry the serials above, streamed as one day's SMART records.

    Each drive's `smart_5_raw` is its index in ALL, so a test can tell one drive from another.
    """
    t = await make_tenant()
    events = [{"type": "drives.smart_daily", "event_id": str(uuid.uuid4()),
               "ts": f"{DAY}T23:00:00Z", "date": DAY.isoformat(), "serial_number": s,
               "model": "ST4000DM000", "smart": {"smart_5_raw": i}} for i, s in enumerate(ALL)]
    r = await client.post("/v1/events", json=events, headers=t.headers)
    assert r.json()["accepted"] == len(ALL), r.text
    async def all_listed() -> bool:  # the drives plugin's subscriber runs off the request path
        listed = (await client.get("/v1/drives", params={"limit": 100}, headers=t.headers)).json()
        return len(listed["items"]) == len(ALL)

    await eventually(all_listed, what="every drive listed")
    return t


@pytest.mark.parametrize("serial", ALL)
async def test_each_serial_opens_in_the_api(client, fleet, serial):
    r = await client.get(f"/v1/drives/{enc(serial)}", headers=fleet.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["drive"]["serial_number"] == serial
    assert [p["smart_5_raw"] for p in body["smart_history"]] == [ALL.index(serial)]


async def test_each_serial_opens_in_the_console(console_client, fleet):
    async with console_client(fleet.key) as c:
        for serial in ALL:
            r = await c.get(f"/console/drives/{enc(serial)}")
            assert r.status_code == 200, (serial, r.text[:300])
            assert f"<h1>Drive <code>{escape(serial)}</code></h1>" in r.text, serial


async def test_every_link_of_the_list_page_opens_its_drive(console_client, fleet):
    async with console_client(fleet.key) as c:
        page = await c.get("/console/drives/list", params={"sort": "serial"})
        assert page.status_code == 200
        table = page.text.split('data-testid="drives"', 1)[1]
        links = {html.unescape(text): html.unescape(href)
                 for href, text in re.findall(r'<td><a href="([^"]+)">([^<]*)</a></td>', table)}
        assert sorted(links) == sorted(ALL)
        for serial, href in links.items():
            assert href == f"/console/drives/{enc(serial)}"
            r = await c.get(href)
            assert r.status_code == 200, (serial, href)
            assert f"<code>{escape(serial)}</code>" in r.text


async def test_a_serial_nobody_has_is_404_in_both(client, console_client, fleet):
    # "ZA" and "ZA/1/" are near an existing serial; "ZA/1/" must not be folded into "ZA/1".
    missing = ["NO/SUCH drive", "ZA", "ZA/1/", "ü"]
    for serial in missing:
        r = await client.get(f"/v1/drives/{enc(serial)}", headers=fleet.headers)
        assert r.status_code == 404 and r.json()["code"] == "not_found", (serial, r.text)
    async with console_client(fleet.key) as c:
        for serial in missing:
            assert (await c.get(f"/console/drives/{enc(serial)}")).status_code == 404, serial


async def test_unencoded_slashes_still_reach_the_drive(client, fleet):
    """A hand-typed URL (`curl .../drives/ZA/1`) works too when the serial's slashes are single."""
    r = await client.get("/v1/drives/ZA/1", headers=fleet.headers)
    assert r.status_code == 200 and r.json()["drive"]["serial_number"] == "ZA/1"


async def test_serial_length_is_bounded_with_a_clear_error(client, console_client, fleet):
    longest = EDGES[-1]
    assert len(longest) == 100
    r = await client.get(f"/v1/drives/{enc(longest)}", headers=fleet.headers)
    assert r.status_code == 200 and r.json()["drive"]["serial_number"] == longest
    too_long = longest + "9"
    r = await client.get(f"/v1/drives/{enc(too_long)}", headers=fleet.headers)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "validation_error" and body["field"] == "path.serial"
    assert "1 to 100 characters" in body["message"]
    async with console_client(fleet.key) as c:
        page = await c.get(f"/console/drives/{enc(too_long)}")
        assert page.status_code == 422 and "1 to 100 characters" in page.text


async def test_static_routes_win_over_the_serial_path(client, console_client, fleet):
    """Litestar matches routes without path parameters before the `path` parameter's trie."""
    r = await client.get("/v1/drives/fleet", headers=fleet.headers)
    assert r.status_code == 200, r.text
    overview = r.json()
    assert overview["drives"] == len(ALL) and overview["as_of"] == DAY.isoformat()
    assert [g["model"] for g in overview["by_model"]] == ["ST4000DM000"]
    assert len((await client.get("/v1/drives/", headers=fleet.headers)).json()["items"]) == len(ALL)
    async with console_client(fleet.key) as c:
        fleet_page = await c.get("/console/drives")
        assert fleet_page.status_code == 200 and "<h1>Fleet</h1>" in fleet_page.text
        assert f'data-testid="active-drives">{len(ALL)}<' in fleet_page.text
        list_page = await c.get("/console/drives/list")
        assert list_page.status_code == 200 and "<h1>Drives</h1>" in list_page.text
        # A serial that only starts like a static route is still a drive.
        assert "<code>list/x</code>" in (await c.get(f"/console/drives/{enc('list/x')}")).text
    r = await client.get(f"/v1/drives/{enc('fleet/x')}", headers=fleet.headers)
    assert r.json()["drive"]["serial_number"] == "fleet/x"


def test_the_schema_documents_the_serial_bound(app):
    op = app.openapi_schema.paths["/v1/drives/{serial}"].get
    (param,) = op.parameters
    assert param.name == "serial" and (param.schema.min_length, param.schema.max_length) == (1, 100)
