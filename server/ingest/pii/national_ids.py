"""US social security numbers, and (an optional kind) IBANs.

An SSN with dashes is one by its shape. Written with spaces or as nine bare
digits it is only an SSN where a label says so ("SSN", "social security")
within the 40 characters before it: bare nine-digit runs are mostly ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from flywheel.server.ingest.pii.text import ASCII_WORD, words_before

_VALID = r"(?!000|666|9\d\d)\d{3}([- ]?)(?!00)\d{2}\1(?!0000)\d{4}"
SSN = rf"(?<![{ASCII_WORD}+-])(?:{_VALID})(?![{ASCII_WORD}-])"
_SSN = re.compile(SSN)
_SSN_WORDS = re.compile(r"ssn|social[ _-]?security|soc\.? ?sec|ss#|ss no|taxpayer|\btin\b|\bitin\b")

# Country -> IBAN length (SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24,
    "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24,
    "XK": 20,
}
IBAN = rf"(?<![{ASCII_WORD}])[A-Z]{{2}}\d{{2}}(?: ?[A-Z0-9]{{4}}){{2,7}}(?: ?[A-Z0-9]{{1,3}})?(?![{ASCII_WORD}])"
_IBAN = re.compile(IBAN)


def find_ssns(text: str) -> Iterator[tuple[int, int]]:
    for match in _SSN.finditer(text):
        if match.group(1) != "-" and not _SSN_WORDS.search(words_before(text, match.start())):
            continue
        yield match.span()


def iban_ok(value: str) -> bool:
    compact = value.replace(" ", "")
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def find_ibans(text: str) -> Iterator[tuple[int, int]]:
    for match in _IBAN.finditer(text):
        value = match.group(0)
        # The next word may have been taken for a group ("DE89 3704 0044 0532 0130 00 SEPA"): drop groups.
        while value and not iban_ok(value):
            value = value.rsplit(" ", 1)[0] if " " in value else ""
        if len(value) >= 15:
            yield match.start(), match.start() + len(value)
