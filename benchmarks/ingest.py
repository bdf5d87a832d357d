"""Ingestion benchmark: Flywheel's POST /v1/events against the stack it replaces.

    python -m benchmarks.ingest [--quick] [--duration S] [--concurrency N] [--workers N]

In one run, against one Postgres and one table:
1. Flywheel: `flywheel serve` (one worker unless --workers), batches of 100
   events stamped with the time they are sent, load from a separate process
   (benchmarks/loadgen.py) over N keep-alive connections;
2. the peer: FastAPI + pydantic + one INSERT per event through an asyncpg
   pool (benchmarks/peers/fastapi_ingest), same load, same worker count;
3. the ceiling: COPY of the same rows (as many as Flywheel stored, already
   decoded and encoded) straight into the events table, the best of
   asyncpg's `copy_records_to_table` and the binary COPY Flywheel itself
   sends, over one and two connections.
For 1 and 2 it also reads, from /proc, the CPU the server's processes and
Postgres used during the load (the load generator reports its own): on a
2-core machine that split is what decides the result.
Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table

from benchmarks.processes import piped_stderr, stop, wait_until_serving
from benchmarks.services import BenchServices
from flywheel.contracts.tenants import Scope
from flywheel.server.auth import service
from flywheel.server.db.migrations import CORE_SOURCE, migrate
from flywheel.server.testing.live import free_port

BIN = Path(sys.executable).parent
console = Console(stderr=True)


def _cpu_ticks(server_pid: int) -> dict[str, int]:
    """CPU ticks so far of the server's process tree and of every Postgres process (Linux /proc)."""
    def ticks(pid: int) -> int:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0
        return int(fields[11]) + int(fields[12])  # utime + stime

    def tree(pid: int) -> list[int]:
        out = [pid]
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                out += [c for child in (task / "children").read_text().split() for c in tree(int(child))]
            except OSError:
                pass
        return out

    postgres = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    postgres += ticks(int(entry.name))
            except OSError:
                pass
    return {"server": sum(ticks(p) for p in tree(server_pid)), "postgres": postgres}


def _load(url: str, args, headers: list[str], server_pid: int) -> dict:
    """Run the load generator; with its result, the CPU (in cores) each side used during the load."""
    cmd = [sys.executable, "-m", "benchmarks.loadgen", url, "--concurrency", str(args.concurrency),
           "--duration", str(args.duration), "--batch", "100"]
    for h in headers:
        cmd += ["--header", h]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    before = None
    if proc.stdout.readline().strip() == "load started" and Path("/proc").exists():
        before = _cpu_ticks(server_pid), time.perf_counter()
    out, err = proc.communicate(timeout=args.duration + 120)
    if proc.returncode:
        raise RuntimeError(f"load generator failed: {err}")
    result = json.loads(out.strip().splitlines()[-1])
    cpu = {"loadgen": round(result.pop("cpu_cores"), 2)}
    if before is not None:
        after, elapsed = _cpu_ticks(server_pid), time.perf_counter() - before[1]
        hz = os.sysconf("SC_CLK_TCK")
        cpu.update({k: round((after[k] - before[0][k]) / hz / elapsed, 2) for k in after})
    result["cpu_cores"] = cpu
    return result


async def _count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()


async def _truncate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE events")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


def run_flywheel(svc: BenchServices, key: str, args) -> dict:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": svc.database_url, "REDIS_URL": svc.redis_url,
           "FLYWHEEL_DATA_DIR": str(svc.scratch / "data"), "FLYWHEEL_PORT": str(port),
           "FLYWHEEL_LOG_LEVEL": "WARNING", "FLYWHEEL_ARCHIVE_JSONL": "0",
           "FLYWHEEL_QUEUE": f"bench-{uuid.uuid4().hex[:6]}"}
    proc = subprocess.Popen([str(BIN / "flywheel"), "serve", "--workers", str(args.workers)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/healthz", proc, piped_stderr(proc))
        return _load(f"http://127.0.0.1:{port}/v1/events", args, [f"Authorization: Bearer {key}"], proc.pid)
    finally:
        stop(proc)


def run_peer(svc: BenchServices, tenant_id: uuid.UUID, args) -> dict:
    port = free_port()
    env = {**os.environ, "PEER_DATABASE_URL": svc.database_url, "PEER_TENANT_ID": str(tenant_id)}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "benchmarks.peers.fastapi_ingest.app:app",
                             "--port", str(port), "--workers", str(args.workers), "--no-access-log",
                             "--log-level", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/docs", proc, piped_stderr(proc))
        return _load(f"http://127.0.0.1:{port}/v1/events", args, [], proc.pid)
    finally:
        stop(proc)


async def run_ceiling(svc: BenchServices, tenant_id: uuid.UUID, rows_total: int) -> dict:
    """COPY rows already built (what Flywheel stores for the same events) as fast as Postgres takes them.

    `rows_total` is as many as Flywheel stored in its run, so both fill the
    table (and its indexes) as far; each method starts from an empty table.

    The best of asyncpg's `copy_records_to_table` and the hand-encoded binary
    COPY Flywheel itself uses (server/ingest/pgcopy.py), over one and two
    connections, in chunks of 5,000 rows: the highest rate is the ceiling.
    """
    import msgspec

    from benchmarks.loadgen import make_body
    from flywheel.server.ingest.engine import _init_connection
    from flywheel.server.ingest.pgcopy import copy_source, encode_rows
    from flywheel.server.ingest.rows import COLUMNS, EventRow

    # As the load generator sends them: batches of 100 sharing a timestamp,
    # timestamps advancing (here by 1 ms a batch).
    start = datetime.now(UTC) - timedelta(minutes=5)
    received = datetime.now(UTC)
    rows = []
    while len(rows) < rows_total:
        ts = start + timedelta(milliseconds=len(rows) // 100)
        for e in msgspec.json.decode(make_body(100, ts.isoformat(timespec="microseconds"))):
            rows.append(EventRow(tenant_id, uuid.UUID(e["event_id"]), ts.date(), ts, e["type"], e["subject_id"],
                                 e["session_id"], msgspec.json.encode(e), received))
    chunks = [rows[i:i + 5000] for i in range(0, len(rows), 5000)]
    encoded = [encode_rows(chunk) for chunk in chunks]  # already encoded: only Postgres's side is timed
    best: dict = {}
    runs: dict[str, int] = {}
    for method in ("copy_records_to_table", "binary COPY"):
        for connections in (1, 2):
            await _truncate(svc.database_url)
            pool = await asyncpg.create_pool(svc.database_url, min_size=connections, max_size=connections,
                                             init=_init_connection)
            queue = list(range(len(chunks)))

            async def copier(pool=pool, queue=queue, method=method) -> None:
                async with pool.acquire() as conn:
                    while queue:
                        i = queue.pop()
                        if method == "binary COPY":
                            await conn.copy_to_table("events", source=copy_source([encoded[i]]), columns=COLUMNS,
                                                     format="binary")
                        else:
                            await conn.copy_records_to_table("events", records=chunks[i], columns=COLUMNS)

            started = time.perf_counter()
            await asyncio.gather(*(copier() for _ in range(connections)))
            elapsed = time.perf_counter() - started
            await pool.close()
            rate = len(rows) / elapsed
            runs[f"{method}, {connections} conn"] = round(rate)
            if rate > best.get("events_per_s", 0):
                best = {"events_per_s": rate, "connections": connections, "method": method, "rows": len(rows),
                        "seconds": elapsed}
    best["runs"] = runs
    return best


async def main_async(args) -> dict:
    svc = BenchServices()
    await svc.start()
    try:
        conn = await asyncpg.connect(svc.database_url)
        await migrate(conn, [CORE_SOURCE])
        tenant = await service.create_tenant(conn, "bench")
        key = (await service.create_key(conn, tenant.id, "bench", [Scope.INGEST])).secret
        today = datetime.now(UTC).date()
        await conn.fetchval("SELECT flywheel_ensure_event_partitions($1, $2)", today - timedelta(days=1), today)
        await conn.close()
        await _truncate(svc.database_url)  # every run starts right after a checkpoint, this one too

        console.print(f"[bold]Flywheel[/] POST /v1/events, {args.concurrency} connections, {args.duration:.0f} s ...")
        fly = await asyncio.to_thread(run_flywheel, svc, key, args)
        fly_stored = await _count(svc.database_url)
        await _truncate(svc.database_url)
        console.print("[bold]peer[/] FastAPI + pydantic + INSERT per event ...")
        peer = await asyncio.to_thread(run_peer, svc, tenant.id, args)
        peer_stored = await _count(svc.database_url)
        console.print("[bold]ceiling[/] asyncpg COPY straight into the table ...")
        # As many rows as Flywheel stored: the indexes grow as far in both runs.
        ceiling = await run_ceiling(svc, tenant.id, max(args.ceiling_rows, fly_stored))
        await _truncate(svc.database_url)
    finally:
        await svc.stop()

    table = Table(title=f"Ingestion, batches of 100 events ({svc.where}, {os.cpu_count()} cores)")
    for col in ("system", "events/s", "p50 ms", "p99 ms", "stored", "statuses", "CPU cores: server / Postgres / load"):
        table.add_column(col, justify="right")

    def cpu(run: dict) -> str:
        c = run["cpu_cores"]
        return f"{c.get('server', '?')} / {c.get('postgres', '?')} / {c['loadgen']}"

    table.add_row("Flywheel", f"{fly['events_per_s']:,.0f}", f"{fly['p50_ms']:.1f}", f"{fly['p99_ms']:.1f}",
                  f"{fly_stored:,}", str(fly["statuses"]), cpu(fly))
    table.add_row("peer (FastAPI, INSERT per event)", f"{peer['events_per_s']:,.0f}", f"{peer['p50_ms']:.1f}",
                  f"{peer['p99_ms']:.1f}", f"{peer_stored:,}", str(peer["statuses"]), cpu(peer))
    table.add_row(f"ceiling ({ceiling['method']}, {ceiling['connections']} conn)", f"{ceiling['events_per_s']:,.0f}",
                  "", "", f"{ceiling['rows']:,}", "", "")
    console.print(table)
    if fly_stored != fly["events"]:
        console.print(f"[red]Flywheel acknowledged {fly['events']} events but stored {fly_stored}[/]")
    return {
        "flywheel_events_per_s": round(fly["events_per_s"]),
        "peer_events_per_s": round(peer["events_per_s"]),
        "ceiling_events_per_s": round(ceiling["events_per_s"]),
        "ratio_vs_peer": round(fly["events_per_s"] / peer["events_per_s"], 2),
        "fraction_of_ceiling": round(fly["events_per_s"] / ceiling["events_per_s"], 3),
        "p99_ms": round(fly["p99_ms"], 1),
        "p50_ms": round(fly["p50_ms"], 1),
        "peer_p99_ms": round(peer["p99_ms"], 1),
        "flywheel_cpu_cores": fly["cpu_cores"],
        "peer_cpu_cores": peer["cpu_cores"],
        "ceiling_method": f"{ceiling['method']}, {ceiling['connections']} conn",
        "ceiling_runs": ceiling["runs"],  # every way the ceiling was measured; the best is the ceiling
        "concurrency": args.concurrency,
        "workers": args.workers,
        "duration_s": args.duration,
        "stored_equals_acknowledged": fly_stored == fly["events"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a run under a minute")
    p.add_argument("--duration", type=float, default=None, help="seconds of load per system")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--workers", type=int, default=1, help="server worker processes, for Flywheel and the peer alike")
    args = p.parse_args()
    args.duration = args.duration or (8.0 if args.quick else 30.0)
    args.ceiling_rows = 200_000  # at least; the ceiling copies as many rows as Flywheel stored
    result = asyncio.run(main_async(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
