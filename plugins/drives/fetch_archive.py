"""Checking and unpacking a downloaded drive-stats archive, before anything of it is imported.

`verify_archive` reads every member through once: the zip's own CRC-32s
(zipfile checks each at the end of its member), the sizes the directory
declares (zipfile never returns more than a member's declared size, so the
limits on declared sizes bound what unpacking writes), and the SHA-256 of
the whole file. A member whose name is absolute, holds `..`, a backslash or
a drive letter, is a link or is encrypted refuses the whole archive: an
archive built like that is not Backblaze's. Only `YYYY-MM-DD.csv` members
(in any folder) are daily files; the rest (folders, `__MACOSX/._*`, notes)
are left in the zip. `extract_member` writes one daily file into a fresh
folder by its base name, so importing needs the disk space of one day only.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from flywheel.plugins.drives.fetch_plan import FetchError

GiB = 1 << 30
DAILY = re.compile(r"\d{4}-\d{2}-\d{2}\.csv")
CHUNK = 1 << 20


class CorruptArchive(FetchError):
    """The archive is damaged, unsafe or too large; the message names the archive and the member."""


class Limits(NamedTuple):
    members: int = 5_000  # entries of any kind; a quarter has ~90 daily files (x2 with __MACOSX copies)
    daily_files: int = 400  # a year's archive (2013-2015) holds up to 366
    member_bytes: int = 4 * GiB  # one day of a 2025 fleet is ~100 MB unpacked
    total_bytes: int = 200 * GiB  # unpacked daily files of one archive


DEFAULT_LIMITS = Limits()


class Verified(NamedTuple):
    daily: list[zipfile.ZipInfo]  # by day
    skipped: list[str]  # member names that are not daily files (folders not counted)
    unpacked_bytes: int
    sha256: str


def verify_archive(path: Path, *, limits: Limits = DEFAULT_LIMITS, sha256: str | None = None,
                   on_progress: Callable[[int, int], None] | None = None) -> Verified:
    """Check the archive at `path` through and through, or raise CorruptArchive saying why.

    `on_progress(done, total)` counts bytes hashed plus bytes unpacked (in memory, then dropped).
    """
    name = path.name
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            daily, skipped = _plan(name, members, limits)  # refuse an unsafe archive before reading it all
            count = _Counter(on_progress, path.stat().st_size + sum(i.file_size for i in members))
            digest = file_sha256(path, count)
            if sha256 is not None and digest != sha256.lower():
                raise CorruptArchive(f"{name}: SHA-256 {digest} is not the expected {sha256.lower()}")
            for info in members:
                if not info.is_dir():
                    _read_through(name, archive, info, count)
    except CorruptArchive:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise CorruptArchive(f"{name} is damaged: {exc}") from None
    except NotImplementedError as exc:  # Deflate64 and other methods zipfile cannot read
        raise CorruptArchive(f"{name}: {exc}; unpack it with another tool and use `flywheel drives import`") from None
    return Verified(daily, skipped, sum(i.file_size for i in daily), digest)


class _Counter:
    def __init__(self, report: Callable[[int, int], None] | None, total: int) -> None:
        self.report, self.total, self.done = report, total, 0

    def __call__(self, n: int) -> None:
        self.done += n
        if self.report is not None:
            self.report(self.done, self.total)


def _plan(name: str, members: list[zipfile.ZipInfo], limits: Limits) -> tuple[list[zipfile.ZipInfo], list[str]]:
    if len(members) > limits.members:
        raise CorruptArchive(f"{name}: {len(members):,} members, more than the {limits.members:,} allowed")
    daily: dict[str, zipfile.ZipInfo] = {}
    skipped = []
    for info in members:
        _check_member(name, info)
        base = PurePosixPath(info.filename).name
        if info.is_dir():
            continue
        if not DAILY.fullmatch(base):
            skipped.append(info.filename)
            continue
        if base in daily:
            raise CorruptArchive(f"{name}: two daily files named {base} ({daily[base].filename}, {info.filename})")
        if info.file_size > limits.member_bytes:
            raise CorruptArchive(f"{name}: {info.filename} unpacks to {info.file_size:,} bytes, more than the "
                                 f"{limits.member_bytes:,} allowed for one file")
        daily[base] = info
    if not daily:
        raise CorruptArchive(f"{name}: no daily drive-stats files (YYYY-MM-DD.csv) in the archive")
    if len(daily) > limits.daily_files:
        raise CorruptArchive(f"{name}: {len(daily):,} daily files, more than the {limits.daily_files:,} allowed")
    total = sum(i.file_size for i in daily.values())
    if total > limits.total_bytes:
        raise CorruptArchive(f"{name}: the daily files unpack to {total:,} bytes, more than the "
                             f"{limits.total_bytes:,} allowed")
    return [daily[k] for k in sorted(daily)], skipped


def _check_member(name: str, info: zipfile.ZipInfo) -> None:
    member = info.filename
    parts = PurePosixPath(member).parts
    why = ("an absolute path" if member.startswith("/") else
           "a '..' part" if ".." in parts else
           "a backslash" if "\\" in member else
           "a drive letter" if re.match(r"[A-Za-z]:", member) else
           "a NUL or control character" if any(ord(c) < 32 for c in member) else
           "a link" if stat.S_ISLNK(info.external_attr >> 16) else
           "encrypted" if info.flag_bits & 0x1 else None)
    if why:
        raise CorruptArchive(f"{name}: refusing member {member!r}: {why}")


def _read_through(name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, count: Callable[[int], None]) -> None:
    """Read a member to its end: zipfile raises BadZipFile there when its CRC-32 does not match."""
    seen = 0
    with archive.open(info) as member:
        while chunk := member.read(CHUNK):
            seen += len(chunk)
            count(len(chunk))
    if seen != info.file_size:
        raise CorruptArchive(f"{name}: {info.filename} holds {seen:,} bytes, not the {info.file_size:,} "
                             "its entry declares")


def extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, into: Path) -> Path:
    """Write one verified daily file into `into` (a folder this run made) by its base name."""
    target = into / PurePosixPath(info.filename).name
    free = shutil.disk_usage(into).free
    if info.file_size > free:
        raise FetchError(f"{info.filename} unpacks to {info.file_size:,} bytes and {into} has {free:,} free")
    try:
        # "xb": never through a file or link already there.
        with archive.open(info) as src, target.open("xb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # changed on disk since it was verified
        target.unlink(missing_ok=True)
        raise CorruptArchive(f"{Path(archive.filename or '?').name} is damaged: {exc}") from None
    return target


def file_sha256(path: Path, on_progress: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            if on_progress is not None:
                on_progress(len(chunk))
    return h.hexdigest()
