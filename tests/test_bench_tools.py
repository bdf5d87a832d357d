"""The benchmarks' own load generator, against a real server: its counts
are what the README's throughput figures rest on, so they must match what
the server stored."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from flywheel.contracts.tenants import Scope

ROOT = Path(__file__).resolve().parents[1]


async def test_load_generator_counts_what_the_server_stored(live_server, make_tenant, database):
    tenant = await make_tenant(scopes=[Scope.INGEST])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.loadgen", f"{live_server.url}/v1/events", "--concurrency", "2",
        "--duration", "1", "--batch", "10", "--header", f"Authorization: Bearer {tenant.key}",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0] == "load started"
    result = json.loads(lines[-1])
    assert result["requests"] > 0 and result["statuses"] == {"200": result["requests"]}
    assert result["events"] == result["requests"] * 10
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    stored = await database.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", tenant.id)
    assert stored == result["events"], "every event the generator counted as accepted is stored, once"


async def test_read_answer_reads_content_length_and_chunked_answers_to_their_end():
    """The load generator's reader: a streamed (chunked) answer is read to its last chunk, so the
    next answer on the connection starts where it should."""
    from benchmarks.loadgen import read_answer

    reader = asyncio.StreamReader()
    reader.feed_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"6\r\ndata: \r\n5\r\nhello\r\n0\r\n\r\n"
                     b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy")
    reader.feed_eof()
    assert await read_answer(reader) == (b"HTTP/1.1 200 OK\r\n", False)
    assert await read_answer(reader) == (b"HTTP/1.1 503 Service Unavailable\r\n", True)
    with pytest.raises(ConnectionError):
        await read_answer(reader)
