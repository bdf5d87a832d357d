"""Operator commands: migrate, plugins, tenants, keys, openapi, schemas."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import msgspec
from rich.console import Console
from rich.table import Table

from flywheel.contracts.tenants import Scope
from flywheel.server.cli.context import connected, run_async, settings_or_exit, state_or_exit
from flywheel.server.cli.output import json_option, show, show_one
from flywheel.server.cli.tenancy import run_api

console = Console(stderr=True)


@click.command()
@click.option("--check", is_flag=True, help="Only list pending migrations; exit 1 if any.")
def migrate(check: bool) -> None:
    """Apply pending migrations (core first, then each plugin's namespace)."""
    settings = settings_or_exit()

    async def go() -> None:
        from flywheel.server.db.migrations import migrate as apply
        from flywheel.server.db.migrations import pending

        # No plugin on_startup: plugins may read tables the pending migrations create.
        async with connected(settings, migrate=False, start_plugins=False) as state:
            async with state.db.acquire() as conn:
                if check:
                    todo = await pending(conn, state.migration_sources)
                    for m in todo:
                        click.echo(f"pending {m.namespace}/{m.version:04d}_{m.name}")
                    sys.exit(1 if todo else 0)
                done = await apply(conn, state.migration_sources)
        click.echo(f"applied {len(done)} migration(s)")

    run_async(go())


@click.command()
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json: bool) -> None:
    """List loaded plugins, their versions and the hooks they implement."""
    state = state_or_exit(settings_or_exit())
    described = state.pm.describe()
    if as_json:
        click.echo(msgspec.json.encode(described).decode())
        return
    table = Table("plugin", "version", "hooks")
    for p in described:
        table.add_row(p.name, p.version, ", ".join(p.hooks))
    Console().print(table)


@click.group()
def tenants() -> None:
    """Manage tenants."""


@tenants.command("create")
@click.argument("name")
def tenants_create(name: str) -> None:
    """Create a tenant; prints its id."""
    settings = settings_or_exit()

    async def go() -> None:
        from flywheel.server.auth import service

        async with connected(settings) as state:
            tenant = await service.create_tenant(state.db, name)
        click.echo(msgspec.json.encode(tenant).decode())

    run_api(go())


@tenants.command("list")
@json_option
def tenants_list(as_json: bool) -> None:
    """Every tenant."""
    settings = settings_or_exit()

    async def go() -> None:
        from flywheel.server.auth import service

        async with connected(settings) as state:
            found = await service.list_tenants(state.db)
        show(found, [("id", lambda t: t.id), ("name", lambda t: t.name), ("created", lambda t: t.created_at)],
             as_json=as_json, empty="no tenants")

    run_api(go())


@click.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--scopes", required=True, help="Comma-separated: ingest,read,write,admin.")
@click.option("--name", default="cli", show_default=True)
def keys_create(tenant: str, scopes: str, name: str) -> None:
    """Create a key; its secret is printed once and never stored."""
    try:
        wanted = [Scope(s.strip()) for s in scopes.split(",") if s.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; choose from {', '.join(s.value for s in Scope)}",
                                 param_hint="--scopes") from None
    if not wanted:
        raise click.BadParameter("give at least one scope", param_hint="--scopes")
    settings = settings_or_exit()

    async def go() -> None:
        from flywheel.server.auth import service

        async with connected(settings) as state:
            t = await service.find_tenant(state.db, tenant)
            created = await service.create_key(state.db, t.id, name, wanted)
        click.echo(msgspec.json.encode(created).decode())

    run_api(go())


KEY_COLUMNS = [("id", lambda k: k.id), ("name", lambda k: k.name), ("prefix", lambda k: k.prefix),
               ("scopes", lambda k: k.scopes), ("created", lambda k: k.created_at),
               ("revoked", lambda k: k.revoked_at)]


@keys.command("list")
@click.option("--tenant", required=True, help="Tenant name or id.")
@json_option
def keys_list(tenant: str, as_json: bool) -> None:
    """The tenant's keys (never their secrets)."""
    settings = settings_or_exit()

    async def go() -> None:
        from flywheel.server.auth import service

        async with connected(settings) as state:
            t = await service.find_tenant(state.db, tenant)
            found = await service.list_keys(state.db, t.id)
        show(found, KEY_COLUMNS, as_json=as_json, empty="no keys")

    run_api(go())


@keys.command("revoke")
@click.argument("key_id", type=click.UUID)
@click.option("--tenant", required=True, help="Tenant name or id.")
@json_option
def keys_revoke(key_id, tenant: str, as_json: bool) -> None:
    """Revoke a key: requests with it are refused from now on (every replica within its key cache time)."""
    settings = settings_or_exit()

    async def go() -> None:
        from flywheel.server.auth import service

        async with connected(settings) as state:
            t = await service.find_tenant(state.db, tenant)
            revoked = await service.revoke_key(state.db, t.id, key_id)
        show_one(revoked, as_json=as_json)

    run_api(go())


@keys.command("secret-key")
def keys_secret_key() -> None:
    """Print a new Fernet key for FLYWHEEL_SECRET_KEY (it encrypts the secrets plugins store).

    To rotate: set FLYWHEEL_SECRET_KEY=NEW,OLD (the first encrypts, all decrypt), have each
    plugin re-seal what it stores (docs/rlaas.md for the gateway's policies), then drop OLD.
    """
    from flywheel.server.secrets import new_key

    click.echo(new_key())


@click.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: stdout).")
def openapi(output: Path | None) -> None:
    """Write the OpenAPI document of the app with every loaded plugin."""
    from flywheel.server.app import create_app

    settings = settings_or_exit()
    app = create_app(settings, state=state_or_exit(settings))
    _write(output, json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True))


@click.command()
@click.option("--output-dir", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("schemas"),
              show_default=True)
def schemas(output_dir: Path) -> None:
    """Write a JSON Schema for every contract (core and plugins')."""
    from flywheel.server.schemas import contract_schemas

    state = state_or_exit(settings_or_exit())
    output_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, schema in contract_schemas(state.contributions, state.pm).items():
        (output_dir / f"{name}.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written += 1
    click.echo(f"wrote {written} schemas to {output_dir}", err=True)


def _write(output: Path | None, text: str) -> None:
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n")
        click.echo(f"wrote {output}", err=True)


COMMANDS = [migrate, plugins, tenants, keys, openapi, schemas]
