"""`/v1/credit/runs` (run specs executed by workers) and `/v1/credit/score` (PD, points, reasons)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from flywheel.plugins.credit import runs, scoring
from flywheel.plugins.credit.contracts import (
    BatchScoreRequest,
    BatchScoreResult,
    RunPage,
    RunRead,
    RunSpec,
    ScoreRequest,
    ScoreResult,
)
from flywheel.plugins.credit.paging import Cursor, Limit, after, next_cursor
from flywheel.server.plugin_api import Caller, NotFound, tenant_store

RunState = Annotated[Literal["queued", "running", "succeeded", "failed", "cancelled"] | None, QueryParameter()]


class RunController(Controller):
    path = "/v1/credit"
    tags = ["credit"]

    @post("/runs", operation_id="creditCreateRun", status_code=202)
    async def create_run(self, state: State, principal: Caller, data: JSONBody[RunSpec]) -> RunRead:
        """Execute a run spec on a worker. Unknown versions, missing or mistyped columns and bad
        parameters are refused here (422) with the field at fault; follow the run at
        `/v1/credit/runs/{id}` or its `job_id` at `/v1/jobs/{id}` (cancel it there)."""
        return await runs.create(state.flywheel, principal.tenant_id, data)

    @get("/runs", operation_id="creditListRuns")
    async def list_runs(self, state: State, principal: Caller, cursor: Cursor = None, limit: Limit = 50,
                        run_state: RunState = None) -> RunPage:
        """Runs, newest first."""
        items = await runs.list_runs(state.flywheel.db, principal.tenant_id, after(cursor), limit, run_state)
        return RunPage(items=items, next_cursor=next_cursor(items, limit))

    @get("/runs/{run_id:uuid}", operation_id="creditGetRun")
    async def get_run(self, state: State, principal: Caller, run_id: FromPath[UUID]) -> RunRead:
        """A run: state, metrics, pass or fail with the thresholds missed, logs, artifacts, lineage."""
        fw = state.flywheel
        return await runs.reconciled(fw, principal.tenant_id, await runs.get(fw.db, principal.tenant_id, run_id))

    @get("/runs/{run_id:uuid}/report", operation_id="creditGetRunReport", media_type="text/html")
    async def get_run_report(self, state: State, principal: Caller, run_id: FromPath[UUID]) -> Response[bytes]:
        """The run's self-contained HTML report (ROC, KS, score distribution, calibration, PSI)."""
        return Response(await _artifact(state, principal, run_id, "report"), media_type="text/html")

    @get("/runs/{run_id:uuid}/metrics", operation_id="creditGetRunMetrics")
    async def get_run_metrics(self, state: State, principal: Caller, run_id: FromPath[UUID]) -> dict[str, Any]:
        """metrics.json: every figure, table and curve the run computed."""
        return msgspec.json.decode(await _artifact(state, principal, run_id, "metrics"))

    @post("/score", operation_id="creditScore", status_code=200, opt={"scope": "read"})
    async def score(self, state: State, principal: Caller, data: JSONBody[ScoreRequest]) -> ScoreResult:
        """One applicant's raw columns -> probability of default, points and the top adverse-action reasons."""
        fw = state.flywheel
        run = await scoring.scoring_run(fw.db, principal.tenant_id, data.run_id)
        [one] = await scoring.score_rows(fw, principal.tenant_id, run, [data.row], data.scaling, data.reasons)
        return ScoreResult(run_id=run.id, model_version=run.model_version, **msgspec.structs.asdict(one))

    @post("/score_batch", operation_id="creditScoreBatch", status_code=200, opt={"scope": "read"})
    async def score_batch(self, state: State, principal: Caller, data: JSONBody[BatchScoreRequest]) -> BatchScoreResult:
        """Up to 1,000 applicants at once, each as `score` answers it."""
        fw = state.flywheel
        run = await scoring.scoring_run(fw.db, principal.tenant_id, data.run_id)
        items = await scoring.score_rows(fw, principal.tenant_id, run, data.rows, data.scaling, data.reasons)
        return BatchScoreResult(run_id=run.id, model_version=run.model_version, items=items)


async def _artifact(state: State, principal: Caller, run_id: UUID, name: str) -> bytes:
    run = await runs.get(state.flywheel.db, principal.tenant_id, run_id)
    key = run.artifacts.get(name)
    if key is None:
        raise NotFound(f"run {run_id} has no {name} (it is {run.state})", field="path.run_id")
    return await tenant_store(state.flywheel, principal.tenant_id).get(key)
