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
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from flywheel.plugins.drives.daily import DrivesImportError, import_file
    from flywheel.server.plugin_api import cli_state, find_tenant

    files = sorted({f for p in paths for f in ([p] if p.is_file() else
                                               [*p.rglob("*.csv"), *p.rglob("*.csv.gz")])})
    if not files:
        raise click.UsageError("no .csv or .csv.gz files found")

    async def go() -> int:
        failed = 0
        async with cli_state() as state:
            t = await find_tenant(state, tenant)
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


@drives.command()
@click.option("--tenant", help="Tenant name or id (with --smoke: default 'drives-smoke', created if missing).")
@click.option("--smoke", is_flag=True,
              help="Generate a small synthetic fleet first: an end-to-end run in under a minute.")
@click.option("--split", type=click.Choice(["time", "random"]), default="time", show_default=True)
@click.option("--activate/--no-activate", default=True, show_default=True,
              help="Activate the new version if it beats the active one on PR-AUC.")
def train(tenant: str | None, smoke: bool, split: str, activate: bool) -> None:
    """Build features, train an H30 model version and score the fleet, showing each job's progress."""
    from rich.console import Console
    from rich.table import Table

    from flywheel.server.plugin_api import (
        NotFound,
        cli_state,
        create_tenant,
        find_tenant,
        model_version,
    )

    if not tenant and not smoke:
        raise click.UsageError("--tenant is required (or use --smoke)")
    console = Console()

    async def go() -> None:
        async with cli_state() as state:
            name = tenant or "drives-smoke"
            try:
                t = await find_tenant(state, name)
            except NotFound:
                if not smoke:
                    raise click.ClickException(f"no tenant {name!r}") from None
                t = await create_tenant(state, name)
            if smoke:
                from flywheel.plugins.drives.fleet import generate_fleet, load_fleet

                with console.status("generating a 1,500-drive, 100-day synthetic fleet"):
                    table = generate_fleet(drives=1500, days=100, seed=11)
                    added = await load_fleet(state.db, t.id, table)
                console.print(f"fleet: {added:,} new drive-days")
            for job, payload in (("drives.build_features", {}),
                                 ("core.train_model", {"family": "drives.h30", "split": split,
                                                       "auto_activate": activate}),
                                 ("drives.score_fleet", {})):
                result = await run_with_progress(state, t.id, job, payload, console)
                if job == "core.train_model":
                    version = result["version"]
            metrics = (await model_version(state, t.id, "drives.h30", version)).metrics or {}
            out = Table(title=f"drives.h30 v{version} on the test split")
            out.add_column("metric")
            out.add_column("value", justify="right")
            for key in ("roc_auc", "pr_auc", "recall_top1pct_daily", "detection_at_0_1pct_fpr",
                        "detection_at_1pct_fpr", "median_warning_days_at_1pct_fpr", "positive_rate", "trees"):
                value = metrics.get(key)
                out.add_row(key, "n/a" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value))
            console.print(out)

    asyncio.run(go())


async def run_with_progress(state, tenant_id, name: str, payload: dict, console) -> dict:
    """Run a job in this process (recorded in the jobs table) with a progress bar fed by its progress."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from flywheel.server.plugin_api import follow_job, run_here

    job_id, task = await run_here(state, name, payload, tenant_id=tenant_id)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[message]}"),
                  TimeElapsedColumn(), console=console) as progress:
        bar = progress.add_task(name, total=None, message="")

        def show(status) -> None:
            p = status.progress
            progress.update(bar, completed=p.current, total=p.total, message=p.message or "")

        status = await follow_job(state, job_id, tenant_id=tenant_id, on_progress=show)
    await task
    if status.state.value != "succeeded":
        raise click.ClickException(f"{name} failed: {status.error}")
    return status.result or {}
