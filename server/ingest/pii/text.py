"""What every kind's detector needs from a text: a normalised view and the words before a value.

Detectors run on `normalised(text)`, where full-width forms (ＡＢＣ, ０９０, ＠,
the ideographic space) are their ASCII twins. The mapping is one character
to one character, so a span found in the view is the same span in the text.

Boundaries are ASCII classes (`ASCII_WORD`), never `\\b`: in Python's `re`,
`\\b` and `\\w` count a kana or a Han character as a word character, so
`+81 80-8876-7066に` would have no boundary after the number at all.
"""

from __future__ import annotations

import re

# U+FF01..U+FF5E are U+0021..U+007E in full width; U+3000 is the ideographic space.
_FULL_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

ASCII_WORD = "A-Za-z0-9_"


def normalised(text: str) -> str:
    """`text` with full-width forms as ASCII, character for character (same length, same offsets)."""
    return text if text.isascii() else text.translate(_FULL_WIDTH)


def words_before(text: str, start: int, window: int = 40) -> str:
    """The `window` characters before `start`, lower-cased: where a label such as "SSN:" would be."""
    return text[max(0, start - window):start].lower()


# -- percent-encoded text (URLs, query strings) -------------------------------

_ENCODED_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def percent_decoded(text: str) -> tuple[str, list[int]] | None:
    """`text` with its %XX runs decoded, and where each decoded character came from.

    `origin[i]` is the offset in `text` of decoded character `i` (one more
    entry, for the end), so a span found in the decoded text maps back to the
    encoded span it came from: `jane%40example.com` is replaced whole. Runs
    that are not UTF-8 stay as they are. None when nothing is encoded.
    """
    if "%" not in text:
        return None
    out: list[str] = []
    origin: list[int] = []
    pos = 0
    for run in _ENCODED_RUN.finditer(text):
        start, end = run.span()
        try:
            decoded = bytes.fromhex(run.group(0).replace("%", "")).decode("utf-8")
        except UnicodeDecodeError:
            continue  # left in the text as written; the next run starts after `pos` anyway
        out.append(text[pos:start])
        origin.extend(range(pos, start))
        at = start
        for ch in decoded:
            out.append(ch)
            origin.append(at)
            at += 3 * len(ch.encode("utf-8"))
        pos = end
    if not origin and pos == 0:
        return None
    out.append(text[pos:])
    origin.extend(range(pos, len(text) + 1))
    return "".join(out), origin
