"""Small formatting helpers the console's templates share (Jinja filters)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec


def when(moment: datetime | None) -> str:
    """A timestamp as operators read it, in UTC (the server's clock, whatever the browser's zone)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def duration(started: datetime | None, finished: datetime | None) -> str:
    """How long something ran: "2.4 s", "3 min 5 s", "1 h 2 min"; still running counts up to now."""
    if started is None:
        return ""
    seconds = ((finished or datetime.now(UTC)) - started) / timedelta(seconds=1)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def pretty_json(value: Any) -> str:
    """A JSON document indented for reading (escaped by the template like any text)."""
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


def metric(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


FILTERS = {"when": when, "pretty_json": pretty_json, "metric": metric}
GLOBALS = {"duration": duration}
