"""Where in a drive-stats file a refused value is: the 1-based line and the column's name.

pyarrow reports a bad value by column position and value ("In CSV column #5:
CSV conversion error to double: invalid value 'abc'") and a short row by its
text, but not the line; a person fixing the file needs both. The file is
read again only when an import is refused, one line at a time.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path

_CONVERSION = re.compile(r"In CSV column #(\d+): CSV conversion error to ([\w\[\]]+): invalid value '(.*)'$", re.S)
_SHAPE = re.compile(r"Expected (\d+) columns, got (\d+): (.*)$", re.S)
_KINDS = {"double": "a number", "int64": "a whole number", "int8": "0 or 1", "date32[day]": "a date (YYYY-MM-DD)",
          "date32": "a date (YYYY-MM-DD)"}


def _lines(path: Path):
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
    with io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="") as text:
        yield from enumerate(csv.reader(text), start=1)


def explain_arrow_error(path: Path, columns: list[str], message: str) -> str:
    """The refusal in words, naming the line and column when pyarrow's message lets us find them."""
    conversion = _CONVERSION.search(message)
    if conversion:
        index, kind, value = int(conversion.group(1)), conversion.group(2), conversion.group(3)
        column = columns[index] if index < len(columns) else f"#{index}"
        for number, row in _lines(path):
            if number > 1 and index < len(row) and row[index] == value:
                return (f"{path.name} line {number}, column {column}: invalid value {value!r} "
                        f"(expected {_KINDS.get(kind, kind)})")
        return f"{path.name}, column {column}: invalid value {value!r} (expected {_KINDS.get(kind, kind)})"
    shape = _SHAPE.search(message)
    if shape:
        expected, got = int(shape.group(1)), int(shape.group(2))
        for number, row in _lines(path):
            if number > 1 and len(row) == got:
                return f"{path.name} line {number}: {got} value(s) where the header has {expected} columns"
    return f"{path.name}: {message}"


def first_line(mask) -> int:
    """The 1-based file line of the first True in a row mask (line 1 is the header)."""
    return mask.index(True) + 2
