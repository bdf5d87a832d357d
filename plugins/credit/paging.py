"""Keyset pagination shared by the credit list endpoints: (created_at, id) of the last row."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from litestar.params import QueryParameter

from flywheel.server.plugin_api import decode_cursor, encode_cursor

Limit = Annotated[int, QueryParameter(ge=1, le=200, description="Rows per page")]
Cursor = Annotated[str | None, QueryParameter(max_length=400, description="`next_cursor` of the previous page")]


def after(cursor: str | None) -> tuple[datetime, UUID] | None:
    return None if cursor is None else decode_cursor(cursor, datetime, UUID)


def next_cursor(items: list, limit: int) -> str | None:
    return encode_cursor(items[-1].created_at, items[-1].id) if len(items) == limit else None
