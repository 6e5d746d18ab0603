"""Charts of the privacy checks' details, drawn like :mod:`assay.report.charts`."""

from __future__ import annotations

from collections.abc import Mapping

from assay.report.charts import (
    INK,
    PAD,
    ROW,
    STATUS_COLOURS,
    TEXT,
    TICK,
    TITLE,
    Canvas,
    Scale,
    _frame,
    _x_axis,
    nice_ticks,
    plain,
    text_width,
)


def class_sizes(rows_by_size: Mapping[str, int], *, what: str = "k") -> str | None:
    """Share of rows by the size (k) or diversity (l) of their equivalence class: one bar per
    value below the limit (red: re-identifiable) and one for ``>= limit`` (green)."""
    items = [(str(k), int(v)) for k, v in rows_by_size.items() if int(v) > 0]
    total = sum(v for _, v in items)
    if not items or total <= 0:
        return None
    shares = [(k, v / total) for k, v in items]
    labels = [plain(f"{what} = {k}" if not k.startswith(">=") else f"{what} {k}")
              for k, _ in shares]
    hi = 1.0
    ticks = nice_ticks(0.0, hi)
    left = PAD + max(text_width(s) for s in labels) + TICK + PAD
    top = PAD + TITLE + 10
    plot_w = 400.0
    row = ROW * 0.85
    bottom = top + row * len(shares)
    height = bottom + TICK + PAD + TEXT + PAD + TEXT + 10
    width = left + plot_w + 2 * PAD + 40
    x = Scale(0.0, hi, left, left + plot_w)
    c = Canvas()
    _x_axis(c, x, ticks, top, bottom)
    _frame(c, left, top, left + plot_w, bottom)
    for i, ((key, share), label) in enumerate(zip(shares, labels, strict=True)):
        y = top + row * (i + 0.5)
        colour = STATUS_COLOURS["pass"] if key.startswith(">=") else STATUS_COLOURS["fail"]
        c.rect(left, y - row * 0.31, max(x(share) - left, 0.5), row * 0.62, fill=colour,
               title=f"{label}: {share:.1%} of rows")
        c.text(x(share) + 4, y, f"{share:.1%}", middle=True)
        c.line(left - TICK, y, left, y, colour=INK, width=0.8)
        c.text(left - TICK - PAD / 2, y, label, anchor="end", middle=True)
    title = "Rows by class size" if what == "k" else "Rows by distinct sensitive values"
    c.text(left, PAD + TITLE, title, size=TITLE, bold=True)
    c.text(left + plot_w / 2, bottom + TICK + PAD + TEXT + PAD + TEXT,
           "share of the rows", anchor="middle")
    return c.svg(width, height, title)


__all__ = ["class_sizes"]
