"""The judging job: score a finalized trace, store the score with the judge's identity and rubric version.

With FLYWHEEL_TRACES_JUDGE_URL set the LLM judges; when it gives no valid
answer within its retries, the deterministic judge scores instead (the
refused answers stay recorded), so every finalized trace gets a score.
"""

from __future__ import annotations

import msgspec

from flywheel.plugins.traces.events import RationaleNote, TraceEvent
from flywheel.plugins.traces.jobs_payload import TraceJob
from flywheel.plugins.traces.judge import deterministic, llm
from flywheel.plugins.traces.judge.rubric import to_score
from flywheel.plugins.traces.settings import load
from flywheel.plugins.traces.traces import get_trace
from flywheel.server.plugin_api import JobContext, NotFound

_decode = msgspec.json.Decoder(TraceEvent).decode
_STORE = """INSERT INTO traces_scores (tenant_id, trace_id, judge, rubric_version, overall, dimensions)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (trace_id, judge, rubric_version)
            DO UPDATE SET overall = EXCLUDED.overall, dimensions = EXCLUDED.dimensions, created_at = now()"""


async def judge_job(ctx: JobContext, payload: TraceJob) -> dict:
    try:
        trace = await get_trace(ctx.state, ctx.tenant_id, payload.trace_id)
    except NotFound:
        return {"skipped": "no such trace"}
    if trace.metrics is None:
        return {"skipped": "the trace is not finalized"}
    rows = await ctx.db.fetch("SELECT body FROM traces_events WHERE tenant_id = $1 AND trace_id = $2 ORDER BY seq",
                              ctx.tenant_id, trace.id)
    events = [_decode(r["body"]) for r in rows]
    score, note = await _score(ctx, trace, events)
    await ctx.db.execute(_STORE, ctx.tenant_id, trace.id, score.judge, score.rubric_version, score.overall,
                         score.dimensions)
    await ctx.db.execute("UPDATE traces SET status = 'judged' WHERE id = $1 AND tenant_id = $2",
                         trace.id, ctx.tenant_id)
    return {"judge": score.judge, "overall": score.overall, "note": note}


async def _score(ctx: JobContext, trace, events):
    settings = load()
    root_causes = sum(1 for e in events if isinstance(e, RationaleNote) and e.kind == "root_cause")
    rules = to_score(deterministic.JUDGE, deterministic.judge(trace.metrics, trace.qa, root_causes))
    if not settings.judge_url:
        return rules, ""

    async def reject(attempt: int, problem: str, answer: str) -> None:
        await ctx.db.execute("INSERT INTO traces_judge_rejections (tenant_id, trace_id, judge, attempt, problem, "
                             "answer) VALUES ($1, $2, $3, $4, $5, $6)", ctx.tenant_id, trace.id,
                             llm.identity(settings), attempt, problem[:2000], answer)

    summary = llm.summary_text(trace, events, trace.qa, trace.metrics)
    try:
        answer = await llm.ask(settings, summary, reject)
    except llm.JudgeFailed as exc:
        return rules, f"{llm.identity(settings)}: {exc}; scored by {deterministic.JUDGE}"
    return to_score(llm.identity(settings), answer), ""
