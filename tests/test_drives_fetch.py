"""`flywheel drives fetch`: quarterly archives from a real local HTTP server, built here from generated days.

The server (http.server in a thread) answers Range requests with 206 and
If-Range, and can drop a connection part way through a file or ignore Range
altogether, as some servers do. Archives have Backblaze's layout: a folder
of `YYYY-MM-DD.csv` files in the drive-stats columns, with `__MACOSX` copies.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import random
import re
import socket
import stat
import threading
import zipfile
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from flywheel.plugins.drives.fetch import make_plan
from flywheel.plugins.drives.fetch_archive import CorruptArchive, Limits, verify_archive
from flywheel.plugins.drives.fetch_http import client, download
from flywheel.plugins.drives.fetch_plan import BadOption, FetchError, Quarter

# Backblaze's 2019 columns, cut to the attributes the drives plugin reads plus a few it keeps as JSON.
SMART = (1, 5, 9, 187, 188, 194, 197, 198, 199)
HEADER = ["date", "serial_number", "model", "capacity_bytes", "failure",
          *(f"smart_{n}_{kind}" for n in SMART for kind in ("normalized", "raw"))]
MODELS = [("ST4000DM000", 4000787030016), ("HGST HMS5C4040BLE640", 4000787030016), ("ST12000NM0007", 12000138625024)]


# -- archives ------------------------------------------------------------------------------------


def daily_csv(day: date, drives: int, rng: random.Random, failing: int | None) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    for i in range(drives):
        model, capacity = MODELS[i % len(MODELS)]
        row = [day.isoformat(), f"Z{i:05d}", model, capacity, int(i == failing)]
        for n in SMART:
            hours = 20_000 + 24 * (day.toordinal() % 1000) + i
            raw = {9: hours, 194: rng.randint(22, 40)}.get(n, rng.choice([0, 0, 8]))
            row += [rng.randint(90, 200), raw if n != 187 or i % 4 else ""]  # some empty cells, as in the real files
        w.writerow(row)
    return out.getvalue()


def build_archive(quarter: Quarter, *, days: int = 3, drives: int = 12, seed: int = 0) -> tuple[bytes, dict]:
    """(zip bytes, {day: (rows, failures)}): the quarter's first days, one drive failing on the last one."""
    rng = random.Random(seed)
    folder = f"data_Q{quarter.q}_{quarter.year}"
    expected = {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{folder}/", b"")
        for k in range(days):
            day = quarter.first_day + timedelta(days=k)
            failing = 3 if k == days - 1 else None
            z.writestr(f"{folder}/{day}.csv", daily_csv(day, drives, rng, failing))
            z.writestr(f"__MACOSX/{folder}/._{day}.csv", b"\x00\x05\x16\x07 resource fork")
            expected[day] = (drives, int(failing is not None))
    return buf.getvalue(), expected


def member_data_offset(archive: bytes, name: str) -> tuple[int, int]:
    """Where a member's compressed bytes start in the archive, and how many there are."""
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        info = z.getinfo(name)
    local = info.header_offset
    name_len, extra_len = int.from_bytes(archive[local + 26:local + 28], "little"), \
        int.from_bytes(archive[local + 28:local + 30], "little")
    return local + 30 + name_len + extra_len, info.compress_size


def flip_bytes(archive: bytes, name: str) -> bytes:
    start, size = member_data_offset(archive, name)
    data = bytearray(archive)
    for i in range(start + size // 3, start + size // 3 + 8):
        data[i] ^= 0xFF
    return bytes(data)


# -- the server ----------------------------------------------------------------------------------


class ArchiveServer:
    """Serves `files` by path. `drop[path] = n`: the next GET of path sends n body bytes and hangs up."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drop: dict[str, int] = {}
        self.ignore_range = False
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests.append({"path": self.path, "range": self.headers.get("Range"),
                                       "if_range": self.headers.get("If-Range")})
                owner.answer(self)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.http.handle_error = lambda request, address: None  # a hung-up connection is the point
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    @staticmethod
    def etag(body: bytes) -> str:
        return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        body = self.files.get(h.path)
        if body is None:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        start, status = 0, 200
        asked = re.fullmatch(r"bytes=(\d+)-", h.headers.get("Range") or "")
        if asked and not self.ignore_range and h.headers.get("If-Range") in (None, self.etag(body)):
            start, status = int(asked.group(1)), 206
            if start >= len(body):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(body)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
        h.send_response(status)
        h.send_header("Content-Length", str(len(body) - start))
        h.send_header("ETag", self.etag(body))
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        h.end_headers()
        cut = self.drop.pop(h.path, None)
        if cut is None:
            h.wfile.write(body[start:])
            return
        h.wfile.write(body[start:start + cut])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    def gets(self, suffix: str = ".zip") -> list[dict]:
        return [r for r in self.requests if r["path"].endswith(suffix)]


@pytest.fixture
def server():
    s = ArchiveServer()
    s.thread.start()
    yield s
    s.http.shutdown()
    s.http.server_close()


def serve(server: ArchiveServer, quarter: Quarter, archive: bytes, *, sidecar: bool = False) -> None:
    path = f"/drive-stats/data_Q{quarter.q}_{quarter.year}.zip"
    server.files[path] = archive
    if sidecar:
        server.files[path + ".sha256"] = f"{hashlib.sha256(archive).hexdigest()}  {path.rsplit('/', 1)[1]}\n".encode()


def pattern(server: ArchiveServer) -> str:
    return server.base + "/drive-stats/data_Q{q}_{year}.zip"


@pytest.fixture
def run_cli(flywheel_settings):
    from click.testing import CliRunner

    from flywheel.server.cli.main import cli

    env = {"DATABASE_URL": flywheel_settings.database_url, "REDIS_URL": flywheel_settings.redis_url,
           "FLYWHEEL_STORE_URL": flywheel_settings.store_url, "FLYWHEEL_DATA_DIR": flywheel_settings.data_dir}

    async def run(*args: str, **extra_env: str):
        return await asyncio.to_thread(CliRunner().invoke, cli, ["drives", "fetch", *args], env={**env, **extra_env})

    return run


async def stored(database, tenant_id) -> dict[date, tuple[int, int]]:
    rows = await database.fetch(
        "SELECT day, count(*) AS n, count(*) FILTER (WHERE failure) AS f FROM drives_smart_daily "
        "WHERE tenant_id = $1 GROUP BY day ORDER BY day", tenant_id)
    return {r["day"]: (r["n"], r["f"]) for r in rows}


def text(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- end to end ----------------------------------------------------------------------------------


async def test_fetch_imports_two_quarters_and_builds_features_then_a_rerun_changes_nothing(
        server, run_cli, make_tenant, database, open_tmp):
    t = await make_tenant()
    expected = {}
    for seed, quarter in enumerate([Quarter(2019, 1), Quarter(2019, 2)]):
        archive, days = build_archive(quarter, seed=seed)
        serve(server, quarter, archive, sidecar=True)
        expected |= days
    dest = open_tmp / "dl"
    args = ["--from", "2019Q1", "--to", "2019Q2", "--tenant", t.name, "--url-pattern", pattern(server),
            "--dest", str(dest), "--sidecar"]

    result = await run_cli(*args)
    assert result.exit_code == 0, result.output
    assert await stored(database, t.id) == expected
    assert "2019-01-01.csv: 12 new of 12 rows, 0 failure(s)" in text(result)
    assert "2019-04-03.csv: 12 new of 12 rows, 1 failure(s)" in text(result)
    assert "SHA-256 matches, 3 daily file(s) verified" in text(result)
    assert "3 other member(s) left out" in text(result)  # the __MACOSX copies
    assert "imported 6 daily file(s) from 2 archive(s): 72 new drive-days" in text(result)
    features = await database.fetch("SELECT day, count(*) AS n FROM drives_features WHERE tenant_id = $1 "
                                    "GROUP BY day ORDER BY day", t.id)
    assert {r["day"]: r["n"] for r in features} == {d: rows for d, (rows, _) in expected.items()}
    assert "features: built 6 day(s), 72 drive-days" in text(result)
    sources = await database.fetch("SELECT DISTINCT source FROM drives_smart_daily WHERE tenant_id = $1", t.id)
    assert sorted(r["source"] for r in sources) == sorted(f"{d}.csv" for d in expected)
    assert sorted(p.name for p in dest.iterdir()) == ["data_Q1_2019.zip", "data_Q2_2019.zip"], \
        "the archives stay; the unpacked files and the parts are gone"

    before = len(server.gets())
    again = await run_cli(*args)
    assert again.exit_code == 0, again.output
    assert len(server.gets()) == before, "nothing is downloaded twice"
    assert text(again).count("already imported") == 6 and "0 new drive-days" in text(again)
    assert "features: built 0 day(s)" in text(again)
    assert await stored(database, t.id) == expected


async def test_without_a_tenant_the_archives_are_only_downloaded_and_verified(server, run_cli, open_tmp):
    archive, _ = build_archive(Quarter(2020, 4))
    serve(server, Quarter(2020, 4), archive)
    result = await run_cli("--from", "2020q4", "--url-pattern", pattern(server), "--dest", str(open_tmp))
    assert result.exit_code == 0, result.output
    assert sha256_of(open_tmp / "data_Q4_2020.zip") == hashlib.sha256(archive).hexdigest()
    assert "1 archive(s) downloaded and verified" in text(result) and "importing" not in text(result)


# -- resuming ------------------------------------------------------------------------------------


async def test_a_dropped_download_resumes_with_a_range_request(server, open_tmp):
    archive, _ = build_archive(Quarter(2019, 3), days=5, drives=300)
    serve(server, Quarter(2019, 3), archive)
    path = "/drive-stats/data_Q3_2019.zip"
    cut = len(archive) // 3
    server.drop[path] = cut
    retries = []
    async with client() as http:
        d = await download(http, server.base + path, open_tmp / "data_Q3_2019.zip", retries=2, backoff_s=0,
                           on_retry=retries.append)
    assert d.resumed_from == [cut] and not d.cached
    first, second = server.gets()
    assert first["range"] is None
    assert second["range"] == f"bytes={cut}-" and second["if_range"] == server.etag(archive)
    assert sha256_of(d.path) == hashlib.sha256(archive).hexdigest()
    assert not (open_tmp / "data_Q3_2019.zip.part").exists()
    assert len(retries) == 1 and f"resuming from byte {cut:,}" in retries[0]


async def test_an_interrupted_run_leaves_the_part_and_the_next_run_resumes(server, run_cli, open_tmp):
    archive, _ = build_archive(Quarter(2019, 3), days=5, drives=300)
    serve(server, Quarter(2019, 3), archive)
    cut = len(archive) // 2
    server.drop["/drive-stats/data_Q3_2019.zip"] = cut
    args = ["--from", "2019Q3", "--url-pattern", pattern(server), "--dest", str(open_tmp), "--retries", "0"]

    failed = await run_cli(*args)
    assert failed.exit_code == 1
    assert f"download interrupted at {cut:,} bytes" in text(failed)
    assert "running the command again resumes" in text(failed)
    assert (open_tmp / "data_Q3_2019.zip.part").stat().st_size == cut

    resumed = await run_cli(*args)
    assert resumed.exit_code == 0, resumed.output
    assert server.gets()[-1]["range"] == f"bytes={cut}-"
    assert f"resumed from byte {cut:,}" in text(resumed)
    assert sha256_of(open_tmp / "data_Q3_2019.zip") == hashlib.sha256(archive).hexdigest()


async def test_a_server_that_ignores_range_restarts_the_file_cleanly(server, open_tmp):
    archive, _ = build_archive(Quarter(2019, 3), days=5, drives=300)
    serve(server, Quarter(2019, 3), archive)
    path = "/drive-stats/data_Q3_2019.zip"
    server.ignore_range = True
    server.drop[path] = len(archive) // 2
    async with client() as http:
        d = await download(http, server.base + path, open_tmp / "data_Q3_2019.zip", retries=1, backoff_s=0)
    assert server.gets()[1]["range"] == f"bytes={len(archive) // 2}-", "it asked for the rest"
    assert d.resumed_from == [], "and got the whole file, written from byte 0"
    assert sha256_of(d.path) == hashlib.sha256(archive).hexdigest()


async def test_a_part_left_by_another_url_is_not_resumed(server, open_tmp):
    archive, _ = build_archive(Quarter(2019, 3))
    serve(server, Quarter(2019, 3), archive)
    (open_tmp / "data_Q3_2019.zip.part").write_bytes(b"x" * 100)
    (open_tmp / "data_Q3_2019.zip.part.json").write_text('{"url": "http://elsewhere/a.zip", "validator": null}')
    async with client() as http:
        d = await download(http, pattern(server).format(year=2019, q=3), open_tmp / "data_Q3_2019.zip", retries=0)
    assert server.gets()[0]["range"] is None
    assert sha256_of(d.path) == hashlib.sha256(archive).hexdigest()


# -- refusals ------------------------------------------------------------------------------------


async def test_a_corrupt_archive_is_refused_and_nothing_is_imported(server, run_cli, make_tenant, database, open_tmp):
    t = await make_tenant()
    good, _ = build_archive(Quarter(2019, 1))
    bad, _ = build_archive(Quarter(2019, 2), seed=1)
    serve(server, Quarter(2019, 1), good)
    serve(server, Quarter(2019, 2), flip_bytes(bad, "data_Q2_2019/2019-04-02.csv"))
    result = await run_cli("--from", "2019Q1", "--to", "2019Q2", "--tenant", t.name, "--url-pattern",
                           pattern(server), "--dest", str(open_tmp))
    assert result.exit_code == 1
    assert "2019Q2: data_Q2_2019.zip is damaged" in text(result) and "nothing was imported" in text(result)
    assert await stored(database, t.id) == {}, "not even the good quarter"
    assert await database.fetchval("SELECT count(*) FROM drives_imports WHERE tenant_id = $1", t.id) == 0
    assert not (open_tmp / "data_Q2_2019.zip").exists(), "removed, so the next run downloads it again"
    assert (open_tmp / "data_Q1_2019.zip").exists()


async def test_an_archive_that_does_not_match_its_sha256_is_refused(server, run_cli, make_tenant, database,
                                                                    open_tmp):
    t = await make_tenant()
    archive, _ = build_archive(Quarter(2019, 1))
    serve(server, Quarter(2019, 1), archive)
    wrong = hashlib.sha256(b"another file").hexdigest()
    result = await run_cli("--from", "2019Q1", "--tenant", t.name, "--url-pattern", pattern(server),
                           "--dest", str(open_tmp), "--sha256", wrong)
    assert result.exit_code == 1
    assert f"is not the expected {wrong}" in text(result) and "nothing was imported" in text(result)
    assert await stored(database, t.id) == {}


def zip_of(*members: tuple[str, bytes], link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members:
            z.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return buf.getvalue()


DAY = b"date,serial_number,model,capacity_bytes,failure\n2019-01-01,A,M,1,0\n"


@pytest.mark.parametrize("archive, limits, message", [
    (zip_of(("../2019-01-01.csv", DAY)), Limits(), "refusing member '../2019-01-01.csv': a '..' part"),
    (zip_of(("a/../../2019-01-01.csv", DAY)), Limits(), "a '..' part"),
    (zip_of(("/tmp/2019-01-01.csv", DAY)), Limits(), "refusing member '/tmp/2019-01-01.csv': an absolute path"),
    (zip_of(("C:/2019-01-01.csv", DAY)), Limits(), "a drive letter"),
    (zip_of(("d\\2019-01-01.csv", DAY)), Limits(), "a backslash"),
    (zip_of(("d/2019-01-01.csv", DAY), link="d/2019-01-02.csv"), Limits(), "'d/2019-01-02.csv': a link"),
    (zip_of(("a/2019-01-01.csv", DAY), ("b/2019-01-01.csv", DAY)), Limits(), "two daily files named 2019-01-01.csv"),
    (zip_of(("README.txt", b"hi"), ("2019-01-01.csv.gz", b"x")), Limits(), "no daily drive-stats files"),
    (zip_of(*((f"2019-01-0{i}.csv", DAY) for i in range(1, 6))), Limits(members=4), "5 members, more than the 4"),
    (zip_of(*((f"2019-01-0{i}.csv", DAY) for i in range(1, 6))), Limits(daily_files=4), "5 daily files, more"),
    (zip_of(("2019-01-01.csv", DAY * 10)), Limits(member_bytes=100), "unpacks to 670 bytes, more than the 100"),
    (zip_of(("2019-01-01.csv", DAY), ("2019-01-02.csv", DAY)), Limits(total_bytes=100), "unpack to 134 bytes"),
    (b"PK\x03\x04 not really a zip", Limits(), "is damaged: File is not a zip file"),
])
def test_unsafe_or_oversized_archives_are_refused(archive, limits, message, open_tmp):
    path = open_tmp / "data_Q1_2019.zip"
    path.write_bytes(archive)
    with pytest.raises(CorruptArchive) as err:
        verify_archive(path, limits=limits)
    assert message in str(err.value) and "data_Q1_2019.zip" in str(err.value)
    assert [p.name for p in open_tmp.iterdir()] == ["data_Q1_2019.zip"], "nothing unpacked"


def test_a_flipped_byte_in_any_member_fails_its_crc(open_tmp):
    archive, _ = build_archive(Quarter(2019, 1))
    for name in ("data_Q1_2019/2019-01-01.csv", "data_Q1_2019/2019-01-03.csv"):
        path = open_tmp / "data_Q1_2019.zip"
        path.write_bytes(flip_bytes(archive, name))
        with pytest.raises(CorruptArchive, match="data_Q1_2019.zip is damaged"):
            verify_archive(path)
    path.write_bytes(archive)
    verified = verify_archive(path)
    assert [i.filename for i in verified.daily] == [f"data_Q1_2019/2019-01-0{d}.csv" for d in (1, 2, 3)]
    assert verified.sha256 == hashlib.sha256(archive).hexdigest()


@pytest.mark.parametrize("url, message", [
    ("ftp://h.example/data_Q{q}_{year}.zip", "scheme 'ftp' is not allowed"),
    ("file:///tmp/data_Q{q}_{year}.zip", "scheme 'file' is not allowed"),
    ("https://h.example/data_{year}.zip", "needs both {year} and {q}"),
    ("https://h.example/{year}/{q}/{host}.zip", "placeholder {host} is not allowed"),
    ("https://h.example/{year!r}/{q}.zip", "placeholder {year!r} is not allowed"),
    ("https://h.example/{year:>8}/{q}.zip", "placeholder {year:>8} is not allowed"),
    ("https://h.example/{0}/{year}{q}.zip", "placeholder {0} is not allowed"),
    ("https://{year}.h.example/{q}.zip", "not the host"),
    ("https://user:pw@h.example/{year}{q}.zip", "credentials in the URL"),
    ("https://h.example/{year}{q.zip", "not a valid pattern"),
    ("https://h.example:99999/{year}{q}.zip", "port"),
    ("https:///{year}{q}.zip", "no host"),
    ("https://h.example/a b/{year}{q}.zip", "no spaces"),
])
async def test_bad_url_patterns_are_refused_before_any_request(url, message, server, run_cli, open_tmp):
    by_flag = await run_cli("--from", "2019Q1", "--url-pattern", url, "--dest", str(open_tmp))
    assert by_flag.exit_code == 2 and "Invalid value for --url-pattern" in text(by_flag)
    assert message in text(by_flag)
    by_env = await run_cli("--from", "2019Q1", "--dest", str(open_tmp), FLYWHEEL_DRIVES_FETCH_URL=url)
    assert by_env.exit_code == 2 and "Invalid value for FLYWHEEL_DRIVES_FETCH_URL" in text(by_env)
    assert message in text(by_env)
    assert list(open_tmp.iterdir()) == []


async def test_the_url_setting_is_used_when_no_flag_is_given(server, run_cli, open_tmp):
    archive, _ = build_archive(Quarter(2019, 1))
    serve(server, Quarter(2019, 1), archive)
    result = await run_cli("--from", "2019Q1", "--dest", str(open_tmp), FLYWHEEL_DRIVES_FETCH_URL=pattern(server))
    assert result.exit_code == 0, result.output
    assert [r["path"] for r in server.requests] == ["/drive-stats/data_Q1_2019.zip"]


@pytest.mark.parametrize("args, option, message", [
    (["--from", "2019Q5"], "--from", "'2019Q5' is not a quarter: write YYYYQn, n from 1 to 4"),
    (["--from", "19Q1"], "--from", "'19Q1' is not a quarter"),
    (["--from", "2019-Q1"], "--from", "'2019-Q1' is not a quarter"),
    (["--from", "2019Q1", "--to", "2019 Q2"], "--to", "'2019 Q2' is not a quarter"),
    (["--from", "2019Q4", "--to", "2019Q1"], "--to", "2019Q1 is before --from 2019Q4"),
    (["--from", "2012Q4"], "--from", "2012Q4: Backblaze's drive stats start in 2013"),
    (["--from", "2099Q1"], "--from", "2099Q1 has not started yet"),
    (["--from", "2019Q1", "--to", "2019Q2", "--sha256", "a" * 64], "--sha256",
     "one digest checks one archive, and 2019Q1..2019Q2 spans 2 quarters: give one quarter, or use --sidecar"),
    (["--from", "2019Q1", "--sha256", "xyz"], "--sha256", "64 hex digits"),
])
async def test_bad_quarters_and_checksums_give_clear_errors(args, option, message, server, run_cli, open_tmp):
    result = await run_cli(*args, "--url-pattern", pattern(server), "--dest", str(open_tmp))
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {option}: {message}" in text(result)
    assert server.requests == []


def test_years_before_2016_are_not_quarterly_at_backblaze(open_tmp):
    with pytest.raises(BadOption, match=r"quarterly archives from 2016Q1; 2015 comes as one archive .*data_2015.zip"):
        make_plan("2015Q3", "2016Q2", dest=open_tmp, environ={})
    mirror = make_plan("2015Q3", "2016Q2", dest=open_tmp, url_pattern="https://m.example/{year}/Q{q}.zip")
    assert [str(q) for q in mirror.quarters] == ["2015Q3", "2015Q4", "2016Q1", "2016Q2"]
    assert [mirror.url(q) for q in mirror.quarters][1:3] == ["https://m.example/2015/Q4.zip",
                                                             "https://m.example/2016/Q1.zip"]
    default = make_plan("2019Q1", None, dest=open_tmp, environ={})
    assert default.url(default.quarters[0]) == \
        "https://f001.backblazeb2.com/file/Backblaze-Hard-Drive-Data/data_Q1_2019.zip"


async def test_a_missing_archive_says_which_quarter(server, run_cli, open_tmp):
    result = await run_cli("--from", "2019Q1", "--url-pattern", pattern(server), "--dest", str(open_tmp))
    assert result.exit_code == 1
    assert "2019Q1: " in text(result) and "HTTP 404" in text(result) and "nothing was imported" in text(result)
    with pytest.raises(FetchError, match="HTTP 404"):
        async with client() as http:
            await download(http, server.base + "/nope.zip", open_tmp / "x.zip", retries=0)


async def test_an_unknown_tenant_is_refused_before_downloading(server, run_cli, open_tmp):
    archive, _ = build_archive(Quarter(2019, 1))
    serve(server, Quarter(2019, 1), archive)
    result = await run_cli("--from", "2019Q1", "--tenant", "no-such-tenant-here", "--url-pattern", pattern(server),
                           "--dest", str(open_tmp))
    assert result.exit_code == 1 and "no tenant 'no-such-tenant-here'" in text(result)
    assert server.requests == []
