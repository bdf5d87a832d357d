"""`flywheel rlaas rewards ...` and `flywheel rlaas pairs ...`: the rewards job from the command line.

The same queries and checks as `/v1/rlaas/rewards` and `/v1/rlaas/pairs` (rewards_api.py).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import click
import msgspec

from flywheel.plugins.rlaas.cli_helpers import echo_json, parse_when, tenant_named
from flywheel.plugins.rlaas.reward_types import (
    PAGE_MAX,
    ComputeRewards,
    PairFilter,
    PairPage,
    RewardFilter,
    RewardPage,
    RewardSettings,
    RewardSettingsRead,
)

_AT = re.compile(r" - at `\$\.(?:weights\.)?(\w+)`")


def _usage(exc: Any) -> click.UsageError:
    """An InvalidInput as the option at fault: `query.min_reward` / `$.weights.edit` -> `--min-reward` / `--edit`."""
    field = (exc.field or "").removeprefix("query.").removeprefix("--").removeprefix("$.").removeprefix("weights.")
    return click.UsageError(f"--{field.replace('_', '-')}: {exc.message}" if field else exc.message)


@click.group()
def rewards() -> None:
    """Rewards computed from feedback and task results, and their settings."""


@click.group()
def pairs() -> None:
    """Preference pairs (chosen beats rejected for one prompt)."""


@rewards.group()
def settings() -> None:
    """The weights of each signal in the reward, and the reward-gap pairs' threshold."""


def _print_settings(s: RewardSettingsRead) -> None:
    w = s.weights
    click.echo(f"version {s.version}{' (defaults)' if s.version == 0 else ''}: weights thumbs {w.thumbs:g}, "
               f"rating {w.rating:g}, edit {w.edit:g}, task {w.task:g}; pair_min_gap {s.pair_min_gap:g}")


@settings.command(name="show")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--json", "as_json", is_flag=True)
def settings_show(tenant: str, as_json: bool) -> None:
    """The tenant's reward settings."""
    from flywheel.plugins.rlaas.rewards import load_settings
    from flywheel.server.plugin_api import cli_state

    async def go() -> RewardSettingsRead:
        async with cli_state() as state:
            return await load_settings(state.db, (await tenant_named(state, tenant)).id)

    s = asyncio.run(go())
    if as_json:
        echo_json(s)
    else:
        _print_settings(s)


@settings.command(name="set")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--thumbs", type=float, help="Weight of thumbs up/down (0 leaves it out).")
@click.option("--rating", type=float, help="Weight of 1-5 ratings.")
@click.option("--edit", type=float, help="Weight of corrections (their edit distance).")
@click.option("--task", type=float, help="Weight of task results.")
@click.option("--pair-min-gap", type=float, help="Reward difference above which two answers make a pair.")
@click.option("--json", "as_json", is_flag=True)
def settings_set(tenant: str, as_json: bool, pair_min_gap: float | None, **weights: float | None) -> None:
    """Change some settings (the rest stay); a change queues a recompute of every reward and pair."""
    from flywheel.plugins.rlaas import rewards as compute
    from flywheel.server.plugin_api import InvalidInput, cli_state, enqueue

    async def go() -> RewardSettingsRead:
        async with cli_state() as state:
            t = await tenant_named(state, tenant)
            current = await compute.load_settings(state.db, t.id)
            raw = {"weights": {**msgspec.to_builtins(current.weights),
                               **{k: v for k, v in weights.items() if v is not None}},
                   "pair_min_gap": current.pair_min_gap if pair_min_gap is None else pair_min_gap}
            try:
                new = msgspec.convert(raw, RewardSettings)
            except msgspec.ValidationError as exc:
                at = _AT.search(str(exc))
                raise click.UsageError(f"--{at.group(1).replace('_', '-')}: {str(exc)[:at.start()]}" if at
                                       else str(exc)) from None
            try:
                saved, changed = await compute.save_settings(state.db, t.id, new)
            except InvalidInput as exc:
                raise _usage(exc) from None
            if changed:
                saved.job_id = await enqueue(state, compute.JOB, ComputeRewards(), tenant_id=t.id)
            return saved

    s = asyncio.run(go())
    if as_json:
        echo_json(s)
        return
    _print_settings(s)
    click.echo(f"recompute queued: job {s.job_id}" if s.job_id else "unchanged")


@rewards.command(name="compute")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--full", is_flag=True, help="Every interaction with feedback, not only the pending ones.")
@click.option("--json", "as_json", is_flag=True, help="Print the job's result as JSON.")
def compute_(tenant: str, full: bool, as_json: bool) -> None:
    """Compute the rewards and pairs of new feedback now, with a progress bar (incremental, idempotent)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from flywheel.plugins.rlaas.rewards import JOB
    from flywheel.server.plugin_api import cli_state, follow_job, run_here

    async def go():
        async with cli_state() as state:
            t = await tenant_named(state, tenant)
            job_id, task = await run_here(state, JOB, msgspec.to_builtins(ComputeRewards(full=full)), tenant_id=t.id)
            with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[message]}"),
                          TimeElapsedColumn(), console=Console(stderr=True)) as progress:
                bar = progress.add_task("computing", total=None, message="")

                def show(status) -> None:
                    p = status.progress
                    progress.update(bar, completed=p.current, total=p.total, message=p.message or "")

                status = await follow_job(state, job_id, tenant_id=t.id, on_progress=show)
            await task
            return status

    status = asyncio.run(go())
    if status.state.value != "succeeded":
        raise click.ClickException(f"the rewards job {status.state.value}: {status.error}")
    if as_json:
        echo_json(status.result)
        return
    r = status.result
    click.echo(f"{r.get('interactions', 0):,} interactions: {r.get('rewards_written', 0):,} rewards written, "
               f"{r.get('rewards_removed', 0):,} removed; {r.get('feedback_pairs', 0):,} comparison and edit "
               f"pairs, {r.get('gap_pairs_written', 0):,} reward-gap pairs written "
               f"({r.get('gap_pairs_removed', 0):,} removed) over {r.get('prompts', 0):,} prompts")


def _filter(raw: dict[str, Any], kind: type) -> Any:
    from flywheel.plugins.rlaas.rewards_api import parse_filter
    from flywheel.server.plugin_api import InvalidInput

    try:
        return parse_filter(raw, kind, prefix="--")
    except InvalidInput as exc:
        raise _usage(exc) from None


def _fetch(tenant: str, find: Any, f: Any, limit: int, cursor: str | None) -> Any:
    from flywheel.server.plugin_api import InvalidInput, cli_state

    async def go():
        async with cli_state() as state:
            t = await tenant_named(state, tenant)
            try:
                return await find(state.db, t.id, f, limit=limit, cursor=cursor)
            except InvalidInput as exc:
                raise click.UsageError(f"--cursor: {exc.message}") from None

    return asyncio.run(go())


def _table(columns: list[str], rows: list[list[str]], next_cursor: str | None) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    out = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in columns:
        out.add_column(name, no_wrap=name in ("time", "interaction", "chosen", "rejected"))
    for row in rows:
        out.add_row(*row)
    Console(markup=False, highlight=False).print(out)  # routes are the tenant's text
    if next_cursor:
        click.echo(f"more: --cursor {next_cursor}")


@rewards.command(name="list")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--route", help="The model name clients asked for.")
@click.option("--policy", help="The policy's name.")
@click.option("--since", callback=parse_when, help="Inclusive, ISO 8601 (UTC when no zone is given).")
@click.option("--until", callback=parse_when, help="Exclusive, ISO 8601 (UTC when no zone is given).")
@click.option("--min-reward", type=float, help="Only rewards at least this (-1 to 1).")
@click.option("--limit", type=click.IntRange(1, PAGE_MAX), default=50, show_default=True)
@click.option("--cursor", help="The next page: the cursor the previous page printed.")
@click.option("--json", "as_json", is_flag=True)
def rewards_list(tenant: str, limit: int, cursor: str | None, as_json: bool, **filters: Any) -> None:
    """Rewards, newest interaction first."""
    from flywheel.plugins.rlaas.rewards_api import find_rewards

    page: RewardPage = _fetch(tenant, find_rewards, _filter(filters, RewardFilter), limit, cursor)
    if as_json:
        echo_json(page)
        return
    _table(["time", "interaction", "route", "policy", "reward", "signals"],
           [[f"{r.ts:%Y-%m-%d %H:%M:%S}", str(r.interaction_id), r.route, f"{r.policy} v{r.policy_version}",
             f"{r.reward:+.3f}", " ".join(f"{k}={v:+.2f}" for k, v in r.inputs.get("signals", {}).items())]
            for r in page.items], page.next_cursor)


@pairs.command(name="list")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--route", help="The model name clients asked for.")
@click.option("--source", type=click.Choice(["comparison", "edit", "reward_gap"]))
@click.option("--prompt-hash", help="One prompt's hash (as rewards show it).")
@click.option("--since", callback=parse_when, help="Inclusive, ISO 8601 (UTC when no zone is given).")
@click.option("--until", callback=parse_when, help="Exclusive, ISO 8601 (UTC when no zone is given).")
@click.option("--limit", type=click.IntRange(1, PAGE_MAX), default=50, show_default=True)
@click.option("--cursor", help="The next page: the cursor the previous page printed.")
@click.option("--json", "as_json", is_flag=True)
def pairs_list(tenant: str, limit: int, cursor: str | None, as_json: bool, **filters: Any) -> None:
    """Preference pairs, newest first."""
    from flywheel.plugins.rlaas.rewards_api import find_pairs

    page: PairPage = _fetch(tenant, find_pairs, _filter(filters, PairFilter), limit, cursor)
    if as_json:
        echo_json(page)
        return
    _table(["time", "source", "route", "chosen", "rejected", "gap"],
           [[f"{p.ts:%Y-%m-%d %H:%M:%S}", p.source, p.route,
             "corrected text" if p.chosen_text is not None else str(p.chosen_interaction_id),
             str(p.rejected_interaction_id), "" if p.gap is None else f"{p.gap:.3f}"]
            for p in page.items], page.next_cursor)
