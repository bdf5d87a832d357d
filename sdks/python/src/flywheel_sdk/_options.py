"""The settings both clients take, checked once, and what they share: headers, reporting."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flywheel_sdk._buffer import FileBuffer
from flywheel_sdk._core import MAX_BATCH_EVENTS, ON_FULL, Pipeline, Rejection
from flywheel_sdk._http import RetryPolicy

log = logging.getLogger("flywheel_sdk")

VERSION = "0.1.0"
OnRejected = Callable[[list[Rejection]], Any]


@dataclass(frozen=True)
class Options:
    base_url: str
    api_key: str
    batch_size: int = 500
    flush_interval: float = 1.0
    max_batch_bytes: int = 1 << 20
    buffer_path: str | os.PathLike[str] | None = None
    max_buffer_events: int = 100_000
    on_full: str = "drop_oldest"
    block_timeout: float | None = None
    timeout: float = 10.0
    max_retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    close_timeout: float = 10.0
    on_rejected: OnRejected | None = None

    def __post_init__(self) -> None:
        problems = [message for ok, message in (
            (self.base_url.startswith(("http://", "https://")), "base_url is an http(s) URL"),
            (bool(self.api_key) and "\n" not in self.api_key, "api_key is the key's secret"),
            (1 <= self.batch_size <= MAX_BATCH_EVENTS, f"batch_size is 1 to {MAX_BATCH_EVENTS}"),
            (self.flush_interval > 0, "flush_interval is positive"),
            (self.max_batch_bytes >= 1024, "max_batch_bytes is at least 1024"),
            (self.max_buffer_events >= self.batch_size, "max_buffer_events is at least batch_size"),
            (self.on_full in ON_FULL, f"on_full is one of {', '.join(ON_FULL)}"),
            (self.block_timeout is None or self.block_timeout >= 0, "block_timeout is None or >= 0"),
            (self.timeout > 0, "timeout is positive"),
            (self.max_retries >= 0, "max_retries is >= 0"),
            (0 < self.backoff <= self.max_backoff, "0 < backoff <= max_backoff"),
            (self.close_timeout >= 0, "close_timeout is >= 0"),
        ) if not ok]
        if problems:
            raise ValueError("; ".join(problems))

    def pipeline(self) -> Pipeline:
        store = FileBuffer(self.buffer_path) if self.buffer_path is not None else None
        policy = RetryPolicy(self.max_retries, self.backoff, self.max_backoff)
        return Pipeline(self.batch_size, self.flush_interval, self.max_batch_bytes, self.max_buffer_events,
                        self.on_full, policy, store)

    def http_options(self) -> dict[str, Any]:
        return {"base_url": self.base_url.rstrip("/"), "timeout": self.timeout,
                "headers": {"Authorization": f"Bearer {self.api_key}",
                            "User-Agent": f"flywheel-sdk-python/{VERSION}"}}

    def check_size(self, data: bytes) -> None:
        if len(data) + 2 > self.max_batch_bytes:
            raise ValueError(f"the event is {len(data)} bytes as JSON, more than max_batch_bytes "
                             f"({self.max_batch_bytes}) allows")

    def report(self, rejections: list[Rejection]) -> Any:
        """Hand rejections to on_rejected (its result, which may be awaitable), or log them."""
        if not rejections:
            return None
        if self.on_rejected is None:
            first = rejections[0]
            log.warning("Flywheel rejected %d event(s), e.g. %s: %s (%s)", len(rejections), first.event_id,
                        first.message, first.code)
            return None
        try:
            return self.on_rejected(rejections)
        except Exception:
            log.exception("on_rejected raised")
            return None
