"""`flywheel rlaas adapters ...`: train LoRA adapters on exports, and serve them as new policies.

`train` runs the training job in this process (recorded like a queued one)
and follows it with a progress bar showing the step and the loss; the
process needs the `llm-train` extra. Hyperparameters come from options or
from `--config FILE` (the API's `config` as JSON), with the API's bounds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from uuid import UUID

import click
import msgspec

from flywheel.plugins.rlaas.adapter_types import AdapterAttach, AdapterCreate, AdapterRead
from flywheel.plugins.rlaas.policies_cli import emit, json_option, policy_card, replace_option, run, tenant_option

STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]
# Option -> TrainConfig field; None values are left to the config's defaults.
_CONFIG_OPTIONS = ("epochs", "max_steps", "learning_rate", "batch_size", "r", "alpha", "dropout", "beta", "device",
                   "seed")


@click.group(name="adapters")
def adapters() -> None:
    """LoRA adapters trained on exports (the llm-train extra), and policies that serve them."""


@adapters.command()
@tenant_option
@click.option("--export", "export_id", required=True, type=click.UUID, help="The SFT or DPO export to train on.")
@click.option("--base-model", required=True, help="A folder in FLYWHEEL_RLAAS_BASE_MODEL_DIRS, or an allowed hub id.")
@click.option("--name", required=True, help="The adapter's name; each training is its next version.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Hyperparameters as JSON (the API's `config`); the options below override it.")
@click.option("--epochs", type=int)
@click.option("--max-steps", type=int, help="Stop after this many optimizer steps, whatever --epochs says.")
@click.option("--learning-rate", type=float)
@click.option("--batch-size", type=int)
@click.option("--r", type=int, help="LoRA rank.")
@click.option("--alpha", type=int, help="LoRA alpha.")
@click.option("--dropout", type=float, help="LoRA dropout.")
@click.option("--beta", type=float, help="DPO's beta.")
@click.option("--target-module", "target_modules", multiple=True, help="A module LoRA wraps (repeatable).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--seed", type=int)
@click.option("--description", default="")
@json_option
def train(tenant: str, export_id: UUID, base_model: str, name: str, config_file: Path | None,
          target_modules: tuple[str, ...], description: str, as_json: bool, **options: Any) -> None:
    """Train the next version of adapter NAME, showing each step and its loss."""
    body = _convert({"name": name, "export_id": str(export_id), "base_model": base_model,
                     "config": _config(config_file, options, target_modules), "description": description},
                    AdapterCreate)
    adapter = run(tenant, lambda state, t: _train_here(state, t, body))
    emit(adapter, as_json, adapter_card)
    if adapter.status != "succeeded":  # exit 1 for scripts too
        raise click.ClickException(f"training {adapter.status}: {adapter.error}")


async def _train_here(state: Any, tenant_id: UUID, body: AdapterCreate) -> AdapterRead:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flywheel.plugins.rlaas import adapters as store
    from flywheel.server.plugin_api import follow_job, run_here

    tasks = []

    async def here(state: Any, tenant_id: UUID, payload: Any) -> UUID:
        job_id, task = await run_here(state, store.JOB, msgspec.to_builtins(payload), tenant_id=tenant_id)
        tasks.append(task)
        return job_id

    adapter = await store.create_adapter(state, tenant_id, body, start=here)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[message]}"), TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        line = bar.add_task(f"training {adapter.name} v{adapter.version}", total=None, message="")

        def show(status: Any) -> None:
            p = status.progress
            bar.update(line, completed=p.current, total=p.total or None, message=p.message or "")

        await follow_job(state, adapter.job_id, tenant_id=tenant_id, on_progress=show)
    await tasks[0]
    return await store.get_adapter(state.db, tenant_id, adapter.id)


@adapters.command("list")
@tenant_option
@click.option("--name", help="Only this adapter's versions.")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@json_option
def list_(tenant: str, name: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """The tenant's adapters, newest first."""
    from flywheel.plugins.rlaas import adapters as store

    page = run(tenant, lambda state, t: store.list_adapters(state.db, t, name=name, status=status, limit=limit))
    emit(page.items, as_json, adapter_table)


@adapters.command()
@tenant_option
@click.argument("adapter_id", type=click.UUID)
@json_option
def show(tenant: str, adapter_id: UUID, as_json: bool) -> None:
    """One adapter: training config, data, metrics and stored files."""
    from flywheel.plugins.rlaas import adapters as store

    emit(run(tenant, lambda state, t: store.get_adapter(state.db, t, adapter_id)), as_json, adapter_card)


@adapters.command()
@tenant_option
@click.argument("adapter_id", type=click.UUID)
@click.option("--route", required=True, help="The model name clients ask for.")
@click.option("--name", required=True, help="The new policy's name.")
@click.option("--version", type=int, default=1, show_default=True)
@click.option("--status", type=click.Choice(["shadow", "canary"]), default="shadow", show_default=True)
@click.option("--canary-share", type=float, help="With --status canary: its share of the route's traffic (0-1).")
@click.option("--base-url", required=True, help="The upstream that serves the adapter (OpenAI-compatible).")
@click.option("--model", required=True, help="The base model's name at that upstream.")
@click.option("--api-key-env", metavar="VAR", help="Read the upstream's API key from this environment variable.")
@click.option("--description", default="")
@replace_option
@json_option
def attach(tenant: str, adapter_id: UUID, base_url: str, model: str, api_key_env: str | None, replace: bool,
           as_json: bool, **fields: Any) -> None:
    """Serve ADAPTER_ID through a new shadow or canary policy of a route (audited like any policy change)."""
    from flywheel.plugins.rlaas import adapters as store

    upstream: dict[str, Any] = {"base_url": base_url, "model": model}
    if api_key_env:
        value = os.environ.get(api_key_env)
        if not value:
            raise click.BadParameter(f"environment variable {api_key_env} is not set", param_hint="--api-key-env")
        upstream["api_key"] = value
    raw = {k: v for k, v in fields.items() if v is not None and v != ""}
    body = _convert({**raw, "upstream": upstream}, AdapterAttach)
    policy = run(tenant, lambda state, t: store.attach(state, t, None, adapter_id, body, replace=replace))
    emit(policy, as_json, policy_card)


# -- building the request ---------------------------------------------------------------------


def _config(path: Path | None, options: dict[str, Any], modules: tuple[str, ...]) -> dict[str, Any]:
    config: Any = {}
    if path is not None:
        try:
            config = msgspec.json.decode(path.read_bytes())
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise click.UsageError(f"{path}: not JSON ({exc})") from None
        if not isinstance(config, dict):
            raise click.UsageError(f"{path}: expected a JSON object")
    config.update({k: v for k, v in options.items() if k in _CONFIG_OPTIONS and v is not None})
    if modules:
        config["target_modules"] = list(modules)
    return config


def _convert(raw: dict[str, Any], kind: type) -> Any:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:  # names the field, e.g. `$.config.r`
        raise click.UsageError(f"invalid request: {exc}") from None


# -- tables for people ------------------------------------------------------------------------


def _loss(a: AdapterRead) -> str:
    loss = (a.metrics or {}).get("final_loss")
    return "" if loss is None else f"{loss:.4f}"


def adapter_table(items: list[AdapterRead]) -> Any:
    from rich.table import Table

    table = Table(title=f"{len(items)} adapters")
    for column in ("id", "name", "version", "method", "status", "base model", "steps", "loss", "created"):
        table.add_column(column, overflow="fold")
    for a in items:
        table.add_row(str(a.id), a.name, str(a.version), a.method, a.status, a.base_model,
                      str((a.metrics or {}).get("steps", "")), _loss(a), f"{a.created_at:%Y-%m-%d %H:%M}")
    return table


def adapter_card(a: AdapterRead) -> Any:
    from rich.table import Table

    metrics = a.metrics or {}
    step = metrics.get("step_time_s")
    table = Table(show_header=False, title=f"adapter {a.name} v{a.version}")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows = [("id", str(a.id)), ("status", a.status + (f": {a.error}" if a.error else "")), ("method", a.method),
            ("base model", a.base_model), ("export", str(a.export_id)),
            ("rows", str((a.data_manifest or {}).get("row_count", ""))),
            ("config", msgspec.json.encode(a.config).decode()),
            ("steps", str(metrics.get("steps", ""))), ("first loss", f"{metrics['first_loss']:.4f}"
                                                        if metrics.get("first_loss") is not None else ""),
            ("final loss", _loss(a)), ("step time", "" if step is None else f"{step * 1000:.1f} ms"),
            ("files", f"{len(a.files)} under {a.object_prefix}"), ("job", str(a.job_id or "")),
            ("created", f"{a.created_at:%Y-%m-%d %H:%M:%S}")]
    for key, value in rows:
        table.add_row(key, value)
    return table
