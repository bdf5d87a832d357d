"""`flywheel traces ...`: submit the example, list and show traces.

`submit-example` walks the whole path in this process: create, artifacts,
chunks (out of order, one retried), finalize, QA in the sandbox and the
judge, printing each step's outcome.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import click
import msgspec


def _echo_json(value: Any) -> None:
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2))


async def _tenant(state: Any, name: str) -> Any:
    from flywheel.server.plugin_api import NotFound, find_tenant

    try:
        return await find_tenant(state, name)
    except NotFound:
        raise click.ClickException(f"no tenant {name!r}") from None


@click.group()
def traces() -> None:
    """Bug-fix traces: capture, QA in a sandbox, rubric scores."""


@traces.command(name="submit-example")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
def submit_example_cmd(tenant: str, as_json: bool) -> None:
    """Send the example trace (a buggy `mean()` and its fix) and run QA and the judge on it."""
    asyncio.run(_submit(tenant, as_json))


async def _submit(tenant_name: str, as_json: bool) -> None:
    from flywheel.plugins.traces.example import submit_example
    from flywheel.plugins.traces.jobs_payload import TraceJob
    from flywheel.plugins.traces.traces import get_trace
    from flywheel.plugins.traces.verify import verify_chain
    from flywheel.server.plugin_api import cli_state, follow_job, run_here

    async with cli_state() as state:
        t = await _tenant(state, tenant_name)
        trace = await submit_example(state, t.id, queue_qa=False)
        chain = await verify_chain(state, t.id, trace.id)
        if not as_json:
            click.echo(f"trace {trace.id}: {trace.events} events in {trace.chunks} chunks, finalized; "
                       f"chain {'ok' if chain.ok else 'BROKEN'} ({chain.checked} links)")
        for name in ("traces.qa", "traces.judge"):
            job_id, _ = await run_here(state, name, TraceJob(trace_id=trace.id, judge=False), tenant_id=t.id)
            job = await follow_job(state, job_id, tenant_id=t.id)
            if job.state.value != "succeeded":
                raise click.ClickException(f"{name} {job.state.value}: {job.error}")
        trace = await get_trace(state, t.id, trace.id)
    if as_json:
        _echo_json(trace)
        return
    _print(trace)


def _print(trace) -> None:
    m = trace.metrics
    if m is not None:
        click.echo(f"metrics: {m.edits} edits, {m.files_touched} files, {m.commands} commands, "
                   f"{m.test_runs} test runs, {m.fail_to_pass} failing->passing, "
                   f"first green after {m.time_to_first_green_s}s, {m.duration_s:.0f}s in all")
    if trace.qa is not None:
        q = trace.qa
        click.echo(f"QA ({q.backend}): {q.status}: {q.passed} passed, {q.failed} failed, {q.errors} errors "
                   f"in {q.duration_s:.2f}s; agrees with the trace: {q.agrees_with_trace}")
    for score in trace.scores:
        click.echo(f"score by {score.judge} ({score.rubric_version}): {score.overall:.2f} / 5")
        for d in score.dimensions:
            click.echo(f"  {d.name:<20} {d.score}  {d.justification}")


@traces.command(name="list")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--limit", type=click.IntRange(1, 200), default=50)
@click.option("--json", "as_json", is_flag=True)
def list_cmd(tenant: str, limit: int, as_json: bool) -> None:
    """The tenant's traces, newest first."""
    asyncio.run(_list(tenant, limit, as_json))


async def _list(tenant_name: str, limit: int, as_json: bool) -> None:
    from flywheel.plugins.traces.traces import list_traces
    from flywheel.server.plugin_api import cli_state

    async with cli_state() as state:
        t = await _tenant(state, tenant_name)
        page = await list_traces(state, t.id, limit=limit)
    if as_json:
        _echo_json(page)
        return
    for tr in page.items:
        overall = f"{tr.scores[-1].overall:.2f}" if tr.scores else "-"
        click.echo(f"{tr.id}  {tr.status:<9}  {tr.repository:<30}  qa={tr.qa.status if tr.qa else '-':<9}  "
                   f"score={overall}")


@traces.command(name="show")
@click.argument("trace_id", type=click.UUID)
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--json", "as_json", is_flag=True)
def show_cmd(trace_id: UUID, tenant: str, as_json: bool) -> None:
    """One trace: metrics, QA and scores."""
    asyncio.run(_show(trace_id, tenant, as_json))


async def _show(trace_id: UUID, tenant_name: str, as_json: bool) -> None:
    from flywheel.plugins.traces.traces import get_trace
    from flywheel.server.plugin_api import NotFound, cli_state

    async with cli_state() as state:
        t = await _tenant(state, tenant_name)
        try:
            trace = await get_trace(state, t.id, trace_id)
        except NotFound:
            raise click.ClickException(f"no trace {trace_id} for tenant {tenant_name!r}") from None
    if as_json:
        _echo_json(trace)
        return
    click.echo(f"{trace.id}  {trace.repository}@{trace.base_commit}  {trace.status}")
    click.echo(f"task: {trace.task}")
    _print(trace)
