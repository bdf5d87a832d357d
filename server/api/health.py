"""Liveness, readiness and Prometheus metrics. Public: no key needed."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

from flywheel.server.db.pool import bounded

# Jobs not finished yet, for every worker at once: read from Postgres when scraped (a
# worker's own counters only see its jobs). Finished ones are `flywheel_jobs_total`.
JOBS_CURRENT = Gauge("flywheel_jobs_current", "Jobs queued or running now, by state (read from Postgres "
                     "at scrape time)", ["state"])
_OPEN_JOBS = "SELECT state, count(*) AS n FROM jobs WHERE state IN ('queued', 'running') GROUP BY state"


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]


@get("/healthz", opt={"public": True}, operation_id="healthz", tags=["ops"], sync_to_thread=False)
def healthz() -> Health:
    """The process is alive and serving."""
    return Health(status="ok")


async def _database(db) -> None:
    # Cut, not cancelled, at the deadline: a cancelled query waits for a hung
    # server's answer before its connection goes back (server/db/pool.py).
    async with bounded(db, 2.0) as conn:
        await conn.fetchval("SELECT 1")


def _spool_check(state) -> str:
    ingestor = state.ingestor
    if ingestor is None:
        return "ok"
    spool = ingestor.engine.spool
    dead = spool.dead_letters()
    if dead:
        return f"degraded: {len(dead)} file(s) of refused events in {spool.dead_letter_folder}"
    return "ok"


async def _check(name: str, probe) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe(), timeout=2.0)
        return name, "ok"
    except Exception as exc:  # a readiness probe reports, never raises
        return name, f"error: {type(exc).__name__}"


@get("/readyz", opt={"public": True}, operation_id="readyz", tags=["ops"],
     responses={503: ResponseSpec(data_container=Readiness, description="a dependency does not answer")})
async def readyz(state: State) -> Response[Readiness]:
    """Postgres, Redis and the object store answer (503 naming the one that does not).

    `status` is `degraded` (still 200: the process serves) while the spool's
    dead-letter folder holds events Postgres refused; `checks.spool` says where.
    """
    s = state.flywheel
    results = dict(await asyncio.gather(
        _check("database", lambda: _database(s.db)),
        _check("redis", lambda: s.redis.ping()),
        _check("store", lambda: s.store.check()),
    ))
    results["spool"] = _spool_check(s)
    if any(v != "ok" for k, v in results.items() if k != "spool"):
        return Response(Readiness(status="unavailable", checks=results), status_code=503)
    status = "ok" if results["spool"] == "ok" else "degraded"
    return Response(Readiness(status=status, checks=results), status_code=200)


async def _count_open_jobs(db) -> None:
    try:
        async with bounded(db, 1.0) as conn:
            rows = await conn.fetch(_OPEN_JOBS)
    except Exception:  # a scrape still answers while Postgres does not (readyz says why)
        return
    counts = {r["state"]: r["n"] for r in rows}
    for state in ("queued", "running"):
        JOBS_CURRENT.labels(state).set(counts.get(state, 0))


@get("/metrics", opt={"public": True}, operation_id="metrics", tags=["ops"], media_type="text/plain")
async def metrics(state: State) -> Response[bytes]:
    """Prometheus metrics, in the text exposition format.

    Requests (by route template), ingestion, jobs (`flywheel_jobs_current`: queued and running
    now, from Postgres) and scoring; public like `/healthz`, for a scraper without an API key.
    """
    await _count_open_jobs(state.flywheel.db)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
