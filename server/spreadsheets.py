"""Text cells a spreadsheet will not run: for CSV exports of values a tenant's users wrote.

A cell starting with `=`, `+`, `-` or `@` (or a tab or carriage return
before one) is a formula to Excel, LibreOffice and Google Sheets: a
subject id of `=HYPERLINK("http://evil", "x")` in an export would run when
an operator opens it (CSV injection, OWASP). Such text gets a leading `'`,
which the spreadsheet shows as text; numbers (`-3.5`) stay as they are.
"""

from __future__ import annotations

import re

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(value: str | None) -> str:
    """`value` as a CSV cell no spreadsheet evaluates ('' for None)."""
    if not value:
        return ""
    if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value
