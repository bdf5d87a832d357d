"""Payment card numbers: issuer (IIN) ranges of every major network, lengths, Luhn, and context.

`NETWORKS` is the maintained table: each network's IIN ranges (prefixes as
inclusive ranges of the same number of digits) and the lengths it issues.
Sources: the networks' published BIN ranges as summarised by ISO/IEC 7812
registries (Visa, Mastercard incl. the 2221-2720 series, American Express,
Discover incl. the UnionPay-shared 622126-622925, Diners Club International,
JCB incl. its 15-digit 1800/2131 cards, Maestro, UnionPay, Mir, RuPay, Troy,
Verve, Elo, Hipercard). tests/test_pii_cards.py holds one known-good number
per network.

A number that passes the table and Luhn may still be a barcode or a device:
an EAN-13 (13 digits), an IMEI (15 digits, Luhn-valid by design) or an
order number. They are kept out by length (no network issues 15-digit
numbers beginning with 35, 86 or 01, where IMEIs do; 12 and 13 digits are
a card only where a card word is near), by grouping (order numbers are
3-7-7) and by a label word before the number ("IMEI", "EAN", "order").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from flywheel.server.ingest.pii.text import ASCII_WORD, words_before

# (network, ((low, high) prefix ranges), lengths)
NETWORKS: tuple[tuple[str, tuple[tuple[str, str], ...], frozenset[int]], ...] = (
    ("visa", (("4", "4"),), frozenset({13, 16, 19})),
    ("mastercard", (("51", "55"), ("2221", "2720")), frozenset({16})),
    ("amex", (("34", "34"), ("37", "37")), frozenset({15})),
    ("discover", (("6011", "6011"), ("644", "649"), ("65", "65"), ("622126", "622925")),
     frozenset({16, 17, 18, 19})),
    ("diners", (("300", "305"), ("3095", "3095"), ("36", "36"), ("38", "39")), frozenset({14, 16})),
    ("jcb", (("3528", "3589"),), frozenset({16, 17, 18, 19})),
    ("jcb15", (("1800", "1800"), ("2131", "2131")), frozenset({15})),
    ("maestro", (("50", "50"), ("56", "58"), ("6304", "6304"), ("6759", "6759"), ("6761", "6763")),
     frozenset({12, 13, 16, 17, 18, 19})),
    ("unionpay", (("62", "62"), ("81", "81")), frozenset({16, 17, 18, 19})),
    ("mir", (("2200", "2204"),), frozenset({16, 17, 18, 19})),
    ("rupay", (("60", "60"), ("652", "653"), ("508", "508")), frozenset({16})),
    ("troy", (("9792", "9792"),), frozenset({16})),
    ("verve", (("506099", "506198"), ("650002", "650027")), frozenset({16, 18, 19})),
    ("elo", (("401178", "401179"), ("431274", "431274"), ("438935", "438935"), ("451416", "451416"),
             ("457393", "457393"), ("504175", "504175"), ("506699", "506778"), ("509000", "509999"),
             ("627780", "627780"), ("636297", "636297"), ("636368", "636368"), ("650031", "650033")),
     frozenset({16})),
    ("hipercard", (("606282", "606282"), ("384100", "384100"), ("384140", "384140"), ("384160", "384160")),
     frozenset({16, 19})),
)


def network_of(digits: str) -> str | None:
    """The network whose IIN range and length fit `digits`, or None."""
    for name, ranges, lengths in NETWORKS:
        if len(digits) not in lengths:
            continue
        for low, high in ranges:
            if low <= digits[:len(low)] <= high:
                return name
    return None


def luhn_ok(digits: str) -> bool:
    total, double = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return total % 10 == 0


# The shapes people write: groups of four (16-19 digits), Amex and Diners 4-6-5
# and 4-6-4, 15-digit JCB 4-4-4-3, or one unbroken run. Any other grouping of
# 13-19 digits (an order number 403-1234567-1234567) is not a card's.
CANDIDATE = (rf"(?<![{ASCII_WORD}-])(?:\d{{4}}([ -])\d{{4}}\1\d{{4}}\1\d{{4}}(?:\1\d{{1,3}})?"
             rf"|\d{{4}}([ -])\d{{6}}\2\d{{4,5}}|\d{{4}}([ -])\d{{4}}\3\d{{4}}\3\d{{1,3}}|\d{{12,19}})"
             rf"(?![{ASCII_WORD}-])")
_CANDIDATE = re.compile(CANDIDATE)

# Words that say the number before us is something else. Checked in the 40
# characters before the number ("IMEI: 35...", "EAN 4006381333931").
_NOT_A_CARD = re.compile(r"imei|meid|imsi|iccid|\bean\b|ean-?13|gtin|upc|barcode|isbn|order|bestell|commande"
                         r"|pedido|ordine|注文|订单|tracking|invoice|serial|sku|article|artikel")
_CARD_WORDS = re.compile(r"card|visa|master|amex|credit|debit|cc\b|pan\b|karte|carte|tarjeta|carta|cartão|kaart"
                         r"|カード|卡")


def card_ok(candidate: str) -> bool:
    """The number alone: a network's range and length, and Luhn."""
    digits = candidate.replace(" ", "").replace("-", "")
    return network_of(digits) is not None and luhn_ok(digits)


def find_cards(text: str) -> Iterator[tuple[int, int]]:
    for match in _CANDIDATE.finditer(text):
        start, end = match.span()
        if not card_ok(match.group(0)):
            # "4111 1111 1111 1111 123": the CVC taken as a 19-digit card's last group.
            if not (match.group(1) and len(match.group(0)) > 19 and card_ok(text[start:start + 19])):
                continue
            end = start + 19
        before = words_before(text, start)
        if _NOT_A_CARD.search(before) and not _CARD_WORDS.search(before[-20:]):
            continue
        digits = text[start:end].replace(" ", "").replace("-", "")
        if len(digits) <= 13 and not _CARD_WORDS.search(before):
            # 12 and 13 digits: Maestro's and the old Visa's rare lengths, and those of
            # barcodes (EAN-13), sizes and ids; a card only where the text says card.
            continue
        yield start, end
