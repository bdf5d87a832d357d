"""Gateway benchmark: the rlaas plugin's OpenAI-compatible gateway against the LiteLLM proxy.

    python -m benchmarks.gateway [--quick] [--duration S] [--concurrency N]

In one run, against one local OpenAI-compatible upstream stub
(benchmarks/upstream_stub.py, its own process, a fixed answer at once):
1. direct: the stub called straight, the floor;
2. Flywheel: its server (one worker) with an active policy sending the
   route `bench-chat` to the stub, called with a Flywheel API key;
3. the peer: LiteLLM's proxy (benchmarks/peers/litellm_proxy.py, its own
   venv, one worker) with `bench-chat` as `openai/stub-model` at the stub.
For each, plain and streamed (`"stream": true`, SSE chunks then
`data: [DONE]`) `POST /v1/chat/completions`: requests/s over 32 keep-alive
connections, and p50 / p99 over 1 connection, where a target's added
latency is its figure minus the direct call's. The targets run one after
the other, never at once (LiteLLM starts while Postgres and Flywheel are set
up, and is measured before Flywheel starts). Load comes from a separate
process (benchmarks/loadgen.py, which reads chunked answers to their end
too, so one client measures all six).
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
import time
from pathlib import Path

from benchmarks import loadgen
from benchmarks.processes import stop, wait_until_serving

BIN = Path(sys.executable).parent
ROUTE = "bench-chat"
STUB_MODEL = "stub-model"
UPSTREAM_KEY = "sk-upstream-secret"
MODES = ("plain", "stream")
TARGETS = ("direct", "flywheel", "litellm")


# -- the load generator: loadgen.py's, which reads chunked answers (streams) to their end too --------


def loadgen_main() -> None:
    """`python -m benchmarks.gateway --loadgen URL ...`: benchmarks.loadgen's CLI."""
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    loadgen.main()


# -- processes -------------------------------------------------------------------------------------


def _free_port() -> int:
    from flywheel.server.testing.live import free_port

    return free_port()


def _spawn(cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> subprocess.Popen:
    # Output to a file, never an unread pipe: a server that logs per request would block on a full pipe.
    with log.open("w") as out:
        return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


def _wait(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    wait_until_serving(url, proc, lambda: log.read_text()[-3000:], timeout=timeout)


def start_stub(scratch: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = scratch / "stub.log"
    proc = _spawn([sys.executable, "-m", "benchmarks.upstream_stub", "--port", str(port)], dict(os.environ), log)
    base = f"http://127.0.0.1:{port}/v1"
    _wait(base + "/models", proc, log)
    return proc, base


def flywheel_app():
    """App factory (`uvicorn benchmarks.gateway:flywheel_app --factory`) while the rlaas entry point is not
    installed: `flywheel serve`'s app (flywheel.server.cli.run.app_from_env) with the plugin registered."""
    from flywheel.plugins.rlaas import plugin as rlaas_plugin
    from flywheel.server import http_timeouts
    from flywheel.server.app import create_app
    from flywheel.server.cli.context import settings_or_exit
    from flywheel.server.telemetry import configure_tracing

    settings = settings_or_exit()
    configure_tracing(settings)
    http_timeouts.configure(settings)
    return create_app(settings, [rlaas_plugin], load_entrypoints=True)


def _rlaas_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.name == "rlaas" for ep in entry_points(group="flywheel.plugins"))


def start_flywheel(svc, scratch: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**env, "FLYWHEEL_PORT": str(port)}
    if _rlaas_installed():
        cmd = [str(BIN / "flywheel"), "serve", "--workers", "1"]
    else:
        cmd = [sys.executable, "-c", "import uvicorn; from flywheel.server import http_timeouts; "
               f"uvicorn.run('benchmarks.gateway:flywheel_app', factory=True, host='127.0.0.1', port={port}, "
               "workers=1, log_config=None, access_log=False, http=http_timeouts.HTTP_PROTOCOL)"]
    log = scratch / "flywheel.log"
    proc = _spawn(cmd, env, log)
    base = f"http://127.0.0.1:{port}"
    _wait(base + "/healthz", proc, log)
    return proc, base


# -- Flywheel's tenant, keys and policy ------------------------------------------------------------


async def flywheel_keys(svc) -> tuple[str, str]:
    """A tenant with an admin key (to write the policy) and an ingest key (the gateway's scope, for calls)."""
    import logging

    import asyncpg
    import structlog

    from flywheel.contracts.tenants import Scope
    from flywheel.server.auth import service
    from flywheel.server.db.migrations import CORE_SOURCE, migrate

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # no per-migration lines
    conn = await asyncpg.connect(svc.database_url)
    try:
        await migrate(conn, [CORE_SOURCE])
        tenant = await service.create_tenant(conn, "bench")
        admin = (await service.create_key(conn, tenant.id, "bench-admin", [Scope.ADMIN])).secret
        caller = (await service.create_key(conn, tenant.id, "bench-gateway", [Scope.INGEST])).secret
        return admin, caller
    finally:
        await conn.close()


def create_policy(base: str, admin_key: str, upstream: str) -> None:
    import httpx

    r = httpx.post(f"{base}/v1/rlaas/policies", headers={"Authorization": f"Bearer {admin_key}"}, timeout=10,
                   json={"route": ROUTE, "name": "stub", "version": 1, "status": "active",
                         "upstream": {"base_url": upstream, "model": STUB_MODEL, "api_key": UPSTREAM_KEY}})
    if r.status_code != 201:
        raise RuntimeError(f"creating the policy: {r.status_code} {r.text}")


async def recorded_interactions(svc) -> int:
    import asyncpg

    conn = await asyncpg.connect(svc.database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM events WHERE type = 'rlaas.interaction'")
    finally:
        await conn.close()


# -- measuring -------------------------------------------------------------------------------------


def body(model: str, stream: bool) -> bytes:
    payload = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        payload["stream"] = True
    return json.dumps(payload, separators=(",", ":")).encode()


def check_answer(url: str, headers: dict[str, str], payload: bytes, stream: bool) -> None:
    """One call, read as a client would: the stub's fixed content must come back whole."""
    import httpx

    from benchmarks.upstream_stub import CONTENT

    r = httpx.post(url, content=payload, headers={**headers, "Content-Type": "application/json"}, timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"{url}: {r.status_code} {r.text[:1000]}")
    if not stream:
        got = r.json()["choices"][0]["message"]["content"]
    else:
        datas = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
        if not datas or datas[-1] != "[DONE]":
            raise RuntimeError(f"{url}: the stream does not end with data: [DONE]: {r.text[-500:]}")
        got = "".join((c.get("delta") or {}).get("content") or ""
                      for d in datas[:-1] for c in json.loads(d).get("choices", []))
    if got != CONTENT:
        raise RuntimeError(f"{url}: answered {got!r}, not the stub's {CONTENT!r}")


def _postgres_ticks() -> dict[int, int]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    out[int(entry.name)] = int(fields[11]) + int(fields[12])
            except OSError:
                pass
    return out


def _ticks(pids: dict[str, int]) -> dict:
    """CPU ticks so far of each process tree in `pids`, of each Postgres process, and of the whole machine."""
    from benchmarks.ingest import _cpu_ticks

    out: dict = {name: _cpu_ticks(pid)["server"] for name, pid in pids.items()}
    out["postgres"] = _postgres_ticks()
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    out["machine"] = sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4))  # all but idle, iowait
    return out


def _used(before: dict, after: dict) -> dict[str, int]:
    used = {k: after[k] - before[k] for k in after if k != "postgres"}
    # Backends come and go (other databases' too): only the ticks each one spent during the load.
    used["postgres"] = sum(t - before["postgres"].get(pid, 0) for pid, t in after["postgres"].items())
    return used


def load(url: str, payload: bytes, headers: list[str], concurrency: int, duration: float,
         pids: dict[str, int], scratch: Path) -> dict:
    """Run the load generator; with its result, the CPU (in cores) each of `pids` used during the load."""
    path = scratch / "body.json"
    path.write_bytes(payload)
    cmd = [sys.executable, "-m", "benchmarks.gateway", "--loadgen", url, "--concurrency", str(concurrency),
           "--duration", str(duration), "--batch", "1", "--body-file", str(path)]
    for h in headers:
        cmd += ["--header", h]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    before = None
    if proc.stdout.readline().strip() == "load started" and Path("/proc").exists():
        before = _ticks(pids), time.perf_counter()
    out, err = proc.communicate(timeout=duration + 120)
    if proc.returncode:
        raise RuntimeError(f"load generator failed: {err}")
    result = json.loads(out.strip().splitlines()[-1])
    cpu = {"loadgen": round(result.pop("cpu_cores"), 2)}
    if before is not None:
        elapsed, hz = time.perf_counter() - before[1], os.sysconf("SC_CLK_TCK")
        used = {k: v / hz / elapsed for k, v in _used(before[0], _ticks(pids)).items()}
        # Whatever else ran meanwhile (another job on the machine): the figures are only as good as this is low.
        used["other"] = max(0.0, used.pop("machine") - sum(used.values()) - cpu["loadgen"])
        cpu.update({k: round(v, 2) for k, v in used.items()})
    result["cpu_cores"] = cpu
    bad = {k: v for k, v in result["statuses"].items() if k != "200"}
    if bad:
        raise RuntimeError(f"{url} answered with errors: {bad}")
    return result


def measure(name: str, url: str, model: str, headers: dict[str, str], pids: dict[str, int], args,
            scratch: Path, console, profile: str | None = None) -> dict:
    """Both modes: requests/s at `args.concurrency` connections, latency at 1 connection."""
    header_lines = [f"{k}: {v}" for k, v in headers.items()]
    out: dict = {"answered": 0}  # every 200, warm-ups and checks included: what Flywheel must have recorded

    def run(*a) -> dict:
        result = load(url, payload, header_lines, *a, pids, scratch)
        out["answered"] += result["statuses"].get("200", 0)
        return result

    for mode in MODES:
        payload = body(model, mode == "stream")
        check_answer(url, headers, payload, mode == "stream")
        out["answered"] += 1
        console.print(f"[bold]{name}[/] {mode}: {args.concurrency} connections, then 1 ...")
        run(args.concurrency, args.warmup)  # pools, caches, the first calls' imports
        spy = None
        if profile and mode == "plain":
            spy = subprocess.Popen(["py-spy", "record", "-p", str(pids["server"]), "-d", str(int(args.duration)),
                                    "-f", "raw", "-o", profile, "--nonblocking"], stdout=subprocess.DEVNULL)
        rps = run(args.concurrency, args.duration)
        if spy:
            spy.wait()
        seconds = args.latency
        if args.min_requests:  # long enough for that many at the rate a warm-up shows (LiteLLM is slow)
            warm = run(1, args.warmup)
            seconds = min(args.latency_cap, max(seconds, args.min_requests / max(warm["requests_per_s"], 1)))
        lat = run(1, seconds)
        out[mode] = {"rps": rps, "latency": lat}
    return out


# -- the run ---------------------------------------------------------------------------------------


def _busy() -> float:
    """The 1-minute load average: above ~1 on 2 cores, something else competes with the run."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return 0.0


async def main_async(args, console) -> dict:
    import tempfile
    import uuid

    from cryptography.fernet import Fernet

    from benchmarks.peers import litellm_proxy
    from benchmarks.services import BenchServices

    scratch = Path(tempfile.mkdtemp(prefix="flywheel-bench-gateway-"))
    litellm_proxy.ensure_venv(log=console.print)  # a first run installs it here, before anything is timed
    procs: list[subprocess.Popen] = []
    svc = BenchServices()
    services_up = False
    results: dict[str, dict] = {}
    try:
        stub, upstream = start_stub(scratch)
        procs.append(stub)
        # LiteLLM takes ~25 s of CPU to import: it starts now, while Postgres and the tenant are set up.
        ll_port = _free_port()
        ll = litellm_proxy.start(ll_port, upstream, scratch, model=STUB_MODEL, api_key=UPSTREAM_KEY,
                                 log=console.print)
        procs.append(ll)
        await svc.start()
        services_up = True
        admin_key, caller_key = await flywheel_keys(svc)
        _wait(f"http://127.0.0.1:{ll_port}{litellm_proxy.READY_PATH}", ll, scratch / "litellm.log", timeout=300)

        results["litellm"] = measure(
            "LiteLLM proxy", f"http://127.0.0.1:{ll_port}/v1/chat/completions", ROUTE,
            {"Authorization": f"Bearer {litellm_proxy.MASTER_KEY}"}, {"server": ll.pid, "stub": stub.pid},
            args, scratch, console)
        stop(ll)

        results["direct"] = measure(
            "direct", f"{upstream}/chat/completions", STUB_MODEL, {"Authorization": f"Bearer {UPSTREAM_KEY}"},
            {"server": stub.pid}, args, scratch, console)

        env = {**os.environ, "DATABASE_URL": svc.database_url, "REDIS_URL": svc.redis_url,
               "FLYWHEEL_DATA_DIR": str(scratch / "data"), "FLYWHEEL_LOG_LEVEL": "WARNING",
               "FLYWHEEL_ARCHIVE_JSONL": "0", "FLYWHEEL_QUEUE": f"bench-{uuid.uuid4().hex[:6]}",
               "FLYWHEEL_RLAAS_UPSTREAM_HOSTS": "127.0.0.1", "FLYWHEEL_SECRET_KEY": Fernet.generate_key().decode()}
        fly, base = start_flywheel(svc, scratch, env)
        procs.append(fly)
        create_policy(base, admin_key, upstream)
        results["flywheel"] = measure(
            "Flywheel", f"{base}/v1/chat/completions", ROUTE, {"Authorization": f"Bearer {caller_key}"},
            {"server": fly.pid, "stub": stub.pid}, args, scratch, console, profile=os.environ.get("BENCH_PROFILE"))
        stop(fly)  # its recorder flushes what it still holds
        results["flywheel"]["recorded"] = await recorded_interactions(svc)
    except BaseException:
        console.print(f"the servers' logs are in {scratch}")
        raise
    finally:
        for proc in procs:
            stop(proc)
        if services_up:
            await svc.stop()
    shutil.rmtree(scratch, ignore_errors=True)  # the servers' logs and Flywheel's data folder
    return results


def report(results: dict, args, console, busy: float) -> dict:
    from rich.table import Table

    from benchmarks.peers.litellm_proxy import REQUIREMENTS

    table = Table(title=f"Gateway, POST /v1/chat/completions to a local stub ({os.cpu_count()} cores)")
    for col in ("system", "mode", f"req/s, {args.concurrency} conn", "p50 ms, 1 conn", "p99 ms, 1 conn",
                "added p50 / p99 ms", "requests, 1 conn",
                f"CPU cores at {args.concurrency} conn: server / stub / Postgres / load / other"):
        table.add_column(col, justify="right")
    out: dict = {}
    for mode in MODES:
        prefix = "" if mode == "plain" else "stream_"
        direct = results["direct"][mode]["latency"]
        for name in TARGETS:
            r = results[name][mode]
            lat, cpu = r["latency"], r["rps"]["cpu_cores"]
            added = (lat["p50_ms"] - direct["p50_ms"], lat["p99_ms"] - direct["p99_ms"])
            table.add_row(name, mode, f"{r['rps']['requests_per_s']:,.0f}", f"{lat['p50_ms']:.3f}",
                          f"{lat['p99_ms']:.3f}", "" if name == "direct" else f"{added[0]:.3f} / {added[1]:.3f}",
                          f"{lat['requests']:,}", " / ".join(str(cpu.get(k, "?")) for k in (
                              "server", "stub" if "stub" in cpu else "server", "postgres", "loadgen", "other")))
            out[f"{prefix}{name}_rps"] = round(r["rps"]["requests_per_s"])
            out[f"{prefix}{name}_p50_ms"] = round(lat["p50_ms"], 3)
            out[f"{prefix}{name}_p99_ms"] = round(lat["p99_ms"], 3)
            if name != "direct":
                tag = "" if name == "flywheel" else "litellm_"
                out[f"{prefix}{tag}added_p50_ms"] = round(added[0], 3)
                out[f"{prefix}{tag}added_p99_ms"] = round(added[1], 3)
        out[f"{prefix}ratio_vs_litellm"] = round(results["flywheel"][mode]["rps"]["requests_per_s"]
                                                 / results["litellm"][mode]["rps"]["requests_per_s"], 2)
    console.print(table)
    out["targets_met"] = {"added_p50_ms<=1": out["added_p50_ms"] <= 1, "added_p99_ms<=5": out["added_p99_ms"] <= 5,
                          "ratio_vs_litellm>=3": out["ratio_vs_litellm"] >= 3}
    fly = results["flywheel"]
    out["flywheel_recorded_every_call"] = fly["recorded"] == fly["answered"]
    if fly["recorded"] != fly["answered"]:
        console.print(f"[red]Flywheel answered {fly['answered']:,} calls but recorded {fly['recorded']:,}[/]")
    out["cpu_cores"] = {f"{n}_{m}": results[n][m]["rps"]["cpu_cores"] for n in TARGETS for m in MODES}
    out["latency_requests"] = {f"{n}_{m}": results[n][m]["latency"]["requests"] for n in TARGETS for m in MODES}
    out.update({"litellm": REQUIREMENTS[0], "concurrency": args.concurrency, "duration_s": args.duration,
                "loadavg_at_start": busy})
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        return loadgen_main()
    from rich.console import Console

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a run under a minute")
    p.add_argument("--duration", type=float, default=None, help="seconds of load at N connections, per mode")
    p.add_argument("--concurrency", type=int, default=32)
    args = p.parse_args()
    args.duration = args.duration or (1.5 if args.quick else 15.0)
    args.warmup = 0.3 if args.quick else 2.0
    # 1 connection: `latency` s, or longer for `min_requests` requests (at most `latency_cap` s).
    args.latency, args.min_requests, args.latency_cap = (1.5, 0, 0) if args.quick else (10.0, 3000, 90.0)
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 150)  # a log file gets whole rows
    busy = _busy()
    if busy > 1.0:
        console.print(f"[yellow]load average {busy:.1f} on {os.cpu_count()} cores: something else is running, "
                      "the figures will be low and noisy[/]")
    results = asyncio.run(main_async(args, console))
    print(json.dumps(report(results, args, console, busy)))


if __name__ == "__main__":
    main()
