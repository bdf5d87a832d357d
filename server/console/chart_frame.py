"""The frame every console chart is drawn in: its box, title, axes and labels, placed so none collide.

Labels are placed by an estimated width (`text_width`), since the server
never sees the font: crowded tick labels are thinned, long ones clipped, and
the plot moves right for wide y ticks. chart_layout.py checks the result
with the same estimate.
"""

from __future__ import annotations

import math

from markupsafe import Markup, escape

FONT_SIZE = 12
FONT = f'font-family="system-ui, sans-serif" font-size="{FONT_SIZE}" fill="#333"'
TITLE_SIZE = 14
# Labels are laid out with an estimated width: 0.6 em per character, a little
# wider than system-ui's average glyph (about 0.55 em), so estimates err on
# the side of room. The layout tests (chart_layout.py) use the same estimate.
CHAR_EM = 0.6
_LEFT, _RIGHT, _BOTTOM = 64, 16, 46
TOP = 34  # the plot's top edge without a legend
_GAP = 6  # the least space between two labels
LEGEND_ROW = 18
DESC_ITEMS = 24  # data items a chart's <desc> lists


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """The estimated width of `text` at font size `size` (see CHAR_EM)."""
    return len(text) * size * CHAR_EM


def fit(text: str, room: float, size: float = FONT_SIZE) -> str:
    """`text`, clipped with an ellipsis to fit `room` pixels."""
    return clip(text, max(1, int(room / (size * CHAR_EM))))


class Frame:
    """The shared parts of a chart: the box, title, axes labels, y grid, and where labels go.

    Every label is placed so that no two overlap and none leaves the chart,
    by the estimate of `text_width`: crowded tick labels are thinned, long
    ones clipped, and the plot's left edge moves right for wide y ticks.
    """

    def __init__(self, kind: str, title: str, width: int, height: int, x_label: str, y_label: str,
                 legend_rows: int = 0) -> None:
        self.kind, self.title, self.width, self.height = kind, str(title), int(width), int(height)
        self.x_label, self.y_label = str(x_label), str(y_label)
        self.left = _LEFT
        self.top = TOP + LEGEND_ROW * legend_rows
        self.right = self.width - _RIGHT
        self.bottom = self.height - _BOTTOM
        self.plot_w = max(self.right - self.left, 10)
        self.plot_h = max(self.bottom - self.top, 10)

    def y_scale(self, ticks: list[float]):
        # Room for the widest tick label, and for the rotated y label left of it.
        widest = max(text_width(num(t)) for t in ticks)
        self.left = max(_LEFT, math.ceil(widest + 6 + (28 if self.y_label else 8)))
        self.plot_w = max(self.right - self.left, 10)
        lo, hi = ticks[0], ticks[-1]
        return lambda v: self.bottom - (v - lo) / (hi - lo) * self.plot_h

    def y_axis(self, ticks: list[float], y) -> list[str]:
        parts, last = [], None
        for tick in ticks:
            parts.append(f'<line x1="{f(self.left)}" x2="{f(self.right)}" y1="{f(y(tick))}" y2="{f(y(tick))}" '
                         f'stroke="#e3e3e3"/>')
            if last is not None and abs(last - y(tick)) < FONT_SIZE + 2:
                continue  # a short chart: every other grid line keeps its label
            last = y(tick)
            parts.append(f'<text x="{f(self.left - 6)}" y="{f(y(tick) + 4)}" text-anchor="end" {FONT}>'
                         f'{escape(num(tick))}</text>')
        parts.append(f'<line x1="{f(self.left)}" x2="{f(self.left)}" y1="{f(self.top)}" y2="{f(self.bottom)}" '
                     f'stroke="#666"/>')
        return parts

    def _span(self, at: float, label: str) -> tuple[float, float, str]:
        """Where a label centred on `at` lies, moved to end (or start) at `at` near an edge."""
        half = text_width(label) / 2
        if at + half > self.width - 2:
            return at - 2 * half, at, "end"
        if at - half < 2:
            return at, at + 2 * half, "start"
        return at - half, at + half, "middle"

    def _fits(self, labels: list[tuple[float, str]]) -> bool:
        spans = [self._span(at, label) for at, label in labels]
        return all(b[0] - a[1] >= _GAP for a, b in zip(spans, spans[1:]))

    def x_ticks(self, ticks: list[tuple[float, str]]) -> list[str]:
        """Tick marks at every tick; labels at every k-th, the smallest k at which none overlap."""
        step = next((k for k in range(1, len(ticks) + 1) if self._fits(ticks[::k])), max(len(ticks), 1))
        labelled = {i for i in range(0, len(ticks), step)}
        parts = []
        for i, (at, label) in enumerate(ticks):
            parts.append(f'<line x1="{f(at)}" x2="{f(at)}" y1="{f(self.bottom)}" y2="{f(self.bottom + 4)}" '
                         f'stroke="#666"/>')
            if i in labelled:
                parts.append(self._x_text(at, label))
        return parts

    def _x_text(self, at: float, label: str) -> str:
        anchor = self._span(at, label)[2]
        return (f'<text x="{f(at)}" y="{f(self.bottom + 16)}" text-anchor="{anchor}" {FONT}>'
                f"{escape(label)}</text>")

    def category_labels(self, labels: list[str], band: float) -> list[str]:
        """Labels under bars: every k-th bar's, each clipped to the k bars' width it owns."""
        widest = max(text_width(label) for label in labels)
        every = next(k for k in range(1, len(labels) + 1)
                     if band * k >= min(widest, text_width("x" * 6)) + _GAP or k == len(labels))
        parts = []
        for i in range(0, len(labels), every):
            at = self.left + (i + 0.5) * band
            # Its own slot, and never past the chart's edges.
            room = min(band * every - _GAP, 2 * (at - 2), 2 * (self.width - 2 - at))
            parts.append(f'<text x="{f(at)}" y="{f(self.bottom + 16)}" text-anchor="middle" {FONT}>'
                         f"{escape(fit(labels[i], room))}</text>")
        return parts

    def value_labels(self, points: list[tuple[float, float, str, str]]) -> list[str]:
        """A value written beside its point (right of it, or left near the right edge), stacked
        downwards where two would overlap."""
        parts, taken = [], []
        for px, py, label, color in sorted(points, key=lambda p: p[1]):
            label = fit(label, self.plot_w / 2 - 10)
            w = text_width(label)
            x0 = px + 8 if px + 8 + w <= self.right else px - 8 - w
            base = py + 4
            while any(abs(base - other) < FONT_SIZE + 2 and x0 < ox1 and ox0 < x0 + w for other, ox0, ox1 in taken):
                base += FONT_SIZE + 2
            taken.append((base, x0, x0 + w))
            parts.append(f'<text class="value" x="{f(x0)}" y="{f(base)}" font-family="system-ui, sans-serif" '
                         f'font-size="{FONT_SIZE}" font-weight="600" fill="{color}">{escape(label)}</text>')
        return parts

    def x_axis_line(self, at: float) -> str:
        return f'<line x1="{f(self.left)}" x2="{f(self.right)}" y1="{f(at)}" y2="{f(at)}" stroke="#666"/>'

    def empty(self) -> Markup:
        note = (f'<text x="{f(self.width / 2)}" y="{f(self.height / 2)}" text-anchor="middle" {FONT}>'
                "No data</text>")
        return self.render([note], ["no data"], axes_labels=False)

    def render(self, parts: list[str], desc: list[str], *, axes_labels: bool = True) -> Markup:
        title = escape(self.title)
        shown = escape(fit(self.title, self.width - 16, TITLE_SIZE))
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{self.kind}" data-chart="{self.kind}" '
                f'role="img" aria-label="{title}" width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}" preserveAspectRatio="xMidYMid meet">'
                f"<title>{title}</title><desc>{escape(self._describe(desc))}</desc>"
                f'<rect x="0" y="0" width="{self.width}" height="{self.height}" fill="#fff"/>'
                f'<text x="{f(self.width / 2)}" y="18" text-anchor="middle" font-family="system-ui, sans-serif" '
                f'font-size="{TITLE_SIZE}" font-weight="600" fill="#222">{shown}</text>')
        labels = []
        if axes_labels and self.x_label:
            labels.append(f'<text class="x-label" x="{f(self.left + self.plot_w / 2)}" y="{f(self.height - 8)}" '
                          f'text-anchor="middle" {FONT}>{escape(fit(self.x_label, self.plot_w))}</text>')
        if axes_labels and self.y_label:
            cy = self.top + self.plot_h / 2
            labels.append(f'<text class="y-label" x="14" y="{f(cy)}" text-anchor="middle" '
                          f'transform="rotate(-90 14 {f(cy)})" {FONT}>{escape(fit(self.y_label, self.plot_h))}</text>')
        return Markup(head + "".join(parts) + "".join(labels) + "</svg>")

    def _describe(self, items: list[str]) -> str:
        kind = {"bar": "Bar chart", "line": "Line chart", "histogram": "Histogram"}[self.kind]
        shown = items[:DESC_ITEMS] + (["…"] if len(items) > DESC_ITEMS else [])
        return f"{kind}. " + "; ".join(shown)


def num(v: float) -> str:
    """A short, stable label for a number."""
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.4g}" if abs(v) >= 0.001 else f"{v:.2e}"


def f(v: float) -> str:
    return f"{v:.1f}"


def clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(chars - 1, 1)] + "…"
