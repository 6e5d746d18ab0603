"""The report's charts: well-formed SVG whose marks sit where their axes say."""

from __future__ import annotations

import itertools
import math
import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from assay.report import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(f"{SVG}text"))


def tick_positions(root: ET.Element) -> dict[str, float]:
    """x of every centred label (the x-axis tick labels) by its text."""
    return {t.text or "": float(t.get("x")) for t in texts(root)
            if t.get("text-anchor") == "middle" and t.get("transform") is None}


def x_of(ticks: dict[str, float], value: float) -> float:
    """Where ``value`` falls on the axis, interpolated between two labelled ticks."""
    pts = sorted((float(k.replace("\u2212", "-")), v) for k, v in ticks.items()
                 if re.fullmatch(r"\u2212?\d+(\.\d+)?", k))
    (a, xa), (b, xb) = pts[0], pts[-1]
    return xa + (value - a) / (b - a) * (xb - xa)


@pytest.mark.parametrize(("lo", "hi"), [(0, 0.06), (-0.105, 0.09), (0.53, 0.68), (0, 1),
                                        (-3.2e-5, 7e-5), (12_000, 980_000), (5, 5)])
def test_nice_ticks_span_the_range_with_round_steps(lo, hi):
    ticks = charts.nice_ticks(lo, hi, 6)
    assert ticks[0] <= lo and ticks[-1] >= hi
    steps = {round(b - a, 12) for a, b in itertools.pairwise(ticks)}
    step = steps.pop()
    assert not steps, "evenly spaced"
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))
    assert 3 <= len(ticks) <= 10


def test_nice_ticks_refuse_non_finite_bounds():
    with pytest.raises(ValueError, match="finite"):
        charts.nice_ticks(0, float("nan"))


def test_tick_labels_have_the_decimals_of_their_step():
    assert [charts.tick_label(v, 0.02) for v in (0.0, 0.02, 0.04)] == ["0.00", "0.02", "0.04"]
    assert charts.tick_label(-0.25, 0.25) == "\u22120.25"
    assert charts.tick_label(-0.0, 0.5) == "0.0"
    assert charts.tick_label(2000, 1000) == "2000"
    assert charts.tick_label(2_000_000, 1_000_000) == "2e+06"


def test_text_width_follows_the_font():
    assert charts.text_width("iiii") < charts.text_width("WWWW")
    assert charts.text_width("abc", 24) == pytest.approx(2 * charts.text_width("abc", 12))
    assert charts.text_width("abc", bold=True) > charts.text_width("abc")
    assert charts.text_width("日本") > charts.text_width("ab")  # wide characters count double


def test_forest_points_and_intervals_sit_on_their_axis():
    rows = [charts.Row("a", 0.2, 0.1, 0.3, "pass"), charts.Row("b", 0.5, 0.45, 0.62, "fail"),
            charts.Row("small", 0.35, judged=False)]
    root = parse(charts.forest(rows, title="AUC by group", threshold={"max": 0.55}))
    ticks = tick_positions(root)
    circles = list(root.iter(f"{SVG}circle"))
    assert len(circles) == 3
    for circle, row in zip(circles, rows, strict=True):
        assert float(circle.get("cx")) == pytest.approx(x_of(ticks, row.value), abs=0.6)
    # rows top to bottom in their order, the unjudged one hollow and grey
    ys = [float(c.get("cy")) for c in circles]
    assert ys == sorted(ys)
    assert circles[2].get("fill") == "#fff" and circles[2].get("stroke") == "#6e7781"
    assert circles[1].get("fill") == charts.STATUS_COLOURS["fail"]
    # the interval of "b" spans lo to hi; the threshold is a dashed line at 0.55
    lines = list(root.iter(f"{SVG}line"))
    span = [ln for ln in lines if ln.get("y1") == ln.get("y2") == circles[1].get("cy")
            and ln.get("stroke") == charts.STATUS_COLOURS["fail"]]
    assert span and float(span[0].get("x1")) == pytest.approx(x_of(ticks, 0.45), abs=0.6)
    assert float(span[0].get("x2")) == pytest.approx(x_of(ticks, 0.62), abs=0.6)
    dashed = [ln for ln in lines if ln.get("stroke-dasharray") and ln.get("x1") == ln.get("x2")]
    assert [float(ln.get("x1")) for ln in dashed] == [pytest.approx(x_of(ticks, 0.55), abs=0.6)]
    # every point says what it is when hovered
    assert circles[1].find(f"{SVG}title").text == "b: 0.5 [0.45, 0.62]"
    assert circles[2].find(f"{SVG}title").text == "small: 0.35 (not judged)"


def test_labels_fit_inside_the_chart():
    long = "a very long feature name that goes on"
    rows = [charts.Row(long, 0.1), charts.Row("WWWWWWWWWWWWWWWWWW", 0.2)]
    root = parse(charts.forest(rows, title="A title far longer than the plot is wide, " * 2))
    width = float(root.get("width"))
    for t in texts(root):
        size = float(t.get("font-size") or charts.TEXT)
        w = charts.text_width(t.text or "", size, bold=t.get("font-weight") == "bold")
        x = float(t.get("x"))
        start = {"end": x - w, "middle": x - w / 2}.get(t.get("text-anchor"), x)
        if t.get("transform") is None:
            assert start >= 0 and start + w <= width + 0.5, (t.text, start, w, width)


def test_user_text_is_escaped_and_control_characters_dropped():
    svg = charts.forest([charts.Row("<script>alert(1)</script>", 0.1),
                         charts.Row("tab\tand\x00nul & $x$", 0.2)], title='"quoted" <b>')
    root = parse(svg)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    labels = [t.text for t in texts(root)]
    assert "<script>alert(1)</script>" in labels
    assert "tab and nul & $x$" in labels  # no math mode: dollars stay dollars
    assert root.get("aria-label") == '"quoted" <b>'


def test_charts_carry_no_ids_and_are_deterministic():
    groups = {"Female": {"metrics": {"tpr": {"value": 0.6, "ci": [0.5, 0.7]}}},
              "Male": {"metrics": {"tpr": {"value": 0.7, "ci": [0.65, 0.75]}}, "judged": False}}
    made = [
        charts.forest([charts.Row("a", 0.1), charts.Row("b", 0.2)], title="t"),
        charts.group_metrics(groups, attribute="sex", metrics=["tpr"]),
        charts.reliability({"mean_predicted": [0.1, 0.5, 0.9],
                            "fraction_positive": [0.12, 0.4, 0.95],
                            "bin_edges": [0, 0.33, 0.66, 1], "count": [50, 30, 20]}),
        charts.roc([0, 0.1, 0.5, 1], [0, 0.6, 0.9, 1], auc=0.87),
        charts.psi_bars({"age": 0.02, "income": 0.3}),
    ]
    for svg in made:
        root = parse(svg)
        assert root.get("class") == "chart" and root.get("role") == "img"
        assert not [e for e in root.iter() if e.get("id") is not None]
        assert "<script" not in svg and "href" not in svg
    again = charts.group_metrics(groups, attribute="sex", metrics=["tpr"])
    assert again == made[1]


def test_group_metrics_draw_one_panel_per_metric():
    groups = {g: {"metrics": {"tpr": {"value": v, "ci": [v - 0.1, v + 0.1]}, "fpr": v / 2}}
              for g, v in (("a", 0.5), ("b", 0.6), ("c", 0.7))}
    root = parse(charts.group_metrics(groups, attribute="grp", metrics=["tpr", "fpr", "nope"],
                                      reference=0.0))
    titles = [t.text for t in texts(root) if t.get("font-weight") == "bold"]
    assert titles == ["tpr", "fpr"]  # a metric no group has is not drawn
    assert len(list(root.iter(f"{SVG}circle"))) == 6
    rotated = [t.text for t in texts(root) if t.get("transform")]
    assert rotated == ["grp"]


def test_roc_and_reliability_use_the_unit_square():
    root = parse(charts.roc([0, 0.2, 1], [0, 0.8, 1], auc=0.8))
    line = next(root.iter(f"{SVG}polyline"))
    pts = [tuple(map(float, p.split(","))) for p in line.get("points").split()]
    (x0, y0), (x1, y1), (x2, y2) = pts
    assert x0 < x1 < x2 and y0 > y1 > y2  # up and to the right
    assert (x1 - x0) / (x2 - x0) == pytest.approx(0.2, abs=0.01)
    assert (y0 - y1) / (y0 - y2) == pytest.approx(0.8, abs=0.01)
    rel = parse(charts.reliability({"mean_predicted": [0.2, 0.8], "fraction_positive": [0.1, 0.9],
                                    "bin_edges": [0, 0.5, 1], "count": [30, 10]}))
    bars = list(rel.iter(f"{SVG}rect"))
    assert len(bars) == 2
    assert float(bars[0].get("height")) > 2.9 * float(bars[1].get("height"))


def test_psi_bars_are_coloured_by_the_shift_bands():
    root = parse(charts.psi_bars({"low": 0.05, "moderate": 0.15, "major": 0.4}))
    fills = {r.find(f"{SVG}title").text.split(":")[0]: r.get("fill")
             for r in root.iter(f"{SVG}rect")}
    assert fills == {"major": charts.STATUS_COLOURS["fail"],
                     "moderate": charts.STATUS_COLOURS["warn"],
                     "low": charts.STATUS_COLOURS["pass"]}


def test_rendering_a_report_needs_no_plotting_library():
    """The report's charts are written directly: matplotlib is never imported."""
    src = Path(__file__).resolve().parent.parent / "src"
    tests = Path(__file__).resolve().parent
    code = textwrap.dedent("""
        import sys
        from test_report import sample_results
        from assay.report import render_report
        html = render_report(sample_results())
        assert html.count('<svg class="chart"') >= 11, html.count("<svg")
        print(sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib"))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), str(tests)]))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
