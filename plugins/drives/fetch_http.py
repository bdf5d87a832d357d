"""Resumable HTTP downloads for `flywheel drives fetch` (httpx, already a Flywheel dependency).

A download writes `NAME.part` and renames it to NAME when the last byte is
in, so a file under its final name is always whole. Beside the part,
`NAME.part.json` records the URL and the server's validator (a strong ETag,
else Last-Modified). Resuming sends `Range: bytes=N-` with `If-Range: <validator>`:
a server that supports ranges answers 206 and the part grows; one that
ignores Range, or whose file changed since (If-Range fails), answers 200
with the whole file, and the part is written again from byte 0. A dropped
connection is retried with backoff, each retry resuming where it stopped;
when retries run out the part stays, and running the command again resumes.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

import httpx

from flywheel.plugins.drives.fetch_plan import FetchError

SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_CONTENT_RANGE = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)")
Progress = Callable[[int, "int | None"], None]  # (bytes in the file so far, the whole size if known)


class Download(NamedTuple):
    path: Path
    size: int
    cached: bool  # already downloaded by an earlier run
    resumed_from: list[int]  # the offsets a Range request continued from, in order


class _Retry(Exception):
    """This attempt failed in a way worth another try (a dropped connection, a 5xx, a short body)."""


def client(timeout_s: float = 60.0) -> httpx.AsyncClient:
    # Redirects are followed (mirrors and CDNs use them); http(s) only, as httpx allows nothing else.
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=15.0), follow_redirects=True,
                             headers={"User-Agent": "flywheel-drives-fetch"})


async def download(http: httpx.AsyncClient, url: str, target: Path, *, retries: int = 3, backoff_s: float = 1.0,
                   on_progress: Progress | None = None, on_retry: Callable[[str], None] | None = None) -> Download:
    """Download `url` to `target` (resuming `target.part`); FetchError once `retries` retries are spent."""
    if target.is_file():
        return Download(target, target.stat().st_size, True, [])
    part = target.with_name(target.name + ".part")
    meta = target.with_name(target.name + ".part.json")
    resumed: list[int] = []
    failures = 0
    while True:
        try:
            if await _attempt(http, url, part, meta, resumed, on_progress):
                break
        except (httpx.TransportError, _Retry) as exc:
            failures += 1
            have = part.stat().st_size if part.exists() else 0
            why = f"{type(exc).__name__}: {exc}" if isinstance(exc, httpx.TransportError) else str(exc)
            if failures > retries:
                raise FetchError(f"{url}: download interrupted at {have:,} bytes ({why}); the part is kept in "
                                 f"{part}, so running the command again resumes it") from None
            if on_retry is not None:
                on_retry(f"{target.name}: {why}; resuming from byte {have:,} (retry {failures} of {retries})")
            await asyncio.sleep(backoff_s * 2 ** (failures - 1))
    part.replace(target)
    meta.unlink(missing_ok=True)
    return Download(target, target.stat().st_size, False, resumed)


async def _attempt(http, url: str, part: Path, meta: Path, resumed: list[int], on_progress) -> bool:
    """One GET; True when the part is complete, False to start over at once (no retry spent)."""
    offset = part.stat().st_size if part.exists() else 0
    recorded = _read_meta(meta, url) if offset else None
    if offset and recorded is None:  # a part from another URL, or with no record: it cannot be trusted
        part.unlink()
        offset = 0
    headers = {"Accept-Encoding": "identity"}  # byte offsets count the file's bytes, not a re-encoding
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if isinstance(recorded.get("validator"), str):
            headers["If-Range"] = recorded["validator"]
    async with http.stream("GET", url, headers=headers) as r:
        if url.startswith("https:") and r.url.scheme != "https":
            raise FetchError(f"{url}: redirected to {r.url.scheme}:// ({r.url.host}); refusing to leave https")
        if offset and r.status_code == 416:  # the part is the whole file already, or longer than it
            if _range(r.headers)[1] == offset:
                return True
            part.unlink()
            return False
        if offset and r.status_code == 206:
            start, total = _range(r.headers)
            if start != offset:
                part.unlink()
                return False
            resumed.append(offset)
            mode = "ab"
        elif r.status_code == 200:  # the whole file: a first request, a server ignoring Range, a changed file
            offset, mode = 0, "wb"
            total = int(r.headers["content-length"]) if r.headers.get("content-length", "").isdigit() else None
            _write_meta(meta, url, r.headers)
        elif r.status_code >= 500 or r.status_code in (408, 429):
            raise _Retry(f"HTTP {r.status_code}")
        else:
            raise FetchError(f"{url}: HTTP {r.status_code} {r.reason_phrase}")
        with part.open(mode) as f:
            # No chunk size: httpx would hold up to one chunk back, and lose it when the connection drops.
            async for chunk in r.aiter_raw():
                f.write(chunk)
                offset += len(chunk)
                if on_progress is not None:
                    on_progress(offset, total)
    if total is not None and offset != total:
        raise _Retry(f"the body ended at {offset:,} of {total:,} bytes")
    return True


def _range(headers) -> tuple[int | None, int | None]:
    """(first byte, whole size) from Content-Range; None where the server did not say."""
    match = _CONTENT_RANGE.fullmatch(headers.get("content-range", "").strip())
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) else None
    return start, int(match.group(3)) if match.group(3) != "*" else None


def _write_meta(meta: Path, url: str, headers) -> None:
    etag = headers.get("etag", "")
    validator = etag if etag and not etag.startswith("W/") else headers.get("last-modified")  # If-Range: strong only
    meta.write_text(json.dumps({"url": url, "validator": validator}))


def _read_meta(meta: Path, url: str) -> dict | None:
    try:
        recorded = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) and recorded.get("url") == url else None


def sidecar_url(url: str) -> str:
    """`URL.sha256`: the suffix goes on the path, before any query."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path + ".sha256"))


async def fetch_sha256(http: httpx.AsyncClient, url: str) -> str:
    """The SHA-256 in the `.sha256` file beside `url` (`sha256sum` output, or the bare digest)."""
    where = sidecar_url(url)
    async with http.stream("GET", where) as r:
        if r.status_code != 200:
            raise FetchError(f"{where}: HTTP {r.status_code} (--sidecar needs a .sha256 file beside each archive)")
        body = b""
        async for chunk in r.aiter_bytes():
            body += chunk
            if len(body) > 4096:
                break
    words = body[:4096].decode("ascii", errors="replace").split()
    if not words or not SHA256_HEX.fullmatch(words[0]):
        raise FetchError(f"{where}: not a SHA-256 digest (expected 64 hex digits, as sha256sum writes)")
    return words[0].lower()
