"""A heat map for the console: one row per feature (or score band), one column per day, as inline SVG.

Colours are SVG `fill` attributes, not styles, so the map stays within the
console's Content-Security-Policy (no inline styles). Like the console's
other charts it is deterministic, escapes every label, scales by its
viewBox, and carries role="img", a <title> and a <desc>; each cell has a
<title> with its row, day and value for hovering.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date

from markupsafe import Markup, escape

from flywheel.server.console.chart_frame import FONT, FONT_SIZE, f, fit, text_width

LEVEL_COLORS = {"ok": "#cde8cf", "warn": "#f3c969", "alert": "#d9534f"}
EMPTY = "#ececec"
_TOP, _BOTTOM, _RIGHT, _ROW = 34, 40, 12, 18
_MAX_LEFT = 200


def heat_map(rows: Sequence[str], days: Sequence[date], cells: Mapping[tuple[str, date], tuple[str, str]], *,
             title: str, legend: Sequence[tuple[str, str]], width: int = 960) -> Markup:
    """`cells[(row, day)]` is (fill colour, text for the cell's tooltip); a missing cell is drawn grey."""
    left = min(_MAX_LEFT, 12 + max((text_width(r) for r in rows), default=0))
    cell_w = max(3.0, min(64.0, (width - left - _RIGHT) / max(len(days), 1)))
    height = _TOP + _ROW * len(rows) + _BOTTOM
    parts = [f'<text x="{f(width / 2)}" y="20" text-anchor="middle" {FONT} font-weight="600">{escape(title)}</text>']
    for i, row in enumerate(rows):
        y = _TOP + i * _ROW
        parts.append(f'<text x="{f(left - 6)}" y="{f(y + _ROW - 5)}" text-anchor="end" {FONT}>'
                     f'{escape(fit(row, left - 12))}</text>')
        for j, day in enumerate(days):
            color, tip = cells.get((row, day), (EMPTY, "no data"))
            parts.append(f'<rect x="{f(left + j * cell_w)}" y="{f(y)}" width="{f(max(cell_w - 1, 1))}" '
                         f'height="{_ROW - 1}" fill="{escape(color)}"><title>{escape(row)}, {day}: '
                         f'{escape(tip)}</title></rect>')
    parts += _day_labels(days, left, cell_w, _TOP + _ROW * len(rows) + 14)
    parts += _legend(legend, left, height - 8)
    summary = f"{len(rows)} rows by {len(days)} days" + (f", {days[0]} to {days[-1]}" if days else "")
    body = "".join(parts)
    return Markup(f'<svg class="chart heatmap" viewBox="0 0 {width} {height}" role="img" '
                  f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
                  f'<desc>{escape(summary)}</desc>{body}</svg>')


def _day_labels(days: Sequence[date], left: float, cell_w: float, y: float) -> list[str]:
    """MM-DD under the columns, every k-th so that labels never touch."""
    if not days:
        return []
    step = max(1, math.ceil((text_width("00-00") + 6) / cell_w))
    return [f'<text x="{f(left + j * cell_w + cell_w / 2)}" y="{f(y)}" text-anchor="middle" {FONT}>'
            f'{day:%m-%d}</text>' for j, day in enumerate(days) if j % step == 0]


def _legend(entries: Sequence[tuple[str, str]], left: float, y: float) -> list[str]:
    parts, at = [], left
    for color, label in entries:
        parts.append(f'<rect x="{f(at)}" y="{f(y - FONT_SIZE + 2)}" width="12" height="12" fill="{escape(color)}"/>')
        parts.append(f'<text x="{f(at + 16)}" y="{f(y)}" {FONT}>{escape(label)}</text>')
        at += 16 + text_width(label) + 14
    return parts


def ratio_color(share: float, expected: float) -> str:
    """Blue where a band holds fewer rows than in training, red where more (log2 of the ratio, clipped at 4x)."""
    if expected <= 0 and share <= 0:
        return "#f7f7f7"
    r = math.log2(max(share, 1e-4) / max(expected, 1e-4))
    t = max(-1.0, min(1.0, r / 2))
    low, mid, high = (33, 102, 172), (247, 247, 247), (178, 24, 43)
    end = high if t > 0 else low
    rgb = tuple(round(m + (e - m) * abs(t)) for m, e in zip(mid, end))
    return "#{:02x}{:02x}{:02x}".format(*rgb)
