"""IP addresses (v4, v6 with zone ids and embedded v4) and, as an optional kind, MAC addresses.

Kept out, though shaped like a dotted quad: section numbers (`§8.4.1.1`),
OIDs and versions, by the word or sign before them (`version`, `v`, `§`,
`OID`, `Name/` as in a user agent), and four single digits (`1.2.0.4`) unless
the text says it is an address (`ip`, `host`, `dns`, a URL).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from flywheel.server.ingest.pii.text import ASCII_WORD, words_before

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = rf"(?<![{ASCII_WORD}.])(?:{_OCTET}\.){{3}}{_OCTET}(?!\.?\d|[{ASCII_WORD}])"
# The embedded-IPv4 tail ("::ffff:192.0.2.1") is tried before a hex group, and no
# match may stop before ".digit"; a zone id ("%eth0", "%25eth0" in a URL) is part
# of the address.
IPV6 = (rf"(?<![{ASCII_WORD}:.])(?:[0-9a-f]{{0,4}}:){{2,7}}(?:(?:\d{{1,3}}\.){{3}}\d{{1,3}}|[0-9a-f]{{1,4}})?"
        rf"(?:%(?:25)?[A-Za-z0-9_~-]+(?:\.[A-Za-z0-9_~-]+)*)?(?![{ASCII_WORD}:]|\.\d)")
MAC = (rf"(?<![{ASCII_WORD}:.-])[0-9a-f]{{2}}([:-])(?:[0-9a-f]{{2}}\1){{4}}[0-9a-f]{{2}}(?![{ASCII_WORD}:-])"
       rf"|(?<![{ASCII_WORD}.])[0-9a-f]{{4}}\.[0-9a-f]{{4}}\.[0-9a-f]{{4}}(?![{ASCII_WORD}.])")
_IPV4, _IPV6, _MAC = re.compile(IPV4), re.compile(IPV6, re.IGNORECASE), re.compile(MAC, re.IGNORECASE)

_NOT_AN_ADDRESS = re.compile(r"(?:§|\bv|version|ver\.?|release|build|firmware|\bfw|section|sect?\.|chapter|clause"
                             r"|\bart\.|para\.?|oid|rule|step|item|[a-z]/)\s*:?\s*$")
_ADDRESS_WORDS = re.compile(r"ip|host|addr|dns|peer|client|server|remote|src|dst|gateway|gw|nameserver|from|via"
                            r"|route|ping|connect|://|@")


def ipv6_ok(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value.split("%", 1)[0])
    except ValueError:
        return False
    return True


def find_ipv4(text: str) -> Iterator[tuple[int, int]]:
    for match in _IPV4.finditer(text):
        before = words_before(text, match.start(), 16)
        if _NOT_AN_ADDRESS.search(before):
            continue
        if len(match.group(0)) == 7 and not _ADDRESS_WORDS.search(words_before(text, match.start(), 40)):
            continue  # 1.2.0.4: a version, unless the text says address
        yield match.span()


def find_ipv6(text: str) -> Iterator[tuple[int, int]]:
    for match in _IPV6.finditer(text):
        if ipv6_ok(match.group(0)):
            yield match.span()


def find_macs(text: str) -> Iterator[tuple[int, int]]:
    for match in _MAC.finditer(text):
        yield match.span()
