"""`/v1/drives/backtests`: queue a backtest, and read the reports finished ones stored.

A backtest is the `drives.backtest` job (see `backtest.py`); its report is a
JSON object under `reports/drives-backtest/` in the tenant's store. Queueing
answers with the job, whose state is at `GET /v1/jobs/{id}`; the report
shows here once the job has finished (`?job_id=` picks one job's).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import JSONBody, QueryParameter

from flywheel.contracts.jobs import JobRead
from flywheel.plugins.drives.backtest import Backtest
from flywheel.plugins.drives.contracts import BacktestPage, BacktestReport
from flywheel.server.plugin_api import Caller, enqueue, job_status, tenant_store

PREFIX = "reports/drives-backtest/"
MAX_REPORTS = 500  # read at most this many, newest first: reports are ~2 KB and a tenant runs a few


async def backtest_reports(state, tenant_id: UUID, *, job_id: UUID | None = None, limit: int = 20,
                           key: str | None = None) -> list[BacktestReport]:
    """Finished backtests, newest first: all, one job's, or the one stored under `key`."""
    store = tenant_store(state, tenant_id)
    infos = sorted([i async for i in store.list(PREFIX) if i.key.endswith(".json")],
                   key=lambda i: (i.modified, i.key), reverse=True)[:MAX_REPORTS]
    out = []
    for info in infos:
        if key is not None and info.key != key:
            continue
        raw = msgspec.json.decode(await store.get(info.key))
        report = _report(raw, info)
        if report is None or (job_id is not None and report.job_id != job_id):
            continue
        out.append(report)
        if len(out) == limit:
            break
    return out


def _report(raw, info) -> BacktestReport | None:
    try:
        return msgspec.convert({**raw, "key": info.key, "created_at": info.modified}, BacktestReport)
    except msgspec.ValidationError:  # not a report this version can read: left out, not a 500
        return None


class BacktestController(Controller):
    # No path parameter: `/v1/drives/backtests` is matched before DriveController's `/{serial:path}`.
    path = "/v1/drives/backtests"
    tags = ["drives"]

    @post("/", operation_id="drivesQueueBacktest", status_code=202)
    async def queue(self, state: State, principal: Caller, data: JSONBody[Backtest]) -> JobRead:
        """Queue a backtest (the `drives.backtest` job); follow it at `GET /v1/jobs/{id}`.

        `{}` backtests the last week of data with a version trained on the days before it.
        """
        job_id = await enqueue(state.flywheel, "drives.backtest", data, tenant_id=principal.tenant_id)
        return await job_status(state.flywheel, job_id, tenant_id=principal.tenant_id)

    @get("/", operation_id="drivesListBacktests")
    async def list_backtests(
        self, state: State, principal: Caller,
        job_id: Annotated[UUID | None, QueryParameter(description="Only the report of this backtest job")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> BacktestPage:
        """Finished backtests, newest first: the model against the SMART rule on the same drive-days."""
        return BacktestPage(items=await backtest_reports(state.flywheel, principal.tenant_id, job_id=job_id,
                                                         limit=limit))
