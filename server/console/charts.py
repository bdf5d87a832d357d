"""Small server-side SVG charts for console pages: bar, line (dates on x), histogram.

Each function returns inline SVG as `markupsafe.Markup` (safe to drop into a
Jinja template; in Python it is a `str`). Output is deterministic: the same
data gives the same bytes. Every label is escaped. Charts are accessible:
``role="img"``, an ``aria-label`` and a ``<title>`` with the chart's title, and
a ``<desc>`` listing the data. Labels never overlap or leave the chart: a
legend wraps onto more rows, crowded ticks are thinned, long labels clipped
(chart_frame.py places them; chart_layout.py checks). Charts scale to the
width of their container by their viewBox. In templates they are globals::

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

from flywheel.server.console.chart_frame import (
    DESC_ITEMS,
    FONT,
    LEGEND_ROW,
    TOP,
    Frame,
    f,
    fit,
    num,
    text_width,
)

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

Number = int | float
XValue = date | datetime | int | float


def bar_chart(data: Mapping[str, Number] | Iterable[tuple[str, Number]], *, title: str, x_label: str = "",
              y_label: str = "", width: int = 640, height: int = 320, color: str = PALETTE[0]) -> Markup:
    """One bar per category, in the order given; negative values hang below zero."""
    raw = [(str(k), v) for k, v in (data.items() if isinstance(data, Mapping) else data)
           if v is not None and math.isfinite(float(v))]
    items = [(k, float(v)) for k, v in raw]
    frame = Frame("bar", title, width, height, x_label, y_label)
    if not items:
        return frame.empty()
    ticks = nice_ticks(min(0.0, *(v for _, v in items)), max(0.0, *(v for _, v in items)),
                       integer=all(isinstance(v, int) for _, v in raw))
    y = frame.y_scale(ticks)
    band = frame.plot_w / len(items)
    bar_w = max(1.0, band * 0.8)
    parts = frame.y_axis(ticks, y)
    for i, (label, value) in enumerate(items):
        x = frame.left + i * band + (band - bar_w) / 2
        top, bottom = sorted((y(value), y(0.0)))
        parts.append(f'<rect x="{f(x)}" y="{f(top)}" width="{f(bar_w)}" height="{f(max(bottom - top, 0.5))}" '
                     f'fill="{escape(color)}"><title>{escape(label)}: {escape(num(value))}</title></rect>')
    parts += frame.category_labels([label for label, _ in items], band)
    parts.append(frame.x_axis_line(y(0.0)))
    return frame.render(parts, [f"{label}: {num(value)}" for label, value in items])


def line_chart(series: Mapping[str, Iterable[tuple[XValue, Number | None]]], *, title: str, x_label: str = "",
               y_label: str = "", width: int = 640, height: int = 320, zero_based: bool = False) -> Markup:
    """One line per series; x values are dates, datetimes or numbers (all of one kind).

    A missing value (None or NaN) breaks the line. Points are sorted by x. A
    series with a single point is labelled with its value (a lone dot says
    nothing by itself). With more than one series, a legend above the plot
    wraps onto as many rows as the names need.
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
    legend = legend_layout([name for name, _ in clean], width) if len(clean) > 1 else []
    rows = 1 + max((row for _, row, _ in legend), default=-1)
    frame = Frame("line", title, width, height, x_label, y_label, legend_rows=rows)
    values = [v for _, pts in clean for _, v in pts if v is not None]
    xs = [x for _, pts in clean for x, _ in pts]
    if not values:
        return frame.empty()
    lo, hi = min(values), max(values)
    if zero_based:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    elif lo == hi:  # one value: a range around it, not a unit either side of a tiny number
        pad = abs(lo) * 0.25 or 1.0
        lo, hi = lo - pad, hi + pad
    ticks = nice_ticks(lo, hi, integer=integer)
    y = frame.y_scale(ticks)
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1

    def x(value: float) -> float:
        return frame.left + (value - x_lo) / (x_hi - x_lo) * frame.plot_w

    parts = frame.y_axis(ticks, y)
    parts.append(frame.x_axis_line(frame.bottom))
    ticks_x = _x_ticks(x_lo, x_hi, kind)
    parts += frame.x_ticks([(x(tick), label) for tick, label in zip(ticks_x, _tick_labels(ticks_x, kind))])
    desc, singles = [], []
    for i, (name, pts) in enumerate(clean):
        color = PALETTE[i % len(PALETTE)]
        shown = [(px, v) for px, v in pts if v is not None]
        parts += _series(name, pts, color, x, y, kind)
        if len(shown) == 1:
            singles.append((name if legend else "", shown[0], color))
        text = [f"{_x_label(px, kind)} {num(v)}" for px, v in shown]
        desc.append(f"{name}: " + ", ".join(text[:DESC_ITEMS]) + (" …" if len(text) > DESC_ITEMS else ""))
    parts += frame.value_labels([(x(px), y(v), f"{who} {num(v)}".strip(), color) for who, (px, v), color in singles])
    return frame.render(parts + _legend(legend), desc)


def _legend(entries: list[tuple[str, int, float]]) -> list[str]:
    """A swatch and a name per series, where `legend_layout` put them."""
    parts = []
    for i, (name, row, at) in enumerate(entries):
        color = PALETTE[i % len(PALETTE)]
        base = TOP + 6 + LEGEND_ROW * row
        parts.append(f'<line x1="{f(at)}" x2="{f(at + 16)}" y1="{f(base - 4)}" y2="{f(base - 4)}" '
                     f'stroke="{color}" stroke-width="3"/>')
        parts.append(f'<text class="legend" x="{f(at + 20)}" y="{f(base)}" {FONT}>{escape(name)}</text>')
    return parts


def _series(name: str, pts: list[tuple[float, float | None]], color: str, x, y, kind: str) -> list[str]:
    """One series' line (broken at missing values) and, when few enough to see, its points."""
    path, run = [], 0
    for px, v in pts:
        if v is None:
            run = 0
            continue
        path.append(f"{'L' if run else 'M'}{f(x(px))},{f(y(v))}")
        run += 1
    parts = [f'<g class="series" data-series="{escape(name)}"><title>{escape(name)}</title>']
    if path:
        parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="2" '
                     f'stroke-linejoin="round"/>')
    valid = [(px, v) for px, v in pts if v is not None]
    if len(pts) <= 60:
        radius = "4" if len(valid) == 1 else "2.5"
        for px, v in valid:
            parts.append(f'<circle cx="{f(x(px))}" cy="{f(y(v))}" r="{radius}" fill="{color}">'
                         f'<title>{escape(name)} {escape(_x_label(px, kind))}: {escape(num(v))}</title>'
                         f'</circle>')
    parts.append("</g>")
    return parts


def legend_layout(names: list[str], width: int) -> list[tuple[str, int, float]]:
    """(shown name, row, x) of each legend entry: left to right, wrapping onto a new row
    when the next entry would pass the right edge (names too long for a row are clipped)."""
    left, right = 12.0, width - 8.0
    out, row, at = [], 0, left
    for name in names:
        shown = fit(name, right - left - 20)
        need = 20 + text_width(shown)
        if at > left and at + need > right:
            row, at = row + 1, left
        out.append((shown, row, at))
        at += need + 14
    return out


def histogram(values: Iterable[Number | None], *, title: str, bins: int | Sequence[Number] = 10,
              x_label: str = "", y_label: str = "count", width: int = 640, height: int = 320,
              color: str = PALETTE[2]) -> Markup:
    """Counts of `values` in `bins` equal-width bins (or between the given edges).

    Bins are closed on the left, and the last one on the right too; values
    outside explicit edges are left out. None and NaN are ignored.
    """
    data = sorted(float(v) for v in values if v is not None and math.isfinite(float(v)))
    frame = Frame("histogram", title, width, height, x_label, y_label)
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
        parts.append(f'<rect x="{f(x0)}" y="{f(y(count))}" width="{f(max(x1 - x0 - 1, 0.5))}" '
                     f'height="{f(y(0) - y(count))}" fill="{escape(color)}">'
                     f'<title>{escape(num(left))} to {escape(num(right))}: {count}</title></rect>')
    parts.append(frame.x_axis_line(y(0.0)))
    parts += frame.x_ticks([(x(tick), num(tick)) for tick in nice_ticks(lo, hi, clamp=True)])
    desc = [f"{num(a)} to {num(b)}: {c}" for a, b, c in zip(edges, edges[1:], counts)]
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
    return num(value)


def _tick_labels(ticks: list[float], kind: str) -> list[str]:
    """Labels of x ticks; hours within a day are written as "06:00", with the date only
    where it changes, so that the labels stay short enough to sit side by side."""
    if kind != "datetime":
        return [_x_label(t, kind) for t in ticks]
    out, day = [], None
    for tick in ticks:
        moment = datetime.fromtimestamp(tick * 86400.0, tz=UTC)
        out.append(_x_label(tick, kind) if moment.date() != day else moment.strftime("%H:%M"))
        day = moment.date()
    return out


def _round(value: float, step: float) -> float:
    digits = max(0, -math.floor(math.log10(step)) + 2)
    return round(value, digits) + 0.0  # + 0.0: no "-0"
