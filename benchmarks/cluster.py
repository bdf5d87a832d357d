"""Ingest throughput of a multi-process deployment: 2 `flywheel serve` replicas against 1.

    python -m benchmarks.cluster [--quick] [--duration S] [--concurrency N] [--rounds R]

The deployment is benchmarks/cluster_harness.py's (the one tests/test_cluster.py
checks): `flywheel migrate`, then `flywheel serve` replicas on ports of their
own, one fresh Postgres database, Redis, and SeaweedFS as the object store.
No workers: ingestion does not use them, and idle they would only blur the
CPU split.

The load is benchmarks/loadgen.py's (batches of 100 events over keep-alive
connections), from two generator processes of N/2 connections each: both at
replica 0 for the 1-replica run, one at each replica for the 2-replica run,
so the client side is the same in both. The two alternate for R rounds and
the median run of each is compared. For each run it reports events/s,
what was stored against what was acknowledged, and the CPU (in cores) each
side used during the load, from /proc: the replicas, Postgres (every
`postgres` process on the machine), the load generators.

On a machine with few cores the replicas, Postgres and the load generators
share them: a second replica adds throughput only while a core is idle, and
once Postgres' COPY and commits take what is left, it is the bound. The
output says which it was.
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
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table

from benchmarks.cluster_harness import S3, Cluster, cpu_seconds, machine_busy_seconds, postgres_cpu_seconds
from benchmarks.services import BenchServices

console = Console(stderr=True)


def _generators(urls: list[str], key: str, args) -> list[subprocess.Popen]:
    procs = []
    for url in urls:
        cmd = [sys.executable, "-m", "benchmarks.loadgen", f"{url}/v1/events", "--concurrency",
               str(max(1, args.concurrency // len(urls))), "--duration", str(args.duration), "--batch", "100",
               "--header", f"Authorization: Bearer {key}"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def run_load(cluster: Cluster, replicas: int, args) -> dict:
    """Two load generators at the first `replicas` replicas; throughput and the CPU split."""
    targets = [cluster.serving[i % replicas].url for i in range(2)]
    gens = _generators(targets, cluster.key, args)
    for g in gens:
        if g.stdout.readline().strip() != "load started":
            raise RuntimeError(f"load generator failed: {g.communicate()[1]}")
    servers = [p.proc.pid for p in cluster.serving[:replicas]]
    before = [cpu_seconds(pid) for pid in servers], postgres_cpu_seconds(), time.perf_counter(), machine_busy_seconds()
    results = []
    for g in gens:
        out, err = g.communicate(timeout=args.duration + 120)
        if g.returncode:
            raise RuntimeError(f"load generator failed: {err}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    elapsed = time.perf_counter() - before[2]
    machine = round((machine_busy_seconds() - before[3]) / elapsed, 2)
    replica_cores = [round((cpu_seconds(pid) - was) / elapsed, 2) for pid, was in zip(servers, before[0])]
    events = sum(r["events"] for r in results)
    statuses: dict[str, int] = {}
    for r in results:
        for status, n in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    seconds = max(r["seconds"] for r in results)
    return {"replicas": replicas, "events": events, "events_per_s": events / seconds, "statuses": statuses,
            "p99_ms": max(r["p99_ms"] for r in results),
            "cpu_cores": {"replicas": replica_cores,
                          "postgres": round((postgres_cpu_seconds() - before[1]) / elapsed, 2),
                          "loadgen": round(sum(r["cpu_cores"] for r in results), 2),
                          "machine": machine}}  # every process's, other users' too


async def _stored_then_truncate(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        n = await conn.fetchval("SELECT count(*) FROM events")
        await conn.execute("TRUNCATE events")
        await conn.execute("CHECKPOINT")  # the next run starts from the same place
        return n
    finally:
        await conn.close()


async def main_async(args) -> dict:
    from tests.s3_server import BUCKET, SeaweedS3

    svc, s3 = BenchServices(), SeaweedS3()
    await svc.start()
    await asyncio.to_thread(s3.start)
    cluster = Cluster(admin_dsn=svc.admin_dsn, redis_url=svc.redis_url, s3=S3(s3.endpoint_url, BUCKET, s3.env),
                      scratch=svc.scratch / "cluster", replicas=2, workers=0)
    runs = []
    try:
        await cluster.start()
        console.print(f"cluster up in {cluster.startup_s:.1f} s (migrate, tenant and key by CLI, 2 replicas)")
        # Alternating 1, 2, 1, 2...: on a shared machine the neighbours' load drifts, and each
        # configuration then sees as much of it; the median run of each is compared.
        for round_ in range(1, args.rounds + 1):
            for replicas in (1, 2):
                console.print(f"round {round_}: [bold]{replicas} replica(s)[/], {args.concurrency} connections, "
                              f"{args.duration:.0f} s ...")
                run = await asyncio.to_thread(run_load, cluster, replicas, args)
                await asyncio.sleep(1)  # the last group commits land
                run["stored"] = await _stored_then_truncate(cluster.database_url)
                runs.append(run)
    finally:
        cluster.stop()
        await cluster.drop_database()
        await asyncio.to_thread(s3.stop)
        await svc.stop()

    def median(replicas: int) -> dict:
        mine = sorted((r for r in runs if r["replicas"] == replicas), key=lambda r: r["events_per_s"])
        return mine[len(mine) // 2]

    one, two = median(1), median(2)
    cores = os.cpu_count() or 1
    table = Table(title=f"Ingest, 2 replicas against 1, every run ({svc.where}, {cores} cores)")
    for col in ("replicas", "events/s", "p99 ms", "stored / acked", "statuses",
                "CPU cores: replicas / Postgres / load / machine"):
        table.add_column(col, justify="right")
    for r in runs:
        c = r["cpu_cores"]
        table.add_row(str(r["replicas"]), f"{r['events_per_s']:,.0f}", f"{r['p99_ms']:.1f}",
                      f"{r['stored']:,} / {r['events']:,}", str(r["statuses"]),
                      f"{' + '.join(map(str, c['replicas']))} / {c['postgres']} / {c['loadgen']} / {c['machine']}")
    console.print(table)
    ratio = two["events_per_s"] / one["events_per_s"]
    c2 = two["cpu_cores"]
    ours = sum(c2["replicas"]) + c2["postgres"] + c2["loadgen"]
    saturated = c2["machine"] >= 0.85 * cores
    bound = "Postgres" if c2["postgres"] >= max(c2["replicas"]) else "the replicas"
    verdict = (f"Median runs: 2 replicas / 1 = {ratio:.2f}x. With 2 replicas: replicas "
               f"{sum(c2['replicas']):.2f} + Postgres {c2['postgres']} + load {c2['loadgen']} = {ours:.2f} cores; "
               f"the machine was busy {c2['machine']} "
               f"of {cores} cores (other processes included). "
               + (f"It is saturated: a second replica can only take CPU from Postgres and the load, so the bound is "
                  f"{bound}'s share of the cores, not the number of replicas." if saturated else
                  f"Cores were left idle, and {bound} used the most CPU of the cluster's processes: the bound "
                  "is then per-request latency (group commit, fsync), not CPU."))
    console.print(verdict)
    for r in runs:
        if r["stored"] != r["events"]:
            console.print(f"[red]{r['replicas']} replica(s): acknowledged {r['events']} events, "
                          f"stored {r['stored']}[/]")
    return {"events_per_s_1": round(one["events_per_s"]), "events_per_s_2": round(two["events_per_s"]),
            "ratio": round(ratio, 2), "cpu_cores_1": one["cpu_cores"], "cpu_cores_2": two["cpu_cores"],
            "bound": bound, "machine_cores": cores, "saturated": saturated,
            "stored_equals_acknowledged": all(r["stored"] == r["events"] for r in runs),
            "runs_events_per_s": [[r["replicas"], round(r["events_per_s"])] for r in runs],
            "concurrency": args.concurrency, "duration_s": args.duration, "rounds": args.rounds,
            "startup_s": round(cluster.startup_s, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a run under a minute and a half")
    p.add_argument("--duration", type=float, default=None, help="seconds of load per run")
    p.add_argument("--concurrency", type=int, default=32, help="connections in all (split over 2 generators)")
    p.add_argument("--rounds", type=int, default=None, help="runs of each configuration, alternating")
    args = p.parse_args()
    args.duration = args.duration or (5.0 if args.quick else 20.0)
    args.rounds = args.rounds or (2 if args.quick else 3)
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `tests.s3_server` from a checkout
    main()
