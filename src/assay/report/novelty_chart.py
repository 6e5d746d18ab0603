"""The chart of ``integrity.out_of_distribution``: novelty scores of the evaluation rows
against the training data's, with the 99th-percentile threshold (inline SVG, drawn with
the primitives of :mod:`assay.report.charts`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assay.report.charts import (
    ACCENT,
    GRID,
    PAD,
    SMALL,
    STATUS_COLOURS,
    TEXT,
    TICK,
    TITLE,
    Canvas,
    Scale,
    _finite,
    _frame,
    _legend,
    _never_fails,
    _title_place,
    _x_axis,
    _y_axis,
    nice_ticks,
)

REFERENCE = "#8c959f"


@_never_fails
def novelty_histogram(hist: Mapping[str, Any], *,
                      title: str = "Novelty scores: evaluation against training") -> str | None:
    """Share of rows per score bin, training (calibration half) and evaluation side by side,
    and the threshold beyond which a row counts as out of distribution."""
    edges = [float(e) for e in hist.get("edges") or []]
    ev = [float(v) for v in hist.get("evaluation") or []]
    rf = [float(v) for v in hist.get("reference") or []]
    thr = hist.get("threshold")
    if len(edges) < 2 or len(ev) != len(edges) - 1 or len(rf) != len(ev):
        return None
    left, top, plot_w, plot_h = 58.0, PAD + TITLE + 28, 420.0, 180.0
    bottom = top + plot_h
    x = Scale(edges[0], edges[-1], left, left + plot_w)
    y_hi = max([*ev, *rf, 0.01]) * 1.1
    y = Scale(0.0, y_hi, bottom, top)
    c = Canvas()
    _x_axis(c, x, nice_ticks(edges[0], edges[-1], 6), top, bottom, grid=False)
    _y_axis(c, y, [t for t in nice_ticks(0.0, y_hi, 5) if t <= y_hi], left, left + plot_w,
            grid=True)
    _frame(c, left, top, left + plot_w, bottom)
    for i in range(len(ev)):
        x0, x1 = x(edges[i]), x(edges[i + 1])
        w = (x1 - x0) / 2
        c.rect(x0 + 0.5, y(rf[i]), w - 0.5, bottom - y(rf[i]), fill=REFERENCE,
               title=f"training {edges[i]:.3g}-{edges[i + 1]:.3g}: {rf[i]:.1%}")
        c.rect(x0 + w, y(ev[i]), w - 0.5, bottom - y(ev[i]), fill=ACCENT,
               title=f"evaluation {edges[i]:.3g}-{edges[i + 1]:.3g}: {ev[i]:.1%}")
    entries = [("training rows (calibration half)", REFERENCE, None),
               ("evaluation rows", ACCENT, None)]
    if _finite(thr):
        tx = x(float(thr))
        c.line(tx, top, tx, bottom, colour=STATUS_COLOURS["fail"], width=1.4, dash="5 3")
        c.text(tx + 3, top + SMALL, f"99th percentile {float(thr):.3g}", size=SMALL,
               colour=STATUS_COLOURS["fail"])
        entries.append(("threshold", STATUS_COLOURS["fail"], "5 3"))
    _legend(c, left, PAD + TITLE + 12, entries)
    c.line(left, bottom, left + plot_w, bottom, colour=GRID, width=0.8)
    c.text(left + plot_w / 2, bottom + TICK + PAD + TEXT + PAD + TEXT,
           "novelty score (mean distance to the nearest training rows)", anchor="middle")
    c.text(PAD + TEXT / 2, top + plot_h / 2, "share of rows", rotate=True, anchor="middle")
    tx0, width = _title_place(title, left, left + plot_w + PAD)
    c.text(tx0, PAD + TITLE, title, size=TITLE, bold=True)
    height = bottom + TICK + PAD + 2 * TEXT + 2 * PAD
    return c.svg(width, height, title,
                 desc="Histogram of the novelty scores of the training data's calibration "
                      "rows and of the evaluation rows, with the threshold beyond which a row "
                      "is out of distribution.")
