"""What operator commands share: a tenant named on the command line, and API errors as one line."""

from __future__ import annotations

import sys
from uuid import UUID

import click

from flywheel.server.cli.context import run_async


async def tenant_id_of(state, name_or_id: str | None) -> UUID | None:
    """The tenant's id (by name or id; 404 if there is none), or None when none was named."""
    if name_or_id is None:
        return None
    from flywheel.server.auth import service

    return (await service.find_tenant(state.db, name_or_id)).id


def run_api(coro):
    """Run a command and return what it returned; an API error (404, 409...) ends it with its
    message and exit code 1."""
    from flywheel.server.errors import ApiError

    try:
        return run_async(coro)
    except ApiError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
