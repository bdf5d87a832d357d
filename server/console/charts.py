"""Small server-side SVG charts for console pages: bar, line (dates on x), histogram.

Each function returns inline SVG as `markupsafe.Markup` (safe to drop into a
Jinja template; in Python it is a `str`). Output is deterministic: the same
data gives the same bytes. Every label is escaped. Charts are accessible:
``role="img"``, an ``aria-label`` and a ``<title>`` with the chart's title, and
a ``<desc>`` listing the data. In templates they are globals::

    {{ bar_chart({"ok": 12, "failed": 3}, title="Jobs by state") }}
    {{ line_chart({"p50": [(day, 0.2), ...]}, title="Latency", y_label="s") }}
    {{ histogram(scores, title="Risk scores", bins=20) }}
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime

from markupsafe import Markup, escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
FONT = 'font-family="system-ui, sans-serif" font-size="12" fill="#333"'
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 34, 46
_DESC_ITEMS = 24

Number = int | float
XValue = date | datetime | int | float


def bar_chart(data: Mapping[str, Number] | Iterable[tuple[str, Number]], *, title: str, x_label: str = "",
              y_label: str = "", width: int = 640, height: int = 320, color: str = PALETTE[0]) -> Markup:
    """One bar per category, in the order given; negative values hang below zero."""
    raw = [(str(k), v) for k, v in (data.items() if isinstance(data, Mapping) else data)
           if v is not None and math.isfinite(float(v))]
    items = [(k, float(v)) for k, v in raw]
    frame = _Frame("bar", title, width, height, x_label, y_label)
    if not items:
        return frame.empty()
    ticks = nice_ticks(min(0.0, *(v for _, v in items)), max(0.0, *(v for _, v in items)),
                       integer=all(isinstance(v, int) for _, v in raw))
    y = frame.y_scale(ticks)
    band = frame.plot_w / len(items)
    bar_w = max(1.0, band * 0.8)
    every = max(1, math.ceil(len(items) * 48 / frame.plot_w))  # label every n-th bar when crowded
    max_chars = max(3, int(band * every / 7))
    parts = frame.y_axis(ticks, y)
    for i, (label, value) in enumerate(items):
        x = frame.left + i * band + (band - bar_w) / 2
        top, bottom = sorted((y(value), y(0.0)))
        parts.append(f'<rect x="{_f(x)}" y="{_f(top)}" width="{_f(bar_w)}" height="{_f(max(bottom - top, 0.5))}" '
                     f'fill="{escape(color)}"><title>{escape(label)}: {escape(_num(value))}</title></rect>')
        if i % every == 0:
            parts.append(f'<text x="{_f(x + bar_w / 2)}" y="{_f(frame.bottom + 16)}" text-anchor="middle" {FONT}>'
                         f'{escape(_clip(label, max_chars))}</text>')
    parts.append(frame.x_axis_line(y(0.0)))
    return frame.render(parts, [f"{label}: {_num(value)}" for label, value in items])


def line_chart(series: Mapping[str, Iterable[tuple[XValue, Number | None]]], *, title: str, x_label: str = "",
               y_label: str = "", width: int = 640, height: int = 320, zero_based: bool = False) -> Markup:
    """One line per series; x values are dates, datetimes or numbers (all of one kind).

    A missing value (None or NaN) breaks the line. Points are sorted by x.
    """
    clean: list[tuple[str, list[tuple[float, float | None]]]] = []
    kind = None
    integer = True
    for name, points in series.items():
        pts = []
        for x, v in points:
            kind = kind or _x_kind(x)
            value = None if v is None or not math.isfinite(float(v)) else float(v)
            integer = integer and (value is None or isinstance(v, int))
            pts.append((_x_number(x, kind), value))
        clean.append((str(name), sorted(pts, key=lambda p: p[0])))
    legend = len(clean) > 1
    frame = _Frame("line", title, width, height, x_label, y_label, legend_rows=1 if legend else 0)
    values = [v for _, pts in clean for _, v in pts if v is not None]
    xs = [x for _, pts in clean for x, _ in pts]
    if not values:
        return frame.empty()
    lo, hi = min(values), max(values)
    if zero_based:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    ticks = nice_ticks(lo, hi, integer=integer)
    y = frame.y_scale(ticks)
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1

    def x(value: float) -> float:
        return frame.left + (value - x_lo) / (x_hi - x_lo) * frame.plot_w

    parts = frame.y_axis(ticks, y)
    parts.append(frame.x_axis_line(frame.bottom))
    parts += frame.x_ticks([(x(tick), _x_label(tick, kind)) for tick in _x_ticks(x_lo, x_hi, kind)])
    desc = []
    for i, (name, pts) in enumerate(clean):
        color = PALETTE[i % len(PALETTE)]
        path, run = [], 0
        for px, v in pts:
            if v is None:
                run = 0
                continue
            path.append(f"{'L' if run else 'M'}{_f(x(px))},{_f(y(v))}")
            run += 1
        parts.append(f'<g class="series" data-series="{escape(name)}"><title>{escape(name)}</title>')
        if path:
            parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="2" '
                         f'stroke-linejoin="round"/>')
        if len(pts) <= 60:
            for px, v in pts:
                if v is not None:
                    parts.append(f'<circle cx="{_f(x(px))}" cy="{_f(y(v))}" r="2.5" fill="{color}">'
                                 f'<title>{escape(name)} {escape(_x_label(px, kind))}: {escape(_num(v))}</title>'
                                 f'</circle>')
        parts.append("</g>")
        shown = [f"{_x_label(px, kind)} {_num(v)}" for px, v in pts if v is not None]
        desc.append(f"{name}: " + ", ".join(shown[:_DESC_ITEMS]) + (" …" if len(shown) > _DESC_ITEMS else ""))
        if legend:
            lx = frame.left + i * 130
            parts.append(f'<line x1="{_f(lx)}" x2="{_f(lx + 16)}" y1="{_f(_TOP + 2)}" y2="{_f(_TOP + 2)}" '
                         f'stroke="{color}" stroke-width="3"/>')
            parts.append(f'<text x="{_f(lx + 20)}" y="{_f(_TOP + 6)}" {FONT}>{escape(_clip(name, 16))}</text>')
    return frame.render(parts, desc)


def histogram(values: Iterable[Number | None], *, title: str, bins: int | Sequence[Number] = 10,
              x_label: str = "", y_label: str = "count", width: int = 640, height: int = 320,
              color: str = PALETTE[2]) -> Markup:
    """Counts of `values` in `bins` equal-width bins (or between the given edges).

    Bins are closed on the left, and the last one on the right too; values
    outside explicit edges are left out. None and NaN are ignored.
    """
    data = sorted(float(v) for v in values if v is not None and math.isfinite(float(v)))
    frame = _Frame("histogram", title, width, height, x_label, y_label)
    edges = histogram_edges(data, bins)
    if not data or not edges:
        return frame.empty()
    counts = histogram_counts(data, edges)
    ticks = nice_ticks(0.0, float(max(counts)), integer=True)
    y = frame.y_scale(ticks)
    lo, hi = edges[0], edges[-1]

    def x(value: float) -> float:
        return frame.left + (value - lo) / (hi - lo) * frame.plot_w

    parts = frame.y_axis(ticks, y)
    for left, right, count in zip(edges, edges[1:], counts):
        x0, x1 = x(left), x(right)
        parts.append(f'<rect x="{_f(x0)}" y="{_f(y(count))}" width="{_f(max(x1 - x0 - 1, 0.5))}" '
                     f'height="{_f(y(0) - y(count))}" fill="{escape(color)}">'
                     f'<title>{escape(_num(left))} to {escape(_num(right))}: {count}</title></rect>')
    parts.append(frame.x_axis_line(y(0.0)))
    parts += frame.x_ticks([(x(tick), _num(tick)) for tick in nice_ticks(lo, hi, clamp=True)])
    desc = [f"{_num(a)} to {_num(b)}: {c}" for a, b, c in zip(edges, edges[1:], counts)]
    return frame.render(parts, [f"{len(data)} values"] + desc)


def histogram_edges(data: Sequence[float], bins: int | Sequence[Number]) -> list[float]:
    if not isinstance(bins, int):
        edges = [float(e) for e in bins]
        if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
            raise ValueError("histogram edges must be at least two increasing numbers")
        return edges
    if bins < 1:
        raise ValueError("histogram needs at least one bin")
    if not data:
        return []
    lo, hi = data[0], data[-1]
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    step = (hi - lo) / bins
    return [lo + i * step for i in range(bins)] + [hi]


def histogram_counts(data: Sequence[float], edges: Sequence[float]) -> list[int]:
    counts = [0] * (len(edges) - 1)
    for v in data:
        if v < edges[0] or v > edges[-1]:
            continue
        i = min(bisect_right(edges, v) - 1, len(counts) - 1)
        counts[i] += 1
    return counts


def nice_ticks(lo: float, hi: float, count: int = 5, *, integer: bool = False, clamp: bool = False) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart).

    With `clamp`, only ticks inside [lo, hi] are returned (for an axis that
    must not extend past the data).
    """
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        lo, hi = (lo - 1, hi + 1) if lo else (0.0, 1.0)
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if raw <= m * magnitude * (1 + 1e-9))
    if integer:
        step = max(1.0, math.ceil(step))
    start = math.floor(lo / step + 1e-9) * step
    end = math.ceil(hi / step - 1e-9) * step
    ticks = [_round(start + i * step, step) for i in range(int(round((end - start) / step)) + 1)]
    if clamp:
        ticks = [t for t in ticks if lo - 1e-9 * step <= t <= hi + 1e-9 * step]
    return ticks


class _Frame:
    """The shared parts of a chart: the box, title, axes labels, y grid."""

    def __init__(self, kind: str, title: str, width: int, height: int, x_label: str, y_label: str,
                 legend_rows: int = 0) -> None:
        self.kind, self.title, self.width, self.height = kind, str(title), int(width), int(height)
        self.x_label, self.y_label = str(x_label), str(y_label)
        self.left = _LEFT
        self.top = _TOP + 18 * legend_rows
        self.right = self.width - _RIGHT
        self.bottom = self.height - _BOTTOM
        self.plot_w = max(self.right - self.left, 10)
        self.plot_h = max(self.bottom - self.top, 10)

    def y_scale(self, ticks: list[float]):
        lo, hi = ticks[0], ticks[-1]
        return lambda v: self.bottom - (v - lo) / (hi - lo) * self.plot_h

    def y_axis(self, ticks: list[float], y) -> list[str]:
        parts = []
        for tick in ticks:
            parts.append(f'<line x1="{_f(self.left)}" x2="{_f(self.right)}" y1="{_f(y(tick))}" y2="{_f(y(tick))}" '
                         f'stroke="#e3e3e3"/>')
            parts.append(f'<text x="{_f(self.left - 6)}" y="{_f(y(tick) + 4)}" text-anchor="end" {FONT}>'
                         f'{escape(_num(tick))}</text>')
        parts.append(f'<line x1="{_f(self.left)}" x2="{_f(self.left)}" y1="{_f(self.top)}" y2="{_f(self.bottom)}" '
                     f'stroke="#666"/>')
        return parts

    def x_ticks(self, ticks: list[tuple[float, str]]) -> list[str]:
        parts = []
        for at, label in ticks:
            # A label at the right edge would be cut off: it ends at its tick instead.
            anchor = "end" if at > self.right - 3.5 * len(label) else "middle"
            parts.append(f'<line x1="{_f(at)}" x2="{_f(at)}" y1="{_f(self.bottom)}" y2="{_f(self.bottom + 4)}" '
                         f'stroke="#666"/>')
            parts.append(f'<text x="{_f(at)}" y="{_f(self.bottom + 16)}" text-anchor="{anchor}" {FONT}>'
                         f'{escape(label)}</text>')
        return parts

    def x_axis_line(self, at: float) -> str:
        return f'<line x1="{_f(self.left)}" x2="{_f(self.right)}" y1="{_f(at)}" y2="{_f(at)}" stroke="#666"/>'

    def empty(self) -> Markup:
        note = (f'<text x="{_f(self.width / 2)}" y="{_f(self.height / 2)}" text-anchor="middle" {FONT}>'
                "No data</text>")
        return self.render([note], ["no data"], axes_labels=False)

    def render(self, parts: list[str], desc: list[str], *, axes_labels: bool = True) -> Markup:
        title = escape(self.title)
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{self.kind}" data-chart="{self.kind}" '
                f'role="img" aria-label="{title}" width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}">'
                f"<title>{title}</title><desc>{escape(self._describe(desc))}</desc>"
                f'<rect x="0" y="0" width="{self.width}" height="{self.height}" fill="#fff"/>'
                f'<text x="{_f(self.width / 2)}" y="18" text-anchor="middle" font-family="system-ui, sans-serif" '
                f'font-size="14" font-weight="600" fill="#222">{title}</text>')
        labels = []
        if axes_labels and self.x_label:
            labels.append(f'<text class="x-label" x="{_f(self.left + self.plot_w / 2)}" y="{_f(self.height - 8)}" '
                          f'text-anchor="middle" {FONT}>{escape(self.x_label)}</text>')
        if axes_labels and self.y_label:
            cy = self.top + self.plot_h / 2
            labels.append(f'<text class="y-label" x="14" y="{_f(cy)}" text-anchor="middle" '
                          f'transform="rotate(-90 14 {_f(cy)})" {FONT}>{escape(self.y_label)}</text>')
        return Markup(head + "".join(parts) + "".join(labels) + "</svg>")

    def _describe(self, items: list[str]) -> str:
        kind = {"bar": "Bar chart", "line": "Line chart", "histogram": "Histogram"}[self.kind]
        shown = items[:_DESC_ITEMS] + (["…"] if len(items) > _DESC_ITEMS else [])
        return f"{kind}. " + "; ".join(shown)


def _x_kind(x: XValue) -> str:
    if isinstance(x, datetime):
        return "datetime"
    if isinstance(x, date):
        return "date"
    return "number"


def _x_number(x: XValue, kind: str) -> float:
    if _x_kind(x) != kind:
        raise TypeError(f"line_chart x values must all be of one kind, got {kind} and {_x_kind(x)}")
    if kind == "datetime":
        aware = x if x.tzinfo else x.replace(tzinfo=UTC)
        return aware.timestamp() / 86400.0
    if kind == "date":
        return float(x.toordinal())
    return float(x)


def _x_ticks(lo: float, hi: float, kind: str) -> list[float]:
    if kind == "number":
        return nice_ticks(lo, hi, clamp=True)
    span = hi - lo  # in days
    if kind == "datetime" and span < 3:
        step = next((h / 24 for h in (1, 2, 3, 6, 12) if span * 24 / h <= 6), 1.0)
    elif span > 45:
        return _month_ticks(lo, hi, kind)
    else:
        step = next(s for s in (1, 2, 7, 14, 28) if span / s <= 6)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _month_ticks(lo: float, hi: float, kind: str) -> list[float]:
    """First days of months (every n-th month, at most 6 ticks)."""
    start = _to_date(lo, kind)
    end = _to_date(hi, kind)
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    every = next(n for n in (1, 2, 3, 6, 12, 24, 60, 120, 10**6) if months / n <= 6)
    index = start.year * 12 + start.month - 1
    index = -(-index // every) * every  # round up to a multiple of `every` (Jan, Apr, ... for 3)
    ticks = []
    while True:
        day = date(index // 12, index % 12 + 1, 1)
        value = float(day.toordinal()) if kind == "date" else _x_number(
            datetime(day.year, day.month, 1, tzinfo=UTC), kind)
        if value > hi + 1e-9:
            return ticks
        if value >= lo - 1e-9:
            ticks.append(value)
        index += every


def _to_date(value: float, kind: str) -> date:
    if kind == "date":
        return date.fromordinal(int(round(value)))
    return datetime.fromtimestamp(value * 86400.0, tz=UTC).date()


def _x_label(value: float, kind: str) -> str:
    if kind == "date":
        return date.fromordinal(int(round(value))).isoformat()
    if kind == "datetime":
        moment = datetime.fromtimestamp(value * 86400.0, tz=UTC)
        return moment.strftime("%Y-%m-%d %H:%M") if moment.hour or moment.minute else moment.strftime("%Y-%m-%d")
    return _num(value)


def _round(value: float, step: float) -> float:
    digits = max(0, -math.floor(math.log10(step)) + 2)
    return round(value, digits) + 0.0  # + 0.0: no "-0"


def _num(v: float) -> str:
    """A short, stable label for a number."""
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.4g}" if abs(v) >= 0.001 else f"{v:.2e}"


def _f(v: float) -> str:
    return f"{v:.1f}"


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(chars - 1, 1)] + "…"
