"""Phone numbers: candidates by shape, confirmed by libphonenumber for the tenant's regions.

A candidate is a run of digits with the separators people write (space,
dot, dash, slash, parentheses), an optional `+` or `00` in front and an
optional extension (`x920`, ` ext. 920`), bounded by ASCII classes so that
it works inside Japanese or Chinese text. Cheap checks throw out dates,
amounts, dotted quads and signed counters first; what remains is given to
`phonenumbers.PhoneNumberMatcher`, for each of the tenant's regions until
one finds a number. The whole candidate is replaced, extension included.

Leniency, chosen per shape:
- `Leniency.POSSIBLE` (the length fits the country) for a number written
  with a `+`/`00` prefix or with separators, the way people write phones.
  Not `VALID`: it rejects numbers in ranges its metadata does not know yet
  and numbers with one digit mistyped, both still someone's phone (about a
  third of realistic national numbers in our corpus); a false [PHONE] costs
  the reader a number, a missed one leaks it.
- `Leniency.VALID` for a bare run of digits, and only when it is written
  exactly as the region writes it nationally (`0` trunk prefix included) or
  a label ("tel", "電話", ...) says so: bare runs are mostly ids and times.
- Never `STRICT_GROUPING`/`EXACT_GROUPING`: people group digits their own way.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import phonenumbers
from phonenumbers import Leniency, PhoneNumberFormat, PhoneNumberMatcher

from flywheel.server.ingest.pii.text import ASCII_WORD, words_before

_SEP = r"[ \u00a0.\-\u2010-\u2015\u2212\u30fc/]"
_GROUP = r"(?:\(\d{1,5}\)|\d)"
# At most 30 digit steps: no phone is longer, and it bounds the work at each start.
CANDIDATE = (rf"(?<![{ASCII_WORD}.+/\-])(?:\+ ?|00)?{_GROUP}(?:{_SEP}{{0,3}}{_GROUP}){{5,30}}"
             rf"(?: ?(?:x|ext\.?|extn\.?|extension|#|доб\.?|内線) ?\d{{1,6}})?(?![{ASCII_WORD}])")
_CANDIDATE = re.compile(CANDIDATE, re.IGNORECASE)

_EXTENSION = re.compile(r" ?(?:x|ext\.?|extn\.?|extension|#|доб\.?|内線) ?\d{1,6}$", re.IGNORECASE)
_DIGIT_GROUPS = re.compile(r"\d+")
# Shapes that are not phones however many digits they hold.
_NOT_A_PHONE = re.compile(
    r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:\D.*)?"  # 2024-03-15, 2024/03/15 10 ...
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"  # 15.03.2024, 03/15/24
    r"|\d{1,3}(?:[.,]\d{3}){2,}"  # 1.234.567: an amount (with spaces it may be a phone: 912 345 678)
    r"|-?\d{1,3}\.\d+"  # a decimal: 48.137154
    r"|\d+(?:\.\d+)*\.\d(?:\.\d+)*"  # dots only, a one-digit group: 120.0.6099.109, 1.2.840.113549.1.1
    r"|\d{1,3}(?:\.\d{1,3}){3,}"  # dotted quads, OIDs, versions
    r"|\d{1,4}(?:-\d{1,4})?/\d{1,4}(?:-\d{1,4})?"  # 12/34, 100-200/300: ratios, ranges
    r")$")
# A key or unit that says the number counts something ("delta=+285980307", "+898180032 bytes").
_COUNTER_KEY = re.compile(
    r"(?:delta|diff|change|offset|incr?|increment|decr?|gain|growth|balance|adj|adjust(?:ment)?|shift|drift|skew"
    r"|size|len|length|count|cnt|bytes|total|sum|score|value|val|amount|qty|seq|lsn|rev|id|uuid|no|nr|num|ts"
    r"|time|timestamp|epoch|serial|sku|ean|imei|iccid|order|invoice|tracking|account|acct|port|pid|uid|gid"
    r"|version|build|ref|hash|checksum|crc|nonce|code|zip|postal|plz)[\"']?\s*[=:]\s*[\"']?$", re.IGNORECASE)
_UNIT_AFTER = re.compile(r"^\s?(?:€|eur|usd|\$|£|¥|円|元|人|yen|habitants|inhabitants|einwohner|people|users|personen"
                         r"|km|kg|bytes?|b|kb|mb|gb|tb|kib|mib|gib|ms|us|ns|sec|secs|s|rows?|items?|events?"
                         r"|points?|pts|records?|msgs?|messages|requests?|reqs?|ops|units?|tokens?|%|x\b)",
                         re.IGNORECASE)
_ANY_KEY = re.compile(r"[\w.-]+\\?[\"']?\s*[=:]\s*\\?[\"']?$")
# Words that say the digits after them are something else ("order 403-1234567-1234567", "id 078051120").
_OTHER_WORDS = re.compile(r"(?:\b(?:id|no\.|nr\.|n°|ref|po|order|invoice|tracking|imei|ean|gtin|serial|sku|isbn|iban"
                          r"|account"
                          r"|acct|ticket|case|build|version|ssn|zip|plz|cep|postcode|bestellung|commande|pedido"
                          r"|ordine|bestelling)|#|注文|订单|番号)\W{0,3}$", re.IGNORECASE)
_PHONE_WORDS = re.compile(r"phone|tel\b|tel\.|tél|telef|teléf|téléph|mobil|mobile|móvil|cell|celular|fax|call"
                          r"|sms|whatsapp|handy|portable|contact|kontakt|contatto|contacto|contato|ring"
                          r"|電話|携帯|でんわ|电话|手机|联系", re.IGNORECASE)


def find_phones(text: str, regions: tuple[str, ...]) -> Iterator[tuple[int, int]]:
    for match in _CANDIDATE.finditer(text):
        start, end = match.span()
        value = match.group(0)
        core = _EXTENSION.sub("", value)
        digits = [ch for ch in core if ch.isdigit()]
        # National numbers have at most 13 digits (0 trunk prefix included); E.164 15, plus "00".
        longest = 17 if core.startswith(("+", "00")) else 13
        if not 7 <= len(digits) <= longest or len(set(digits)) == 1 or _NOT_A_PHONE.match(core):
            continue
        before = words_before(text, start, 24)
        labelled = _PHONE_WORDS.search(before) is not None
        if not labelled and (_COUNTER_KEY.search(before) or _OTHER_WORDS.search(before)
                             or _UNIT_AFTER.match(text[end:end + 12])):
            continue
        if not labelled and _DIGIT_GROUPS.fullmatch(value) and _ANY_KEY.search(before):
            continue  # "user_id": 16256693722, elapsed_ms=806214624: a bare number under any other key
        if _confirmed(value, regions, labelled):
            yield start, end


@functools.lru_cache(maxsize=8192)
def _confirmed(value: str, regions: tuple[str, ...], labelled: bool) -> bool:
    """Whether libphonenumber finds a number in candidate `value` for any of `regions`."""
    international = value.startswith(("+", "00"))
    bare = not international and _DIGIT_GROUPS.fullmatch(value) is not None
    if bare and not labelled:
        return any(_written_nationally(value, region) for region in regions)
    # Seven or eight digits without a prefix ("200 5120", "402-3509"): a status and a
    # size, a range; only a number libphonenumber knows as valid is taken for a phone.
    short = not international and sum(ch.isdigit() for ch in _EXTENSION.sub("", value)) < 9
    leniency = Leniency.VALID if bare or (short and not labelled) else Leniency.POSSIBLE
    # A "+" number does not depend on the region; "00" does (it is the
    # international prefix of most regions, not of the US or Japan).
    for region in regions[:1] if value.startswith("+") else regions:
        for found in PhoneNumberMatcher(value, region, leniency=leniency):
            if _covers(value, found.start, found.end):
                return True
    return False


def _covers(value: str, start: int, end: int) -> bool:
    # Every digit of the candidate: a match on part of "12 3456 7890" is no phone.
    return not any(ch.isdigit() for ch in value[:start]) and not any(ch.isdigit() for ch in value[end:])


def _written_nationally(value: str, region: str) -> bool:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return False
    if not phonenumbers.is_valid_number_for_region(number, region):
        return False
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    return "".join(ch for ch in national if ch.isdigit()) == value
