"""The built-in kinds of PII: each kind's public `Scrubber` and the detector behind it.

A built-in kind needs more than a pattern and a check of the value alone: a
label before the value ("SSN:", "IMEI"), the tenant's phone regions, and
spans trimmed to the value (an address glued to Japanese text). So each
`Scrubber` here is the kind's public face (its name, token, candidate
pattern and a check of a candidate alone), and `BUILTIN_KINDS` pairs it
with the detector `PiiScrubber` runs. Each detector gets the normalised text
(`text.normalised`) and yields (start, end) spans.

The order of `BUILTIN_KINDS` settles ties between spans of equal length (a
dashed SSN is also a digit run a phone detector might take).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from flywheel.contracts.pii import Scrubber
from flywheel.server.ingest.pii import cards, emails, national_ids, network, phones
from flywheel.server.ingest.pii.cards import luhn_ok
from flywheel.server.ingest.pii.settings import DEFAULT_POLICY, PiiPolicy

Finder = Callable[[str, PiiPolicy], Iterable[tuple[int, int]]]


class Kind(NamedTuple):
    scrubber: Scrubber
    find: Finder
    optional: bool = False  # on only where the tenant's settings name it


def _phone_alone(value: str) -> bool:
    return any((s, e) == (0, len(value)) for s, e in phones.find_phones(value, DEFAULT_POLICY.phone_regions))


def _spans_whole(find: Callable[[str], Iterable[tuple[int, int]]]) -> Callable[[str], bool]:
    return lambda value: any((s, e) == (0, len(value)) for s, e in find(value))


BUILTIN_KINDS: list[Kind] = [
    Kind(Scrubber(name="card", replacement="[CARD]", pattern=cards.CANDIDATE, validate=cards.card_ok),
         lambda text, policy: cards.find_cards(text)),
    Kind(Scrubber(name="ssn", replacement="[SSN]", pattern=national_ids.SSN,
                  validate=_spans_whole(national_ids.find_ssns)),
         lambda text, policy: national_ids.find_ssns(text)),
    Kind(Scrubber(name="iban", replacement="[IBAN]", pattern=national_ids.IBAN, validate=national_ids.iban_ok),
         lambda text, policy: national_ids.find_ibans(text), optional=True),
    Kind(Scrubber(name="email", replacement="[EMAIL]", pattern=emails.CANDIDATE,
                  validate=_spans_whole(emails.find_emails)),
         lambda text, policy: emails.find_emails(text)),
    Kind(Scrubber(name="ipv6", replacement="[IP]", pattern=network.IPV6, validate=network.ipv6_ok),
         lambda text, policy: network.find_ipv6(text)),
    Kind(Scrubber(name="ipv4", replacement="[IP]", pattern=network.IPV4, validate=_spans_whole(network.find_ipv4)),
         lambda text, policy: network.find_ipv4(text)),
    Kind(Scrubber(name="mac", replacement="[MAC]", pattern=network.MAC), lambda text, policy: network.find_macs(text),
         optional=True),
    Kind(Scrubber(name="phone", replacement="[PHONE]", pattern=phones.CANDIDATE, validate=_phone_alone),
         lambda text, policy: phones.find_phones(text, policy.phone_regions)),
]

BUILTIN_SCRUBBERS: list[Scrubber] = [kind.scrubber for kind in BUILTIN_KINDS]

__all__ = ["BUILTIN_KINDS", "BUILTIN_SCRUBBERS", "Kind", "luhn_ok"]
