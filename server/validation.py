"""Checks msgspec cannot express, shared by every write path."""

from __future__ import annotations

from typing import Any

from flywheel.server.errors import InvalidInput


def find_nul(value: Any, path: str = "$") -> str | None:
    """The path of the first string (value or key) holding a NUL character.

    Postgres text and jsonb cannot store U+0000, so such input is refused up
    front with the field named, instead of failing later as a database error.
    """
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                return path
            found = find_nul(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = find_nul(item, f"{path}[{i}]")
            if found:
                return found
    return None


def reject_nul(value: Any, path: str = "$") -> None:
    found = find_nul(value, path)
    if found:
        raise InvalidInput("text must not contain NUL (\\u0000) characters", field=found)
