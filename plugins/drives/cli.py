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


@drives.command()
@click.option("--tenant", help="Tenant name or id (with --smoke: default 'drives-smoke', created if missing).")
@click.option("--smoke", is_flag=True, help="Generate a small synthetic fleet first: an end-to-end run in under a minute.")
@click.option("--split", type=click.Choice(["time", "random"]), default="time", show_default=True)
@click.option("--activate/--no-activate", default=True, show_default=True,
              help="Activate the new version if it beats the active one on PR-AUC.")
def train(tenant: str | None, smoke: bool, split: str, activate: bool) -> None:
    """Build features, train an H30 model version and score the fleet, showing each job's progress."""
    from rich.console import Console
    from rich.table import Table

    from flywheel.server.auth.service import create_tenant, find_tenant
    from flywheel.server.cli.context import connected, settings_or_exit
    from flywheel.server.errors import NotFound

    if not tenant and not smoke:
        raise click.UsageError("--tenant is required (or use --smoke)")
    console = Console()

    async def go() -> None:
        async with connected(settings_or_exit()) as state:
            name = tenant or "drives-smoke"
            try:
                t = await find_tenant(state.db, name)
            except NotFound:
                if not smoke:
                    raise click.ClickException(f"no tenant {name!r}") from None
                t = await create_tenant(state.db, name)
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
            metrics = await state.db.fetchval("SELECT metrics FROM model_versions WHERE tenant_id = $1 AND "
                                              "family = 'drives.h30' AND version = $2", t.id, version)
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

    from flywheel.server.jobs.queue import start_here

    job_id, task = await start_here(state, name, payload, tenant_id=tenant_id)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[message]}"),
                  TimeElapsedColumn(), console=console) as progress:
        bar = progress.add_task(name, total=None, message="")
        while True:
            done = task.done()
            row = await state.db.fetchrow("SELECT state, progress, result, error FROM jobs WHERE id = $1", job_id)
            p = row["progress"] or {}
            progress.update(bar, completed=p.get("current", 0), total=p.get("total"), message=p.get("message") or "")
            if done:
                break
            await asyncio.sleep(0.2)
    await task
    if row["state"] != "succeeded":
        raise click.ClickException(f"{name} failed: {row['error']}")
    return row["result"] or {}
