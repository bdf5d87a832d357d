"""`flywheel rlaas policies ...`: the gateway's policies from the command line.

Changes are audited like the API's, with no actor key (the audit shows
`cli`). Credentials never go on the command line, where `ps` and shell
history would keep them: `--api-key-env VAR` and `--header-env NAME=VAR` read
them from environment variables, and `--from-file` reads a whole policy.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import click
import msgspec

from flywheel.plugins.rlaas.policy_types import AuditEntry, PolicyCreate, PolicyRead, PolicyUpdate

T = TypeVar("T")
STATUSES = ["shadow", "canary", "active", "retired"]
_encode = msgspec.json.Encoder().encode

tenant_option = click.option("--tenant", required=True, help="Tenant name or id.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table.")
replace_option = click.option("--replace", is_flag=True, help=(
    "When the policy becomes active (or canary) and another policy of the route is: retire that one "
    "in the same change instead of refusing."))


@click.group(name="policies")
def policies() -> None:
    """Which upstream answers each route (the model name clients ask for)."""


def run(tenant: str, work: Callable[[Any, UUID], Awaitable[T]]) -> T:
    """`work(state, tenant_id)` against the database; an API error ends the command with its message."""
    from flywheel.server.plugin_api import ApiError, cli_state, find_tenant

    async def go() -> T:
        async with cli_state() as state:
            found = await find_tenant(state, tenant)
            return await work(state, found.id)

    try:
        return asyncio.run(go())
    except ApiError as exc:
        raise click.ClickException(exc.message) from None


def emit(value: Any, as_json: bool, table: Callable[[Any], Any]) -> None:
    if as_json:
        click.echo(_encode(value).decode())
    else:
        from rich.console import Console

        Console().print(table(value))


@policies.command("list")
@tenant_option
@click.option("--route", help="Only this route's policies.")
@click.option("--status", type=click.Choice(STATUSES), help="Only policies in this status.")
@click.option("--limit", type=click.IntRange(1, 1000), default=200, show_default=True)
@json_option
def list_(tenant: str, route: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """The tenant's policies, newest first."""
    from flywheel.plugins.rlaas import policies as store

    page = run(tenant, lambda state, t: store.list_policies(state.db, t, route=route, status=status, limit=limit))
    emit(page.items, as_json, policy_table)


@policies.command()
@tenant_option
@click.argument("policy_id", type=click.UUID)
@json_option
def show(tenant: str, policy_id: UUID, as_json: bool) -> None:
    """One policy."""
    from flywheel.plugins.rlaas import policies as store

    emit(run(tenant, lambda state, t: store.get(state.db, t, policy_id)), as_json, policy_card)


@policies.command()
@tenant_option
@click.option("--route", help="The model name clients ask for, e.g. support-draft.")
@click.option("--name", help="The policy's name (lowercase letters, digits, . _ -).")
@click.option("--version", type=int, help="Default 1.")
@click.option("--status", type=click.Choice(STATUSES), help="Default shadow.")
@click.option("--base-url", help="The upstream's OpenAI-compatible base URL, e.g. https://api.openai.com/v1.")
@click.option("--model", help="The model name the upstream is asked for.")
@click.option("--adapter-id", help="A LoRA adapter the upstream serves.")
@click.option("--canary-share", type=float, help="With --status canary: its share of the route's traffic (0-1).")
@click.option("--description")
@click.option("--api-key-env", metavar="VAR", help="Read the upstream's API key from this environment variable.")
@click.option("--header-env", multiple=True, metavar="NAME=VAR",
              help="Send header NAME with the value of environment variable VAR (repeatable).")
@click.option("--from-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The whole policy as JSON (the API's request body); no other policy options then.")
@replace_option
@json_option
def create(tenant: str, api_key_env: str | None, header_env: tuple[str, ...], from_file: Path | None,
           replace: bool, as_json: bool, **fields: Any) -> None:
    """Add a policy to a route."""
    from flywheel.plugins.rlaas import policies as store

    raw = _from_file(from_file, fields) if from_file else _from_options(fields)
    upstream = raw.setdefault("upstream", {})
    if not isinstance(upstream, dict):
        raise click.UsageError("`upstream` is a JSON object")
    if api_key_env:
        upstream["api_key"] = _env(api_key_env, "--api-key-env")
    for item in header_env:
        name, sep, var = item.partition("=")
        if not (sep and name and var):
            raise click.BadParameter(f"{item!r}: expected NAME=VAR", param_hint="--header-env")
        upstream.setdefault("headers", {})[name] = _env(var, "--header-env")
    data = _convert(raw, PolicyCreate)
    created = run(tenant, lambda state, t: store.create(state, t, None, data, replace=replace))
    emit(created, as_json, policy_card)


@policies.command("set-status")
@tenant_option
@click.argument("policy_id", type=click.UUID)
@click.argument("status", type=click.Choice(STATUSES))
@click.option("--canary-share", type=float, help="A canary's share of the route's traffic (0-1).")
@replace_option
@json_option
def set_status(tenant: str, policy_id: UUID, status: str, canary_share: float | None, replace: bool,
               as_json: bool) -> None:
    """Move a policy along shadow -> canary -> active -> retired (any move is allowed: a retired policy can
    come back)."""
    from flywheel.plugins.rlaas import policies as store

    change = _convert({"status": status, "canary_share": canary_share}, PolicyUpdate)
    changed = run(tenant, lambda state, t: store.update(state, t, None, policy_id, change, replace=replace))
    emit(changed, as_json, policy_card)


@policies.command()
@tenant_option
@click.argument("policy_id", type=click.UUID)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(tenant: str, policy_id: UUID, yes: bool) -> None:
    """Delete a policy (its audit history stays). Retiring it instead keeps it listed."""
    from flywheel.plugins.rlaas import policies as store

    if not yes:
        click.confirm(f"delete policy {policy_id}?", abort=True)
    gone = run(tenant, lambda state, t: store.delete(state, t, None, policy_id))
    click.echo(f"deleted {gone.name} v{gone.version} ({gone.status}) of route {gone.route}")


@policies.command()
@tenant_option
@click.option("--policy", "policy_id", type=click.UUID, help="Only this policy's changes.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
def audit(tenant: str, policy_id: UUID | None, limit: int, as_json: bool) -> None:
    """Who changed which policy, when, and how; newest first."""
    from flywheel.plugins.rlaas import policies as store

    page = run(tenant, lambda state, t: store.list_audit(state.db, t, policy_id=policy_id, limit=limit))
    emit(page.items, as_json, audit_table)


@policies.command()
@click.option("--tenant", help="Tenant name or id (default: every tenant).")
def reseal(tenant: str | None) -> None:
    """Encrypt stored credentials again with the first key of FLYWHEEL_SECRET_KEY (key rotation: set
    NEW,OLD, run this, then drop OLD)."""
    from flywheel.plugins.rlaas import policies as store
    from flywheel.server.plugin_api import ApiError, cli_state, find_tenant, tenant_ids

    async def go() -> int:
        async with cli_state() as state:
            ids = [(await find_tenant(state, tenant)).id] if tenant else await tenant_ids(state)
            return sum([await store.reseal(state, t) for t in ids])

    try:
        count = asyncio.run(go())
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"resealed the credentials of {count} polic{'y' if count == 1 else 'ies'}")


# -- building a policy -----------------------------------------------------------------------

_TOP = ("route", "name", "version", "status", "canary_share", "description")
_UPSTREAM = {"base_url": "base_url", "model": "model", "adapter_id": "adapter_id"}


def _from_options(fields: dict[str, Any]) -> dict[str, Any]:
    missing = [f"--{k.replace('_', '-')}" for k in ("route", "name", "base_url", "model") if fields[k] is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or give --from-file)")
    raw = {k: fields[k] for k in _TOP if fields[k] is not None}
    raw["upstream"] = {key: fields[option] for option, key in _UPSTREAM.items() if fields[option] is not None}
    return raw


def _from_file(path: Path, fields: dict[str, Any]) -> dict[str, Any]:
    given = [f"--{k.replace('_', '-')}" for k, v in fields.items() if v is not None]
    if given:
        raise click.UsageError(f"--from-file holds the whole policy: drop {', '.join(given)}")
    try:
        raw = msgspec.json.decode(path.read_bytes())
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"{path}: not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise click.UsageError(f"{path}: expected a JSON object")
    return raw


def _env(var: str, option: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise click.BadParameter(f"environment variable {var} is not set", param_hint=option)
    return value


def _convert(raw: dict[str, Any], kind: type[T]) -> T:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:  # msgspec names the field, never the value
        raise click.UsageError(f"invalid policy: {exc}") from None


# -- tables for people -----------------------------------------------------------------------


def policy_table(items: list[PolicyRead]) -> Any:
    from rich.table import Table

    table = Table(title=f"{len(items)} policies")
    for column in ("id", "route", "name", "version", "status", "share", "upstream", "credentials", "updated"):
        table.add_column(column, overflow="fold")
    for p in items:
        table.add_row(str(p.id), p.route, p.name, str(p.version), p.status, _share(p), _upstream(p), _creds(p),
                      f"{p.updated_at:%Y-%m-%d %H:%M}")
    return table


def policy_card(p: PolicyRead) -> Any:
    from rich.table import Table

    table = Table(show_header=False, title=f"{p.route}: {p.name} v{p.version}")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in (("id", str(p.id)), ("status", p.status), ("canary share", _share(p)),
                       ("base url", p.upstream.base_url), ("upstream model", p.upstream.model),
                       ("adapter", p.upstream.adapter_id or ""), ("credentials", _creds(p)),
                       ("description", p.description), ("created", f"{p.created_at:%Y-%m-%d %H:%M:%S}"),
                       ("updated", f"{p.updated_at:%Y-%m-%d %H:%M:%S}")):
        table.add_row(key, value)
    return table


def audit_table(items: list[AuditEntry]) -> Any:
    from rich.table import Table

    table = Table(title=f"{len(items)} changes")
    for column in ("at", "action", "policy", "by", "change"):
        table.add_column(column, overflow="fold")
    for e in items:
        p = e.after or e.before
        name = f"{p.route}: {p.name} v{p.version}" if p else str(e.policy_id)
        table.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", e.action, name, str(e.actor_key_id or "cli"), _change(e))
    return table


def _share(p: PolicyRead) -> str:
    return "" if p.canary_share is None else f"{p.canary_share:.0%}"


def _upstream(p: PolicyRead) -> str:
    return f"{p.upstream.model} @ {p.upstream.base_url}"


def _creds(p: PolicyRead) -> str:
    parts = (["api key"] if p.upstream.has_api_key else []) + p.upstream.header_names
    return ", ".join(parts) or "none"


def _change(e: AuditEntry) -> str:
    if e.before is None or e.after is None:
        return ""
    old, new = _flat(msgspec.to_builtins(e.before)), _flat(msgspec.to_builtins(e.after))
    return "; ".join(f"{k}: {old.get(k)} -> {new.get(k)}" for k in sorted(new)
                     if old.get(k) != new.get(k) and k != "updated_at")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out
