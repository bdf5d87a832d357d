"""Checking a chart's layout from its SVG: no two labels overlap, none leaves the chart.

A label's box is estimated, not measured (no browser needed): its width is
0.6 × font size × characters (`chart_frame.CHAR_EM`, a little wider than
system-ui's average glyph), its height the font size, from 0.8 of it above
the baseline to 0.2 below. ``text-anchor`` and ``rotate(...)`` transforms are
applied. Tests call `layout_problems(svg)` on every chart they render::

    assert not layout_problems(svg)
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from flywheel.server.console.chart_frame import CHAR_EM, FONT_SIZE

_SVG = "{http://www.w3.org/2000/svg}"
_ROTATE = re.compile(r"rotate\(\s*(-?[\d.]+)(?:[\s,]+(-?[\d.]+)[\s,]+(-?[\d.]+))?\s*\)")
# Boxes may touch, and rounding to 0.1 px may make them meet: only a real overlap counts.
TOLERANCE = 0.5


@dataclass(frozen=True)
class Box:
    text: str
    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Box) -> bool:
        return (min(self.x1, other.x1) - max(self.x0, other.x0) > TOLERANCE
                and min(self.y1, other.y1) - max(self.y0, other.y0) > TOLERANCE)


def text_boxes(svg: str) -> tuple[list[Box], tuple[float, float]]:
    """The estimated box of every <text> in `svg`, and the chart's (width, height) from its viewBox."""
    root = ET.fromstring(svg)
    _, _, width, height = (float(v) for v in root.get("viewBox", "0 0 0 0").split())
    boxes = [_box(t) for t in root.iter(f"{_SVG}text") if (t.text or "").strip()]
    return boxes, (width, height)


def _box(text: ET.Element) -> Box:
    label = text.text or ""
    size = float(text.get("font-size", FONT_SIZE))
    x, y = float(text.get("x", 0)), float(text.get("y", 0))
    w = len(label) * size * CHAR_EM
    x0 = {"middle": x - w / 2, "end": x - w}.get(text.get("text-anchor", "start"), x)
    corners = [(x0, y - 0.8 * size), (x0 + w, y - 0.8 * size), (x0, y + 0.2 * size), (x0 + w, y + 0.2 * size)]
    match = _ROTATE.search(text.get("transform", ""))
    if match:
        angle = math.radians(float(match.group(1)))
        cx, cy = (float(match.group(2)), float(match.group(3))) if match.group(2) else (0.0, 0.0)
        cos, sin = math.cos(angle), math.sin(angle)
        corners = [(cx + (px - cx) * cos - (py - cy) * sin, cy + (px - cx) * sin + (py - cy) * cos)
                   for px, py in corners]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    return Box(label, min(xs), min(ys), max(xs), max(ys))


def layout_problems(svg: str) -> list[str]:
    """Every pair of overlapping labels and every label outside the chart, in words (empty: fine)."""
    boxes, (width, height) = text_boxes(svg)
    problems = [f"{a.text!r} overlaps {b.text!r}" for i, a in enumerate(boxes) for b in boxes[i + 1:]
                if a.overlaps(b)]
    problems += [f"{b.text!r} leaves the chart ({b.x0:.1f},{b.y0:.1f})-({b.x1:.1f},{b.y1:.1f}) of {width:g}x{height:g}"
                 for b in boxes if b.x0 < -TOLERANCE or b.y0 < -TOLERANCE
                 or b.x1 > width + TOLERANCE or b.y1 > height + TOLERANCE]
    return problems
