"""E-mail addresses per the practical grammar: dot-atom or quoted local parts, Unicode
(internationalised) local parts and domains, punycode TLDs.

Percent-encoded addresses (`jane%40example.com` in a query string) are found
by the scrubber in the decoded text and replaced as encoded (`text.py`).

Kept out, though they have an address's shape: image names with a scale
(`icon@2x.png`), and scp-style remotes (`git@github.com:org/repo`), where
what follows the host is a path, not the end of an address.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# Dot-atom: RFC 5322 atext plus any Unicode letter or digit (RFC 6531).
_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"
_QUOTED = r'"(?:[^"\\\r\n]|\\.){1,62}"'
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
# The lookbehind makes a candidate start where a run of address characters does:
# without it, each position of a long run (100,000 digits) would scan the rest
# of it for an "@", quadratic in the run's length.
CANDIDATE = (rf"(?<![\w!#$%&'*+/=?^`{{|}}~.-])(?:{_QUOTED}|{_ATOM}(?:\.{_ATOM})*)"
             rf"@(?:{_LABEL}\.)+(?:xn--[a-z0-9-]{{1,59}}|[^\W\d_]{{2,63}})(?![\w-]|\.\w)")
_CANDIDATE = re.compile(CANDIDATE, re.IGNORECASE)

# Kana, Han, Hangul: text written right against an address ("メールはjane@x.jpです").
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
# The last CJK character followed by an ASCII local part to the end: "返信はjane" -> "jane".
_CJK_THEN_ASCII = re.compile(rf"^.*[{_CJK}](?=[A-Za-z0-9][\x21-\x7e]*$)")
_ASCII_THEN_CJK = re.compile(rf"(?<=[A-Za-z0-9])[{_CJK}]")
_LEADING_PUNCT = "'`{|}~=?^/!#$%&*+-"
_IMAGE_SCALE = re.compile(r"^\d+(?:\.\d+)?x\.", re.IGNORECASE)
_FILE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "avif", "heic",
                            "css", "js", "mjs", "jsx", "tsx", "json", "yml", "yaml", "lock", "html", "htm", "txt",
                            "xml", "pdf", "gz", "tgz", "whl", "jar"})


def find_emails(text: str) -> Iterator[tuple[int, int]]:
    for match in _CANDIDATE.finditer(text):
        start, end = match.span()
        value = match.group(0)
        at = value.rindex("@")
        local, domain = value[:at], value[at + 1:]
        if not local.startswith('"'):
            # Text glued before the address in a CJK sentence is not its local part,
            # nor quotes and punctuation around it ("'jane@x.com'", "=jane@x.com").
            cut = _CJK_THEN_ASCII.match(local)
            skip = cut.end() if cut else 0
            # "to=jane@x.com", "?u=a&to=jane@x.com": a query's key is not part of the
            # address ("=", "&", "?" and "/" are legal in a local part, and unheard of).
            skip = max(skip, *(local.rfind(ch) + 1 for ch in "=&?/"))
            while skip < at and local[skip] in _LEADING_PUNCT:
                skip += 1
            if skip >= at:
                continue
            start += skip
        tail = _ASCII_THEN_CJK.search(domain)
        if tail is not None:  # "jane@example.comです": the sentence goes on after the address
            end -= len(domain) - tail.start()
            domain = domain[:tail.start()]
            if "." not in domain or len(domain.rsplit(".", 1)[1]) < 2:
                continue
        if _IMAGE_SCALE.match(domain) or domain.rsplit(".", 1)[1].lower() in _FILE_SUFFIXES:
            continue
        if text.startswith(":", end) and end + 1 < len(text) and not text[end + 1].isspace():
            continue  # git@host:repo, user@host:/path
        yield start, end
