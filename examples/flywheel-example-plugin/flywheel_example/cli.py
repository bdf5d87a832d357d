"""`flywheel example ...` commands."""

from __future__ import annotations

import asyncio

import click


@click.group(name="example")
def example() -> None:
    """The example plugin's commands."""


@example.command()
@click.option("--tenant", required=True, help="Tenant name or id.")
def count(tenant: str) -> None:
    """Count a tenant's notes now (the same code the job runs)."""
    from flywheel.server.plugin_api import cli_state, find_tenant

    async def go() -> None:
        async with cli_state() as state:
            t = await find_tenant(state, tenant)
            n = await state.db.fetchval("SELECT count(*) FROM example_notes WHERE tenant_id = $1", t.id)
        click.echo(f"{t.name}: {n} notes")

    asyncio.run(go())
