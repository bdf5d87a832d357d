"""`flywheel rlaas exports ...`: SFT and DPO training data from the command line.

The same records and checks as `/v1/rlaas/exports` (exports.py). `create`
runs the export job in this process with a progress bar (recorded as a job
like a queued one); `download` reads the data file from the object store in
chunks, with a progress bar, and checks its SHA-256 against the export's.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any
from uuid import UUID

import click
import msgspec

from flywheel.plugins.rlaas.cli_helpers import echo_json, parse_when, tenant_named
from flywheel.plugins.rlaas.export_types import PAGE_MAX, ExportCreate, ExportPage, ExportRead


async def _record(state: Any, tenant_id: UUID, export_id: UUID) -> ExportRead:
    from flywheel.plugins.rlaas.exports import export_record
    from flywheel.server.plugin_api import NotFound

    try:
        return await export_record(state, tenant_id, export_id)
    except NotFound:
        raise click.ClickException(f"no export {export_id}") from None



def _body(kind: str, selection: dict[str, Any]) -> ExportCreate:
    """The API's body from the options; a bad value is a usage error naming the option."""
    from flywheel.plugins.rlaas.exports import check_selection
    from flywheel.server.plugin_api import InvalidInput

    def option(text: str) -> str:  # `$.selection.min_reward` -> `--min-reward`; `sources` is `--source`
        return text.replace("$.selection.sources", "--source").replace("$.selection.", "--").replace("_", "-")

    chosen = {k: v for k, v in selection.items() if v not in (None, ())}
    try:
        body = msgspec.convert({"kind": kind, "selection": chosen}, ExportCreate)
        check_selection(body)
    except msgspec.ValidationError as exc:
        raise click.UsageError(option(str(exc))) from None
    except InvalidInput as exc:
        raise click.UsageError(f"{option(exc.field or '')}: {exc.message}") from None
    return body


def _show(record: ExportRead) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, title=f"export {record.export_id}")
    for name in ExportRead.__struct_fields__:
        value = getattr(record, name)
        if name == "selection":
            value = msgspec.json.encode(value).decode()
        table.add_row(name, "" if value is None else str(value))
    Console().print(table)


@click.group()
def exports() -> None:
    """SFT and DPO training data sets (JSONL in the object store, as TRL reads them)."""


@exports.command()
@click.argument("kind", type=click.Choice(["sft", "dpo"]))
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--route", help="The model name clients asked for.")
@click.option("--policy", help="The policy's name.")
@click.option("--policy-version", type=int)
@click.option("--since", callback=parse_when, help="Inclusive, ISO 8601 (UTC when no zone is given).")
@click.option("--until", callback=parse_when, help="Exclusive, ISO 8601 (UTC when no zone is given).")
@click.option("--min-reward", type=float, help="SFT: interactions whose reward is at least this.")
@click.option("--source", "sources", multiple=True, type=click.Choice(["comparison", "edit", "reward_gap"]),
              help="DPO: pairs of this source (repeat for several; default all).")
@click.option("--max-rows", type=int, help="Stop after this many rows.")
@click.option("--json", "as_json", is_flag=True, help="Print the export as JSON.")
def create(kind: str, tenant: str, as_json: bool, **selection: Any) -> None:
    """Write an export now, showing the job's progress."""
    from rich.console import Console

    from flywheel.plugins.rlaas.exports import create_export, export_record
    from flywheel.server.plugin_api import cli_state, follow_job, run_here

    body = _body(kind, selection)

    async def go() -> ExportRead:
        async with cli_state() as state:
            t = await tenant_named(state, tenant)
            tasks = []

            async def start(state, tenant_id, payload):
                job_id, task = await run_here(state, "rlaas.export", payload, tenant_id=tenant_id)
                tasks.append(task)
                return job_id

            record = await create_export(state, t.id, body, start=start)
            with Console(stderr=True).status(f"writing export {record.export_id}") as status:
                await follow_job(state, record.job_id, tenant_id=t.id,
                                 on_progress=lambda job: status.update(f"{job.progress.message or 'starting'}"))
            await asyncio.gather(*tasks)
            return await export_record(state, t.id, record.export_id)

    record = asyncio.run(go())
    if as_json:
        echo_json(record)
    else:
        _show(record)
    if record.status != "succeeded":
        raise click.ClickException(f"export {record.export_id} {record.status}: {record.error}")


@exports.command(name="list")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--kind", type=click.Choice(["sft", "dpo"]))
@click.option("--status", type=click.Choice(["queued", "running", "succeeded", "failed"]))
@click.option("--limit", type=click.IntRange(1, PAGE_MAX), default=50, show_default=True)
@click.option("--cursor", help="The next page: the cursor the previous page printed.")
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
def list_(tenant: str, kind: str | None, status: str | None, limit: int, cursor: str | None, as_json: bool) -> None:
    """Exports, newest first."""
    from rich.console import Console
    from rich.table import Table

    from flywheel.plugins.rlaas.exports import list_exports
    from flywheel.server.plugin_api import InvalidInput, cli_state

    async def go() -> ExportPage:
        async with cli_state() as state:
            t = await tenant_named(state, tenant)
            try:
                return await list_exports(state, t.id, kind=kind, status=status, limit=limit, cursor=cursor)
            except InvalidInput as exc:
                raise click.UsageError(f"--cursor: {exc.message}") from None

    page = asyncio.run(go())
    if as_json:
        echo_json(page)
        return
    table = Table("export", "kind", "status", "rows", "created", "selection")
    for e in page.items:
        table.add_row(str(e.export_id), e.kind, e.status, "" if e.row_count is None else f"{e.row_count:,}",
                      e.created_at.isoformat(timespec="seconds"), msgspec.json.encode(e.selection).decode())
    console = Console()
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", markup=False)


@exports.command()
@click.argument("export_id", type=click.UUID)
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--json", "as_json", is_flag=True, help="Print the export as JSON.")
def show(export_id: UUID, tenant: str, as_json: bool) -> None:
    """One export: status, row count, SHA-256 and object keys."""
    from flywheel.server.plugin_api import cli_state

    async def go() -> ExportRead:
        async with cli_state() as state:
            return await _record(state, (await tenant_named(state, tenant)).id, export_id)

    record = asyncio.run(go())
    if as_json:
        echo_json(record)
    else:
        _show(record)


@exports.command()
@click.argument("export_id", type=click.UUID)
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the JSONL (default: export-ID.jsonl here).")
def download(export_id: UUID, tenant: str, output: Path | None) -> None:
    """Copy an export's data file here, with a progress bar, and check its SHA-256."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from flywheel.plugins.rlaas.exports import data_chunks, finished
    from flywheel.server.plugin_api import ApiError, cli_state

    path = output or Path(f"export-{export_id}.jsonl")

    async def go() -> ExportRead:
        async with cli_state() as state:
            t = await tenant_named(state, tenant)
            try:
                record = finished(await _record(state, t.id, export_id))
            except ApiError as exc:
                raise click.ClickException(exc.message) from None
            digest, partial = hashlib.sha256(), path.with_name(path.name + ".part")
            with Progress(BarColumn(), DownloadColumn(), TransferSpeedColumn()) as progress, partial.open("wb") as f:
                bar = progress.add_task("download", total=record.size_bytes)
                async for chunk in data_chunks(state, t.id, record):
                    f.write(chunk)
                    digest.update(chunk)
                    progress.advance(bar, len(chunk))
            if digest.hexdigest() != record.sha256:
                partial.unlink()
                raise click.ClickException(f"the downloaded bytes do not match the export's SHA-256 {record.sha256}")
            partial.replace(path)  # only a checked file gets the name
            return record

    record = asyncio.run(go())
    click.echo(f"{path}: {record.row_count:,} rows, {record.size_bytes:,} bytes, sha256 {record.sha256}")
