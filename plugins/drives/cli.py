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
@click.option("--horizon", type=click.Choice(["7", "14", "30"]), default=None,
              help="Days ahead to predict failure in (default: the longest the data supports).")
def train(tenant: str | None, smoke: bool, split: str, activate: bool, horizon: str | None) -> None:
    """Build features, train a model version and score the fleet, showing each job's progress.

    The horizon is the longest the data supports (30 days needs 60 days of
    data, 14 needs 28, 7 needs 14) unless --horizon says otherwise.
    """
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
                made = False
            except NotFound:
                if not smoke:
                    raise click.ClickException(f"no tenant {name!r}") from None
                t, made = await create_tenant(state, name), True
            if smoke:
                console.print(f"smoke run in tenant {t.name!r} ({'created now' if made else 'already there'}, "
                              f"id {t.id}); its synthetic fleet stays there: flywheel tenants list")
                from flywheel.plugins.drives.fleet import generate_fleet, load_fleet

                with console.status("generating a 1,500-drive, 100-day synthetic fleet"):
                    table = generate_fleet(drives=1500, days=100, seed=11)
                    added = await load_fleet(state.db, t.id, table)
                console.print(f"fleet: {added:,} new drive-days")
            await run_with_progress(state, t.id, "drives.build_features", {}, console)
            h = await pick_horizon(state, t.id, int(horizon) if horizon else None)
            console.print(h[1])
            result = await run_with_progress(state, t.id, "core.train_model", {
                "family": "drives.h30", "split": split, "auto_activate": activate, "options": {"horizon": h[0]}},
                console)
            version = result["version"]
            console.print(result.get("activation", ""))
            await run_with_progress(state, t.id, "drives.score_fleet", {}, console)
            metrics = (await model_version(state, t.id, "drives.h30", version)).metrics or {}
            out = Table(title=f"drives.h30 v{version} on the test split (horizon {h[0]} days)")
            out.add_column("metric")
            out.add_column("value", justify="right")
            for key in ("roc_auc", "pr_auc", "recall_top1pct_daily", "detection_at_0_1pct_fpr",
                        "detection_at_1pct_fpr", "median_warning_days_at_1pct_fpr", "positive_rate", "trees"):
                value = metrics.get(key)
                out.add_row(key, "n/a" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value))
            console.print(out)

    asyncio.run(go())


async def pick_horizon(state, tenant_id, asked: int | None) -> tuple[int, str]:
    """The horizon and the line saying why, or a one-line ClickException saying how many days are needed."""
    from flywheel.plugins.drives.model import HorizonError, choose_horizon, data_span, span_days

    try:
        return choose_horizon(span_days(*await data_span(state.db, tenant_id)), asked)
    except HorizonError as exc:
        raise click.ClickException(str(exc)) from None


@drives.command()
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--rebuild", is_flag=True, help="Rebuild every day, not only the days not built yet.")
def features(tenant: str, rebuild: bool) -> None:
    """Build per-drive, per-day features (the days not built yet, and the days a late day changes)."""
    from rich.console import Console

    from flywheel.server.plugin_api import cli_state, find_tenant

    async def go() -> None:
        async with cli_state() as state:
            t = await find_tenant(state, tenant)
            r = await run_with_progress(state, t.id, "drives.build_features", {"rebuild": rebuild}, Console())
            click.echo(f"built {r['days']} day(s), {r['drive_days']:,} drive-days")

    asyncio.run(go())


@drives.command()
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The day to score (default: the latest day with features).")
def score(tenant: str, day) -> None:
    """Score every drive reporting on a day with the active model; a day scored again is replaced."""
    from rich.console import Console

    from flywheel.server.plugin_api import cli_state, find_tenant

    async def go() -> None:
        async with cli_state() as state:
            t = await find_tenant(state, tenant)
            payload = {"day": day.date().isoformat()} if day else {}
            r = await run_with_progress(state, t.id, "drives.score_fleet", payload, Console())
            click.echo(f"{r.get('day')}: scored {r.get('drives', 0):,} drives with v{r.get('model_version')}; "
                       f"{r.get('high', 0)} high, {r.get('medium', 0)} medium")

    asyncio.run(go())


@drives.command()
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--high-share", type=float, default=None, help="Share of a day's drives banded high (0 < x <= 0.5).")
@click.option("--medium-share", type=float, default=None,
              help="Share banded medium after the high ones (0 <= x <= 0.5).")
def settings(tenant: str, high_share: float | None, medium_share: float | None) -> None:
    """Show the tenant's risk bands, or change them (the next scoring run uses them)."""
    import msgspec

    from flywheel.plugins.drives.contracts import RiskBands
    from flywheel.plugins.drives.settings import read_bands, write_bands
    from flywheel.server.plugin_api import cli_state, find_tenant

    async def go() -> RiskBands:
        async with cli_state() as state:
            t = await find_tenant(state, tenant)
            bands = await read_bands(state.db, t.id)
            if high_share is None and medium_share is None:
                return bands
            asked = {"high_share": high_share, "medium_share": medium_share}
            merged = {**msgspec.to_builtins(bands), **{k: v for k, v in asked.items() if v is not None}}
            try:  # the API's bounds, so the CLI and PUT /v1/drives/settings refuse the same values
                bands = msgspec.convert(merged, RiskBands)
            except msgspec.ValidationError as exc:
                raise click.BadParameter(str(exc).replace("$.", "--").replace("_", "-")) from None
            return await write_bands(state.db, t.id, bands)

    bands = asyncio.run(go())
    click.echo(f"high: the riskiest {bands.high_share:.4g} of each scored day; "
               f"medium: the next {bands.medium_share:.4g}")


@drives.command()
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--train-until", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Train on the days up to this one.")
@click.option("--from", "from_", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="First day to score.")
@click.option("--to", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="Last day to score.")
@click.option("--horizon", type=click.Choice(["7", "14", "30"]), default=None,
              help="Default: the longest the training days support.")
@click.option("--version", type=int, default=None, help="Use this ready version instead of training one.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as JSON here.")
def backtest(tenant: str, train_until, from_, to, horizon: str | None, version: int | None,
             json_path: Path | None) -> None:
    """Train up to a day, score each later day as the daily job would, and compare with the SMART rule."""
    import msgspec
    from rich.console import Console

    from flywheel.server.plugin_api import cli_state, find_tenant

    payload = {"train_until": train_until.date().isoformat(), "from": from_.date().isoformat(),
               "to": to.date().isoformat(), "horizon": int(horizon) if horizon else None, "version": version}
    console = Console()

    async def go() -> dict:
        async with cli_state() as state:
            t = await find_tenant(state, tenant)
            return await run_with_progress(state, t.id, "drives.backtest", payload, console)

    out = asyncio.run(go())
    console.print(backtest_table(out))
    if json_path is not None:
        json_path.write_bytes(msgspec.json.format(msgspec.json.encode(out)))
        console.print(f"report written to {json_path}")


def backtest_table(out: dict):
    from rich.table import Table

    c = out["counts"]
    table = Table(title=f"backtest: trained to {out['train_until']} (v{out['model_version']}), scored "
                        f"{out['from']}..{out['to']}, horizon {out['horizon_days']} days; {c['drive_days']:,} "
                        f"drive-days, {c['positives']} positive, {c['failing_drives']} failing drives")
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column("SMART rule", justify="right")
    for key in out["model"]:
        cells = [out[s][key] for s in ("model", "smart_rule")]
        table.add_row(key, *("n/a" if v is None else f"{v:.4g}" for v in cells))
    return table


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


def _add_fetch() -> None:
    # Its own module (fetch_cli.py): downloading and unpacking are a subject of their own.
    from flywheel.plugins.drives.fetch_cli import fetch

    drives.add_command(fetch)


_add_fetch()
