"""Which events of a batch may hold PII at all: one cheap search over their strings.

Most telemetry holds none; only the events flagged here take the full scan
(`scrubbing.py`). See the package docstring for the measured costs.
"""

from __future__ import annotations

import bisect
import itertools
import re
from typing import Any

import msgspec
import msgspec.inspect

from flywheel.contracts.pii import Scrubber

# What every built-in kind needs at the least: an "@" (e-mail; "%40" when
# percent-encoded), two colons around hex digits (IPv6, MAC), or a run of at
# least seven digits and separators (phone, card, SSN, IBAN, a dotted quad).
# Keep in step with BUILTIN_KINDS (a test checks that no built-in match
# escapes the trigger). This is the trigger for text with non-ASCII
# characters: Unicode digits (a phone number in full-width digits is still a
# phone number) and the dashes and spaces CJK text writes between them.
BUILTIN_TRIGGER = (r"[@\uff20]|%40|%3\d|%[Ee][Ff]%[Bb][Cc]|:[0-9a-fA-F]{0,4}:"
                   r"|[\d+(\uff0b\uff08](?:[\d\s()./\-\u2010-\u2015\u2212\u30fc\uff0d\uff0e\uff08\uff09]|%20){5,}\d")


# The trigger for ASCII text: the same, with ASCII classes (about three
# times cheaper than Unicode ones). Percent-encoded text is decoded before
# matching, so "%40" is an "@", "%3X" a digit, "%EF%BC.." a full-width form
# and "%20" a space between digits.
_ASCII_TRIGGER = re.compile(r"@|%40|%3\d|%[Ee][Ff]%[Bb][Cc]|:[0-9a-fA-F]{0,4}:|[0-9+(](?:[0-9\s()./-]|%20){5,}[0-9]",
                            re.ASCII)

# Where the ASCII trigger can match at all, found with `bytes.find` (C speed)
# in the text mapped byte by byte to classes: "@", ":", "%" (rare in
# telemetry; the trigger then decides), or seven characters in a row from the trigger's digit-run classes (its
# shortest run is seven). The trigger itself then runs only on the events
# where one of these is.
_ASCII_CLASSES = bytes(
    ord("0") if chr(b) in "0123456789 \t\n\r\f\v()./+-" else b if chr(b) in "@:%" else ord("x") for b in range(256))
_ASCII_NEEDLES = (b"@", b":", b"%", b"0" * 7)

# MAC addresses with dashes (00-1A-2B-3C-4D-5E), searched only for tenants that scrub MACs.
_DASHED_MAC = re.compile(r"[0-9A-Fa-f]{2}-[0-9A-Fa-f]{2}-[0-9A-Fa-f]{2}-")

# Where a batch is searched as one text, a pattern must mean the same inside
# that text as in a string of its own: anchors and lookarounds would see the
# neighbouring strings, so patterns with them are searched string by string.
_CONTEXT_SENSITIVE = re.compile(r"\^|\$|\\[AZ]|\(\?<?[=!]")
_SEPARATOR = "\x00"  # between strings in a batch text: no trigger matches across it

_SCALARS = frozenset({int, float, bool, type(None)})
_OPAQUE_FIELD_TYPES = (msgspec.inspect.UUIDType, msgspec.inspect.DateTimeType, msgspec.inspect.DateType,
                       msgspec.inspect.IntType, msgspec.inspect.FloatType, msgspec.inspect.BoolType,
                       msgspec.inspect.DecimalType, msgspec.inspect.TimeType)


def _string_fields(cls: type) -> tuple[str, ...]:
    """The fields of Struct `cls` that may hold a string (at any depth); typed scalars cannot."""
    return string_fields_of(cls)[0]


def string_fields_of(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    # (attribute names, encoded names) of the fields that may hold a string
    fields = _STRING_FIELDS.get(cls)
    if fields is None:
        info = msgspec.inspect.type_info(cls)
        kept = [f for f in info.fields if not isinstance(f.type, _OPAQUE_FIELD_TYPES)]
        fields = _STRING_FIELDS[cls] = (tuple(f.name for f in kept), tuple(f.encode_name for f in kept))
    return fields


_STRING_FIELDS: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _joinable(pattern: str) -> bool:
    try:  # inline global flags such as "(?i)" are only allowed at the very start of a regex
        re.compile(f"(?:{pattern})")
    except re.error:
        return False
    return True


def _collect_strings(event: Any, append: Any, keys: _KeyFilter) -> None:
    """`append` every string in Struct `event`, at any depth: values, and dict keys (they are scrubbed too)."""
    # The cache `_string_fields` fills, read in place: this runs for every event.
    fields = _STRING_FIELDS.get(event.__class__) or string_fields_of(event.__class__)
    nested = None
    for name in fields[0]:
        value = getattr(event, name)
        t = value.__class__
        if t is str:
            append(value)
        elif t is dict:
            # Inline, the common case of keys_filter.append: keys seen before and clean.
            try:
                if _SEPARATOR.join(value) not in keys.clean:
                    keys.append(value, append)
            except TypeError:
                keys.append(value, append)
            # The common shape, a flat dict of scalars and strings, without a stack.
            for item in value.values():
                ti = item.__class__
                if ti is str:
                    append(item)
                elif ti not in _SCALARS:
                    nested = nested or []
                    nested.append(item)
        elif t not in _SCALARS:
            nested = nested or []
            nested.append(value)
    if nested:
        _collect_nested(nested, append, keys)


def _collect_nested(stack: list[Any], append: Any, keys: _KeyFilter) -> None:
    pop, extend = stack.pop, stack.extend
    while stack:
        value = pop()
        t = type(value)
        if t is str:
            append(value)
        elif t is dict:
            keys.append(value, append)
            extend(value.values())
        elif t is list or t is tuple:
            extend(value)
        elif t not in _SCALARS and hasattr(t, "__struct_fields__"):
            extend([getattr(value, name) for name in _string_fields(t)])


class _KeyFilter:
    """Adds a dict's keys to a batch's strings, unless they are known to hold no trigger.

    All keys go as one string, joined at C speed (the separator keeps one
    key's digits from running into the next's). Most events of a type share
    their keys, so the key strings the trigger found nothing in are kept:
    that spares the batch search ~70 characters an event.
    """

    MAX = 4096

    def __init__(self, search: Any) -> None:
        self._search = search
        self.clean: set[str] = set()

    def append(self, mapping: dict, append: Any) -> None:
        try:
            keys = _SEPARATOR.join(mapping)
        except TypeError:  # msgpack may key by numbers
            for key in mapping:
                if type(key) is str:
                    append(key)
            return
        if keys in self.clean:
            return
        if self._search(keys):
            append(keys)
        elif len(self.clean) < self.MAX:
            self.clean.add(keys)


class _BatchText:
    """The strings of a batch joined by separators, and which event a position falls in."""

    def __init__(self, text: str, strings: list[str], ends: list[int]) -> None:
        self.text, self._strings, self._ends = text, strings, ends
        self._offsets: list[int] | None = None

    def event_at(self, position: int) -> tuple[int, int, int]:
        """(event index, where its text starts, where the next event's starts) for `position`."""
        if self._offsets is None:
            # Only a batch with a candidate gets here: most never pay for this.
            self._offsets = [0, *itertools.accumulate(len(s) + 1 for s in self._strings)]
        offsets, ends = self._offsets, self._ends
        i = bisect.bisect_right(ends, bisect.bisect_right(offsets, position) - 1)
        return i, offsets[ends[i - 1]] if i else 0, offsets[ends[i]]

    def flag(self, search: Any, flags: list[bool]) -> None:
        """Flag the event each match of `search` starts in."""
        match = search(self.text)
        while match is not None:
            # From the next event's start: a match running across the
            # separator may not hide one that begins in the next event.
            i, _, stop = self.event_at(match.start())
            flags[i] = True
            match = search(self.text, stop)


class Trigger:
    """Decides cheaply which events may hold PII: the built-in trigger and plugins' patterns."""

    def __init__(self, extra: list[tuple[Scrubber, re.Pattern]]) -> None:
        # Plugin patterns join the built-in trigger in one regex where that keeps
        # their meaning: no flags of their own and no groups (inside one regex a
        # backreference would point at another pattern's group, and one pattern's
        # flags would apply to all, so the trigger could miss). Any other pattern
        # is searched on its own, after the joined one.
        joined, alone = [BUILTIN_TRIGGER], []
        for s, regex in extra:
            if s.flags == 0 and regex.groups == 0 and _joinable(s.pattern):
                joined.append(f"(?:{s.pattern})")
            else:
                alone.append(regex.search)
        self._trigger = re.compile("|".join(joined))
        # A batch is searched as one text when every plugin pattern can be:
        # the built-in kinds with the ASCII or Unicode trigger, the plugins'
        # patterns joined into one more regex.
        self._batchable = not alone and not any(_CONTEXT_SENSITIVE.search(p) for p in joined[1:])
        self._plugin_trigger = re.compile("|".join(joined[1:])) if len(joined) > 1 else None
        self._unicode_trigger = re.compile(BUILTIN_TRIGGER)
        self._keys = _KeyFilter(self._any_trigger)
        if alone:
            first = self._trigger.search
            self._search = lambda v: first(v) is not None or any(search(v) for search in alone)
        else:
            self._search = self._trigger.search


    def _any_trigger(self, text: str) -> bool:
        # Every trigger a string of this batch could meet, whatever its characters.
        return bool(self._search(text) or self._unicode_trigger.search(text) or _ASCII_TRIGGER.search(text))

    def needs_scrub(self, value: Any) -> bool:
        """Whether any string in `value` (a Struct, dict, list or str) may hold PII."""
        # An explicit stack, not recursion: this runs for every event, and most
        # values are numbers that only need a type check.
        search = self._search
        stack = [value]
        pop, extend = stack.pop, stack.extend
        while stack:
            v = pop()
            t = type(v)
            if t in _SCALARS:
                continue
            if t is str:
                if search(v):
                    return True
            elif t is dict:
                extend(v)  # the keys: they are scrubbed too
                extend(v.values())
            elif t is list or t is tuple:
                extend(v)
            else:
                fields = getattr(t, "__struct_fields__", None)
                if fields is not None:
                    extend([getattr(v, f) for f in fields])
        return False

    def flag_events(self, events: list[Any], allow: Any = None) -> list[bool]:
        """For each of `events` (Structs), whether any of its strings may hold PII.

        The same answer as `needs_scrub()` per event, or True where that says
        False (never the other way round), for a few searches per batch.
        `allow` (a CompiledAllowList) brings the tenant's optional kinds: MAC
        addresses written with dashes have no trigger of their own.
        """
        macs = allow is not None and "mac" in allow.policy.optional_kinds
        if not self._batchable:
            flags = [self.needs_scrub(e) for e in events]
            if macs:
                for i, event in enumerate(events):
                    found: list[str] = []
                    _collect_strings(event, found.append, _KeyFilter(lambda _: True))
                    flags[i] = flags[i] or any(_DASHED_MAC.search(text) for text in found)
            return flags
        strings: list[str] = []
        keys = self._keys
        ends: list[int] = []  # ends[i]: how many strings events[:i + 1] hold
        append, end = strings.append, ends.append
        for event in events:
            _collect_strings(event, append, keys)
            end(len(strings))
        batch = _BatchText(_SEPARATOR.join(strings), strings, ends)
        flags = [False] * len(events)
        if batch.text.isascii():
            # Most batches: C-level `bytes.find` over the text mapped to
            # character classes finds where a trigger could start; only those
            # events are searched with the trigger itself.
            mapped = batch.text.encode().translate(_ASCII_CLASSES)
            search = _ASCII_TRIGGER.search
            for needle in _ASCII_NEEDLES:
                at = mapped.find(needle)
                while at != -1:
                    i, start, stop = batch.event_at(at)
                    if not flags[i] and search(batch.text, start, stop) is not None:
                        flags[i] = True
                    at = mapped.find(needle, stop)
        else:
            batch.flag(self._unicode_trigger.search, flags)
        if self._plugin_trigger is not None:
            batch.flag(self._plugin_trigger.search, flags)
        if macs:
            batch.flag(_DASHED_MAC.search, flags)
        return flags
