"""A job's own log lines, kept with the job (`jobs.logs`).

While a job runs, every log record emitted in its task (Flywheel's
structlog events and the libraries' records alike, at the levels the log
configuration lets through) is also appended to the job's buffer; the runner
stores the buffer when the job ends. A context variable tells the job's
records from the rest of the process (other jobs, requests), so jobs
running side by side on one worker keep separate logs. The buffer is capped
(MAX_LINES, MAX_BYTES): a job that logs in a loop keeps its first lines and
a note of how many were left out.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

MAX_LINES = 500
MAX_BYTES = 64 * 1024
_current: contextvars.ContextVar[JobLog | None] = contextvars.ContextVar("flywheel_job_log", default=None)


class JobLog:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.size = 0
        self.dropped = 0

    def add(self, line: str) -> None:
        if len(self.lines) >= MAX_LINES or self.size + len(line) > MAX_BYTES:
            self.dropped += 1
            return
        self.lines.append(line)
        self.size += len(line) + 1

    def text(self) -> str | None:
        if not self.lines and not self.dropped:
            return None
        tail = [f"... {self.dropped} more line(s) not kept"] if self.dropped else []
        return "\n".join([*self.lines, *tail]).replace("\x00", "\\x00")


class _Capture(logging.Handler):
    """Appends the current job's records to its JobLog (installed once, on the root logger)."""

    def emit(self, record: logging.LogRecord) -> None:
        log = _current.get()
        if log is None:
            return
        stamp = time.strftime("%H:%M:%S", time.gmtime(record.created))
        log.add(f"{stamp} {record.levelname.lower():7} {record.name}: {_message(record)}")


def _message(record: logging.LogRecord) -> str:
    if isinstance(record.msg, dict):  # a structlog event on its way through the stdlib
        fields = {k: v for k, v in record.msg.items() if k not in ("event", "level", "logger", "timestamp")
                  and not k.startswith("_")}
        event = record.msg.get("event", "")
        return " ".join([str(event), *(f"{k}={v}" for k, v in fields.items())])
    try:
        return record.getMessage()
    except Exception:  # a library's bad format string must not break the job
        return str(record.msg)


_HANDLER = _Capture()


@contextmanager
def capturing() -> Iterator[JobLog]:
    """Collect the log lines of the code run inside (this task and what it awaits)."""
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    log = JobLog()
    token = _current.set(log)
    try:
        yield log
    finally:
        _current.reset(token)
