"""`flywheel rlaas interactions ...`: what the gateway recorded, from the command line.

The same queries as `GET /v1/rlaas/interactions` (interactions_api.py), with
the same filters and bounds.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from uuid import UUID

import click
import msgspec

from flywheel.plugins.rlaas.cli_helpers import echo_json, parse_when, tenant_named
from flywheel.plugins.rlaas.interaction_types import PAGE_MAX, InteractionDetail, InteractionPage


@click.group()
def interactions() -> None:
    """Interactions through the gateway, with their feedback and task results."""


@interactions.command(name="list")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--route", help="The model name clients asked for.")
@click.option("--policy", help="The policy's name.")
@click.option("--policy-version", type=int)
@click.option("--user", help="The end user's id (hashed as the gateway hashes it).")
@click.option("--user-hash", help="The end user's hash, as the interactions show it.")
@click.option("--role", type=click.Choice(["primary", "shadow"]))
@click.option("--has-feedback/--no-feedback", default=None, help="Only those with (or without) feedback.")
@click.option("--since", callback=parse_when, help="Inclusive, ISO 8601 (UTC when no zone is given).")
@click.option("--until", callback=parse_when, help="Exclusive, ISO 8601 (UTC when no zone is given).")
@click.option("--limit", type=click.IntRange(1, PAGE_MAX), default=50, show_default=True)
@click.option("--cursor", help="The next page: the cursor the previous page printed.")
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
def list_(tenant: str, limit: int, cursor: str | None, as_json: bool, **filters: Any) -> None:
    """Interactions, newest first."""
    from flywheel.plugins.rlaas.interactions_api import find_interactions, parse_filter
    from flywheel.server.plugin_api import InvalidInput, cli_state

    try:
        f = parse_filter(filters, prefix="--")
    except InvalidInput as exc:
        raise click.UsageError(f"{(exc.field or '').replace('_', '-')}: {exc.message}") from None

    async def go() -> InteractionPage:
        async with cli_state() as state:
            t = await tenant_named(state, tenant)
            try:
                return await find_interactions(state.db, t.id, f, limit=limit, cursor=cursor)
            except InvalidInput as exc:
                raise click.UsageError(f"--cursor: {exc.message}") from None

    page = asyncio.run(go())
    if as_json:
        echo_json(page)
    else:
        _print_page(page)


@interactions.command()
@click.argument("interaction_id", type=click.UUID)
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON (request and response included).")
def show(interaction_id: UUID, tenant: str, as_json: bool) -> None:
    """One interaction, its feedback and its task results."""
    from flywheel.plugins.rlaas.interactions_api import interaction_detail
    from flywheel.server.plugin_api import NotFound, cli_state

    async def go() -> InteractionDetail:
        async with cli_state() as state:
            t = await tenant_named(state, tenant)
            try:
                return await interaction_detail(state.db, t.id, interaction_id)
            except NotFound:
                raise click.ClickException(f"no interaction {interaction_id} for tenant {t.name}") from None

    detail = asyncio.run(go())
    if as_json:
        echo_json(detail)
    else:
        _print_detail(detail)


def _print_page(page: InteractionPage) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    out = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in ("time", "interaction", "route", "policy", "role", "status", "ms", "tokens", "feedback", "tasks"):
        # The time and the id stay whole on a narrow terminal: the id is what `show` takes.
        whole = {"time": 19, "interaction": 36}.get(name)
        out.add_column(name, justify="right" if name in ("status", "ms", "tokens", "feedback", "tasks") else "left",
                       no_wrap=whole is not None, min_width=whole)
    for i in page.items:
        tokens = "" if i.completion_tokens is None else f"{i.prompt_tokens or 0}+{i.completion_tokens}"
        out.add_row(f"{i.ts:%Y-%m-%d %H:%M:%S}", str(i.interaction_id), i.route, f"{i.policy} v{i.policy_version}",
                    i.role, str(i.status), f"{i.latency_ms:.0f}", tokens, str(i.feedback_count),
                    str(i.task_result_count))
    Console(markup=False, highlight=False).print(out)  # routes and comments are the tenant's text
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}")  # unwrapped, to copy whole


def _print_detail(d: InteractionDetail) -> None:
    from rich.console import Console
    from rich.table import Table

    i = d.interaction
    console = Console(markup=False, highlight=False)
    console.print(f"{i.interaction_id} {i.ts:%Y-%m-%d %H:%M:%S%z} {i.endpoint} route {i.route} -> "
                  f"{i.policy} v{i.policy_version} ({i.role}), status {i.status}, {i.latency_ms:.0f} ms")
    if i.error:
        console.print(f"error: {i.error}")
    feedback = Table(title=f"feedback ({i.feedback_count})")
    for name in ("time", "kind", "signal", "comment"):
        feedback.add_column(name)
    for f in d.feedback:
        signal = msgspec.to_builtins(f.signal)
        kind = signal.pop("kind")
        feedback.add_row(f"{f.ts:%Y-%m-%d %H:%M:%S}", kind, " ".join(f"{k}={v}" for k, v in signal.items())[:80],
                         (f.comment or "")[:80])
    results = Table(title=f"task results ({i.task_result_count})")
    for name in ("time", "task", "outcome", "score"):
        results.add_column(name)
    for r in d.task_results:
        results.add_row(f"{r.ts:%Y-%m-%d %H:%M:%S}", r.task, r.outcome, "" if r.score is None else f"{r.score:g}")
    console.print(feedback)
    console.print(results)


@interactions.command()
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--since", callback=parse_when, help="Replay events from then (default: --days before --until).")
@click.option("--until", callback=parse_when, help="Up to then, exclusive (default: now).")
@click.option("--days", type=click.IntRange(1, 3650), default=7, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the job's result as JSON.")
def rebuild(tenant: str, since: datetime | None, until: datetime | None, days: int, as_json: bool) -> None:
    """Rebuild the interaction tables from the stored events (what a crash left unprojected); idempotent."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from flywheel.plugins.rlaas.rebuild import JOB, Rebuild
    from flywheel.server.plugin_api import cli_state, follow_job, run_here

    payload = msgspec.to_builtins(Rebuild(since=since, until=until, days=days))

    async def go():
        async with cli_state() as state:
            t = await tenant_named(state, tenant)
            job_id, task = await run_here(state, JOB, payload, tenant_id=t.id)
            with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[message]}"),
                          TimeElapsedColumn(), console=Console(stderr=True)) as progress:
                bar = progress.add_task("rebuilding", total=3, message="")

                def show(status) -> None:
                    p = status.progress
                    progress.update(bar, completed=p.current, message=p.message or "")

                status = await follow_job(state, job_id, tenant_id=t.id, on_progress=show)
            await task
            return status

    status = asyncio.run(go())
    if status.state.value != "succeeded":
        raise click.ClickException(f"the rebuild {status.state.value}: {status.error}")
    if as_json:
        echo_json(status.result)
        return
    replayed = status.result["replayed"]
    click.echo(", ".join(f"{n} {kind} events replayed" for kind, n in replayed.items()))
