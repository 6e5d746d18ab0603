"""The monitoring chart: a value per window over time with its interval band, threshold
and breached windows, as well-formed SVG whose marks sit where the axes say."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

from assay.report.charts import TimePoint, date_ticks, timeseries

SVG = "{http://www.w3.org/2000/svg}"
DAY0 = date(2026, 3, 2)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def y_ticks(root: ET.Element) -> list[tuple[float, float]]:
    """(value, y) of the y-axis tick labels (right-aligned text)."""
    return sorted((float(t.text.replace("\u2212", "-")), float(t.get("y")))
                  for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end")


def y_of(ticks: list[tuple[float, float]], value: float) -> float:
    (v0, y0), (v1, y1) = ticks[0], ticks[-1]
    return y0 + (value - v0) * (y1 - y0) / (v1 - v0)


def points(values, *, fail=(), warn=()) -> list[TimePoint]:
    out = []
    for i, v in enumerate(values):
        state = "fail" if i in fail else "warn" if i in warn else "pass"
        out.append(TimePoint(DAY0 + timedelta(days=i), v, None if v is None else v - 0.02,
                             None if v is None else v + 0.02, state))
    return out


def test_threshold_band_line_and_breaches_are_drawn_where_the_values_are() -> None:
    values = [0.03, 0.05, 0.04, 0.31, 0.06, 0.05]
    svg = timeseries(points(values, fail={3}), title="drift.feature: income",
                     ylabel="psi", threshold={"max": 0.1})
    root = parse(svg)
    # a title and a description for assistive technology, from the numbers
    assert root.get("role") == "img" and root.get("aria-label") == "drift.feature: income"
    assert root.find(f"{SVG}title").text == "drift.feature: income"
    desc = root.find(f"{SVG}desc").text
    assert "6 windows from 2026-03-02 to 2026-03-07" in desc and "1 window(s) breached" in desc
    ticks = y_ticks(root)
    [threshold] = [e for e in root.iter(f"{SVG}line") if e.get("class") == "threshold"]
    assert threshold.get("stroke-dasharray") == "5,3"
    # the threshold line is at 0.1 on the y axis (labels are centred 4.32 px below ticks)
    assert abs(float(threshold.get("y1")) - (y_of(ticks, 0.1) - 12 * 0.36)) < 0.3
    [breach] = [e for e in root.iter(f"{SVG}circle") if e.get("class") == "breach"]
    assert breach.find(f"{SVG}title").text == "2026-03-05: 0.31 [0.29, 0.33] (fail)"
    # the breached point is above the threshold line (smaller y), the others below it
    others = [e for e in root.iter(f"{SVG}circle")
              if e.find(f"{SVG}title") is not None and e.get("class") != "breach"]
    assert len(others) == 5
    assert float(breach.get("cy")) < float(threshold.get("y1"))
    assert all(float(e.get("cy")) > float(threshold.get("y1")) for e in others)
    assert len(list(e for e in root.iter(f"{SVG}polygon") if e.get("class") == "band")) == 1
    assert len(list(root.iter(f"{SVG}polyline"))) == 1
    # dates along the x axis, in order
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "middle"]
    assert labels[0] == "2026-03-02" and labels == sorted(labels)


def test_a_window_without_a_value_breaks_the_line_and_the_band() -> None:
    root = parse(timeseries(points([0.02, 0.03, None, 0.04, 0.05]), title="x",
                            threshold={"min": 0.01, "max": 0.2}))
    assert len(list(root.iter(f"{SVG}polyline"))) == 2
    assert len([e for e in root.iter(f"{SVG}polygon") if e.get("class") == "band"]) == 2
    assert len([e for e in root.iter(f"{SVG}line") if e.get("class") == "threshold"]) == 2


def test_a_year_of_windows_marks_only_the_breaches_and_stays_small() -> None:
    values = [0.05 + 0.01 * (i % 7) for i in range(365)]
    fails = {40, 41, 200}
    svg = timeseries(points(values, fail=fails, warn={100}), title="a year",
                     threshold={"max": 0.1})
    root = parse(svg)
    marked = [e for e in root.iter(f"{SVG}circle") if e.find(f"{SVG}title") is not None]
    assert len(marked) == 4
    assert len([e for e in marked if e.get("class") == "breach"]) == 3
    assert len(svg) < 40_000
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "middle"]
    assert labels[0] == "2026-05" and "2027-01" in labels  # months, not 365 dates


def test_user_text_is_escaped_and_no_value_draws_nothing() -> None:
    svg = timeseries(points([0.1, 0.2]), title="feature <script>alert(1)</script> & co")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    parse(svg)
    assert timeseries(points([None, None]), title="nothing") is None
    one = parse(timeseries(points([0.4]), title="one window", threshold={"max": 0.5}))
    assert len([e for e in one.iter(f"{SVG}circle") if e.find(f"{SVG}title") is not None]) == 1


def test_date_ticks_are_days_weeks_or_months() -> None:
    assert [d.isoformat() for d, _ in date_ticks(DAY0, DAY0 + timedelta(days=3))] == [
        "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]
    weeks = date_ticks(DAY0, DAY0 + timedelta(days=59))
    assert [d for d, _ in weeks] == [DAY0 + timedelta(days=14 * i) for i in range(5)]
    months = date_ticks(DAY0, DAY0 + timedelta(days=364))
    assert [label for _, label in months] == ["2026-05", "2026-07", "2026-09", "2026-11",
                                              "2027-01", "2027-03"]
    assert [label for _, label in date_ticks(date(2022, 3, 2), date(2026, 3, 1))] == [
        "2023", "2024", "2025", "2026"]
