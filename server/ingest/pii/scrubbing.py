"""`PiiScrubber`: finds every candidate of every scrubber and replaces it, in one pass."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from flywheel.contracts.pii import Scrubber
from flywheel.server.ingest.pii.allow_lists import CompiledAllowList
from flywheel.server.ingest.pii.patterns import BUILTIN_SCRUBBERS
from flywheel.server.ingest.pii.trigger import Trigger, string_fields_of


class PiiScrubber:
    """The built-in and plugins' scrubbers: `flag_events` says which events need
    a scan (`trigger.Trigger`), `scrub_event` scrubs one."""

    def __init__(self, scrubbers: list[Scrubber] = BUILTIN_SCRUBBERS) -> None:
        self.scrubbers = list(scrubbers)
        self._compiled = [(s, re.compile(s.pattern, s.flags)) for s in self.scrubbers]
        self.trigger = Trigger([(s, regex) for s, regex in self._compiled if s not in BUILTIN_SCRUBBERS])
        self.needs_scrub = self.trigger.needs_scrub
        self.flag_events = self.trigger.flag_events

    def scrub_text(self, text: str, allow: CompiledAllowList | None = None, path: str = "$") -> tuple[str, int]:
        if allow is not None and allow.path_allowed(path):
            return text, 0
        found: list[tuple[int, int, str]] = []
        for scrubber, regex in self._compiled:
            for match in regex.finditer(text):
                value = match.group(0)
                if scrubber.validate is not None and not scrubber.validate(value):
                    continue
                if allow is not None and allow.text_allowed(value):
                    continue
                found.append((match.start(), match.end(), scrubber.replacement))
        if not found:
            return text, 0
        # Longest match first at each position; drop whatever overlaps a kept one.
        found.sort(key=lambda f: (f[0], f[0] - f[1]))
        out, pos, count = [], 0, 0
        for start, end, replacement in found:
            if start < pos:
                continue
            out.append(text[pos:start])
            out.append(replacement)
            pos, count = end, count + 1
        out.append(text[pos:])
        return "".join(out), count

    def scrub_event(self, event: Any, allow: CompiledAllowList | None = None) -> tuple[dict[str, Any], int]:
        """Struct `event` as a JSON-ready dict with its string fields scrubbed, and the replacement count.

        Only fields that may hold a string are scrubbed: the type tag, ids,
        timestamps and numbers keep their value whatever a (plugin) pattern
        would make of their text.
        """
        document = msgspec.to_builtins(event)
        total = 0
        for name in string_fields_of(type(event))[1]:
            if name in document:
                new, count = self.scrub(document[name], allow, f"$.{name}")
                if count:
                    document[name] = new
                    total += count
        return document, total

    def scrub(self, value: Any, allow: CompiledAllowList | None = None, path: str = "$") -> tuple[Any, int]:
        """A scrubbed copy of JSON-like `value` (unchanged parts shared) and the replacement count."""
        if isinstance(value, str):
            return self.scrub_text(value, allow, path)
        if isinstance(value, (dict, list)):
            if allow is not None and allow.path_allowed(path):
                return value, 0
            is_dict = isinstance(value, dict)
            total, out = 0, None
            for key, item in (value.items() if is_dict else enumerate(value)):
                new, n = self.scrub(item, allow, f"{path}.{key}" if is_dict else f"{path}[{key}]")
                if n:
                    if out is None:  # copied only once something changes: unchanged parts are shared
                        out = dict(value) if is_dict else list(value)
                    out[key] = new
                    total += n
            return (out if out is not None else value), total
        return value, 0
