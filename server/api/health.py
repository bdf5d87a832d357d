"""Liveness, readiness and Prometheus metrics. Public: no key needed."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]


@get("/healthz", opt={"public": True}, operation_id="healthz", tags=["ops"], sync_to_thread=False)
def healthz() -> Health:
    """The process is alive and serving."""
    return Health(status="ok")


async def _check(name: str, probe) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe(), timeout=2.0)
        return name, "ok"
    except Exception as exc:  # a readiness probe reports, never raises
        return name, f"error: {type(exc).__name__}"


@get("/readyz", opt={"public": True}, operation_id="readyz", tags=["ops"],
     responses={503: ResponseSpec(data_container=Readiness, description="a dependency does not answer")})
async def readyz(state: State) -> Response[Readiness]:
    """Postgres, Redis and the object store answer."""
    s = state.flywheel
    results = dict(await asyncio.gather(
        _check("database", lambda: s.db.fetchval("SELECT 1")),
        _check("redis", lambda: s.redis.ping()),
        _check("store", lambda: s.store.check()),
    ))
    ok = all(v == "ok" for v in results.values())
    return Response(Readiness(status="ok" if ok else "unavailable", checks=results), status_code=200 if ok else 503)


@get("/metrics", opt={"public": True}, operation_id="metrics", tags=["ops"], include_in_schema=False,
     sync_to_thread=False)
def metrics() -> Response[bytes]:
    """Prometheus exposition."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
