"""A job's log lines are kept with it (server/jobs/logs.py): its own, not its neighbours'."""

from __future__ import annotations

import asyncio
import logging
import uuid

import msgspec
import pytest
import pytest_asyncio
import structlog

from flywheel.contracts.jobs import JobSpec
from flywheel.server.app import create_app
from flywheel.server.hookspecs import hookimpl
from flywheel.server.jobs import logs as job_logs
from flywheel.server.plugin_api import job_status, run_here
from flywheel.server.telemetry import configure_logging
from flywheel.server.testing.client import app_client

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Talk(msgspec.Struct):
    tag: str
    lines: int = 3


async def talking(ctx, payload: Talk) -> dict:
    for i in range(payload.lines):
        structlog.get_logger("flywheel.test.talk").info("step", tag=payload.tag, i=i)
        await asyncio.sleep(0)  # the other job's turn: their lines interleave in time
    logging.getLogger("some.library").warning("a library warning for %s", payload.tag)
    return {"tag": payload.tag}


class Talker:
    __flywheel_plugin_name__ = "talker"

    @hookimpl
    def register_jobs(self):
        return [JobSpec(name="talker.talk", func=talking, payload=Talk)]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def talker_app(flywheel_settings, tmp_path_factory):
    settings = msgspec.structs.replace(flywheel_settings, queue_name=f"talk-{uuid.uuid4().hex[:6]}",
                                       data_dir=str(tmp_path_factory.mktemp("talk-data")))
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    configure_logging(msgspec.structs.replace(settings, log_json=True))  # as every CLI command does
    app = create_app(settings, [Talker()])
    try:
        async with app_client(app):
            yield app.state.flywheel
    finally:
        root.handlers, root.level = handlers, level
        structlog.configure(**config)


async def test_two_jobs_side_by_side_keep_their_own_lines(talker_app, make_tenant):
    state = talker_app
    tenant = await make_tenant()
    (a, ta), (b, tb) = [await run_here(state, "talker.talk", {"tag": tag}, tenant_id=tenant.id) for tag in "AB"]
    await asyncio.gather(ta, tb)
    for job_id, mine, other in ((a, "A", "B"), (b, "B", "A")):
        status = await job_status(state, job_id, tenant_id=tenant.id)
        lines = status.logs.splitlines()
        assert [line.split(": ", 1)[1] for line in lines if "flywheel.test.talk" in line] == [
            f"step tag={mine} i={i}" for i in range(3)]
        assert any(f"warning some.library: a library warning for {mine}" in line for line in lines)
        assert f"tag={other}" not in status.logs and f"for {other}" not in status.logs


async def test_a_chatty_job_keeps_its_first_lines_and_says_how_many_were_left(talker_app, make_tenant):
    state = talker_app
    tenant = await make_tenant()
    job_id, task = await run_here(state, "talker.talk", {"tag": "C", "lines": job_logs.MAX_LINES + 99},
                                  tenant_id=tenant.id)
    await task
    lines = (await job_status(state, job_id, tenant_id=tenant.id)).logs.splitlines()
    assert len(lines) == job_logs.MAX_LINES + 1 and lines[0].endswith("step tag=C i=0")
    assert lines[-1] == "... 100 more line(s) not kept"  # 99 steps and the warning
