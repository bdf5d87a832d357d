"""Traces benchmark: chunked trace ingestion, sandbox start latency and QA throughput.

    python -m benchmarks.traces [--size small|full] [--duration S] [--concurrency N]

In one run, against one Postgres:
1. chunk ingestion, the hash chain included: N clients, each sending one
   trace's chunks of `--chunk-events` events (the five event types in turn)
   one after the other over its own keep-alive connection, from a separate
   process (`--loadgen`, below), to
   - Flywheel: `flywheel serve` (one worker), `POST /v1/traces/{id}/chunks/{n}`:
     the chain advanced in the trace's own tables, and every event also
     stored in the core's events table (group commit, archive, subscribers);
   - the peer: the FastAPI + pydantic service with one INSERT per event that
     Flywheel replaces (benchmarks/peers/traces_fastapi), one uvicorn worker;
   events/s, as ratios to the peer and to the ~1,000 events/s the replaced
   system claimed; afterwards every trace's chain is verified;
2. sandbox start latency: `true` run again and again in each backend this
   machine has (bubblewrap; the Docker API through Podman's API service when
   podman and the `flywheel-sandbox` image are there) -> p50 / p99;
3. QA throughput per backend: finalized example traces (a two-test pytest
   repository) re-run by `traces.qa` jobs on one worker (its default four jobs
   at a time) -> runs a minute, against the ~10 the replaced system claimed.
Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.ingest import _cpu_ticks
from benchmarks.loadgen import read_answer
from benchmarks.processes import piped_stderr, stop, wait_until_serving
from benchmarks.services import BenchServices

BIN = Path(sys.executable).parent
console = Console(stderr=True)
CLAIMED_EVENTS_PER_S = 1_000  # the replaced pipeline's own figures (issue 15)
CLAIMED_QA_PER_MIN = 10


@dataclass(frozen=True)
class Size:
    duration: float  # seconds of chunk load per system
    concurrency: int  # clients, one trace each
    starts: int  # sandbox starts per backend
    qa_runs: int  # QA jobs per backend


SIZES = {"small": Size(duration=5, concurrency=8, starts=10, qa_runs=4),
         "full": Size(duration=30, concurrency=32, starts=200, qa_runs=40)}

# -- the load: chunks of the five event types, built from templates ------------------------------------

_HEAD = '{"type":"traces.%s","event_id":"%s","ts":"%s","seq":%d,'
EVENTS = [
    ("cmd_run", '"command":"python3 -m pytest -q","exit_code":1,"duration_ms":412.5,'
                '"output":"FAILED test_stats.py::test_mean_of_two - assert 8.0 == 3\\n1 failed, 1 passed in 0.04s"}'),
    ("test_run", '"command":"python3 -m pytest -q","passed":1,"failed":1,"duration_ms":400.0,'
                 '"failing":["test_stats.py::test_mean_of_two"]}'),
    ("rationale_note", '"kind":"root_cause","text":"mean divides by len(xs) - 1, the sample-variance '
                       'denominator, instead of len(xs): off by one for every list."}'),
    ("file_edit", '"path":"src/stats.py","diff":"--- a/src/stats.py\\n+++ b/src/stats.py\\n@@ -1,2 +1,2 @@\\n'
                  ' def mean(xs):\\n-    return sum(xs) / (len(xs) - 1)\\n+    return sum(xs) / len(xs)\\n",'
                  '"lines_added":1,"lines_removed":1}'),
    ("commit", '"sha":"3f2a9c1d7e5b","message":"Fix mean(): divide by len(xs)","files":["src/stats.py"]}'),
]


def chunk_body(first_seq: int, n: int) -> bytes:
    """`{"events": [...]}`: n events with fresh ids, seqs from first_seq, stamped now (~1 us an event)."""
    rnd = os.urandom(16 * n).hex()
    ts = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="microseconds")
    parts = []
    for i in range(n):
        h = rnd[32 * i:32 * i + 32]
        kind, rest = EVENTS[(first_seq + i) % len(EVENTS)]
        event_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
        parts.append(_HEAD % (kind, event_id, ts, first_seq + i) + rest)
    return ('{"events":[' + ",".join(parts) + "]}").encode()


async def _client(host: str, port: int, trace_id: str, headers: bytes, per_chunk: int, deadline: float,
                  out: dict) -> None:
    """One trace's chunks in order, each sent once the previous one is answered."""
    reader, writer = await asyncio.open_connection(host, port)
    chunk = 0
    try:
        while time.perf_counter() < deadline:
            chunk += 1
            body = chunk_body((chunk - 1) * per_chunk + 1, per_chunk)
            writer.write(f"POST /v1/traces/{trace_id}/chunks/{chunk} HTTP/1.1\r\nHost: {host}\r\n"
                         f"Content-Length: {len(body)}\r\n".encode() + headers + b"\r\n" + body)
            started = time.perf_counter()
            status_line, close = await read_answer(reader)
            out["latencies"].append(time.perf_counter() - started)
            status = int(status_line.split()[1])
            out["statuses"][status] = out["statuses"].get(status, 0) + 1
            out["events"] += per_chunk if status == 200 else 0
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def load(url: str, trace_ids: list[str], headers: list[str], per_chunk: int, duration: float) -> dict:
    parts = urlsplit(url)
    header_bytes = b"".join(f"{h}\r\n".encode() for h in [*headers, "Content-Type: application/json"])
    out: dict = {"latencies": [], "statuses": {}, "events": 0}
    print("load started", flush=True)  # the caller measures CPU from here
    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(_client(parts.hostname, parts.port, t, header_bytes, per_chunk, started + duration, out)
                           for t in trace_ids))
    elapsed = time.perf_counter() - started
    lat = np.array(out["latencies"]) * 1000
    return {"events": out["events"], "chunks": len(lat), "seconds": elapsed, "events_per_s": out["events"] / elapsed,
            "p50_ms": float(np.percentile(lat, 50)) if len(lat) else 0.0,
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else 0.0,
            "statuses": {str(k): v for k, v in sorted(out["statuses"].items())},
            "loadgen_cores": (time.process_time() - cpu) / elapsed}


def loadgen_main() -> None:
    """`python -m benchmarks.traces --loadgen URL TRACES_JSON CHUNK_EVENTS DURATION [HEADER ...]`."""
    url, traces, per_chunk, duration, *headers = sys.argv[2:]
    print(json.dumps(asyncio.run(load(url, json.loads(traces), headers, int(per_chunk), float(duration)))))


def run_load(url: str, trace_ids: list[str], headers: list[str], args, server_pid: int) -> dict:
    """The load generator in its own process; with the CPU (cores) server and Postgres used meanwhile."""
    cmd = [sys.executable, "-m", "benchmarks.traces", "--loadgen", url, json.dumps(trace_ids),
           str(args.chunk_events), str(args.duration), *headers]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "load started"
    before, started = _ticks(server_pid), time.perf_counter()
    spy = _profile(server_pid, args)
    out, err = proc.communicate(timeout=args.duration + 120)
    if spy is not None:
        spy.wait()
    if proc.returncode:
        raise RuntimeError(f"load generator failed: {err}")
    after, elapsed, hz = _ticks(server_pid), time.perf_counter() - started, os.sysconf("SC_CLK_TCK")
    result = json.loads(out.strip().splitlines()[-1])
    cores = {k: (after[k] - before[k]) / hz / elapsed for k in after}
    cores["loadgen"] = result.pop("loadgen_cores")
    # Everything else the machine ran meanwhile: well above 0, another job shared the cores.
    cores["other"] = max(0.0, (after["machine"] - before["machine"]) / hz / elapsed - sum(
        v for k, v in cores.items() if k != "machine"))
    result["cpu_cores"] = {k: round(v, 2) for k, v in cores.items() if k != "machine"}
    return result


def _ticks(server_pid: int) -> dict[str, int]:
    return {**_cpu_ticks(server_pid), "machine": _machine_ticks()}


def _machine_ticks() -> int:
    """CPU ticks the whole machine has been busy (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]


def _profile(server_pid: int, args) -> subprocess.Popen | None:
    """With BENCH_PROFILE=out.txt, a py-spy profile (raw, collapsed stacks) of Flywheel's server under load."""
    if not (args.profile and args.profiling_flywheel):
        return None
    spy = shutil.which("py-spy") or str(BIN / "py-spy")
    return subprocess.Popen([spy, "record", "-p", str(server_pid), "-d", str(int(args.duration)), "-f", "raw",
                             "-o", args.profile, "--nonblocking"], stdout=subprocess.DEVNULL)


# -- 1. chunk ingestion: Flywheel and the peer ---------------------------------------------------------


def _create_traces(base: str, headers: dict, n: int) -> list[str]:
    body = {"repository": "bench/stats", "base_commit": "a1b2c3d", "task": "fix mean()"}
    ids = []
    for _ in range(n):
        r = httpx.post(f"{base}/v1/traces", json=body, headers=headers, timeout=30)
        r.raise_for_status()
        ids.append(r.json()["id"])
    return ids


def run_flywheel(svc: BenchServices, key: str, args) -> dict:
    from flywheel.server.secrets import new_key
    from flywheel.server.testing.live import free_port

    port = free_port()
    env = {**os.environ, "DATABASE_URL": svc.database_url, "REDIS_URL": svc.redis_url,
           "FLYWHEEL_DATA_DIR": str(svc.scratch / "data"), "FLYWHEEL_PORT": str(port),
           "FLYWHEEL_LOG_LEVEL": "WARNING", "FLYWHEEL_SECRET_KEY": new_key(),
           "FLYWHEEL_QUEUE": f"bench-traces-{uuid.uuid4().hex[:6]}"}
    proc = subprocess.Popen([str(BIN / "flywheel"), "serve", "--workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    try:
        wait_until_serving(f"{base}/healthz", proc, piped_stderr(proc))
        ids = _create_traces(base, auth, args.concurrency)
        args.profiling_flywheel = True
        result = run_load(base, ids, [f"Authorization: Bearer {key}"], args, proc.pid)
        args.profiling_flywheel = False
        reports = [httpx.get(f"{base}/v1/traces/{t}/verify", headers=auth, timeout=60).json() for t in ids]
        result["chains_ok"] = all(r["ok"] for r in reports)
        result["chained"] = sum(r["checked"] for r in reports)
        return result
    finally:
        stop(proc)


def run_peer(svc: BenchServices, args) -> dict:
    from flywheel.server.testing.live import free_port

    port, token = free_port(), uuid.uuid4().hex
    env = {**os.environ, "PEER_DATABASE_URL": svc.database_url, "PEER_TOKEN": token,
           "PEER_CHAIN_KEY": os.urandom(32).hex()}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "benchmarks.peers.traces_fastapi.app:app",
                             "--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{base}/docs", proc, piped_stderr(proc))
        ids = _create_traces(base, {"Authorization": f"Bearer {token}"}, args.concurrency)
        return run_load(base, ids, [f"Authorization: Bearer {token}"], args, proc.pid)
    finally:
        stop(proc)


async def _stored(dsn: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return {"flywheel": await conn.fetchval("SELECT count(*) FROM traces_events"),
                "flywheel_events_table": await conn.fetchval("SELECT count(*) FROM events WHERE type LIKE 'traces.%'"),
                "peer": await conn.fetchval("SELECT count(*) FROM peer_trace_events WHERE hash IS NOT NULL")
                if await conn.fetchval("SELECT to_regclass('peer_trace_events') IS NOT NULL") else 0}
    finally:
        await conn.close()


# -- 2. and 3. sandboxes: start latency and QA throughput per backend -----------------------------------


class Podman:
    """Podman's API service on a private socket (as tests/sandbox_backends.py starts it), if usable."""

    CONF = '[engine]\nruntime = "runc"\n[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="flywheel-bench-podman-"))
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None

    def start(self) -> str | None:
        """None when it serves at `self.url`, else why not."""
        if shutil.which("podman") is None or shutil.which("runc") is None:
            return "podman or runc is not installed"
        (self.folder / "containers.conf").write_text(self.CONF)
        env = {**os.environ, "CONTAINERS_CONF": str(self.folder / "containers.conf")}
        if subprocess.run(["podman", "image", "exists", "flywheel-sandbox"], env=env, capture_output=True).returncode:
            return "no flywheel-sandbox image (tests/test_sandbox.py builds it once, docs/traces.md says how)"
        sock = self.folder / "podman.sock"
        self.proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"], env=env,
                                     cwd=self.folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if sock.exists():
                self.url = f"unix://{sock}"
                return None
            time.sleep(0.1)
        return "podman's API service did not start"

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
        shutil.rmtree(self.folder, ignore_errors=True)


async def start_latency(backend: str, starts: int) -> dict:
    from flywheel.server.sandbox import SandboxSpec, make_sandbox

    box = make_sandbox(backend)
    try:
        times = []
        for _ in range(starts + 2):  # the first runs warm caches (and the engine's image layers) up
            started = time.perf_counter()
            result = await box.run(SandboxSpec(command=["true"]))
            times.append((time.perf_counter() - started) * 1000)
            assert result.exit_code == 0, result
        times = times[2:]
        return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
                "starts": len(times)}
    finally:
        await box.close()


async def qa_throughput(svc: BenchServices, backend: str, runs: int) -> dict:
    """`runs` finalized example traces QA'd by one burst worker (four jobs at a time); runs a minute."""
    from flywheel.plugins.traces.example import submit_example
    from flywheel.plugins.traces.jobs_payload import TraceJob
    from flywheel.server.app import build_state
    from flywheel.server.auth import service
    from flywheel.server.jobs.queue import enqueue
    from flywheel.server.jobs.worker import build_worker
    from flywheel.server.secrets import new_key
    from flywheel.server.settings import load_settings

    settings = load_settings({"DATABASE_URL": svc.database_url, "REDIS_URL": svc.redis_url,
                              "FLYWHEEL_DATA_DIR": str(svc.scratch / "data"), "FLYWHEEL_SANDBOX": backend,
                              "FLYWHEEL_SECRET_KEY": new_key(), "FLYWHEEL_QUEUE": f"bench-qa-{uuid.uuid4().hex[:6]}"})
    state = build_state(settings, load_entrypoints=True)
    await state.start()
    try:
        tenant = await service.create_tenant(state.db, f"bench-qa-{backend}")
        traces = [await submit_example(state, tenant.id, queue_qa=False) for _ in range(runs)]
        for t in traces:
            await enqueue(state, "traces.qa", TraceJob(trace_id=t.id, judge=False), tenant_id=tenant.id)
        worker = build_worker(state, burst=True, handle_signals=False, poll_delay=0.05)
        started = time.perf_counter()
        try:
            await worker.main()
        finally:
            await worker.close()
        elapsed = time.perf_counter() - started
        statuses = [r["qa"]["status"] for r in await state.db.fetch(
            "SELECT qa FROM traces WHERE tenant_id = $1", tenant.id)]
    finally:
        await state.stop()
    return {"runs": runs, "seconds": elapsed, "runs_per_min": runs / elapsed * 60,
            "passed": statuses.count("passed")}


async def sandboxes(svc: BenchServices, size: Size) -> dict:
    from flywheel.server.sandbox.bubblewrap import bwrap_path

    out: dict = {}
    podman = Podman()
    try:
        available = {"bubblewrap": None if bwrap_path() else "bubblewrap is not installed", "docker": podman.start()}
        if podman.url:
            os.environ["DOCKER_HOST"] = podman.url  # where the docker backend (aiodocker) finds the engine
        for backend, why_not in available.items():
            if why_not:
                out[backend] = {"unavailable": why_not}
                console.print(f"[yellow]{backend}: skipped, {why_not}[/]")
                continue
            console.print(f"[bold]{backend}[/] sandbox starts, then QA runs ...")
            out[backend] = {"start": await start_latency(backend, size.starts),
                            "qa": await qa_throughput(svc, backend, size.qa_runs)}
    finally:
        podman.stop()
    return out


# -- the run ---------------------------------------------------------------------------------------


async def main_async(args) -> dict:
    import asyncpg

    from flywheel.contracts.tenants import Scope
    from flywheel.server.auth import service
    from flywheel.server.db.migrations import CORE_SOURCE, migrate

    svc = BenchServices()
    await svc.start()
    try:
        conn = await asyncpg.connect(svc.database_url)
        await migrate(conn, [CORE_SOURCE])  # `flywheel serve` applies the plugins' migrations
        tenant = await service.create_tenant(conn, "bench")
        key = (await service.create_key(conn, tenant.id, "bench", [Scope.ADMIN])).secret
        await conn.close()
        console.print(f"[bold]Flywheel[/] chunks of {args.chunk_events} events, {args.concurrency} traces at once, "
                      f"{args.duration:.0f} s ...")
        fly = await asyncio.to_thread(run_flywheel, svc, key, args)
        console.print("[bold]peer[/] FastAPI + pydantic + one INSERT per event ...")
        peer = await asyncio.to_thread(run_peer, svc, args)
        stored = await _stored(svc.database_url)
        boxes = await sandboxes(svc, args.sizes)
    finally:
        await svc.stop()
    print_tables(fly, peer, stored, boxes, svc.where)
    return summary(fly, peer, stored, boxes, args)


def print_tables(fly: dict, peer: dict, stored: dict, boxes: dict, where: str) -> None:
    t = Table(title=f"Trace chunks with the hash chain ({where}, {os.cpu_count()} cores)")
    for col in ("system", "events/s", "chunk p50 / p99 ms", "stored", "statuses",
                "CPU: server / Postgres / load / other"):
        t.add_column(col, justify="right")
    for name, run, n in (("Flywheel", fly, stored["flywheel"]), ("peer (FastAPI, INSERT per event)", peer,
                                                                   stored["peer"])):
        c = run["cpu_cores"]
        t.add_row(name, f"{run['events_per_s']:,.0f}", f"{run['p50_ms']:.1f} / {run['p99_ms']:.1f}", f"{n:,}",
                  str(run["statuses"]), f"{c['server']} / {c['postgres']} / {c['loadgen']} / {c['other']}")
    console.print(t)
    s = Table(title="Sandboxes: `true` start to end, and QA of a two-test pytest repository")
    for col in ("backend", "start p50 / p99 ms", "QA runs / min", "QA passed"):
        s.add_column(col, justify="right")
    for backend, r in boxes.items():
        if "unavailable" in r:
            s.add_row(backend, r["unavailable"], "", "")
        else:
            s.add_row(backend, f"{r['start']['p50_ms']:.1f} / {r['start']['p99_ms']:.1f}",
                      f"{r['qa']['runs_per_min']:.1f}", f"{r['qa']['passed']} of {r['qa']['runs']}")
    console.print(s)


def summary(fly: dict, peer: dict, stored: dict, boxes: dict, args) -> dict:
    out = {"flywheel_events_per_s": round(fly["events_per_s"]), "peer_events_per_s": round(peer["events_per_s"]),
           "ratio_vs_peer": round(fly["events_per_s"] / peer["events_per_s"], 2),
           "ratio_vs_claimed": round(fly["events_per_s"] / CLAIMED_EVENTS_PER_S, 2),
           "chunk_p50_ms": round(fly["p50_ms"], 1), "chunk_p99_ms": round(fly["p99_ms"], 1),
           "peer_chunk_p99_ms": round(peer["p99_ms"], 1),
           "stored_equals_acknowledged": stored["flywheel"] == fly["events"] == stored["flywheel_events_table"],
           "chains_ok": fly["chains_ok"] and fly["chained"] == stored["flywheel"],
           "flywheel_cpu_cores": fly["cpu_cores"], "peer_cpu_cores": peer["cpu_cores"],
           "size": args.size, "duration_s": args.duration, "concurrency": args.concurrency,
           "chunk_events": args.chunk_events}
    for backend, r in boxes.items():
        if "unavailable" in r:
            out[f"{backend}_unavailable"] = r["unavailable"]
            continue
        out |= {f"{backend}_start_p50_ms": round(r["start"]["p50_ms"], 1),
                f"{backend}_start_p99_ms": round(r["start"]["p99_ms"], 1),
                f"{backend}_qa_runs_per_min": round(r["qa"]["runs_per_min"], 1),
                f"{backend}_qa_ratio_vs_claimed": round(r["qa"]["runs_per_min"] / CLAIMED_QA_PER_MIN, 2),
                f"{backend}_qa_all_passed": r["qa"]["passed"] == r["qa"]["runs"]}
    return out


def main() -> None:
    if sys.argv[1:2] == ["--loadgen"]:
        loadgen_main()
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="full",
                   help="small: about a minute; full: 30 s of load per system, 200 starts, 40 QA runs per backend")
    p.add_argument("--duration", type=float, default=None, help="seconds of chunk load per system")
    p.add_argument("--concurrency", type=int, default=None, help="traces sending chunks at once")
    p.add_argument("--chunk-events", type=int, default=100)
    args = p.parse_args()
    args.sizes = SIZES[args.size]
    args.profile, args.profiling_flywheel = os.environ.get("BENCH_PROFILE"), False
    args.duration = args.duration or args.sizes.duration
    args.concurrency = args.concurrency or args.sizes.concurrency
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
