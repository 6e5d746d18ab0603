"""Charts for the validation report, rendered by matplotlib to inline SVG.

Every function takes plain numbers (lists, dicts) as found in
``results.json`` and returns an ``<svg>`` element as a string, ready to be
placed in the HTML page: no files, no network, no JavaScript. Text stays text
(searchable, selectable) and every chart gets its own id prefix so several
charts can share one page. Labels that come from the user's data are passed
to matplotlib with math mode disabled and are escaped by its SVG writer.
"""

from __future__ import annotations

import functools
import html
import io
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib import rc_context
from matplotlib.figure import Figure

STATUS_COLOURS = {
    "pass": "#1a7f37",
    "warn": "#b35900",
    "fail": "#c62828",
    "skip": "#6e7781",
    "error": "#8250df",
    "info": "#0b5cad",
    None: "#6e7781",
}
INK = "#24292f"
GRID = "#d0d7de"
ACCENT = "#0b5cad"
MAX_ROWS = 40

_counter = itertools.count(1)

_RC = {
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.edgecolor": GRID,
    "axes.labelcolor": INK,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "xtick.color": INK,
    "ytick.color": INK,
    "text.usetex": False,
}


@dataclass
class Row:
    """One line of a forest plot."""

    label: str
    value: float | None
    lo: float | None = None
    hi: float | None = None
    status: str | None = None
    judged: bool = True


def plain(text: Any, limit: int = 40) -> str:
    """A user-provided label safe for matplotlib: no math mode, bounded length."""
    s = str(text)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("$", r"\$")


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _svg(fig: Figure, label: str) -> str:
    """The figure as an ``<svg>`` element; ``label`` describes it to screen readers."""
    buf = io.StringIO()
    with rc_context({**_RC, "svg.hashsalt": f"assay-chart-{next(_counter)}"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    start = text.find("<svg")
    svg = _drop_unreferenced_ids(text[start:])
    # The page's stylesheet scales charts down on narrow screens.
    aria = html.escape(label, quote=True)
    svg = svg.replace("<svg ", f'<svg class="chart" role="img" aria-label="{aria}" ', 1)
    return svg


def _never_fails(fn: Callable[..., str | None]) -> Callable[..., str | None]:
    """A chart that cannot be drawn becomes a visible note, never a failed report."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> str | None:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # the numbers are in the tables; say what is missing
            reason = html.escape(f"{type(exc).__name__}: {exc}")
            return f'<p class="muted small">chart not drawn ({reason})</p>'

    return wrapper


def _drop_unreferenced_ids(svg: str) -> str:
    """Remove the ids matplotlib puts on every group, keeping the referenced ones.

    Its structural ids (``figure_1``, ``axes_1``...) repeat in every chart and
    would be duplicates in one HTML page; clip paths and markers, which are
    referenced, carry hashed ids that differ between charts.
    """
    used = set(re.findall(r"#([A-Za-z_][\w.-]*)", svg))
    return re.sub(r'\sid="([^"]*)"', lambda m: m.group(0) if m.group(1) in used else "", svg)


def _figure(width: float, height: float) -> Figure:
    with rc_context(_RC):
        fig = Figure(figsize=(width, height), dpi=100)
    return fig


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)


def _threshold_lines(ax: Any, threshold: dict[str, float] | None) -> None:
    if not threshold:
        return
    lo, hi = threshold.get("min"), threshold.get("max")
    for bound, name in ((lo, "min"), (hi, "max")):
        if _finite(bound):
            ax.axvline(bound, color=STATUS_COLOURS["fail"], linestyle="--", linewidth=1,
                       label=f"threshold {name} {bound:g}")


@_never_fails
def forest(rows: Sequence[Row], *, title: str = "", xlabel: str = "",
           threshold: dict[str, float] | None = None,
           reference: float | None = None) -> str | None:
    """Point estimates with confidence intervals, one row per group or feature.

    Rows are coloured by status; rows that were not judged (too small) are
    drawn hollow and grey. ``threshold`` draws dashed lines at its bounds,
    ``reference`` a thin solid line (0 for differences, 1 for ratios).
    Returns None when no row has a value.
    """
    rows = [r for r in rows if _finite(r.value)]
    if not rows:
        return None
    if len(rows) > MAX_ROWS:
        # keep every failing or warning row, then the first others, in their order
        ranked = sorted(range(len(rows)),
                        key=lambda i: (rows[i].status not in ("fail", "warn"), i))
        chosen = sorted(ranked[:MAX_ROWS])
        title = f"{title} ({MAX_ROWS} of {len(rows)} rows: failures and warnings first)"
        rows = [rows[i] for i in chosen]
    with rc_context(_RC):
        fig = _figure(6.4, 0.9 + 0.3 * len(rows))
        ax = fig.add_subplot(1, 1, 1)
        ys = list(range(len(rows)))[::-1]
        for y, r in zip(ys, rows, strict=True):
            colour = STATUS_COLOURS.get(r.status if r.judged else None, STATUS_COLOURS[None])
            if _finite(r.lo) and _finite(r.hi):
                ax.plot([r.lo, r.hi], [y, y], color=colour, linewidth=1.6,
                        solid_capstyle="butt")
                ax.plot([r.lo, r.lo], [y - 0.15, y + 0.15], color=colour, linewidth=1)
                ax.plot([r.hi, r.hi], [y - 0.15, y + 0.15], color=colour, linewidth=1)
            ax.plot([r.value], [y], marker="o", markersize=6, color=colour,
                    markerfacecolor=colour if r.judged else "white", markeredgewidth=1.4)
        if reference is not None:
            ax.axvline(reference, color=INK, linewidth=0.8)
        _threshold_lines(ax, threshold)
        ax.set_yticks(ys)
        ax.set_yticklabels([plain(r.label) for r in rows])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        if xlabel:
            ax.set_xlabel(plain(xlabel, 80))
        if title:
            ax.set_title(plain(title, 90), loc="left")
        _style(ax)
        if threshold and any(_finite(threshold.get(k)) for k in ("min", "max")):
            ax.legend(loc="best", fontsize=7, frameon=False)
        return _svg(fig, title or "forest plot")


@_never_fails
def group_metrics(groups: dict[str, dict[str, Any]], *, attribute: str,
                  metrics: Sequence[str], reference: float | None = None,
                  title: str | None = None) -> str | None:
    """Small multiples: one panel per metric, one row per group, with intervals.

    ``attribute`` names the sensitive feature (shown as the axis label);
    ``reference`` draws a line in every panel (0 for gaps to a reference group).
    """
    names = list(groups)[:MAX_ROWS]
    metrics = [m for m in metrics
               if any(_finite(_metric(groups[g], m)[0]) for g in names)][:6]
    if not names or not metrics:
        return None
    with rc_context(_RC):
        width = min(2.3 * len(metrics) + 1.2, 10.5)
        fig = _figure(width, 1.0 + 0.3 * len(names))
        axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
        ys = list(range(len(names)))[::-1]
        for ax, metric in zip(axes, metrics, strict=True):
            for y, g in zip(ys, names, strict=True):
                value, ci = _metric(groups[g], metric)
                if not _finite(value):
                    continue
                judged = groups[g].get("judged", True) is not False
                colour = ACCENT if judged else STATUS_COLOURS[None]
                if ci and _finite(ci[0]) and _finite(ci[1]):
                    ax.plot([ci[0], ci[1]], [y, y], color=colour, linewidth=1.5)
                ax.plot([value], [y], marker="o", markersize=5, color=colour,
                        markerfacecolor=colour if judged else "white")
            if reference is not None:
                ax.axvline(reference, color=INK, linewidth=0.8)
            ax.set_title(plain(metric.replace("_", " "), 30), loc="left", fontsize=9)
            _style(ax)
        if title:
            fig.suptitle(plain(title, 100), x=0.01, y=1.0, ha="left", va="bottom",
                         fontsize=10, fontweight="bold")
        axes[0].set_yticks(ys)
        axes[0].set_yticklabels([plain(f"{g}") for g in names])
        axes[0].set_ylim(-0.7, len(names) - 0.3)
        axes[0].set_ylabel(plain(attribute))
        return _svg(fig, title or f"Metrics by {attribute}")


def _metric(group: dict[str, Any], metric: str) -> tuple[Any, Any]:
    entry = (group.get("metrics") or {}).get(metric)
    if isinstance(entry, dict):
        return entry.get("value"), entry.get("ci")
    return entry, None


@_never_fails
def reliability(calibration: dict[str, Any]) -> str | None:
    """Reliability curve: mean predicted score against observed positive rate per bin."""
    pred = calibration.get("mean_predicted") or []
    obs = calibration.get("fraction_positive") or []
    count = calibration.get("count") or [None] * len(pred)
    pts = [(p, o, c) for p, o, c in zip(pred, obs, count, strict=False)
           if _finite(p) and _finite(o)]
    if not pts:
        return None
    with rc_context(_RC):
        fig = _figure(4.6, 4.6)
        gs = fig.add_gridspec(2, 1, height_ratios=(3.2, 1), hspace=0.08)
        ax = fig.add_subplot(gs[0])
        ax.plot([0, 1], [0, 1], color=GRID, linewidth=1, linestyle="--",
                label="perfectly calibrated")
        ax.plot([p for p, _, _ in pts], [o for _, o, _ in pts], marker="o", markersize=4,
                color=ACCENT, linewidth=1.4, label="model")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("observed fraction positive")
        ax.set_title("Reliability (calibration)", loc="left")
        ax.legend(loc="upper left", fontsize=7, frameon=False)
        ax.tick_params(labelbottom=False)
        _style(ax)
        ax.grid(axis="y", color=GRID, linewidth=0.6)
        hx = fig.add_subplot(gs[1], sharex=ax)
        edges = calibration.get("bin_edges") or []
        counts = calibration.get("count") or []
        if len(edges) == len(counts) + 1 and counts:
            widths = [b - a for a, b in itertools.pairwise(edges)]
            hx.bar(edges[:-1], counts, width=widths, align="edge", color=ACCENT, alpha=0.35,
                   edgecolor="white", linewidth=0.4)
        hx.set_xlabel("mean predicted score")
        hx.set_ylabel("rows", fontsize=8)
        hx.tick_params(axis="y", labelsize=7)
        for side in ("top", "right"):
            hx.spines[side].set_visible(False)
        return _svg(fig, "Reliability (calibration) curve")


@_never_fails
def roc(fpr: Sequence[float], tpr: Sequence[float], *, auc: float | None = None) -> str | None:
    """ROC curve of the scores on the evaluation data."""
    pts = [(f, t) for f, t in zip(fpr, tpr, strict=False) if _finite(f) and _finite(t)]
    if len(pts) < 2:
        return None
    with rc_context(_RC):
        fig = _figure(4.6, 4.2)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot([0, 1], [0, 1], color=GRID, linewidth=1, linestyle="--", label="chance")
        label = f"model (AUC {auc:.3f})" if _finite(auc) else "model"
        ax.plot([f for f, _ in pts], [t for _, t in pts], color=ACCENT, linewidth=1.6,
                label=label)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("ROC curve", loc="left")
        ax.legend(loc="lower right", fontsize=7, frameon=False)
        _style(ax)
        ax.grid(axis="y", color=GRID, linewidth=0.6)
        return _svg(fig, "ROC curve")


PSI_MODERATE = 0.1
PSI_MAJOR = 0.25


@_never_fails
def psi_bars(psi: dict[str, float]) -> str | None:
    """Population stability index per feature, largest first, with the 0.1 / 0.25 bands."""
    items = sorted(((k, v) for k, v in psi.items() if _finite(v)), key=lambda kv: -kv[1])
    items = items[:MAX_ROWS]
    if not items:
        return None
    with rc_context(_RC):
        fig = _figure(6.4, 0.9 + 0.26 * len(items))
        ax = fig.add_subplot(1, 1, 1)
        ys = list(range(len(items)))[::-1]
        colours = [STATUS_COLOURS["fail"] if v >= PSI_MAJOR else
                   STATUS_COLOURS["warn"] if v >= PSI_MODERATE else STATUS_COLOURS["pass"]
                   for _, v in items]
        ax.barh(ys, [v for _, v in items], color=colours, height=0.62)
        ax.axvline(PSI_MODERATE, color=STATUS_COLOURS["warn"], linestyle="--", linewidth=1,
                   label="0.1 moderate shift")
        ax.axvline(PSI_MAJOR, color=STATUS_COLOURS["fail"], linestyle="--", linewidth=1,
                   label="0.25 major shift")
        ax.set_yticks(ys)
        ax.set_yticklabels([plain(k) for k, _ in items])
        ax.set_ylim(-0.7, len(items) - 0.3)
        ax.set_xlim(0, max(PSI_MAJOR * 1.2, max(v for _, v in items) * 1.08))
        ax.set_xlabel("PSI (evaluation against reference)")
        ax.set_title("Drift per feature", loc="left")
        ax.legend(loc="lower right", fontsize=7, frameon=False)
        _style(ax)
        return _svg(fig, "Population stability index per feature")
