"""The QA job: re-run the trace's tests in the sandbox over its workspace tarball.

The tarball is unpacked with the core's safe extraction into a folder of its
own, the suite runs with no network and bounded resources, and the JUnit
report comes back through the sandbox's `collect`. Logs and the report are
stored as blobs of the trace; the outcome is compared with the trace's own
last test run (did the fix the developer saw pass also pass here?).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from uuid import UUID

import msgspec

from flywheel.plugins.traces.artifacts import blob_key, put_bytes
from flywheel.plugins.traces.contracts import QaResult
from flywheel.plugins.traces.events import TestRun, TraceEvent
from flywheel.plugins.traces.jobs_payload import TraceJob
from flywheel.plugins.traces.junit import BadReport, JunitCounts, parse_junit
from flywheel.plugins.traces.runners import JUNIT_FILE, sandbox_command
from flywheel.plugins.traces.settings import load
from flywheel.plugins.traces.traces import get_trace
from flywheel.server.plugin_api import (
    JobContext,
    NotFound,
    SandboxError,
    SandboxSpec,
    UnsafeArchive,
    enqueue,
    extract_workspace,
    run_sandboxed,
    sandbox_backend,
    tenant_store,
)

_LAST_RUN = """SELECT body FROM traces_events WHERE tenant_id = $1 AND trace_id = $2 AND kind = 'test_run'
               ORDER BY seq DESC LIMIT 1"""


async def qa_job(ctx: JobContext, payload: TraceJob) -> dict:
    try:
        trace = await get_trace(ctx.state, ctx.tenant_id, payload.trace_id)
    except NotFound:
        return {"skipped": "no such trace"}
    if trace.status == "open":
        return {"skipped": "the trace is not finalized"}
    qa = await run_qa(ctx, trace.id, trace.test_command, trace.workspace_sha256)
    await ctx.db.execute("UPDATE traces SET qa = $3, status = CASE WHEN status = 'finalized' THEN 'qa_done' "
                         "ELSE status END WHERE id = $1 AND tenant_id = $2", trace.id, ctx.tenant_id,
                         qa)
    if payload.judge:
        await enqueue(ctx.state, "traces.judge", TraceJob(trace_id=trace.id), tenant_id=ctx.tenant_id)
    return msgspec.to_builtins(qa)


async def run_qa(ctx: JobContext, trace_id: UUID, command: list[str], workspace: str | None) -> QaResult:
    backend = sandbox_backend(ctx.state)
    if backend == "none":
        return QaResult(status="skipped", backend=backend, note="no sandbox is configured (FLYWHEEL_SANDBOX)")
    if workspace is None:
        return QaResult(status="skipped", backend=backend, note="the trace has no workspace tarball")
    settings = load()
    with tempfile.TemporaryDirectory(prefix="traces-qa-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)  # the Docker backend's uid 1000 reads it
        tarball = await tenant_store(ctx.state, ctx.tenant_id).get_file(blob_key(workspace), folder / "ws.tar")
        try:
            extract_workspace(tarball, folder / "ws", max_bytes=settings.workspace_max_bytes)
        except UnsafeArchive as exc:
            return QaResult(status="error", backend=backend, note=f"workspace refused: {exc}")
        tarball.unlink()
        spec = SandboxSpec(command=sandbox_command(command), workspace=str(folder / "ws"),
                           timeout_s=settings.qa_timeout_s, memory_bytes=settings.qa_memory_bytes,
                           collect=[JUNIT_FILE])
        try:
            result = await run_sandboxed(ctx.state, spec)
        except SandboxError as exc:
            return QaResult(status="error", backend=backend, note=str(exc))
    return await _record(ctx, trace_id, result)


async def _record(ctx: JobContext, trace_id: UUID, result) -> QaResult:
    log = (f"$ exit {result.exit_code} in {result.duration_s:.2f}s\n"
           f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")
    log_sha = await put_bytes(ctx.state, ctx.tenant_id, trace_id, log.encode(), "log")
    report = result.files.get(JUNIT_FILE)
    junit_sha = await put_bytes(ctx.state, ctx.tenant_id, trace_id, report, "report") if report else None
    note = ""
    try:
        counts = parse_junit(report) if report else JunitCounts()
    except BadReport as exc:
        counts, note = JunitCounts(), str(exc)
    status = _status(result, counts)
    last = await _last_run(ctx, trace_id)
    return QaResult(
        status=status, backend=result.backend, exit_code=result.exit_code, passed=counts.passed,
        failed=counts.failed, errors=counts.errors, skipped=counts.skipped, duration_s=result.duration_s,
        log_sha256=log_sha, junit_sha256=junit_sha, note=note or ("timed out" if result.timed_out else ""),
        trace_last_run=None if last is None else {"passed": last.passed, "failed": last.failed, "errors": last.errors},
        agrees_with_trace=None if last is None else ((last.failed + last.errors == 0) == (status == "passed")))


def _status(result, counts: JunitCounts) -> str:
    if result.timed_out:
        return "timed_out"
    if counts.failed or counts.errors:
        return "failed"
    if result.exit_code == 0 and counts.passed:
        return "passed"
    return "error"  # no tests ran, the runner crashed, or the memory limit killed it


async def _last_run(ctx: JobContext, trace_id: UUID) -> TestRun | None:
    body = await ctx.db.fetchval(_LAST_RUN, ctx.tenant_id, trace_id)
    return None if body is None else msgspec.json.decode(body, type=TraceEvent)
