"""How a backup or restore reports progress: named steps, each with a total (bytes or items)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def step(self, name: str, total: int | None = None) -> None:
        """A new step starts; `total` None when its size is unknown (pg_dump running)."""

    def advance(self, amount: int) -> None:
        """`amount` more of the current step's total is done."""

    def say(self, line: str) -> None:
        """A line for the operator (a warning, what was written)."""


class Silent:
    """Progress nobody watches (tests, scripts)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def say(self, line: str) -> None:
        self.lines.append(line)
