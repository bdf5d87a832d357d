"""What the `flywheel rlaas ...` commands share: parsing a time option, finding the tenant,
printing JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
import msgspec


def parse_when(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """A click callback: an ISO 8601 time, read as UTC when it has no zone."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("an ISO 8601 time, e.g. 2026-01-02T03:04:05Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


async def tenant_named(state: Any, name: str) -> Any:
    """The tenant by name or id, or a one-line CLI error."""
    from flywheel.server.plugin_api import NotFound, find_tenant

    try:
        return await find_tenant(state, name)
    except NotFound:
        raise click.ClickException(f"no tenant {name!r}") from None


def echo_json(value: Any) -> None:
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2))
