"""The console's SVG charts: well-formed, deterministic, escaped, accessible, right, and laid out.

Every chart this module renders is checked by the layout rule (no two labels
overlap, none leaves the chart; see server/console/chart_layout.py for how
label boxes are estimated): the chart functions are imported wrapped.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from markupsafe import Markup

from flywheel.server.console import charts
from flywheel.server.console.chart_layout import layout_problems, text_boxes
from flywheel.server.console.charts import histogram_counts, nice_ticks


def _laid_out(chart):
    """`chart`, asserting the layout rule on everything it draws."""

    def render(*args, **kwargs):
        svg = chart(*args, **kwargs)
        problems = layout_problems(svg)
        assert not problems, f"{chart.__name__}{args[:1]}: {problems}"
        return svg

    return render


bar_chart, line_chart, histogram = (_laid_out(c) for c in (charts.bar_chart, charts.line_chart, charts.histogram))

SVG = "{http://www.w3.org/2000/svg}"
DAY0 = date(2026, 3, 1)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything not well-formed


def texts(root: ET.Element) -> list[str]:
    return [t.text for t in root.iter(f"{SVG}text")]


def test_bar_chart_draws_one_bar_per_category_in_order():
    svg = bar_chart({"ok": 12, "failed": 3, "queued": 0}, title="Jobs", x_label="state", y_label="jobs")
    assert isinstance(svg, Markup)
    root = parse(svg)
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert [b.find(f"{SVG}title").text for b in bars] == ["ok: 12", "failed: 3", "queued: 0"]
    heights = [float(b.get("height")) for b in bars]
    assert heights[0] > heights[1] > heights[2] and heights[0] / heights[1] == pytest.approx(4, rel=0.02)
    assert {"ok", "failed", "queued", "state", "jobs", "Jobs"} <= set(texts(root))
    # Integer data gets integer ticks; the axis covers the data.
    ticks = [t for t in texts(root) if re.fullmatch(r"-?[\d,.]+", t)]
    assert all("." not in t for t in ticks) and max(int(t) for t in ticks) >= 12


def test_bar_chart_handles_negative_values_and_pairs():
    root = parse(bar_chart([("gain", 5.5), ("loss", -2.25)], title="PnL"))
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    (gain, loss) = bars
    assert float(gain.get("y")) + float(gain.get("height")) == pytest.approx(float(loss.get("y")), abs=0.11)
    assert "-2.25" in loss.find(f"{SVG}title").text


def test_charts_are_accessible():
    for svg in (bar_chart({"a": 1}, title="Bars"), line_chart({"s": [(DAY0, 1)]}, title="Lines"),
                histogram([1, 2, 3], title="Spread")):
        root = parse(svg)
        assert root.get("role") == "img" and root.get("aria-label")
        first = list(root)[0]
        assert first.tag == f"{SVG}title" and first.text == root.get("aria-label")
        assert root.find(f"{SVG}desc").text  # the data, for screen readers
        assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"


def test_labels_are_escaped():
    evil = '<script>alert("x")</script> & "quotes"'
    for svg in (bar_chart({evil: 1}, title=evil, x_label=evil, y_label=evil),
                line_chart({evil: [(DAY0, 1), (DAY0 + timedelta(days=1), 2)], "b": [(DAY0, 3)]}, title=evil),
                histogram([1, 2], title=evil, x_label=evil)):
        assert "<script>" not in svg and "&lt;script&gt;" in svg
        root = parse(svg)
        assert root.get("aria-label") == evil and root.find(f"{SVG}title").text == evil


def test_output_is_deterministic():
    series = {"p50": [(DAY0 + timedelta(days=i), math.sin(i) + 2) for i in range(40)],
              "p99": [(DAY0 + timedelta(days=i), math.cos(i) + 5) for i in range(0, 40, 3)]}
    assert line_chart(series, title="Latency") == line_chart(dict(series), title="Latency")
    assert bar_chart({"a": 1.5, "b": 2}, title="x") == bar_chart({"a": 1.5, "b": 2}, title="x")
    values = [((i * 7919) % 101) / 10 for i in range(500)]
    assert histogram(values, title="h", bins=12) == histogram(list(values), title="h", bins=12)


def test_line_chart_has_a_path_per_series_a_legend_and_dates_on_x():
    series = {"read": [(DAY0 + timedelta(days=i), i) for i in range(10)],
              "write": [(DAY0 + timedelta(days=i), 10 - i) for i in range(10)]}
    root = parse(line_chart(series, title="Ops", y_label="ops"))
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "series"]
    assert [g.get("data-series") for g in groups] == ["read", "write"]
    for g in groups:
        assert len(g.findall(f"{SVG}path")) == 1 and len(g.findall(f"{SVG}circle")) == 10
    labels = texts(root)
    assert "read" in labels and "write" in labels  # the legend
    dates = [t for t in labels if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t)]
    assert dates and dates == sorted(dates) and all("2026-03-01" <= d <= "2026-03-10" for d in dates)
    # The first point is at the left of the plot, the last at the right.
    xs = [float(c.get("cx")) for c in groups[0].findall(f"{SVG}circle")]
    assert xs == sorted(xs) and xs[0] < xs[-1]


def test_line_chart_breaks_at_missing_values_and_sorts_points():
    points = [(DAY0 + timedelta(days=2), 3), (DAY0, 1), (DAY0 + timedelta(days=1), None),
              (DAY0 + timedelta(days=3), float("nan")), (DAY0 + timedelta(days=4), 5)]
    root = parse(line_chart({"s": points}, title="gaps"))
    d = root.find(f".//{SVG}path").get("d")
    assert d.count("M") == 3 and "L" not in d  # three lone points, no segment across a gap
    assert len(root.findall(f".//{SVG}circle")) == 3


def test_line_chart_with_long_ranges_ticks_months_and_accepts_datetimes():
    long = {"s": [(DAY0 + timedelta(days=i), i) for i in range(200)]}
    dates = [t for t in texts(parse(line_chart(long, title="t"))) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t or "")]
    assert dates and all(d.endswith("-01") for d in dates) and len(dates) <= 7
    moments = {"s": [(datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=h), h) for h in range(12)]}
    assert {"2026-03-01", "04:00"} <= set(texts(parse(line_chart(moments, title="t"))))
    with pytest.raises(TypeError, match="one kind"):
        line_chart({"s": [(DAY0, 1), (3.0, 2)]}, title="mixed")


def test_histogram_counts_every_value_once():
    values = [0, 0.5, 1, 1, 2, 3.5, 4, 4, 4, 10]
    root = parse(histogram(values + [None, float("nan")], title="h", bins=5))
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    counts = [int(b.find(f"{SVG}title").text.rsplit(": ", 1)[1]) for b in bars]
    assert len(bars) == 5 and sum(counts) == len(values) and counts == [4, 2, 3, 0, 1]  # [0,2) [2,4) [4,6) [6,8) [8,10]
    assert "10 values" in root.find(f"{SVG}desc").text
    assert histogram_counts([1, 2, 3, 9], [0, 2, 4]) == [1, 2]  # 9 is outside explicit edges
    assert "1 to 2" in histogram([1.5, 1.7], title="h", bins=[1, 2, 3])


def test_empty_and_degenerate_data_still_render():
    for svg in (bar_chart({}, title="none"), line_chart({"s": []}, title="none"), histogram([], title="none"),
                histogram([None], title="none")):
        root = parse(svg)
        assert "No data" in texts(root) and root.get("aria-label") == "none"
    assert "7" in texts(parse(histogram([7, 7, 7], title="same")))
    parse(line_chart({"s": [(DAY0, 2)]}, title="one point"))


@pytest.mark.parametrize("lo, hi", [(0, 97), (-3, 12), (0.001, 0.0042), (5, 5), (0, 0), (1e6, 3.3e6), (-8, -2)])
def test_nice_ticks_cover_the_range_in_round_steps(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert ticks[0] <= lo and ticks[-1] >= hi and 2 <= len(ticks) <= 12
    steps = {round(b - a, 12) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 2.5, 5)


# -- layout ---------------------------------------------------------------------

def test_the_layout_check_sees_overlaps_and_labels_outside():
    """The rule is not vacuous: two labels on one spot, and one past the edge, are caught."""
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 100">'
           '<text x="50" y="50" font-size="12">overlapping</text><text x="60" y="52" font-size="12">text</text>'
           '<text x="190" y="20" font-size="12">too far</text>'
           '<text x="14" y="50" text-anchor="middle" transform="rotate(-90 14 50)" font-size="12">rotated</text>'
           '</svg>')
    problems = layout_problems(svg)
    assert "'overlapping' overlaps 'text'" in problems
    assert any(p.startswith("'too far' leaves the chart") for p in problems)
    boxes, size = text_boxes(svg)
    rotated = next(b for b in boxes if b.text == "rotated")  # 7 chars: 50.4 px tall once turned
    assert size == (200, 100) and rotated.y1 - rotated.y0 == pytest.approx(7 * 12 * 0.6)
    assert rotated.x1 - rotated.x0 == pytest.approx(12)


SMART_COUNTERS = ["5 reallocated", "197 pending", "187 uncorrectable", "198 offline uncorrectable", "188 timeouts",
                  "199 CRC errors"]


def test_the_legend_wraps_and_names_every_series():
    """The drive page's six SMART counters at its width (460 px): every name shows, on several rows."""
    series = {name: [(DAY0 + timedelta(days=d), d * i) for d in range(30)] for i, name in enumerate(SMART_COUNTERS)}
    root = parse(line_chart(series, title="SMART error counters", y_label="raw value", width=460, height=280,
                            zero_based=True))
    legend = [t for t in root.iter(f"{SVG}text") if t.get("class") == "legend"]
    assert [t.text for t in legend] == SMART_COUNTERS
    assert len({t.get("y") for t in legend}) >= 2, "six names do not fit on one row of 460 px"
    # The plot starts below the last legend row.
    lowest = max(float(t.get("y")) for t in legend)
    assert all(float(line.get("y1")) > lowest for line in root.iter(f"{SVG}line") if line.get("stroke") == "#e3e3e3")


@pytest.mark.parametrize("width", [300, 460, 640])
def test_date_ticks_never_overlap(width):
    for days in (7, 30, 90, 400):
        line_chart({"failures": [(DAY0 + timedelta(days=d), d % 5) for d in range(days)]}, title="t", width=width)
    hours = {"s": [(datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=h), h) for h in range(40)]}
    labels = texts(parse(line_chart(hours, title="t", width=width)))
    assert "2026-03-02" in labels or "2026-03-01" in labels


def test_category_labels_never_overlap_and_are_clipped_to_their_bar():
    models = {f"ST{i}000NM0055-1V4104": i + 1 for i in range(12)}  # real drive model names are long
    root = parse(bar_chart(models, title="At-risk drives by model", y_label="drives", width=460, height=280))
    labels = [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.startswith("ST")]
    assert labels and all(t.endswith("…") for t in labels)
    # Every bar keeps its full name in its tooltip.
    assert len([r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]) == 12
    bar_chart({str(i): i for i in range(200)}, title="many", width=300, height=200)
    bar_chart({"a": 1_250_000, "b": 2_500_000}, title="wide ticks", y_label="bytes", width=300, height=200)


def test_a_single_point_reads_as_a_value():
    root = parse(line_chart({"risk": [(DAY0, 0.4213)]}, title="Risk history", width=460, height=280,
                            zero_based=True))
    values = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "value"]
    assert values == ["0.4213"]
    assert float(root.find(f".//{SVG}circle").get("r")) > 2.5  # a marker, not a speck
    two = parse(line_chart({"a": [(DAY0, 3)], "b": [(DAY0, 3)]}, title="same value", width=300, height=200))
    assert sorted(t.text for t in two.iter(f"{SVG}text") if t.get("class") == "value") == ["a 3", "b 3"]
    # Not near zero: the axis spans the value, not a unit either side of it.
    ticks = [float(t.replace(",", "")) for t in texts(parse(line_chart({"s": [(DAY0, 0.003)]}, title="tiny")))
             if re.fullmatch(r"-?\d[\d,]*(\.\d+)?(e-?\d+)?", t)]
    assert max(ticks) - min(ticks) < 0.01


def test_long_titles_and_axis_labels_are_clipped_not_cut_off():
    long = "A title far too long for the narrow chart it sits on top of, going on and on"
    histogram([1, 2, 3], title=long, x_label=long, y_label=long, width=300, height=200)


def test_charts_scale_with_their_container():
    root = parse(bar_chart({"a": 1}, title="t", width=460, height=280))
    assert root.get("viewBox") == "0 0 460 280" and root.get("preserveAspectRatio") == "xMidYMid meet"
    css = (Path(charts.__file__).parent / "static" / "console.css").read_text()
    assert re.search(r"svg\.chart \{[^}]*width: 100%; height: auto", css)
