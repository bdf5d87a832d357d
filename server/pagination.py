"""Keyset pagination cursors: opaque to clients, the last row's sort key inside.

A cursor is the values of the last row's sort key (a timestamp and an id, a
risk and a serial...) as URL-safe base64 of a JSON array. Decoding checks
each value against the type the caller expects, so a forged cursor is a
422 naming the parameter, never an error deeper down.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from flywheel.server.errors import InvalidInput

MAX_CURSOR_CHARS = 1000


def encode_cursor(*values: Any) -> str:
    """An opaque cursor holding `values` (str, int, float, bool, None, datetime, date, UUID)."""
    return base64.urlsafe_b64encode(msgspec.json.encode(values)).decode().rstrip("=")


def decode_cursor(cursor: str, *types: Any, field: str = "query.cursor") -> tuple:
    """The values `encode_cursor` was given, converted to `types` (one per value)."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidInput("invalid cursor", field=field)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = msgspec.json.decode(raw, type=tuple[tuple(types)] if types else tuple)
    except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise InvalidInput("invalid cursor", field=field) from None
    return values
