"""One drive's score history: `GET /v1/drives/{serial}/scores` (paged, newest first) and its CSV.

Reads `drives_risk`, one row per drive and scored day, through its
(tenant, serial, day) index, so a drive's whole history is one index range.
"""

from __future__ import annotations

import csv
import io
from datetime import date

from litestar import Response

from flywheel.plugins.drives.contracts import DriveScorePage, RiskPoint
from flywheel.server.plugin_api import NotFound, decode_cursor, encode_cursor, spreadsheet_safe

CSV_COLUMNS = ["day", "serial_number", "risk", "margin", "band", "model_version"]


async def require_drive(db, t, serial: str) -> None:
    if await db.fetchval("SELECT 1 FROM drives_inventory WHERE tenant_id = $1 AND serial_number = $2",
                         t, serial) is None:
        raise NotFound("no such drive")  # never echo the id: it looks the same whoever owns it


async def drive_scores(db, t, serial: str, limit: int, cursor: str | None) -> DriveScorePage:
    await require_drive(db, t, serial)
    before = decode_cursor(cursor, date)[0] if cursor else None
    rows = await db.fetch(
        """SELECT day, risk, margin, band, model_version FROM drives_risk
           WHERE tenant_id = $1 AND serial_number = $2 AND ($3::date IS NULL OR day < $3)
           ORDER BY day DESC LIMIT $4""", t, serial, before, limit + 1)
    items = [RiskPoint(day=r["day"], risk=float(r["risk"]), model_version=r["model_version"], margin=r["margin"],
                       band=r["band"]) for r in rows[:limit]]
    more = len(rows) > limit
    return DriveScorePage(serial_number=serial, items=items,
                          next_cursor=encode_cursor(items[-1].day) if more else None)


async def drive_scores_csv(db, t, serial: str) -> Response[bytes]:
    """The whole history, newest first, as the paged list orders it."""
    await require_drive(db, t, serial)
    rows = await db.fetch("SELECT day, risk, margin, band, model_version FROM drives_risk "
                          "WHERE tenant_id = $1 AND serial_number = $2 ORDER BY day DESC", t, serial)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:  # repr: every float64 digit, as in the day's CSV
        w.writerow([r["day"], spreadsheet_safe(serial), repr(r["risk"]), repr(r["margin"]), r["band"],
                    r["model_version"]])
    # The serial is free text: the file name keeps only what is safe in a header.
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in serial)
    return Response(out.getvalue().encode(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="drive-{safe}-scores.csv"'})
