"""Daily SMART records into `drives_smart_daily`: the bulk CSV path and the event path.

Both end in `write_rows`: COPY into a temporary staging table, then one
`INSERT ... ON CONFLICT DO NOTHING`, in the caller's transaction. A day
already stored for a drive is never changed by a second import, so
re-importing is a no-op and a file is written whole or not at all.

CSV files are parsed by pyarrow (plain or gzipped), with every SMART column
read as a number whatever the year's column set; a file whose header is not
the drive-stats format, or with a row that does not parse, is refused before
anything is written, with the file, the column and the value at fault.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from flywheel.plugins.drives.contracts import KEY_COLUMNS, ImportResult, SmartDaily
from flywheel.plugins.drives.csv_errors import explain_arrow_error, first_line

REQUIRED = ("date", "serial_number", "model", "capacity_bytes", "failure")
SMART_COLUMN = re.compile(r"^smart_\d{1,3}_(normalized|raw)$")
# Where a drive sits, in Backblaze's files from 2024 on (between `failure` and the SMART columns).
# Nothing here reads them: they are accepted and left out.
LOCATION_COLUMNS = frozenset({"datacenter", "cluster_id", "vault_id", "pod_id", "pod_slot_num",
                              "is_legacy_format"})
COLUMNS = ("tenant_id", "day", "serial_number", "model", "capacity_bytes", "failure", *KEY_COLUMNS, "smart", "source")
_json = msgspec.json.Encoder()


class DrivesImportError(ValueError):
    """A file that is not drive-stats data; the message names the file and what is wrong."""


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def read_header(path: Path) -> list[str]:
    try:
        with _open(path) as f:
            line = f.readline().decode("utf-8-sig").strip()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DrivesImportError(f"{path.name}: cannot read ({exc})") from None
    columns = [c.strip() for c in line.split(",")]
    missing = [c for c in REQUIRED if c not in columns]
    unknown = [c for c in columns if c not in REQUIRED and c not in LOCATION_COLUMNS and not SMART_COLUMN.match(c)]
    if missing or unknown:
        problems = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s) {', '.join(repr(c) for c in unknown[:5])}"] if unknown else [])
        raise DrivesImportError(f"{path.name}: not a drive-stats file: {'; '.join(problems)} (expected "
                                f"{', '.join(REQUIRED)}, then smart_N_normalized / smart_N_raw columns)")
    if len(set(columns)) != len(columns):
        raise DrivesImportError(f"{path.name}: repeated column names in the header")
    return columns


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_csv(path: Path) -> pa.Table:
    """The file as an Arrow table with typed columns, or DrivesImportError."""
    columns = read_header(path)
    types = {"date": pa.date32(), "serial_number": pa.string(), "model": pa.string(),
             "capacity_bytes": pa.int64(), "failure": pa.int8()}
    types.update({c: pa.float64() for c in columns if SMART_COLUMN.match(c)})
    try:
        kept = [c for c in columns if c not in LOCATION_COLUMNS]
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=False, include_columns=kept))
    except pa.ArrowInvalid as exc:
        # pyarrow names the column's position and the value, or the short row: find the line.
        raise DrivesImportError(explain_arrow_error(path, columns, str(exc))) from None
    except OSError as exc:
        raise DrivesImportError(f"{path.name}: {exc}") from None
    _check(table, path.name)
    return table


def _check(table: pa.Table, name: str) -> None:
    """Refuse the file at its first bad row, naming the line and the column."""
    if table.num_rows == 0:
        raise DrivesImportError(f"{name}: no rows")
    problems = [(column, pc.is_null(table.column(column)), "no value") for column in ("date", "failure")]
    problems += [(column, pc.equal(pc.utf8_length(table.column(column)), 0), "an empty value")
                 for column in ("serial_number", "model")]
    problems.append(("failure", pc.invert(pc.is_in(table.column("failure"), pa.array([0, 1], pa.int8()))),
                     "a value other than 0 or 1"))
    for column, mask, what in problems:
        bad = pc.sum(mask).as_py() or 0
        if bad:
            line = first_line(mask.fill_null(False).to_pylist())
            more = f" ({bad} rows in all)" if bad > 1 else ""
            raise DrivesImportError(f"{name} line {line}, column {column}: {what}{more}")


def table_rows(table: pa.Table, tenant_id: UUID, source: str) -> list[tuple]:
    """Arrow table -> records in COLUMNS order (`smart` as JSON text of the other non-empty SMART values)."""
    n = table.num_rows
    names = table.column_names
    key = [table.column(c).to_pylist() if c in names else [None] * n for c in KEY_COLUMNS]
    others = [(c, table.column(c).to_pylist()) for c in names if SMART_COLUMN.match(c) and c not in KEY_COLUMNS]
    smart = []
    for i in range(n):
        smart.append(_json.encode({c: v[i] for c, v in others if v[i] is not None}).decode())
    days = table.column("date").to_pylist()
    serials = table.column("serial_number").to_pylist()
    models = table.column("model").to_pylist()
    capacity = table.column("capacity_bytes").to_pylist()
    failure = [bool(f) for f in table.column("failure").to_pylist()]
    return [(tenant_id, days[i], serials[i], models[i], capacity[i], failure[i], *(k[i] for k in key), smart[i],
             source) for i in range(n)]


def event_rows(events: Iterable[Any], tenant_id: UUID) -> list[tuple]:
    out = []
    for e in events:
        if not isinstance(e, SmartDaily):
            continue
        others = {k: v for k, v in e.smart.items() if k not in KEY_COLUMNS and v is not None}
        out.append((tenant_id, e.date, e.serial_number, e.model, e.capacity_bytes, e.failure,
                    *(e.smart.get(c) for c in KEY_COLUMNS), _json.encode(others).decode(), "event"))
    return out


async def write_rows(conn, rows: list[tuple]) -> int:
    """Insert records (COLUMNS order) that are not stored yet; returns how many were new. Call in a transaction."""
    if not rows:
        return 0
    # `smart` is staged as text (JSON) and cast on insert: COPY needs no jsonb codec that way.
    await conn.execute(
        f"""CREATE TEMP TABLE IF NOT EXISTS drives_staging (
              tenant_id uuid, day date, serial_number text, model text, capacity_bytes bigint, failure boolean,
              {', '.join(f'{c} double precision' for c in KEY_COLUMNS)}, smart text, source text
            ) ON COMMIT DELETE ROWS""")
    await conn.copy_records_to_table("drives_staging", records=rows, columns=list(COLUMNS))
    status = await conn.execute(
        f"""INSERT INTO drives_smart_daily ({', '.join(COLUMNS)})
            SELECT {', '.join('smart::jsonb' if c == 'smart' else c for c in COLUMNS)} FROM drives_staging
            ON CONFLICT (tenant_id, day, serial_number) DO NOTHING""")
    # The inventory follows: the newest record's model and capacity, the span of days, the failure day.
    await conn.execute(
        """INSERT INTO drives_inventory (tenant_id, serial_number, model, capacity_bytes, first_day, last_day,
                                         failure_day)
           SELECT DISTINCT ON (tenant_id, serial_number) tenant_id, serial_number, model, capacity_bytes,
                  min(day) OVER w, max(day) OVER w, min(day) FILTER (WHERE failure) OVER w
           FROM drives_staging
           WINDOW w AS (PARTITION BY tenant_id, serial_number)
           ORDER BY tenant_id, serial_number, day DESC
           ON CONFLICT (tenant_id, serial_number) DO UPDATE SET
               model = CASE WHEN EXCLUDED.last_day >= drives_inventory.last_day
                            THEN EXCLUDED.model ELSE drives_inventory.model END,
               capacity_bytes = CASE WHEN EXCLUDED.last_day >= drives_inventory.last_day
                                     THEN EXCLUDED.capacity_bytes ELSE drives_inventory.capacity_bytes END,
               first_day = LEAST(drives_inventory.first_day, EXCLUDED.first_day),
               last_day = GREATEST(drives_inventory.last_day, EXCLUDED.last_day),
               failure_day = LEAST(drives_inventory.failure_day, EXCLUDED.failure_day)""")
    await conn.execute("TRUNCATE drives_staging")
    return int(status.split()[-1])


async def import_file(db, tenant_id: UUID, path: Path) -> ImportResult:
    """Import one drive-stats CSV file (plain or .gz) for a tenant, whole or not at all."""
    sha = file_sha256(path)
    seen = await db.fetchrow("SELECT first_day, last_day, rows, failures FROM drives_imports "
                             "WHERE tenant_id = $1 AND sha256 = $2", tenant_id, sha)
    if seen is not None:
        return ImportResult(file=path.name, sha256=sha, days=_days(seen["first_day"], seen["last_day"]),
                            rows=seen["rows"], inserted=0, failures=seen["failures"], skipped=True)
    table = read_csv(path)
    rows = table_rows(table, tenant_id, path.name)
    days = sorted(set(table.column("date").to_pylist()))
    failures = int(pc.sum(table.column("failure")).as_py() or 0)
    async with db.acquire() as conn, conn.transaction():
        inserted = await write_rows(conn, rows)
        await conn.execute(
            """INSERT INTO drives_imports (tenant_id, sha256, file_name, first_day, last_day, rows, inserted, failures)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
            tenant_id, sha, path.name, days[0], days[-1], len(rows), inserted, failures)
    return ImportResult(file=path.name, sha256=sha, days=days, rows=len(rows), inserted=inserted, failures=failures)


def _days(first: date, last: date) -> list[date]:
    from datetime import timedelta

    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
