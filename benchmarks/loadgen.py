"""A small HTTP/1.1 load generator, run as its own process.

    python -m benchmarks.loadgen URL --concurrency 32 --duration 10 --batch 100 --header "Authorization: Bearer ..."
    python -m benchmarks.loadgen URL --body-file row.json --batch 1   (the same body every time: scoring)

Every request carries `batch` new events (fresh event ids, so nothing is a
duplicate), built from a byte template so the generator spends its CPU on
sending. It keeps `concurrency` keep-alive connections busy and prints one
JSON object: requests, events, seconds, latency percentiles and status
counts. A raw asyncio client, because httpx would itself be the bottleneck
on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

TEMPLATE = ('{"type":"core.generic","event_id":"%s","ts":"%s","subject_id":"drive-%d","session_id":"s-%d",'
            '"attributes":{"smart_5_raw":%d,"smart_187_raw":%d,"smart_194_raw":%d,"model":"ST4000DM000",'
            '"capacity_bytes":%d,"failure":false}}')


def make_body(batch: int, ts: str) -> bytes:
    rnd = os.urandom(16 * batch).hex()
    events = []
    for i in range(batch):
        h = rnd[32 * i:32 * i + 32]
        event_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
        events.append(TEMPLATE % (event_id, ts, i % 997, i % 13, i % 5, i % 3, 30 + i % 15, 4000787030016))
    return ("[" + ",".join(events) + "]").encode()


class Bodies:
    """Bodies like `make_body`'s for about 5 us each instead of ~120 us.

    The generator shares two cores with the server and Postgres, so every
    microsecond it spends is taken from the systems it measures. A batch is a
    fixed template with its event ids and timestamp spliced in: ids come from
    a pool made before the clock starts (and topped up, more slowly, if a run
    outlasts it); the timestamp is the time the batch is made, as a client
    collecting telemetry would send it.
    """

    def __init__(self, batch: int, pool_events: int) -> None:
        # The template's text with a slot (None) for each event's id and ts.
        sample_ts = stamp()
        head, *rest = make_body(batch, sample_ts).split(b'"event_id":"')
        between = b'","ts":"'
        pieces: list[bytes | None] = [head + b'"event_id":"']
        for i, part in enumerate(rest):
            assert part[36:36 + len(between)] == between
            tail = part[36 + len(between) + len(sample_ts):] + (b'"event_id":"' if i < len(rest) - 1 else b"")
            pieces += [None, between, None, tail]
        self.pieces = pieces
        self.batch = batch
        self.ids: list[bytes] = []
        self._top_up(pool_events)

    def _top_up(self, n: int) -> None:
        rnd = os.urandom(16 * n).hex().encode()
        ids = self.ids
        for i in range(0, 32 * n, 32):
            h = rnd[i:i + 32]
            ids.append(b"%s-%s-4%s-a%s-%s" % (h[:8], h[8:12], h[13:16], h[17:20], h[20:32]))

    def next(self) -> bytes:
        if len(self.ids) < self.batch:
            self._top_up(self.batch * 50)
        self.pieces[1::4] = self.ids[-self.batch:]
        del self.ids[-self.batch:]
        self.pieces[3::4] = [stamp().encode()] * self.batch
        return b"".join(self.pieces)


def stamp() -> str:
    """Now, one second ago, in a fixed-width ISO 8601 form (microseconds always present)."""
    return (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="microseconds")


async def read_answer(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    """One HTTP/1.1 answer read to its end, Content-Length or chunked (a stream ends with its last
    chunk): its status line, and whether the server closes the connection after it."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    length, chunked, close = 0, False, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    if chunked:
        while size := int((await reader.readline()).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        while (await reader.readline()) not in (b"\r\n", b""):  # trailers
            pass
    else:
        await reader.readexactly(length)  # the body: only the status counts
    return status_line, close


async def worker(host: str, port: int, path: str, headers: bytes, batch: int, deadline: float,
                 latencies: list[float], statuses: dict[int, int], accepted: list[int],
                 fixed_body: bytes | None = None, bodies: Bodies | None = None) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            body = fixed_body if fixed_body is not None else bodies.next()
            request = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n".encode()
                       + headers + b"\r\n" + body)
            started = time.perf_counter()
            writer.write(request)
            status_line, close = await read_answer(reader)
            latencies.append(time.perf_counter() - started)
            status = int(status_line.split()[1])
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                accepted[0] += batch
            elif status >= 500:
                await asyncio.sleep(0.01)
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def run(url: str, concurrency: int, duration: float, headers: list[str], batch: int,
              fixed_body: bytes | None = None) -> dict:
    parts = urlsplit(url)
    header_bytes = b"".join(f"{h}\r\n".encode() for h in headers)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    accepted = [0]
    bodies = None
    if fixed_body is None:
        # Enough ids for 100k events a second; more are made if a run needs them.
        bodies = Bodies(batch, pool_events=int(duration * 100_000))
    print("load started", flush=True)  # for a caller that measures CPU over the load only
    cpu_started = time.process_time()
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(*(worker(parts.hostname, parts.port, parts.path, header_bytes, batch, deadline,
                                  latencies, statuses, accepted, fixed_body, bodies)
                           for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0

    return {"requests": len(latencies), "events": accepted[0], "seconds": elapsed,
            "events_per_s": accepted[0] / elapsed, "requests_per_s": len(latencies) / elapsed,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}, "cpu_cores": cpu / elapsed}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--body-file", help="send this body on every request (`--batch` then counts its rows)")
    args = p.parse_args()
    body = open(args.body_file, "rb").read() if args.body_file else None
    result = asyncio.run(run(args.url, args.concurrency, args.duration,
                             [*args.header, "Content-Type: application/json"], args.batch, body))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
