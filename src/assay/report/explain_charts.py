"""Charts of the Explainability section: permutation importance with interval whiskers.

Inline SVG in the style of :mod:`assay.report.charts` (same canvas, fonts,
axes and colours): horizontal bars, one per feature, most important first,
with the bootstrap interval drawn as a whisker; and the same per protected
group, one bar per group and feature, so a reader sees at a glance whether
the model leans on other inputs for one group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from assay.report.charts import (
    ACCENT,
    INK,
    MAX_ROWS,
    PAD,
    ROW,
    SMALL,
    TEXT,
    TICK,
    TITLE,
    Canvas,
    Scale,
    _finite,
    _frame,
    _legend,
    _legend_width,
    _never_fails,
    _title_place,
    _x_axis,
    data_range,
    nice_ticks,
    plain,
    text_width,
)

#: Colours of the groups in a per-group chart (colour-blind safe, Okabe-Ito).
GROUP_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00",
                 "#f0e442", "#000000")


def _entries(imp: Mapping[str, Any]) -> list[tuple[str, float, float | None, float | None]]:
    out = []
    for f in imp.get("features") or []:
        if not isinstance(f, Mapping) or not _finite(f.get("mean")):
            continue
        ci = f.get("ci") or [None, None]
        lo, hi = (ci[0], ci[1]) if len(ci) == 2 else (None, None)
        out.append((str(f.get("feature")), float(f["mean"]),
                    float(lo) if _finite(lo) else None, float(hi) if _finite(hi) else None))
    return out


@_never_fails
def importance_bars(series: Sequence[tuple[str, Mapping[str, Any]]], *, title: str,
                    xlabel: str = "", order: Sequence[str] | None = None) -> str | None:
    """Bars of permutation importance with interval whiskers.

    ``series`` is a list of (name, importance) where importance is the
    ``{"features": [{"feature", "mean", "ci"}, ...]}`` block of results.json;
    one series draws one bar per feature, several draw one bar per series
    within each feature's row (with a legend). Features follow ``order``, else
    the first series' ranking.
    """
    data = [(plain(name, 30), {e[0]: e for e in _entries(imp)}) for name, imp in series]
    data = [(n, d) for n, d in data if d]
    if not data:
        return None
    feats = list(order) if order else list(data[0][1])
    for _, d in data[1:]:
        feats += [f for f in d if f not in feats]
    feats = feats[:MAX_ROWS]
    values = [0.0]
    for _, d in data:
        for f in feats:
            if f in d:
                _, m, lo, hi = d[f]
                values += [v for v in (m, lo, hi) if v is not None]
    lo_v, hi_v = data_range(values, margin=0.06)
    lo_v = min(lo_v, 0.0)
    ticks = [t for t in nice_ticks(lo_v, hi_v, 5) if lo_v - 1e-12 <= t <= hi_v + 1e-12]
    labels = [plain(f) for f in feats]
    left = PAD + max(text_width(s) for s in labels) + TICK + PAD
    top = PAD + TITLE + 10
    plot_w = 380.0
    k = len(data)
    row = ROW * (0.9 if k == 1 else max(1.0, 0.55 * k))
    bottom = top + row * len(feats)
    x = Scale(lo_v, hi_v, left, left + plot_w)
    c = Canvas()
    _x_axis(c, x, ticks, top, bottom)
    _frame(c, left, top, left + plot_w, bottom)
    band = row * 0.7 / k
    for i, (f, label) in enumerate(zip(feats, labels, strict=True)):
        yc = top + row * (i + 0.5)
        c.line(left - TICK, yc, left, yc, colour=INK, width=0.8)
        c.text(left - TICK - PAD / 2, yc, label, anchor="end", middle=True)
        for s, (name, d) in enumerate(data):
            if f not in d:
                continue
            _, m, lo, hi = d[f]
            colour = ACCENT if k == 1 else GROUP_COLOURS[s % len(GROUP_COLOURS)]
            y = yc - row * 0.35 + band * (s + 0.5)
            a, b = sorted((x(0.0), x(m)))
            ci = f" [{lo:.3g}, {hi:.3g}]" if lo is not None and hi is not None else ""
            c.rect(a, y - band * 0.4, b - a, band * 0.8, fill=colour, opacity=0.85,
                   title=f"{name + ': ' if k > 1 else ''}{f}: {m:.3g}{ci}")
            if lo is not None and hi is not None:
                c.line(x(lo), y, x(hi), y, colour=INK, width=1.2)
                for v in (lo, hi):
                    c.line(x(v), y - band * 0.3, x(v), y + band * 0.3, colour=INK, width=1.2)
    c.line(x(0.0), top, x(0.0), bottom, colour=INK, width=1.0)
    height = bottom + TICK + PAD + TEXT + PAD
    if xlabel:
        c.text(left + plot_w / 2, height + TEXT, plain(xlabel, 80), anchor="middle")
        height += TEXT + PAD
    legend: list[tuple[str, str, str | None]] = []
    if k > 1:
        legend = [(n, GROUP_COLOURS[s % len(GROUP_COLOURS)], None)
                  for s, (n, _) in enumerate(data)]
        _legend(c, left, height + SMALL / 2 + 2, legend)
        height += SMALL + 2 * PAD
    title = plain(title, 100)
    tx, width = _title_place(title, left, left + plot_w + 2 * PAD)
    width = max(width, left + _legend_width(legend) + PAD)
    c.text(tx, PAD + TITLE, title, size=TITLE, bold=True)
    return c.svg(width, height + PAD, title,
                 desc=f"{title}: the drop of the score when each input is shuffled, with "
                      "its bootstrap interval as a whisker; longer bars matter more")


def explain_charts(check: Mapping[str, Any]) -> str | None:
    """The charts of an explain.* check from its details (None when it has none)."""
    details = check.get("details") or {}
    imp = details.get("importance")
    if not isinstance(imp, Mapping):
        return None
    metric = str(details.get("metric") or "score")
    n = details.get("sample_rows")
    sample = f", sample of {n:,} rows" if isinstance(n, int) else ""
    overall = check.get("id") != "explain.group_dependence"  # that one shows its groups
    charts = [importance_bars([("overall", imp)], title="Permutation importance (overall)",
                              xlabel=f"drop of {metric} when the input is shuffled{sample}")
              ] if overall else []
    order = [str(f.get("feature")) for f in imp.get("features") or [] if isinstance(f, Mapping)]
    for attr, groups in (details.get("by_group") or {}).items():
        if not isinstance(groups, Mapping) or not groups:
            continue
        series = [(f"{attr}={g}", gi) for g, gi in groups.items() if isinstance(gi, Mapping)]
        charts.append(importance_bars(series, title=f"Permutation importance by {attr}",
                                      xlabel=f"drop of {metric} within each group",
                                      order=order))
    out = [ch for ch in charts if ch]
    return "\n".join(out) if out else None
