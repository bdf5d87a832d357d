"""The built-in kinds of PII: their patterns, and the checks that confirm a candidate."""

from __future__ import annotations

import ipaddress
import re

from flywheel.contracts.pii import Scrubber


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
