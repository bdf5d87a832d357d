"""Postgres and Redis for a benchmark run: the machine's when they answer, else embedded.

Each run gets a fresh database (dropped at the end), so runs never see
each other's rows.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from pathlib import Path

import asyncpg

from flywheel.server.testing.services import LOCAL_POSTGRES, LOCAL_REDIS, answers, with_database


class BenchServices:
    def __init__(self) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix="flywheel-bench-"))
        self.scratch.chmod(0o711)
        self.embedded = None
        self.name = f"flywheel_bench_{uuid.uuid4().hex[:8]}"
        self.admin_dsn = self.database_url = self.redis_url = ""

    async def start(self) -> None:
        pg, redis = answers("127.0.0.1", 5432), answers("127.0.0.1", 6379)
        if not (pg and redis):
            from flywheel.server.embedded import EmbeddedServices

            self.embedded = EmbeddedServices(self.scratch / "services", postgres=not pg, redis=not redis)
            await asyncio.to_thread(self.embedded.start)
        self.admin_dsn = LOCAL_POSTGRES if pg else self.embedded.postgres.dsn
        self.redis_url = LOCAL_REDIS if redis else self.embedded.redis.url
        conn = await asyncpg.connect(self.admin_dsn)
        await conn.execute(f'CREATE DATABASE "{self.name}"')
        await conn.close()
        self.database_url = with_database(self.admin_dsn, self.name)

    @property
    def where(self) -> str:
        return "embedded Postgres 16" if self.embedded and self.embedded.postgres else "the machine's Postgres"

    async def stop(self) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        await conn.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
        shutil.rmtree(self.scratch, ignore_errors=True)


async def run_job_now(state, name: str, payload: dict, tenant_id) -> dict:
    """Queue a job and run the queue to completion in this process (a burst worker); its result, or raise."""
    from flywheel.server.jobs.queue import enqueue
    from flywheel.server.jobs.worker import build_worker

    job_id = await enqueue(state, name, payload, tenant_id=tenant_id)
    worker = build_worker(state, burst=True, handle_signals=False, poll_delay=0.05)
    try:
        await worker.main()
    finally:
        await worker.close()
    job = await state.db.fetchrow("SELECT state, error, result FROM jobs WHERE id = $1", job_id)
    if job["state"] != "succeeded":
        raise RuntimeError(f"{name} failed: {job['error']}")
    return job["result"]
