"""`flywheel models monitoring FAMILY`: the daily figures as a table, and backfills run in this process."""

from __future__ import annotations

from datetime import date

import click

from flywheel.server.cli.context import connected, settings_or_exit
from flywheel.server.cli.output import json_option, show, show_one
from flywheel.server.cli.tenancy import run_api, tenant_id_of

COLUMNS = [
    ("day", lambda d: d.day.isoformat()), ("version", lambda d: f"v{d.version}"), ("rows", lambda d: d.rows),
    ("source", lambda d: d.source), ("score PSI", lambda d: _num(d.score.psi if d.score else None)),
    ("largest feature PSI", lambda d: _largest(d)),
    ("calibration error", lambda d: _num(d.calibration.error if d.calibration else None)),
    ("p95 ms", lambda d: _num(max((e.latency_p95_ms or 0 for e in d.operational.endpoints), default=None))),
    ("errors", lambda d: d.operational.client_errors + d.operational.server_errors),
    ("crossed", lambda d: ", ".join(f"{b.what} ({b.level})" for b in d.breaches) or None),
]


@click.command("monitoring")
@click.argument("family")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), help="First day (default: 30 days ago).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), help="Last day (default: today, UTC).")
@click.option("--version", type=click.IntRange(1), help="Only this version.")
@click.option("--backfill", is_flag=True, help="Compute the figures of every day in the range first (no alerts).")
@json_option
def monitoring(family: str, tenant: str, first, last, version: int | None, backfill: bool, as_json: bool) -> None:
    """FAMILY's monitoring figures, one line per version and day: drift, calibration, operations."""
    settings = settings_or_exit()

    async def go():
        from flywheel.server.monitoring.api import date_range, report

        async with connected(settings) as st:
            tenant_id = await tenant_id_of(st, tenant)
            if backfill:
                from flywheel.server.models.families import family_of

                family_of(st, family)
                a, b = date_range(_day(first), _day(last), where="--")
                await _run_backfill(st, tenant_id, {"from": a.isoformat(), "to": b.isoformat(), "family": family,
                                                    "version": version, "alerts": False})
            return await report(st, tenant_id, family, _iso(first), _iso(last), version)

    found = run_api(go())
    if as_json:
        show_one(found, as_json=True)
        return
    for note in found.notes:
        click.echo(note, err=True)
    show(found.days, COLUMNS, as_json=False, empty=f"no figures from {found.from_day} to {found.to_day}")


async def _run_backfill(state, tenant_id, payload: dict) -> None:
    """The job in this process (recorded in the jobs table like a queued one), with its progress on stderr."""
    from flywheel.server.jobs.queue import start_here
    from flywheel.server.jobs.status import follow_job

    job_id, task = await start_here(state, "core.monitor_models", payload, tenant_id=tenant_id)

    shown: list[str] = []

    def progress(status) -> None:
        message = status.progress.message
        if message and message not in shown[-1:]:
            shown.append(message)
            click.echo(f"  {message}", err=True)

    status = await follow_job(state.db, job_id, tenant_id, progress, interval=0.5)
    await task
    if status.state.value != "succeeded":
        raise click.ClickException(f"backfill failed: {status.error}")
    r = status.result or {}
    click.echo(f"backfilled {r.get('version_days', 0)} version-day(s) (job {job_id})", err=True)


def _day(value) -> date | None:
    return value.date() if value is not None else None


def _iso(value) -> str | None:
    return value.date().isoformat() if value is not None else None


def _num(value: float | None) -> str | None:
    return None if value is None else f"{value:.4g}"


def _largest(d) -> str | None:
    scored = [x for x in d.features if x.psi is not None]
    if not scored:
        return None
    top = max(scored, key=lambda x: x.psi)
    return f"{top.name} {top.psi:.4g}"
