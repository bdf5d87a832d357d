"""PII scrubbing contracts: scrubbers plugins add, and per-tenant allow-lists."""

from __future__ import annotations

import re
from typing import Annotated, Callable

import msgspec

# A field path inside an event: "$" then ".key" or "[index]" steps; "*" stands
# for any key and "[*]" for any list index. Example: "$.attributes.hosts[*].ip".
PATH_GRAMMAR = re.compile(r"^\$(?:\.(?:\*|[^.\[\]\s]+)|\[(?:\*|\d+)\])*$")
MAX_ENTRIES = 100
MAX_ENTRY_CHARS = 500


class Scrubber(msgspec.Struct, frozen=True, kw_only=True):
    """Finds one kind of PII in strings and replaces it.

    `pattern` finds candidates; `validate` (optional) confirms one (a card
    number's Luhn check, say) and a candidate it rejects is left alone.
    """

    name: str
    pattern: str
    replacement: str
    validate: Callable[[str], bool] | None = None
    flags: int = 0


class PiiAllowList(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What one tenant exempts from scrubbing.

    `paths`: field paths (see PATH_GRAMMAR) whose values, and everything
    under them, are stored as sent. `patterns`: regular expressions; a match
    whose whole text matches one of them is kept (e.g. ``.*@example\\.com``).
    """

    paths: list[Annotated[str, msgspec.Meta(max_length=MAX_ENTRY_CHARS)]] = []
    patterns: list[Annotated[str, msgspec.Meta(max_length=MAX_ENTRY_CHARS)]] = []


def validate_allow_list(allow: PiiAllowList) -> None:
    """Raise ValueError naming the first bad entry, as ``paths[3]: ...``."""
    for name in ("paths", "patterns"):
        entries = getattr(allow, name)
        if len(entries) > MAX_ENTRIES:
            raise ValueError(f"{name}: at most {MAX_ENTRIES} entries")
        for i, entry in enumerate(entries):
            if len(entry) > MAX_ENTRY_CHARS:
                raise ValueError(f"{name}[{i}]: longer than {MAX_ENTRY_CHARS} characters")
    for i, path in enumerate(allow.paths):
        if not PATH_GRAMMAR.match(path):
            raise ValueError(f"paths[{i}]: {path!r} is not a field path like $.attributes.email or $.items[*].ip")
    for i, pattern in enumerate(allow.patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"patterns[{i}]: not a valid regular expression ({exc})") from None
