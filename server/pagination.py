"""Keyset pagination cursors: opaque to clients, (timestamp, id) inside."""

from __future__ import annotations

import base64
from datetime import datetime
from uuid import UUID

from flywheel.server.errors import InvalidInput


def encode_cursor(ts: datetime, id_: UUID) -> str:
    return base64.urlsafe_b64encode(f"{ts.isoformat()}|{id_}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, field: str = "query.cursor") -> tuple[datetime, UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        ts, id_ = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
        return datetime.fromisoformat(ts), UUID(id_)
    except Exception:
        raise InvalidInput("invalid cursor", field=field) from None
