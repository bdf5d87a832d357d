"""`flywheel drives fetch`: Backblaze's quarterly drive-stats archives, downloaded, verified and imported.

The steps run in an order that leaves nothing half done: every archive of
the range is downloaded (fetch_http: resumable), then every one is verified
whole (fetch_archive: each member's CRC-32, safe names, size and count
limits, and the SHA-256 when one is expected), and only then is anything
imported. A damaged archive stops the run before the first row is written,
and is removed so that the next run downloads it again. Importing goes one
daily file at a time through `daily.import_file`, the path `drives import`
takes: the same validation, each file whole or not at all, a file imported
before skipped. The archives stay in `--dest`, so a second run downloads
nothing and imports nothing new. The CLI (fetch_cli.py) then builds features.
"""

from __future__ import annotations

import asyncio
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import NamedTuple
from uuid import UUID

import httpx

from flywheel.plugins.drives.contracts import ImportResult
from flywheel.plugins.drives.daily import DrivesImportError, import_file
from flywheel.plugins.drives.fetch_archive import (
    DEFAULT_LIMITS,
    CorruptArchive,
    Limits,
    Verified,
    extract_member,
    verify_archive,
)
from flywheel.plugins.drives.fetch_http import SHA256_HEX, Download, download, fetch_sha256
from flywheel.plugins.drives.fetch_plan import (
    FIRST_QUARTERLY_YEAR,
    BadOption,
    FetchError,
    Quarter,
    archive_url,
    check_pattern,
    parse_quarter,
    quarter_range,
)
from flywheel.plugins.drives.settings import DEFAULT_FETCH_URL, fetch_url_pattern


class FetchPlan(NamedTuple):
    quarters: list[Quarter]
    pattern: str
    dest: Path
    sha256: str | None = None  # the expected digest of the one archive (--sha256)
    sidecar: bool = False  # expect URL.sha256 beside each archive

    def url(self, quarter: Quarter) -> str:
        return archive_url(self.pattern, quarter)


class Fetched(NamedTuple):
    quarter: Quarter
    url: str
    download: Download
    expected_sha256: str | None


class FileOutcome(NamedTuple):
    archive: str
    name: str
    result: ImportResult | None
    refused: str | None  # why import_file refused the file


def make_plan(first: str, last: str | None, *, dest: Path, url_pattern: str | None = None,
              sha256: str | None = None, sidecar: bool = False, environ: Mapping[str, str] | None = None,
              today: date | None = None) -> FetchPlan:
    """The checked options, or BadOption naming the one at fault; nothing is fetched yet."""
    start = parse_quarter(first, "--from", today=today)
    quarters = quarter_range(start, parse_quarter(last, "--to", today=today) if last else start)
    pattern, source = (url_pattern, "--url-pattern") if url_pattern is not None else fetch_url_pattern(environ)
    check_pattern(pattern, source)
    if pattern == DEFAULT_FETCH_URL and start.year < FIRST_QUARTERLY_YEAR:
        raise BadOption("--from", f"Backblaze publishes quarterly archives from {FIRST_QUARTERLY_YEAR}Q1; "
                                  f"{start.year} comes as one archive for the year (data_{start.year}.zip): "
                                  "download it and use `flywheel drives import`")
    if sha256 is not None:
        if not SHA256_HEX.fullmatch(sha256):
            raise BadOption("--sha256", "64 hex digits, as sha256sum prints them")
        if len(quarters) != 1:
            raise BadOption("--sha256", f"one digest checks one archive, and {first}..{last} spans "
                                        f"{len(quarters)} quarters: give one quarter, or use --sidecar")
    return FetchPlan(quarters, pattern, dest, sha256.lower() if sha256 else None, sidecar)


async def download_all(plan: FetchPlan, http: httpx.AsyncClient, *, retries: int = 3, backoff_s: float = 1.0,
                       on_start: Callable[[Quarter, str], Callable[[int, int | None], None] | None] | None = None,
                       on_retry: Callable[[str], None] | None = None) -> list[Fetched]:
    """Every archive of the plan into `plan.dest` (kept there).

    `on_start(quarter, url)` is called before each download (not for an archive already there) and
    returns its progress callback.
    """
    plan.dest.mkdir(parents=True, exist_ok=True)
    out = []
    for quarter in plan.quarters:
        url = plan.url(quarter)
        try:
            expected = plan.sha256 or (await fetch_sha256(http, url) if plan.sidecar else None)
            target = plan.dest / quarter.archive_name
            progress = on_start(quarter, url) if on_start is not None and not target.is_file() else None
            fetched = await download(http, url, target, retries=retries,
                                     backoff_s=backoff_s, on_progress=progress, on_retry=on_retry)
        except FetchError as exc:
            hint = " (not published yet, or not at this address?)" if "HTTP 404" in str(exc) else ""
            raise FetchError(f"{quarter}: {exc}{hint}; nothing was imported") from None
        out.append(Fetched(quarter, url, fetched, expected))
    return out


def verify_all(fetched: list[Fetched], *, limits: Limits = DEFAULT_LIMITS,
               on_start: Callable[[Fetched], Callable[[int, int], None] | None] | None = None) -> list[Verified]:
    """Verify every archive (blocking: run it in a thread); a damaged one is removed and refused."""
    out = []
    for f in fetched:
        progress = on_start(f) if on_start is not None else None
        try:
            out.append(verify_archive(f.download.path, limits=limits, sha256=f.expected_sha256,
                                      on_progress=progress))
        except CorruptArchive as exc:
            f.download.path.unlink(missing_ok=True)
            raise CorruptArchive(f"{f.quarter}: {exc}; nothing was imported, and the file was removed so that "
                                 "the next run downloads it again") from None
    return out


async def import_archives(db, tenant_id: UUID, fetched: list[Fetched], verified: list[Verified], *,
                          on_file: Callable[[FileOutcome], None] | None = None) -> list[FileOutcome]:
    """Import the daily files of verified archives, one unpacked file at a time (then deleted)."""
    outcomes = []
    for f, v in zip(fetched, verified, strict=True):
        path = f.download.path
        with (tempfile.TemporaryDirectory(dir=path.parent, prefix=f".unpack-{path.stem}-") as tmp,
              zipfile.ZipFile(path) as archive):
            for info in v.daily:
                unpacked = await asyncio.to_thread(extract_member, archive, info, Path(tmp))
                try:
                    outcome = FileOutcome(path.name, unpacked.name, await import_file(db, tenant_id, unpacked), None)
                except DrivesImportError as exc:
                    outcome = FileOutcome(path.name, unpacked.name, None, str(exc))
                finally:
                    unpacked.unlink(missing_ok=True)
                outcomes.append(outcome)
                if on_file is not None:
                    on_file(outcome)
    return outcomes
