"""`flywheel credit ...`: upload datasets, run specs from YAML, list what there is."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import msgspec

UPLOAD_CHUNK = 1 << 20  # the file is read and handed on 1 MiB at a time, never whole
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table.")
tenant_option = click.option("--tenant", required=True, help="Tenant name or id.")


@click.group(name="credit")
def credit() -> None:
    """Credit scoring: datasets, feature sets, run specs, runs and reports."""


@credit.group()
def datasets() -> None:
    """Versioned datasets (CSV, gzipped CSV or Parquet)."""


def _run(tenant: str, work: Callable[[Any, Any], Any]) -> Any:
    from flywheel.server.plugin_api import ApiError, cli_state, find_tenant

    async def go():
        async with cli_state() as state:
            t = await find_tenant(state, tenant)
            return await work(state, t)

    try:
        return asyncio.run(go())
    except ApiError as exc:
        where = f" ({exc.field})" if getattr(exc, "field", None) else ""
        raise click.ClickException(f"{exc.message}{where}") from None


def _emit(items: list, as_json: bool, columns: list[tuple[str, Callable[[Any], Any]]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(items)).decode())
        return
    table = Table(title=title)
    for name, _ in columns:
        table.add_column(name)
    for item in items:
        table.add_row(*(str(get(item)) for _, get in columns))
    Console().print(table)


@datasets.command(name="upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Dataset name (a new version if it exists).")
@click.option("--target", required=True, help="The outcome column (1 = bad, or see --bad-value).")
@click.option("--time-column", default=None, help="A column of times, for time splits.")
@click.option("--bad-value", default=None, help="The target value meaning default, when it is not 0/1.")
@tenant_option
def upload(file: Path, name: str, target: str, time_column: str | None, bad_value: str | None, tenant: str) -> None:
    """Upload FILE as the next version of dataset NAME, with a progress bar."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from flywheel.plugins.credit.datasets import upload as store

    size = file.stat().st_size

    async def work(state, t):
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn()) as bar:
            task = bar.add_task(f"uploading {file.name}", total=size)

            async def chunks():
                with file.open("rb") as f:
                    while chunk := f.read(UPLOAD_CHUNK):
                        bar.advance(task, len(chunk))
                        yield chunk
                bar.update(task, description="converting and profiling")

            return await store(state, t.id, chunks(), name=name, target=target, bad_value=bad_value,
                               time_column=time_column)

    v = _run(tenant, work)
    again = " (identical content: the existing version)" if v.existing else ""
    click.echo(f"dataset {v.name!r} version {v.version}{again}: id {v.id}, {v.rows:,} rows, "
               f"{len(v.profile.columns)} columns, sha256 {v.sha256[:16]}..., bad rate {v.profile.target_rate:.4f}")


@datasets.command(name="list")
@tenant_option
@json_option
def list_datasets(tenant: str, as_json: bool) -> None:
    """Datasets and their versions."""
    from flywheel.plugins.credit.datasets import list_datasets as fetch

    items = _run(tenant, lambda state, t: fetch(state.db, t.id, None, 200))
    _emit(items, as_json, [("name", lambda d: d.name), ("versions", lambda d: len(d.versions)),
                           ("latest version id", lambda d: d.versions[0].id if d.versions else ""),
                           ("rows", lambda d: d.versions[0].rows if d.versions else "")], "datasets")


@credit.command(name="feature-sets")
@tenant_option
@json_option
def list_feature_sets(tenant: str, as_json: bool) -> None:
    """Feature sets and their versions."""
    from flywheel.plugins.credit.catalog import list_feature_sets as fetch

    items = _run(tenant, lambda state, t: fetch(state.db, t.id, None, 200))
    _emit(items, as_json, [("name", lambda s: s.name), ("versions", lambda s: len(s.versions)),
                           ("latest version id", lambda s: s.versions[0].id if s.versions else ""),
                           ("features", lambda s: ", ".join(f.name for f in s.versions[0].features)
                            if s.versions else "")], "feature sets")


@credit.command(name="runs")
@tenant_option
@json_option
def list_runs(tenant: str, as_json: bool) -> None:
    """Runs, newest first."""
    from flywheel.plugins.credit.runs import list_runs as fetch

    items = _run(tenant, lambda state, t: fetch(state.db, t.id, None, 200))
    _emit(items, as_json, [("id", lambda r: r.id), ("state", lambda r: r.state),
                           ("passed", lambda r: r.passed), ("auc", lambda r: _fmt((r.metrics or {}).get("auc"))),
                           ("ks", lambda r: _fmt((r.metrics or {}).get("ks"))),
                           ("model version", lambda r: r.model_version)], "runs")


def _fmt(value: Any) -> str:
    return "" if value is None else f"{value:.4f}"


@credit.command(name="run")
@click.option("--spec", "spec_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A run spec in YAML (the API takes the same as JSON).")
@tenant_option
def run(spec_path: Path, tenant: str) -> None:
    """Execute a run spec here, with a progress bar; prints the final metrics and the report's location."""
    import yaml

    from flywheel.plugins.credit import runs
    from flywheel.plugins.credit.contracts import RunJob
    from flywheel.plugins.credit.runspec import decode_spec

    try:
        raw = yaml.safe_load(spec_path.read_text())
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{spec_path} is not YAML: {exc}") from None
    from flywheel.server.plugin_api import ApiError

    try:
        spec = decode_spec(raw if isinstance(raw, dict) else {})
    except ApiError as exc:
        raise click.ClickException(f"{spec_path}: {exc.message} ({exc.field})") from None

    async def work(state, t):
        created = await runs.create(state, t.id, spec, queue=False)
        status = await _follow(state, t.id, created.id, RunJob(run_id=created.id))
        return status, await runs.get(state.db, t.id, created.id)

    status, finished = _run(tenant, work)
    _report(finished, status)


async def _follow(state, tenant_id, run_id, payload):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from flywheel.plugins.credit import runs
    from flywheel.server.plugin_api import follow_job, run_here

    job_id, task = await run_here(state, "credit.run", payload, tenant_id=tenant_id)
    await runs.link_job(state.db, tenant_id, run_id, job_id)
    with Progress(TextColumn("credit run"), BarColumn(), TextColumn("{task.fields[message]}"),
                  TimeElapsedColumn()) as progress:
        bar = progress.add_task("run", total=None, message="queued")

        def show(status) -> None:
            p = status.progress
            progress.update(bar, completed=p.current, total=p.total, message=p.message or "")

        status = await follow_job(state, job_id, tenant_id=tenant_id, on_progress=show)
    await task
    return status


def _report(run, status) -> None:
    if run.state != "succeeded":
        raise click.ClickException(f"run {run.id} {run.state}: {run.error or status.error}")
    m = run.metrics or {}
    click.echo(f"run {run.id}: {'PASSED' if run.passed else 'FAILED'} the evaluation policy; "
               f"model credit.gbm v{run.model_version}")
    click.echo(f"AUC {_fmt(m.get('auc'))}  Gini {_fmt(m.get('gini'))}  KS {_fmt(m.get('ks'))}  "
               f"score PSI {_fmt(m.get('score_psi'))}")
    for f in run.failures:
        click.echo(f"  failed {f.threshold}{' (' + f.feature + ')' if f.feature else ''}: {f.value} vs {f.limit}")
    if "report" in run.artifacts:
        click.echo(f"report: {run.artifacts['report']} in the tenant's store "
                   f"(GET /v1/credit/runs/{run.id}/report, or the console's run page)")
    if not run.passed:
        raise SystemExit(3)
