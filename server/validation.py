"""Checks msgspec cannot express, shared by every write path.

Postgres text and jsonb cannot store U+0000, and Flywheel's own walkers
(PII scrubbing, path matching) must not recurse without bound, so decoded
input is checked for both before anything stores or scrubs it. The walk is
iterative: a hostile document cannot exhaust the interpreter's stack here.
"""

from __future__ import annotations

from typing import Any

from flywheel.server.errors import ApiError, InvalidInput

# Deeper documents are refused. Real telemetry nests a handful of levels;
# msgspec itself gives up near 1,000 (RecursionError), and every recursive
# consumer downstream stays far from Python's limit below this.
MAX_DEPTH = 64
NUL_MESSAGE = "text must not contain NUL (\\u0000) characters"


class TooDeep(ApiError):
    status, code = 400, "too_deep"


def _step(path: str, key: Any) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"


def find_problem(value: Any, path: str = "$", max_depth: int = MAX_DEPTH) -> tuple[str, str] | None:
    """("nul" | "depth", path) of the first NUL-holding string (value or key)
    or the first value nested deeper than `max_depth`; None when clean."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "nul", where
            continue
        if isinstance(item, dict):
            children = item.items()
        elif isinstance(item, (list, tuple)):
            children = enumerate(item)
        else:
            continue
        if depth >= max_depth:
            return "depth", where
        for key, child in children:
            if isinstance(key, str) and "\x00" in key:
                return "nul", where
            stack.append((child, _step(where, key), depth + 1))
    return None


def find_nul(value: Any, path: str = "$") -> str | None:
    """The path of the first string (value or key) holding a NUL character."""
    problem = find_problem(value, path, max_depth=10**9)
    return problem[1] if problem else None


def check_document(value: Any, path: str = "$") -> None:
    """Raise the client error for a NUL character or too deep nesting in `value`."""
    problem = find_problem(value, path)
    if problem is None:
        return
    kind, where = problem
    if kind == "nul":
        raise InvalidInput(NUL_MESSAGE, field=where)
    raise TooDeep(f"nested deeper than {MAX_DEPTH} levels", field=where)


def reject_nul(value: Any, path: str = "$") -> None:
    check_document(value, path)


INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # what msgpack (job payloads in Redis) can carry


def check_int_range(value: Any, path: str = "$") -> None:
    """Refuse integers msgpack cannot carry, naming the first one's field."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                raise InvalidInput("integer out of range (64 bits at most)", field=where)
        elif isinstance(item, dict):
            stack.extend((child, _step(where, key)) for key, child in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((child, _step(where, i)) for i, child in enumerate(item))
