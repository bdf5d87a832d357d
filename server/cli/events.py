"""`flywheel events ...`: operator commands for the event store."""

from __future__ import annotations

from datetime import date

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flywheel.server.cli.context import connected, run_async, settings_or_exit


@click.group()
def events() -> None:
    """Work with stored events (compaction to Parquet)."""


@events.command()
@click.option("--date", "day", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="The UTC day to compact, YYYY-MM-DD.")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant (default: every tenant with events).")
def compact(day, tenant_name: str | None) -> None:
    """Compact one day of events into Parquet in the object store (idempotent)."""
    settings = settings_or_exit()
    the_day: date = day.date()

    async def go() -> None:
        from flywheel.server.ingest.archive import compact_day

        async with connected(settings) as state:
            if tenant_name:
                row = await state.db.fetchrow("SELECT id FROM tenants WHERE name = $1", tenant_name)
                if row is None:
                    raise click.UsageError(f"no tenant named {tenant_name!r}")
                tenants = [row["id"]]
            else:
                tenants = [r["tenant_id"] for r in await state.db.fetch(
                    "SELECT DISTINCT tenant_id FROM events WHERE day = $1 ORDER BY 1", the_day)]
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, transient=False) as progress:
                task = progress.add_task(f"compacting {the_day}", total=len(tenants))
                total = 0
                for tenant_id in tenants:
                    result = await compact_day(state, tenant_id, the_day)
                    total += result["rows"]
                    progress.advance(task)
            click.echo(f"compacted {total} events of {the_day} for {len(tenants)} tenant(s)")

    run_async(go())


COMMANDS = [events]
