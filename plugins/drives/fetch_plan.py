"""What `flywheel drives fetch` downloads: quarters (`2019Q1`) and the URL pattern they fill in.

The pattern is an operator's setting (`--url-pattern` or
FLYWHEEL_DRIVES_FETCH_URL), but it is still a string a library interprets
(`str.format`, then an HTTP client), so it passes an allow-list first: http
or https, a host with no credentials, and only the `{year}` and `{q}`
placeholders, in the path or query (never the host), with no format specs.
The local file name never comes from the URL: it is always `data_Q{q}_{year}.zip`.
"""

from __future__ import annotations

import re
import string
from datetime import date
from typing import NamedTuple
from urllib.parse import urlsplit

PLACEHOLDERS = ("year", "q")
FIRST_YEAR = 2013  # Backblaze's drive stats start in April 2013
FIRST_QUARTERLY_YEAR = 2016  # before 2016 Backblaze publishes one archive per year (data_2013.zip ...)
_QUARTER = re.compile(r"(\d{4})[Qq]([1-4])")


class FetchError(Exception):
    """The fetch cannot go on; the message says what, and what to do about it."""


class BadOption(FetchError):
    """A refused option or setting: `option` names it (`--from`, `FLYWHEEL_DRIVES_FETCH_URL`)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


class Quarter(NamedTuple):
    year: int
    q: int

    def __str__(self) -> str:
        return f"{self.year}Q{self.q}"

    @property
    def archive_name(self) -> str:
        """The local file name (Backblaze's own naming), whatever the URL looks like."""
        return f"data_Q{self.q}_{self.year}.zip"

    @property
    def first_day(self) -> date:
        return date(self.year, 3 * self.q - 2, 1)

    def following(self) -> Quarter:
        return Quarter(self.year + self.q // 4, self.q % 4 + 1)


def parse_quarter(text: str, option: str, *, today: date | None = None) -> Quarter:
    match = _QUARTER.fullmatch(text.strip())
    if not match:
        raise BadOption(option, f"{text!r} is not a quarter: write YYYYQn, n from 1 to 4 (e.g. 2019Q1)")
    quarter = Quarter(int(match.group(1)), int(match.group(2)))
    if quarter.year < FIRST_YEAR:
        raise BadOption(option, f"{quarter}: Backblaze's drive stats start in {FIRST_YEAR}")
    if quarter.first_day > (today or date.today()):
        raise BadOption(option, f"{quarter} has not started yet")
    return quarter


def quarter_range(first: Quarter, last: Quarter) -> list[Quarter]:
    if last < first:
        raise BadOption("--to", f"{last} is before --from {first}: give the earlier quarter first")
    out = [first]
    while out[-1] < last:
        out.append(out[-1].following())
    return out


def check_pattern(pattern: str, source: str) -> str:
    """The pattern if it is allowed, else BadOption naming `source` (the flag or the variable)."""
    def refuse(why: str) -> BadOption:
        return BadOption(source, f"{why} (e.g. https://host/path/data_Q{{q}}_{{year}}.zip)")

    if not pattern or len(pattern) > 2000 or any(c.isspace() or ord(c) < 32 for c in pattern):
        raise refuse("a URL of at most 2,000 characters with no spaces or control characters")
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(pattern)
                  if name is not None]
    except ValueError as exc:  # an unmatched brace
        raise refuse(f"not a valid pattern ({exc})") from None
    for name, spec, conversion in fields:
        if name not in PLACEHOLDERS or spec or conversion:
            raise refuse(f"placeholder {{{name}{'!' + conversion if conversion else ''}"
                         f"{':' + spec if spec else ''}}} is not allowed: only {{year}} and {{q}}")
    if {name for name, _, _ in fields} != set(PLACEHOLDERS):
        raise refuse("the pattern needs both {year} and {q}, so each quarter has its own URL")
    if "{" in urlsplit(pattern).netloc:
        raise refuse("placeholders go in the path or query, not the host")
    parts = urlsplit(archive_url(pattern, Quarter(2019, 1)))
    if parts.scheme not in ("http", "https"):
        raise refuse(f"scheme {parts.scheme or '(none)'!r} is not allowed: http or https only")
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number in range)
    except ValueError:
        raise refuse("the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise refuse("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise refuse("credentials in the URL are not allowed")
    return pattern


def archive_url(pattern: str, quarter: Quarter) -> str:
    return pattern.format(year=quarter.year, q=quarter.q)
