"""The console's SVG charts: well-formed, deterministic, escaped, accessible, and right."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
from markupsafe import Markup

from flywheel.server.console.charts import (
    bar_chart,
    histogram,
    histogram_counts,
    line_chart,
    nice_ticks,
)

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
    assert "2026-03-01 06:00" in texts(parse(line_chart(moments, title="t")))
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
