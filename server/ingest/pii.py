"""PII scrubbing of event values before they are stored.

Built-in scrubbers find e-mail addresses, phone numbers, payment card
numbers (Luhn-checked, known issuer prefixes), US social security numbers
and IPv4/IPv6 addresses in string values at any depth, and replace each
with a token such as ``[EMAIL]``. Plugins add scrubbers through the
`register_scrubbers` hook; tenants exempt field paths or patterns.

Two speed rules, because every event passes through here:
- `needs_scrub()` walks the decoded event and looks only at its string
  values (numbers, timestamps and UUIDs are typed and cannot hold PII),
  with one cheap trigger regex that every built-in kind must match; most
  telemetry (numbers, short ids) has no trigger at all and skips the rest.
  Measured: the combined full regexes over an event's JSON cost ~50 us an
  event; this walk costs a few.
- `flag_events()` does the same for a whole batch at once: the strings of
  every event joined into one text, mapped to character classes with
  `bytes.translate`, and searched with `bytes.find` for where the trigger
  could start (Python's regex engine costs ~17 ns a character even for the
  ASCII trigger; `find` is C speed). The trigger itself runs only on the
  events found so. Only flagged events take the full scan.
- `scrub()` finds every candidate of every scrubber in one string, keeps the
  longest where they overlap, and replaces in one pass: a replacement token
  is never scanned again.

Dict keys are not scrubbed: they are field names chosen by the sender's
code, and rewriting them would break the event's shape.
"""

from __future__ import annotations

import bisect
import hashlib
import ipaddress
import itertools
import re
from typing import Any

import msgspec
import msgspec.inspect
import structlog

from flywheel.contracts.pii import PiiAllowList, Scrubber, compile_allow_pattern

log = structlog.get_logger("flywheel.ingest.pii")


def luhn_ok(digits: str) -> bool:
    total, double = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return total % 10 == 0


_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3(?:0[0-5]|[68])|6(?:011|5|4[4-9])"
                          r"|35(?:2[89]|[3-8]\d))")


def _card(text: str) -> bool:
    digits = text.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19 or not _CARD_PREFIX.match(digits):
        return False
    # Separators, if any, must be the same all the way ("4111 1111-1111 1111" is not a card).
    if " " in text and "-" in text:
        return False
    return luhn_ok(digits)


def _phone(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    return 8 <= digits <= 15 if text.startswith("+") else digits == 10


def _ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


BUILTIN_SCRUBBERS: list[Scrubber] = [
    Scrubber(name="email", replacement="[EMAIL]",
             pattern=r"(?<![\w.+%-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                     r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])"),
    # Cards twice. First the usual shapes (4-4-4-4, Amex/Diners 4-6-5/4-6-4, an
    # unbroken run), tried in that order so that a number written right after a
    # card ("4111 1111 1111 1111 08/27", "... 123" for the CVC) is not swallowed
    # into a longer candidate that then fails Luhn and hides the card. This scan
    # is independent of the next, so a number just before the card ("qty 2 4111
    # ...") cannot swallow it either.
    Scrubber(name="card", replacement="[CARD]", validate=_card,
             pattern=r"(?<![\w-])(?:\d{4}([ -])\d{4}\1\d{4}\1\d{4}|\d{4}([ -])\d{6}\2\d{4,5}|\d{13,19})(?![\w-])"),
    # Then any other grouping of 13 to 19 digits.
    Scrubber(name="card", replacement="[CARD]", validate=_card,
             pattern=r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])"),
    Scrubber(name="ssn", replacement="[SSN]",
             pattern=r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])"),
    # International numbers need a leading "+"; national ones the 3-3-4 shape
    # with separators. Bare digit runs (ids, epoch times) are never phones.
    Scrubber(name="phone", replacement="[PHONE]", validate=_phone,
             pattern=r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
                     r"|(?:\(\d{3}\) ?|\d{3}[.-])\d{3}[.-]\d{4})(?![\w])"),
    # Four dotted octets, each 0-255; "1.2.3" (a version) has three.
    Scrubber(name="ipv4", replacement="[IP]",
             pattern=r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
                     r"(?!\.?\d|\w)"),
    Scrubber(name="ipv6", replacement="[IP]", validate=_ipv6, flags=re.IGNORECASE,
             # The embedded-IPv4 tail ("::ffff:192.0.2.1") is tried before a hex group,
             # and no match may stop before ".digit": else "::ffff:192" would be taken
             # alone and ".0.2.1" left in the text.
             pattern=r"(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9a-f]{1,4})?(?![\w:]|\.\d)"),
]


class CompiledAllowList:
    """A tenant's allow-list, compiled once and cached by the engine.

    Patterns are compiled with RE2 (`compile_allow_pattern`): matching a
    candidate costs time linear in its length, whatever a tenant wrote.
    """

    def __init__(self, paths: list[str], patterns: list[str]) -> None:
        self._paths = re.compile("|".join(f"(?:{_path_regex(p)})" for p in paths)) if paths else None
        self._patterns = [compile_allow_pattern(p) for p in patterns]

    @classmethod
    def build(cls, allow: PiiAllowList) -> CompiledAllowList:
        """Compile a stored allow-list, skipping what RE2 refuses.

        Lists stored before patterns ran on RE2 may hold one it cannot run (a
        backreference, a lookaround). Ingestion must not fail for it, and a
        pattern only ever exempts, so dropping it scrubs more, never less.
        """
        kept = []
        for i, pattern in enumerate(allow.patterns):
            try:
                compile_allow_pattern(pattern)
            except ValueError as exc:
                _log_ignored(i, pattern, str(exc))
                continue
            kept.append(pattern)
        return cls(allow.paths, kept)

    def path_allowed(self, path: str) -> bool:
        return bool(self._paths and self._paths.match(path))

    def text_allowed(self, text: str) -> bool:
        if not self._patterns:
            return False
        try:
            data = text.encode()  # once for every pattern: RE2 matches UTF-8
        except UnicodeEncodeError:  # a lone surrogate: no pattern can vouch for it, so scrub
            return False
        return any(p.fullmatch(data) is not None for p in self._patterns)


# Patterns already reported: `build` runs again for each tenant whenever the
# cached list expires (every few seconds), and one line per pattern is enough.
# Only lists stored before RE2 hold such patterns, so this set stays small.
_IGNORED: set[str] = set()


def pattern_fingerprint(pattern: str) -> str:
    """What the log names a pattern by: the first 16 hex digits of its UTF-8 SHA-256."""
    return hashlib.sha256(pattern.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _log_ignored(index: int, pattern: str, reason: str) -> None:
    if pattern in _IGNORED:
        return
    _IGNORED.add(pattern)
    # Not the pattern itself: an exemption often spells out an address
    # (support@acme\.com), and logs are no place for one. To find it:
    #   SELECT tenant_id, p FROM pii_allow_lists, jsonb_array_elements_text(allow->'patterns') p
    #   WHERE left(encode(sha256(convert_to(p, 'UTF8')), 'hex'), 16) = '<fingerprint>';
    log.warning("pii.allow_pattern_ignored", index=index, fingerprint=pattern_fingerprint(pattern),
                reason=reason)


def _path_regex(path: str) -> str:
    out = ["^"]
    for token in re.findall(r"\$|\.[^.\[]+|\[[^\]]+\]", path):
        if token == "$":
            out.append(r"\$")
        elif token == ".*":
            out.append(r"\.[^.\[]+")
        elif token == "[*]":
            out.append(r"\[\d+\]")
        else:
            out.append(re.escape(token))
    out.append(r"(?:$|[.\[])")  # the path itself and everything under it
    return "".join(out)


# What every built-in kind needs at the least: an "@" (email), two colons
# around hex digits (IPv6), a dotted quad (IPv4), or a run of at least nine
# digits and separators (phone, card, SSN). Keep in step with BUILTIN_SCRUBBERS
# (a test checks that no built-in match escapes the trigger).
_BUILTIN_TRIGGER = r"@|:[0-9a-fA-F]{0,4}:|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[\d+(][\d\s().-]{7,}\d"


# The trigger for ASCII text, as a wider net: a run of seven or more digits
# and separators covers the dotted quad as well as the longer runs, and ASCII
# classes are about three times cheaper than Unicode ones. Text with any
# non-ASCII character is searched with the Unicode trigger above (a phone
# number written in full-width digits is still a phone number).
_ASCII_TRIGGER = re.compile(r"@|:[0-9a-fA-F]{0,4}:|[0-9+(][0-9\s().-]{5,}[0-9]", re.ASCII)

# Where the ASCII trigger can match at all, found with `bytes.find` (C speed)
# in the text mapped byte by byte to classes: "@", ":", or seven characters
# in a row from the trigger's digit-run classes (its shortest run is seven).
# The trigger itself then runs only on the events where one of these is.
_ASCII_CLASSES = bytes(
    ord("0") if chr(b) in "0123456789 \t\n\r\f\v().+-" else b if chr(b) in "@:" else ord("x") for b in range(256))
_ASCII_NEEDLES = (b"@", b":", b"0" * 7)

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
    return _struct_fields(cls)[0]


def _struct_fields(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
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


class PiiScrubber:
    def __init__(self, scrubbers: list[Scrubber] = BUILTIN_SCRUBBERS) -> None:
        self.scrubbers = list(scrubbers)
        self._compiled = [(s, re.compile(s.pattern, s.flags)) for s in self.scrubbers]
        extra = [(s, regex) for s, regex in self._compiled if s not in BUILTIN_SCRUBBERS]
        # Plugin patterns join the built-in trigger in one regex where that keeps
        # their meaning: no flags of their own and no groups (inside one regex a
        # backreference would point at another pattern's group, and one pattern's
        # flags would apply to all, so the trigger could miss). Any other pattern
        # is searched on its own, after the joined one.
        joined, alone = [_BUILTIN_TRIGGER], []
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
        self._unicode_trigger = re.compile(_BUILTIN_TRIGGER)
        if alone:
            first = self._trigger.search
            self._search = lambda v: first(v) is not None or any(search(v) for search in alone)
        else:
            self._search = self._trigger.search

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
                extend(v.values())
            elif t is list or t is tuple:
                extend(v)
            else:
                fields = getattr(t, "__struct_fields__", None)
                if fields is not None:
                    extend([getattr(v, f) for f in fields])
        return False

    def flag_events(self, events: list[Any]) -> list[bool]:
        """For each of `events` (Structs), whether any of its strings may hold PII.

        The same answer as `needs_scrub()` per event, or True where that says
        False (never the other way round), for a few searches per batch.
        """
        if not self._batchable:
            return [self.needs_scrub(e) for e in events]
        strings: list[str] = []
        ends: list[int] = []  # ends[i]: how many strings events[:i + 1] hold
        append, end = strings.append, ends.append
        for event in events:
            _collect_strings(event, append)
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
        return flags

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
        for name in _struct_fields(type(event))[1]:
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
        if isinstance(value, dict):
            if allow is not None and allow.path_allowed(path):
                return value, 0
            total, out = 0, None
            for key, item in value.items():
                new, n = self.scrub(item, allow, f"{path}.{key}")
                if n:
                    if out is None:
                        out = dict(value)
                    out[key] = new
                    total += n
            return (out if out is not None else value), total
        if isinstance(value, list):
            if allow is not None and allow.path_allowed(path):
                return value, 0
            total, out = 0, None
            for i, item in enumerate(value):
                new, n = self.scrub(item, allow, f"{path}[{i}]")
                if n:
                    if out is None:
                        out = list(value)
                    out[i] = new
                    total += n
            return (out if out is not None else value), total
        return value, 0


def _collect_strings(event: Any, append: Any) -> None:
    """`append` every string value in Struct `event`, at any depth (dict keys excluded)."""
    # The cache `_string_fields` fills, read in place: this runs for every event.
    fields = _STRING_FIELDS.get(event.__class__) or _struct_fields(event.__class__)
    nested = None
    for name in fields[0]:
        value = getattr(event, name)
        t = value.__class__
        if t is str:
            append(value)
        elif t is dict:
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
        _collect_nested(nested, append)


def _collect_nested(stack: list[Any], append: Any) -> None:
    pop, extend = stack.pop, stack.extend
    while stack:
        value = pop()
        t = type(value)
        if t is str:
            append(value)
        elif t is dict:
            extend(value.values())
        elif t is list or t is tuple:
            extend(value)
        elif t not in _SCALARS and hasattr(t, "__struct_fields__"):
            extend([getattr(value, name) for name in _string_fields(t)])


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
