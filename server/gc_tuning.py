"""Garbage-collector settings for a serving process.

Measured under the ingestion benchmark (one worker, 32 connections): with
CPython's defaults, a 100-event request allocates enough tracked objects to
trigger a young collection on every request and a full one every few
seconds, and the full ones walk every object the app built at startup (tens
of milliseconds each, stalling every request in flight). Freezing the
startup objects out of the collector and collecting young objects less often
raised throughput by a fifth and cut p99 latency by a third. Nearly every
object a request makes is freed by reference counting long before a
collection would look at it, so the larger young generation costs little
memory.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000  # CPython's default is 700 (2,000 in 3.13)
OLDER_THRESHOLDS = (50, 100)


_tuned = False


def tune_for_serving() -> None:
    """Call once the app is built and started: what exists now lives as long as the process.

    Only the first call in a process acts: a process that builds several apps
    (the test suite) would otherwise freeze later apps' objects for good.
    """
    global _tuned
    if _tuned:
        return
    _tuned = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
