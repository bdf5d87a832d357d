"""Building event batches for the ingestion tests and benchmarks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def event(type_: str = "core.generic", *, ts: datetime | None = None, event_id: str | None = None,
          **fields: Any) -> dict[str, Any]:
    return {"type": type_, "event_id": event_id or str(uuid.uuid4()),
            "ts": (ts or datetime.now(UTC) - timedelta(minutes=1)).isoformat(), **fields}


def batch(n: int, **fields: Any) -> list[dict[str, Any]]:
    return [event(attributes={"i": i, "value": i * 1.5, "host": f"web-{i % 7}"}, **fields) for i in range(n)]
