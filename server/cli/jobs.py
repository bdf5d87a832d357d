"""`flywheel jobs list|show|cancel`: the jobs table for operators (any tenant's, or one's)."""

from __future__ import annotations

from uuid import UUID

import click

from flywheel.contracts.jobs import JobState
from flywheel.server.cli.context import connected, settings_or_exit
from flywheel.server.cli.output import json_option, show, show_one
from flywheel.server.cli.tenancy import run_api, tenant_id_of

COLUMNS = [("id", lambda j: j.id), ("name", lambda j: j.name), ("state", lambda j: j.state),
           ("progress", lambda j: _progress(j)), ("created", lambda j: j.created_at),
           ("took", lambda j: _took(j)), ("error", lambda j: (j.error or "")[:60] or None)]


@click.group()
def jobs() -> None:
    """List, show and cancel jobs."""


@jobs.command("list")
@click.option("--tenant", help="Tenant name or id (default: every tenant's jobs).")
@click.option("--name", help="Only jobs of this name, e.g. drives.score_fleet.")
@click.option("--state", type=click.Choice([s.value for s in JobState]), help="Only jobs in this state.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
def jobs_list(tenant: str | None, name: str | None, state: str | None, limit: int, as_json: bool) -> None:
    """The newest jobs first."""
    settings = settings_or_exit()

    async def go() -> None:
        from flywheel.server.jobs.status import list_jobs

        async with connected(settings) as st:
            tenant_id = await tenant_id_of(st, tenant)
            found = await list_jobs(st.db, tenant_id, name=name, state=JobState(state) if state else None,
                                    limit=limit, every_tenant=tenant is None)
        show(found, COLUMNS, as_json=as_json, empty="no jobs")

    run_api(go())


@jobs.command("show")
@click.argument("job_id", type=click.UUID)
@json_option
def jobs_show(job_id: UUID, as_json: bool) -> None:
    """One job: its state, progress, result and error."""
    settings = settings_or_exit()

    async def go() -> None:
        from flywheel.server.jobs.status import job_status

        async with connected(settings) as st:
            found = await job_status(st.db, job_id, await _owner(st, job_id))
        show_one(found, as_json=as_json)

    run_api(go())


@jobs.command("cancel")
@click.argument("job_id", type=click.UUID)
@json_option
def jobs_cancel(job_id: UUID, as_json: bool) -> None:
    """Cancel a queued or running job (a running one stops within a second or at its next progress report)."""
    settings = settings_or_exit()

    async def go() -> None:
        from flywheel.server.jobs.cancel import cancel_job

        async with connected(settings) as st:
            found = await cancel_job(st, await _owner(st, job_id), job_id, by="the CLI")
        show_one(found, as_json=as_json)

    run_api(go())


@jobs.command("wait")
@click.argument("job_id", type=click.UUID)
@json_option
def jobs_wait(job_id: UUID, as_json: bool) -> None:
    """Follow a job with a progress bar until it ends; exit code 1 unless it succeeded."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    settings = settings_or_exit()

    async def go():
        from flywheel.server.jobs.status import follow_job

        async with connected(settings) as st:
            owner = await _owner(st, job_id)
            with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[message]}"),
                          TimeElapsedColumn(), console=Console(stderr=True), transient=True) as progress:
                bar = progress.add_task(str(job_id), total=None, message="")

                def show(status) -> None:
                    p = status.progress
                    progress.update(bar, description=status.name, completed=p.current, total=p.total,
                                    message=p.message or status.state.value)

                return await follow_job(st.db, job_id, owner, show, interval=0.25)

    status = run_api(go())
    if status is None:  # Ctrl-C while waiting
        raise SystemExit(130)
    show_one(status, as_json=as_json)
    if status.state is not JobState.SUCCEEDED:
        raise SystemExit(1)


async def _owner(state, job_id: UUID) -> UUID | None:
    """The job's tenant (None for a system job); 404 when there is no such job."""
    from flywheel.server.errors import NotFound

    row = await state.db.fetchrow("SELECT tenant_id FROM jobs WHERE id = $1", job_id)
    if row is None:
        raise NotFound(f"no job {job_id}")
    return row["tenant_id"]


def _progress(job) -> str | None:
    p = job.progress
    if p.total:
        return f"{p.current / p.total:.0%}" + (f" {p.message}" if p.message else "")
    return p.message or (None if not p.current else str(p.current))


def _took(job) -> str | None:
    if job.started_at is None:
        return None
    end = job.finished_at
    if end is None:
        return "running"
    return f"{(end - job.started_at).total_seconds():.1f}s"


COMMANDS = [jobs]
