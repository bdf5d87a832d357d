"""A multi-process Flywheel deployment on one machine, for tests/test_cluster.py and benchmarks/cluster.py.

What the README's "Scaling out" section describes, as real OS processes:
`flywheel migrate` once, then N `flywheel serve` replicas on ports of their
own and M `flywheel worker` processes, all against one fresh Postgres
database, one Redis (a queue name of their own) and a real S3 server
(SeaweedFS) as the object store. The tenant and its key are made with the
CLI, as an operator would.

Each process writes to a log file of its own (a pipe nobody reads would
fill and stall it) and keeps its own data folder: a replica's ingest spool
lives there, so a replica killed and started again replays what it held.

`python -m benchmarks.cluster_harness tick-worker` is a `flywheel worker`
whose `example.count_notes_hourly` cron ticks every second instead of once an
hour (ARQ can, the CronSpec contract cannot): the test of "once per tick"
needs many ticks in a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from flywheel.server.testing.live import free_port
from flywheel.server.testing.services import with_database

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent


@dataclass
class S3:
    """Where the object store is: a bucket on an S3 endpoint, with its credentials."""

    endpoint_url: str
    bucket: str
    env: dict[str, str]


@dataclass
class Proc:
    role: str
    proc: subprocess.Popen
    log: Path
    port: int | None = None
    data_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@dataclass
class Cluster:
    """N replicas and M workers sharing Postgres, Redis and S3; `start()`, then `stop()`."""

    admin_dsn: str
    redis_url: str
    s3: S3
    scratch: Path
    replicas: int = 2
    workers: int = 2
    log_level: str = "WARNING"
    db_name: str = field(default_factory=lambda: f"flywheel_cluster_{uuid.uuid4().hex[:10]}")
    queue: str = field(default_factory=lambda: f"flywheel-cluster:{uuid.uuid4().hex[:8]}")
    serving: list[Proc] = field(default_factory=list)
    working: list[Proc] = field(default_factory=list)
    key: str = ""
    tenant_id: str = ""

    @property
    def database_url(self) -> str:
        return with_database(self.admin_dsn, self.db_name)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        from flywheel.server.secrets import new_key

        if not hasattr(self, "_secret"):
            self._secret = new_key()  # one for every process: what one seals, the others open
        prefix = f"cluster-{self.db_name[-10:]}"
        return {**os.environ, **self.s3.env, "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
                "FLYWHEEL_QUEUE": self.queue, "FLYWHEEL_STORE_URL": f"s3://{self.s3.bucket}/{prefix}",
                "FLYWHEEL_S3_ENDPOINT_URL": self.s3.endpoint_url, "FLYWHEEL_DATA_DIR": str(data_dir),
                "FLYWHEEL_SECRET_KEY": self._secret, "FLYWHEEL_LOG_LEVEL": self.log_level,
                "FLYWHEEL_ARCHIVE_JSONL": "0", "FLYWHEEL_ALLOWED_HOSTS": "127.0.0.1,localhost", **extra}

    # -- lifecycle -------------------------------------------------------------------

    async def create_database(self) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{self.db_name}"')
        finally:
            await conn.close()

    async def drop_database(self) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        finally:
            await conn.close()

    def cli(self, *args: str) -> str:
        """Run one `flywheel` command against the cluster's services; its stdout (raises on failure)."""
        data = self.scratch / "cli"
        data.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([str(BIN / "flywheel"), *args], env=self.env(data), capture_output=True,
                              text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"flywheel {' '.join(args)} failed ({done.returncode}): {done.stderr[-3000:]}")
        return done.stdout

    async def start(self) -> None:
        started = time.perf_counter()
        self.scratch.mkdir(parents=True, exist_ok=True)
        await self.create_database()
        self.cli("migrate")  # once, before anything starts (the others then find nothing to do)
        tenant = json.loads(self.cli("tenants", "create", f"cluster-{uuid.uuid4().hex[:6]}"))
        self.tenant_id = tenant["id"]
        created = json.loads(self.cli("keys", "create", "--tenant", tenant["id"],
                                      "--scopes", "ingest,read,write,admin", "--name", "cluster"))
        self.key = created["secret"]
        for i in range(self.replicas):
            self.serving.append(self.start_replica(i))
        for i in range(self.workers):
            self.working.append(self.start_worker(i))
        for p in self.serving:
            self.wait_serving(p)
        self.startup_s = time.perf_counter() - started

    def _spawn(self, role: str, cmd: list[str], data_dir: Path, port: int | None = None, **extra: str) -> Proc:
        data_dir.mkdir(parents=True, exist_ok=True)
        log = self.scratch / f"{role}.log"
        with log.open("a") as out:
            proc = subprocess.Popen(cmd, env=self.env(data_dir, **extra), stdout=out, stderr=out, cwd=REPO)
        return Proc(role, proc, log, port, data_dir)

    def start_replica(self, i: int, port: int | None = None, data_dir: Path | None = None) -> Proc:
        port = port or free_port()
        return self._spawn(f"serve-{i}", [str(BIN / "flywheel"), "serve", "--port", str(port)],
                           data_dir or self.scratch / f"serve-{i}", port)

    def start_worker(self, i: int, *, tick_every_second: bool = False, queue: str | None = None,
                     log_level: str | None = None) -> Proc:
        cmd = ([sys.executable, "-m", "benchmarks.cluster_harness", "tick-worker"] if tick_every_second
               else [str(BIN / "flywheel"), "worker"])
        # A short job lease, so a killed worker's job is taken over within seconds (30 s by default).
        extra = {"FLYWHEEL_JOB_LEASE_S": "3", **({"FLYWHEEL_QUEUE": queue} if queue else {})}
        if log_level:
            extra["FLYWHEEL_LOG_LEVEL"] = log_level
        return self._spawn(f"worker-{i}", cmd, self.scratch / f"worker-{i}", **extra)

    def wait_serving(self, p: Proc, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not p.alive:
                raise RuntimeError(f"{p.role} exited with {p.proc.returncode}:\n{p.tail()}")
            try:
                if httpx.get(f"{p.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{p.role} did not answer /healthz within {timeout:.0f} s:\n{p.tail()}")

    def restart_replica(self, index: int) -> Proc:
        """Start replica `index` again on its port and data folder (its spool replays), once it is gone."""
        old = self.serving[index]
        old.proc.wait(timeout=30)
        new = self.start_replica(index, old.port, old.data_dir)
        self.serving[index] = new
        self.wait_serving(new)
        return new

    def stop(self) -> None:
        stop_all([*self.serving, *self.working])

    def pids(self, role: str) -> list[int]:
        """Process ids of the live replicas ("serve") or workers ("worker")."""
        procs = self.serving if role == "serve" else self.working
        return [p.proc.pid for p in procs if p.alive]


def kill(p: Proc) -> None:
    """SIGKILL: no flush, no goodbye, as when a machine dies."""
    p.proc.send_signal(signal.SIGKILL)
    p.proc.wait(timeout=30)


def stop(p: Proc) -> None:
    """SIGTERM (a replica flushes what it holds, a worker cancels its jobs, which are retried),
    then SIGKILL if it is still there after 30 s."""
    if p.alive:
        p.proc.terminate()
        try:
            p.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait()


def stop_all(procs: list[Proc]) -> None:
    """`stop` for each, the SIGTERMs sent at once so that the shutdowns overlap."""
    for p in procs:
        if p.alive:
            p.proc.terminate()
    for p in procs:
        stop(p)


# -- CPU accounting (Linux /proc) ------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) a process and its children have used so far; 0 once it is gone."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / hz


def _tree(pid: int) -> list[int]:
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [c for child in (task / "children").read_text().split() for c in _tree(int(child))]
        except OSError:
            pass
    return out


def postgres_cpu_seconds() -> float:
    """CPU seconds of every process named postgres on the machine (the server and its backends)."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / hz


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy so far (anyone's processes), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# -- a worker whose cron jobs tick every second ------------------------------------------

TICKING_CRON = "cron:example.count_notes_hourly"  # a quick job (the example plugin's), every second


def _tick_worker() -> None:
    """`flywheel worker`, with the example plugin's hourly cron widened to every second.

    Only that one: the others, ticking every second, would keep two cores busy.
    """
    from flywheel.server.cli import run
    from flywheel.server.jobs import worker as worker_module

    build = worker_module.build_worker

    def every_second(state, **kwargs):
        w = build(state, **kwargs)
        for job in w.cron_jobs:
            if job.name == TICKING_CRON:
                job.month = job.day = job.weekday = job.hour = job.minute = job.second = None
        return w

    worker_module.build_worker = every_second
    run.worker.main(args=[], prog_name="flywheel worker", standalone_mode=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["tick-worker"]:
        _tick_worker()
    else:
        sys.exit("usage: python -m benchmarks.cluster_harness tick-worker")
