"""PII scrubbing contracts: scrubbers plugins add, and per-tenant allow-lists."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
import re2

# A field path inside an event: "$" then ".key" or "[index]" steps; "*" stands
# for any key and "[*]" for any list index. Example: "$.attributes.hosts[*].ip".
PATH_GRAMMAR = re.compile(r"^\$(?:\.(?:\*|[^.\[\]\s]+)|\[(?:\*|\d+)\])*$")
MAX_ENTRIES = 100
MAX_ENTRY_CHARS = 500
# Tenants' patterns run on RE2, whose matching time is linear in the text
# whatever the pattern: Python's backtracking `re` took 3.3 s (and every other
# tenant waited) on `([a-z@.]+)+!` and three e-mail addresses. RE2 gives each
# compiled pattern a memory budget, shared by its program and its DFA cache,
# and refuses a pattern whose program does not fit. 256 KiB holds `.{1000}`
# or ten `\w{50}` groups, far beyond what an exemption needs, and bounds one
# tenant's full list (MAX_ENTRIES patterns) to 25 MiB in the worst case.
PATTERN_MAX_MEM = 256 * 1024
_LINEAR = "patterns run on a linear-time engine (RE2)"


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
    under them, are stored as sent. `patterns`: regular expressions in RE2
    syntax (no backreferences, no lookarounds); a match whose whole text
    matches one of them is kept (e.g. ``.*@example\\.com``).
    """

    paths: list[Annotated[str, msgspec.Meta(max_length=MAX_ENTRY_CHARS)]] = []
    patterns: list[Annotated[str, msgspec.Meta(max_length=MAX_ENTRY_CHARS)]] = []


# The regions whose national phone formats are recognised unless a tenant says
# otherwise: the locales the scrubber is measured on (tests/test_pii_corpus.py)
# and their neighbours that share a language. A "+" or "00" number is found
# whatever the list; each region costs a little on digit runs that are no phone.
DEFAULT_PHONE_REGIONS = ("US", "CA", "GB", "IE", "DE", "AT", "CH", "FR", "BE", "ES", "IT", "PT", "BR", "NL",
                         "IN", "JP", "CN", "AU")
MAX_PHONE_REGIONS = 40
OPTIONAL_KINDS = ("iban", "mac")


class PiiSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How one tenant's events are scrubbed, beside its allow-list.

    `phone_regions`: ISO 3166-1 alpha-2 codes (as libphonenumber names its
    regions, e.g. "DE", "JP") whose national formats are recognised
    (`030 1234567` is a phone in Germany); numbers written with `+` or `00`
    are found whatever the list. `optional_kinds`: kinds off unless named
    here: "iban" (checked mod 97) and "mac" (MAC addresses).
    """

    phone_regions: list[Annotated[str, msgspec.Meta(max_length=3)]] = msgspec.field(
        default_factory=lambda: list(DEFAULT_PHONE_REGIONS))
    optional_kinds: list[Annotated[str, msgspec.Meta(max_length=20)]] = []


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
            compile_allow_pattern(pattern)
        except ValueError as exc:
            raise ValueError(f"patterns[{i}]: {exc}") from None


def compile_allow_pattern(pattern: str) -> Any:
    """`pattern` compiled with RE2 (an ``re2._Regexp``), or ValueError saying why not, in words.

    Stored patterns are compiled with this too, so what PUT accepts is
    exactly what ingestion can run.
    """
    options = re2.Options()
    options.max_mem = PATTERN_MAX_MEM
    options.log_errors = False  # RE2 would print every refusal to stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise ValueError(_refusal(pattern, _message(exc))) from None
    except UnicodeEncodeError:  # a lone surrogate: RE2 takes UTF-8 only
        raise ValueError("not a valid regular expression (not valid Unicode text)") from None


def _message(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else ""
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


# RE2's error text -> what a tenant should read. RE2 parses the pattern and
# names the construct it cannot run; matching by that text is stable across
# RE2 releases (these strings are RE2's public `ErrorCode` descriptions).
_REFUSALS = (
    (r"invalid escape sequence: \\[1-9k]|invalid perl operator: \(\?P[=>]",
     f"backreferences are not supported (\\1, (?P=name), \\k<name>); {_LINEAR}"),
    (r"invalid perl operator: \(\?<?[=!]",
     f"lookarounds are not supported ((?=...), (?!...), (?<=...), (?<!...)); {_LINEAR}"),
    (r"invalid perl operator: \(\?>|bad repetition operator: \S*[*+?}]\+$",
     f"atomic groups and possessive quantifiers are not supported; {_LINEAR}"),
    (r"invalid perl operator: \(\?\(",
     f"conditionals are not supported ((?(1)...|...)); {_LINEAR}"),
    (r"invalid escape sequence: \\Z",
     "\\Z is not supported: write \\z, or nothing (a pattern must match a whole candidate)"),
    (r"pattern too large",
     f"too large once compiled (over {PATTERN_MAX_MEM // 1024} KiB): use fewer or smaller "
     f"counted repetitions such as {{100}}; {_LINEAR} with bounded memory"),
    (r"invalid repetition size",
     "a repetition count is over 1000 (nested counts multiply, as in (a{50}){50})"),
)


def _refusal(pattern: str, message: str) -> str:
    if message.startswith("invalid perl operator: (?P") and re.search(r"\(\?P[=>]", pattern):
        # RE2 names only "(?P" here; (?P<name>...) itself is fine.
        message = "invalid perl operator: (?P="
    for test, reason in _REFUSALS:
        if re.search(test, message):
            return reason
    return f"not a valid regular expression ({message})"
