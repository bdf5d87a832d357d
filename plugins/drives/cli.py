"""`flywheel drives ...` commands."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click


@click.group(name="drives")
def drives() -> None:
    """Storage-fleet failure prediction (SMART telemetry)."""


@drives.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option("--tenant", required=True, help="Tenant name or id.")
def import_(paths: tuple[Path, ...], tenant: str) -> None:
    """Import Backblaze drive-stats daily CSV files (plain or .gz; folders are searched).

    Each file is written whole or not at all; files imported before are
    skipped, so an interrupted import resumes by running it again.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from flywheel.plugins.drives.daily import DrivesImportError, import_file
    from flywheel.server.auth.service import find_tenant
    from flywheel.server.cli.context import connected, settings_or_exit

    files = sorted({f for p in paths for f in ([p] if p.is_file() else
                                               [*p.rglob("*.csv"), *p.rglob("*.csv.gz")])})
    if not files:
        raise click.UsageError("no .csv or .csv.gz files found")

    async def go() -> int:
        failed = 0
        async with connected(settings_or_exit()) as state:
            t = await find_tenant(state.db, tenant)
            columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
            with Progress(*columns, transient=False) as progress:
                task = progress.add_task("importing", total=len(files))
                for path in files:
                    progress.update(task, description=f"importing {path.name}")
                    try:
                        r = await import_file(state.db, t.id, path)
                    except DrivesImportError as exc:
                        progress.console.print(f"[red]refused[/] {exc}")
                        failed += 1
                    else:
                        what = "already imported" if r.skipped else f"{r.inserted:,} new of {r.rows:,} rows"
                        progress.console.print(f"{path.name}: {what}, {r.failures} failure(s)")
                    progress.advance(task)
        return failed

    failed = asyncio.run(go())
    if failed:
        raise click.ClickException(f"{failed} file(s) refused; nothing of them was written")
