"""`PiiScrubber`: finds every candidate of every kind and replaces it, in one pass."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from flywheel.contracts.pii import Scrubber
from flywheel.server.ingest.pii.allow_lists import CompiledAllowList
from flywheel.server.ingest.pii.patterns import BUILTIN_KINDS, BUILTIN_SCRUBBERS
from flywheel.server.ingest.pii.settings import DEFAULT_POLICY, PiiPolicy
from flywheel.server.ingest.pii.text import normalised, percent_decoded
from flywheel.server.ingest.pii.trigger import Trigger, string_fields_of

Span = tuple[int, int, int, str]  # start, end, rank (lower wins a tie), replacement


class PiiScrubber:
    """The built-in kinds and plugins' scrubbers: `flag_events` says which events need
    a scan (`trigger.Trigger`), `scrub_event` scrubs one."""

    def __init__(self, scrubbers: list[Scrubber] = BUILTIN_SCRUBBERS) -> None:
        self.scrubbers = list(scrubbers)
        self._kinds = [k for k in BUILTIN_KINDS if any(k.scrubber is s for s in self.scrubbers)]
        builtin = {id(k.scrubber) for k in BUILTIN_KINDS}
        self._compiled = [(s, re.compile(s.pattern, s.flags)) for s in self.scrubbers if id(s) not in builtin]
        self.trigger = Trigger(self._compiled)
        self.needs_scrub = self.trigger.needs_scrub
        self.flag_events = self.trigger.flag_events

    def scrub_text(self, text: str, allow: CompiledAllowList | None = None, path: str = "$") -> tuple[str, int]:
        if allow is not None and allow.path_allowed(path):
            return text, 0
        found = self._candidates(text, allow.policy if allow is not None else DEFAULT_POLICY)
        if allow is not None and found:
            found = [f for f in found if not allow.text_allowed(text[f[0]:f[1]])]
        if not found:
            return text, 0
        out, pos, count = [], 0, 0
        for start, end, replacement in _merged(found):
            out.append(text[pos:start])
            out.append(replacement)
            pos, count = end, count + 1
        out.append(text[pos:])
        return "".join(out), count

    def _candidates(self, text: str, policy: PiiPolicy) -> list[Span]:
        found: list[Span] = []
        view = normalised(text)
        kinds = [(rank, k) for rank, k in enumerate(self._kinds) if not k.optional or k.scrubber.name in
                 policy.optional_kinds]
        for rank, kind in kinds:
            found.extend((s, e, rank, kind.scrubber.replacement) for s, e in kind.find(view, policy))
        decoded = percent_decoded(view)
        if decoded is not None:
            # URLs and query strings: found in the decoded text, replaced as encoded.
            plain, origin = decoded
            plain = normalised(plain)  # what was encoded may be full-width: %EF%BC%8B is "＋"
            for rank, kind in kinds:
                for s, e in kind.find(plain, policy):
                    if origin[e] - origin[s] != e - s:  # the span holds something encoded
                        found.append((origin[s], origin[e], rank, kind.scrubber.replacement))
        rank = len(self._kinds)
        for scrubber, regex in self._compiled:
            for match in regex.finditer(text):
                if scrubber.validate is None or scrubber.validate(match.group(0)):
                    found.append((match.start(), match.end(), rank, scrubber.replacement))
        return found

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
        """A scrubbed copy of JSON-like `value` (unchanged parts shared) and the replacement count.

        Dict keys are scrubbed too: senders key maps by address or phone
        (`{"jane@example.com": {...}}`), and a key is stored like a value.
        """
        if isinstance(value, str):
            return self.scrub_text(value, allow, path)
        if isinstance(value, list):
            return self._scrub_list(value, allow, path)
        if isinstance(value, dict):
            return self._scrub_dict(value, allow, path)
        return value, 0

    def _scrub_list(self, value: list, allow: CompiledAllowList | None, path: str) -> tuple[Any, int]:
        if allow is not None and allow.path_allowed(path):
            return value, 0
        total, out = 0, None
        for i, item in enumerate(value):
            new, n = self.scrub(item, allow, f"{path}[{i}]")
            if n:
                if out is None:  # copied only once something changes: unchanged parts are shared
                    out = list(value)
                out[i] = new
                total += n
        return (out if out is not None else value), total

    def _scrub_dict(self, value: dict, allow: CompiledAllowList | None, path: str) -> tuple[Any, int]:
        if allow is not None and allow.path_allowed(path):
            return value, 0
        total, changed = 0, False
        items = []
        for key, item in value.items():
            field = f"{path}.{key}"
            new, n = self.scrub(item, allow, field)
            if type(key) is str and self.needs_scrub(key):
                new_key, k = self.scrub_text(key, allow, field)
                n += k
            else:
                new_key = key
            items.append((new_key, new))
            if n:
                total += n
                changed = True
        if not changed:
            return value, 0
        out: dict = {}
        for key, item in items:
            if key in out:  # two keys scrubbed to one token: both values kept, in order
                key = _free_key(out, key)
            out[key] = item
        return out, total


def _free_key(taken: dict, key: str) -> str:
    n = 2
    while f"{key}#{n}" in taken:
        n += 1
    return f"{key}#{n}"


def _merged(found: list[Span]) -> list[tuple[int, int, str]]:
    """Overlapping spans as one, replaced by the longest one's token: nothing of a value is left behind.

    ("::ffff:192.0.2.1" is an IPv6 address holding an IPv4 one; an e-mail
    address may hold a phone number: either way the whole is one value.)
    """
    found.sort()
    out: list[tuple[int, int, str]] = []
    start, end, best = found[0][0], found[0][1], found[0]
    for span in found[1:]:
        if span[0] < end:
            end = max(end, span[1])
            if (span[1] - span[0], -span[2]) > (best[1] - best[0], -best[2]):
                best = span
            continue
        out.append((start, end, best[3]))
        start, end, best = span[0], span[1], span
    out.append((start, end, best[3]))
    return out
