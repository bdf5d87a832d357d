"""`flywheel drives fetch`: the command and its progress bars (the steps are in fetch.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click


@click.command(name="fetch")
@click.option("--from", "first", required=True, metavar="YYYYQn", help="First quarter, e.g. 2019Q1.")
@click.option("--to", "last", metavar="YYYYQn", help="Last quarter (default: the --from quarter).")
@click.option("--tenant", help="Tenant name or id to import into; without it the archives are only "
                               "downloaded and verified.")
@click.option("--url-pattern", help="Archive URL with {year} and {q} placeholders, http(s) only "
                                    "(default: FLYWHEEL_DRIVES_FETCH_URL, else Backblaze's address).")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=Path("drive_stats"),
              show_default=True, help="Folder the archives are kept in (a second run downloads nothing).")
@click.option("--sha256", metavar="HEX", help="Expected SHA-256 of the archive (one quarter only).")
@click.option("--sidecar", is_flag=True, help="Check each archive against the URL.sha256 file beside it.")
@click.option("--retries", type=click.IntRange(0, 20), default=3, show_default=True,
              help="Times a dropped download is resumed before giving up (running again resumes too).")
@click.option("--features/--no-features", default=True, show_default=True, help="Build features after importing.")
def fetch(first: str, last: str | None, tenant: str | None, url_pattern: str | None, dest: Path,
          sha256: str | None, sidecar: bool, retries: int, features: bool) -> None:
    """Download Backblaze's quarterly drive-stats archives, verify them, import their daily files.

    Downloads resume where they stopped (HTTP Range). Every archive is
    verified whole (each file's CRC-32, safe names, size limits, and the
    SHA-256 when given) before anything is imported, so a damaged archive
    imports nothing. Daily files go through the same import as `drives
    import` (a file imported before is skipped), then features are built.
    """
    from flywheel.plugins.drives.fetch import make_plan
    from flywheel.plugins.drives.fetch_plan import BadOption, FetchError

    try:
        plan = make_plan(first, last, dest=dest, url_pattern=url_pattern, sha256=sha256, sidecar=sidecar)
    except BadOption as exc:
        raise click.BadParameter(str(exc), param_hint=exc.option) from None
    try:
        refused = asyncio.run(_run(plan, tenant, retries, features))
    except FetchError as exc:
        raise click.ClickException(str(exc)) from None
    if refused:
        raise click.ClickException(f"{refused} daily file(s) refused; nothing of them was written")


async def _run(plan, tenant: str | None, retries: int, features: bool) -> int:
    from rich.console import Console

    from flywheel.server.plugin_api import NotFound, cli_state, find_tenant

    console = Console()
    if tenant is None:
        await _download_and_verify(plan, retries, console)
        console.print(f"{len(plan.quarters)} archive(s) downloaded and verified in {plan.dest}; "
                      "import them with --tenant (nothing is downloaded again)")
        return 0
    async with cli_state() as state:
        try:
            t = await find_tenant(state, tenant)
        except NotFound:
            raise click.ClickException(f"no tenant {tenant!r}") from None
        fetched, verified = await _download_and_verify(plan, retries, console)
        refused = await _import(state, t.id, fetched, verified, console)
        if features:
            from flywheel.plugins.drives.cli import run_with_progress

            r = await run_with_progress(state, t.id, "drives.build_features", {}, console)
            console.print(f"features: built {r['days']} day(s), {r['drive_days']:,} drive-days")
    return refused


async def _download_and_verify(plan, retries: int, console):
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from flywheel.plugins.drives.fetch import download_all, verify_all
    from flywheel.plugins.drives.fetch_http import client

    columns = [TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn()]
    with Progress(*columns, console=console) as progress:
        def on_download(quarter, url):
            task = progress.add_task(f"downloading {quarter.archive_name}", total=None)
            return lambda done, total: progress.update(task, completed=done, total=total)

        def on_verify(f):
            task = progress.add_task(f"verifying {f.download.path.name}", total=None)
            return lambda done, total: progress.update(task, completed=done, total=total)

        async with client() as http:
            fetched = await download_all(plan, http, retries=retries, on_start=on_download,
                                         on_retry=progress.console.print)
        for f in fetched:
            how = "downloaded before" if f.download.cached else (
                f"resumed from byte {f.download.resumed_from[0]:,}" if f.download.resumed_from else "downloaded")
            progress.console.print(f"{f.download.path.name}: {f.download.size:,} bytes, {how}")
        verified = await asyncio.to_thread(verify_all, fetched, on_start=on_verify)
    for f, v in zip(fetched, verified):
        checked = "SHA-256 matches, " if f.expected_sha256 else ""
        console.print(f"{f.download.path.name}: {checked}{len(v.daily)} daily file(s) verified "
                      f"(sha256 {v.sha256}){f', {len(v.skipped)} other member(s) left out' if v.skipped else ''}")
    return fetched, verified


async def _import(state, tenant_id, fetched, verified, console) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from flywheel.plugins.drives.fetch import import_archives

    refused = 0
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("importing", total=sum(len(v.daily) for v in verified))

        def on_file(o) -> None:
            nonlocal refused
            if o.refused:
                refused += 1
                progress.console.print(f"[red]refused[/] {o.archive}: {o.refused}")
            else:
                r = o.result
                what = "already imported" if r.skipped else f"{r.inserted:,} new of {r.rows:,} rows"
                progress.console.print(f"{o.name}: {what}, {r.failures} failure(s)")
            progress.advance(task)

        outcomes = await import_archives(state.db, tenant_id, fetched, verified, on_file=on_file)
    new = sum(o.result.inserted for o in outcomes if o.result)
    console.print(f"imported {len(outcomes) - refused} daily file(s) from {len(fetched)} archive(s): "
                  f"{new:,} new drive-days")
    return refused
