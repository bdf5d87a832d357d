"""Cancelling jobs (server/jobs/cancel.py) through the API, with a real ARQ worker on Redis.

A test plugin registers three jobs: one that reports progress in a loop, one
that sleeps without ever reporting (only ARQ's abort can stop it), and one
that finishes at once. Each run writes what it got to in `REACHED`, so a test
can tell a job that stopped from one that ran on.
"""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest
import pytest_asyncio

from flywheel.contracts.jobs import JobSpec
from flywheel.contracts.tenants import Scope
from flywheel.server.app import create_app
from flywheel.server.hookspecs import hookimpl
from flywheel.server.jobs.worker import build_worker
from flywheel.server.plugin_api import run_here
from flywheel.server.testing import eventually
from flywheel.server.testing.client import app_client

pytestmark = pytest.mark.asyncio(loop_scope="session")
REACHED: dict[str, int] = {}


async def looping(ctx) -> dict:
    for i in range(400):
        REACHED[str(ctx.job_id)] = i
        await ctx.progress(i, 400, force=True)
        await asyncio.sleep(0.02)
    return {"done": True}


async def sleeping(ctx) -> dict:
    REACHED[str(ctx.job_id)] = 0
    await asyncio.sleep(60)
    REACHED[str(ctx.job_id)] = 1
    return {"done": True}


async def quick(ctx) -> dict:
    return {"done": True}


class Slow:
    __flywheel_plugin_name__ = "slow"

    @hookimpl
    def register_jobs(self):
        return [JobSpec(name="slow.loop", func=looping), JobSpec(name="slow.sleep", func=sleeping),
                JobSpec(name="slow.quick", func=quick)]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def slow_app(flywheel_settings, tmp_path_factory):
    """An app on a queue of its own, with a worker running beside it (not in burst mode)."""
    settings = msgspec.structs.replace(flywheel_settings, queue_name=f"cancel-{uuid.uuid4().hex[:6]}",
                                       data_dir=str(tmp_path_factory.mktemp("cancel-data")))
    app = create_app(settings, [Slow()])
    async with app_client(app) as client:
        state = app.state.flywheel
        worker = build_worker(state, handle_signals=False, poll_delay=0.05)
        running = asyncio.create_task(worker.main())
        try:
            yield state, client
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await worker.close()


async def job(client, tenant, job_id) -> dict:
    r = await client.get(f"/v1/jobs/{job_id}", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def until_state(client, tenant, job_id, *states) -> dict:
    async def check():
        body = await job(client, tenant, job_id)
        return body if body["state"] in states else None

    return await eventually(check, timeout=20, what=f"job in {states}")


async def queue(client, tenant, name: str) -> str:
    r = await client.post("/v1/jobs", json={"name": name}, headers=tenant.headers)
    assert r.status_code == 202, r.text
    return r.json()["id"]


@pytest.mark.parametrize("name", ["slow.loop", "slow.sleep"])
async def test_a_running_job_stops_and_shows_cancelled(slow_app, make_tenant, name):
    """slow.loop stops at its next progress report; slow.sleep only by ARQ's abort of its task."""
    _, client = slow_app
    tenant = await make_tenant(scopes=[Scope.WRITE, Scope.READ])
    job_id = await queue(client, tenant, name)
    await until_state(client, tenant, job_id, "running")
    await eventually(lambda: REACHED.get(job_id) is not None, timeout=10, what="the job started")
    r = await client.post(f"/v1/jobs/{job_id}/cancel", headers=tenant.headers)
    assert r.status_code == 200, r.text
    done = await until_state(client, tenant, job_id, "cancelled", "succeeded", "failed")
    assert done["state"] == "cancelled" and done["finished_at"] and "cancelled by key" in done["error"]
    reached = REACHED[job_id]
    await asyncio.sleep(0.3)
    assert REACHED[job_id] == reached  # it stopped: nothing ran on after the cancel
    assert reached < (399 if name == "slow.loop" else 1)
    # The worker goes on with the next job.
    after = await queue(client, tenant, "slow.quick")
    assert (await until_state(client, tenant, after, "succeeded", "failed"))["state"] == "succeeded"


async def test_a_queued_job_is_cancelled_at_once_and_never_runs(slow_app, make_tenant):
    state, client = slow_app
    tenant = await make_tenant(scopes=[Scope.WRITE, Scope.READ])
    from flywheel.server.jobs.queue import create_job_row

    spec = state.contributions.jobs["slow.loop"][1]
    job_id = str(await create_job_row(state, spec, tenant.id, None))  # a row no worker has picked up yet
    body = (await client.post(f"/v1/jobs/{job_id}/cancel", headers=tenant.headers)).json()
    assert body["state"] == "cancelled" and body["started_at"] is None


async def test_finished_and_other_tenants_jobs(slow_app, make_tenant):
    _, client = slow_app
    a, b = await make_tenant(), await make_tenant()
    job_id = await queue(client, a, "slow.quick")
    await until_state(client, a, job_id, "succeeded")
    r = await client.post(f"/v1/jobs/{job_id}/cancel", headers=a.headers)
    assert r.status_code == 409 and r.json()["code"] == "job_finished"
    running = await queue(client, a, "slow.loop")
    r = await client.post(f"/v1/jobs/{running}/cancel", headers=b.headers)
    assert r.status_code == 404  # another tenant's job does not exist for b
    reader = await make_tenant(scopes=[Scope.READ])
    r = await client.post(f"/v1/jobs/{running}/cancel", headers=reader.headers)
    assert r.status_code in (403, 404)
    assert (await client.post(f"/v1/jobs/{running}/cancel", headers=a.headers)).status_code == 200


async def test_a_job_run_in_process_stops_at_its_next_progress_report(slow_app, make_tenant):
    state, client = slow_app
    tenant = await make_tenant(scopes=[Scope.WRITE, Scope.READ])
    job_id, task = await run_here(state, "slow.loop", None, tenant_id=tenant.id)
    await eventually(lambda: REACHED.get(str(job_id), 0) >= 3, timeout=10, what="the job started")
    assert (await client.post(f"/v1/jobs/{job_id}/cancel", headers=tenant.headers)).status_code == 200
    await asyncio.wait_for(task, 10)
    done = await job(client, tenant, job_id)
    assert done["state"] == "cancelled" and REACHED[str(job_id)] < 399
