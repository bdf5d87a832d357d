"""Listings for people and for scripts: a table by default, `--json` for a JSON array.

Every listing command takes `--json`; the table shows the columns a person
scans, the JSON every field of the contract (the same body the API returns).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.table import Table

Column = tuple[str, Callable[[Any], Any]]

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")


def show(items: Sequence[Any], columns: Sequence[Column], *, as_json: bool, empty: str = "nothing to list") -> None:
    if as_json:
        click.echo(msgspec.json.encode(list(items)).decode())
        return
    if not items:
        click.echo(empty, err=True)
        return
    table = Table(*(name for name, _ in columns))
    for item in items:
        table.add_row(*(_cell(get(item)) for _, get in columns))
    # Piped into a file or another program, rows stay whole instead of wrapping at 80 columns.
    Console(width=None if sys.stdout.isatty() else 250).print(table)


def show_one(item: Any, *, as_json: bool) -> None:
    """One object: JSON when asked, else `field: value` lines (nested values as JSON)."""
    built = msgspec.to_builtins(item)
    if as_json:
        click.echo(msgspec.json.encode(built).decode())
        return
    for key, value in built.items():
        if value is None or value == [] or value == {}:
            continue
        text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
        click.echo(f"{key}: {text}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list | tuple):
        return ", ".join(str(getattr(v, "value", v)) for v in value)
    return str(getattr(value, "value", value))
