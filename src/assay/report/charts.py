"""Charts for the validation report, written directly as inline SVG.

Every function takes plain numbers (lists, dicts) as found in
``results.json`` and returns an ``<svg>`` element as a string, ready to be
placed in the HTML page: no files, no network, no JavaScript, no ids (so any
number of charts can share one page). Text stays text (searchable,
selectable) and everything that comes from the user's data is escaped.

The charts are few and simple (points with intervals, small multiples of
them, a reliability curve with its histogram, a ROC curve, horizontal bars),
so they are laid out here rather than by a plotting library: a report's
thirty-odd charts take milliseconds instead of seconds, and the page does not
depend on a plotting library being installed. Label widths are measured with
the advance widths of DejaVu Sans, the widest of the fonts the page asks for,
so labels never overlap the plot in the browsers' usual fallbacks.
"""

from __future__ import annotations

import functools
import html
import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

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

FONT_FAMILY = "'DejaVu Sans', Verdana, 'Segoe UI', Helvetica, Arial, sans-serif"
#: Font sizes in px: tick labels and axis labels, titles, legends.
TEXT, TITLE, SMALL = 12.0, 13.0, 10.0
ROW = 26.0          # height of one row of a forest plot or a bar chart
TICK = 4.0          # length of a tick mark
PAD = 6.0           # space between a tick mark and its label, and around the chart

# Advance widths of the printable ASCII characters (32 to 126) in DejaVu Sans and
# DejaVu Sans Bold, in thousandths of an em (read from the fonts' hmtx tables).
_WIDTHS = (
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636,
    636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698,
    770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732,
    684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635,
    634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592,
    525, 636, 337, 636, 838,
)
_BOLD_WIDTHS = (
    348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696,
    696, 696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734,
    830, 683, 683, 821, 837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812,
    774, 1103, 771, 724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 435, 716,
    712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652,
    582, 712, 365, 712, 838,
)


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
    """A user-provided label for a chart: one line, no control characters, bounded length."""
    s = _printable(str(text))
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


def text_width(text: str, size: float = TEXT, *, bold: bool = False) -> float:
    """Width in px of ``text`` set in DejaVu Sans at ``size`` px (an upper bound elsewhere)."""
    table = _BOLD_WIDTHS if bold else _WIDTHS
    total = 0
    for ch in text:
        code = ord(ch)
        if 32 <= code <= 126:
            total += table[code - 32]
        elif unicodedata.combining(ch):
            continue
        elif unicodedata.east_asian_width(ch) in ("W", "F"):
            total += 1000
        else:
            total += 700 if bold else 640
    return total * size / 1000


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


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


# --------------------------------------------------------------------------- scales and ticks


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values covering ``[lo, hi]``: steps of 1, 2, 2.5 or 5 times a power of ten.

    The first tick is the largest round value <= ``lo`` and the last the
    smallest >= ``hi``, so the ticks span the data; about ``target`` of them.
    """
    if not (_finite(lo) and _finite(hi)):
        raise ValueError(f"ticks need finite bounds, got {lo!r} and {hi!r}")
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(target, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.floor(lo / step + 1e-9) * step
    count = math.ceil((hi - first) / step - 1e-9) + 1
    return [_clean(first + i * step, step) for i in range(count)]


def _clean(value: float, step: float) -> float:
    """``value`` rounded to the precision of ``step`` (no 0.30000000000000004)."""
    digits = max(0, 1 - math.floor(math.log10(step))) + 1
    out = round(value, digits)
    return 0.0 if out == 0 else out


def tick_label(value: float, step: float) -> str:
    """A tick's label with as many decimals as the step needs; a true minus sign."""
    big = max(abs(value), step)
    if big >= 1e6 or step < 1e-4:
        text = f"{value:.3g}"
    else:
        decimals = 0
        while decimals < 6 and abs(round(step, decimals) - step) > step * 1e-6:
            decimals += 1
        text = f"{value:.{decimals}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", "\u2212")


class Scale:
    """A linear map from data values to pixels along one axis."""

    def __init__(self, lo: float, hi: float, start: float, end: float) -> None:
        if hi == lo:
            hi = lo + 1.0
        self.lo, self.hi, self.start, self.end = lo, hi, start, end

    def __call__(self, value: float) -> float:
        return self.start + (value - self.lo) / (self.hi - self.lo) * (self.end - self.start)


def data_range(values: Sequence[float], *, margin: float = 0.05) -> tuple[float, float]:
    """The range of ``values`` widened by ``margin`` of its span on each side."""
    lo, hi = min(values), max(values)
    if hi == lo:
        pad = abs(lo) * 0.1 or 0.5
        return lo - pad, hi + pad
    span = hi - lo
    return lo - margin * span, hi + margin * span


def _axis_bounds(values: Sequence[float], length: float) -> tuple[float, float, list[float]]:
    """Axis limits for ``values`` (with margins), and the ticks inside them for an axis
    ``length`` px long (4 to 8 of them)."""
    lo, hi = data_range(values)
    target = max(4, min(8, round(length / 34)))
    ticks = [t for t in nice_ticks(lo, hi, target) if lo - 1e-12 <= t <= hi + 1e-12]
    return lo, hi, ticks


# --------------------------------------------------------------------------- SVG writer


def _f(x: float) -> str:
    """A coordinate: one decimal, no trailing zero."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _e(text: Any) -> str:
    """Text or attribute value for the SVG: escaped, without characters XML forbids."""
    return html.escape(_printable(str(text)), quote=True)


def _printable(s: str) -> str:
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() or ch == " " else " " for ch in s)


class Canvas:
    """The elements of one chart, in drawing order; :meth:`svg` closes it."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def line(self, x1: float, y1: float, x2: float, y2: float, *, colour: str = INK,
             width: float = 1.0, dash: str | None = None, cls: str | None = None) -> None:
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        extra += f' class="{cls}"' if cls else ""
        self.parts.append(f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" '
                          f'stroke="{colour}" stroke-width="{width:g}"{extra}/>')

    def polyline(self, points: Sequence[tuple[float, float]], *, colour: str, width: float,
                 dash: str | None = None) -> None:
        pts = " ".join(f"{_f(x)},{_f(y)}" for x, y in points)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" '
                          f'stroke-width="{width:g}" stroke-linejoin="round"{extra}/>')

    def circle(self, x: float, y: float, r: float, *, colour: str, fill: str | None = None,
               width: float = 1.2, title: str | None = None, cls: str | None = None) -> None:
        body = f"<title>{_e(title)}</title>" if title else ""
        tag = (f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{r:g}" fill="{fill or colour}" '
               f'stroke="{colour}" stroke-width="{width:g}"')
        if cls:
            tag += f' class="{cls}"'
        self.parts.append(f"{tag}>{body}</circle>" if body else f"{tag}/>")

    def polygon(self, points: Sequence[tuple[float, float]], *, fill: str,
                opacity: float | None = None, cls: str | None = None) -> None:
        pts = " ".join(f"{_f(x)},{_f(y)}" for x, y in points)
        extra = f' fill-opacity="{opacity:g}"' if opacity is not None else ""
        extra += f' class="{cls}"' if cls else ""
        self.parts.append(f'<polygon points="{pts}" fill="{fill}" stroke="none"{extra}/>')

    def rect(self, x: float, y: float, w: float, h: float, *, fill: str,
             opacity: float | None = None, stroke: str | None = None,
             title: str | None = None) -> None:
        extra = f' fill-opacity="{opacity:g}"' if opacity is not None else ""
        if stroke:
            extra += f' stroke="{stroke}" stroke-width="0.5"'
        body = f"<title>{_e(title)}</title>" if title else ""
        tag = (f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 0.0))}" '
               f'height="{_f(max(h, 0.0))}" fill="{fill}"{extra}')
        self.parts.append(f"{tag}>{body}</rect>" if body else f"{tag}/>")

    def text(self, x: float, y: float, text: str, *, size: float = TEXT,
             anchor: str = "start", bold: bool = False, colour: str = INK,
             rotate: bool = False, middle: bool = False) -> None:
        """Text whose baseline is at ``y`` (or centred on ``y`` when ``middle``)."""
        if middle:
            y += size * 0.36
        attrs = f'x="{_f(x)}" y="{_f(y)}"'
        if size != TEXT:
            attrs += f' font-size="{size:g}"'
        if anchor != "start":
            attrs += f' text-anchor="{anchor}"'
        if bold:
            attrs += ' font-weight="bold"'
        if colour != INK:
            attrs += f' fill="{colour}"'
        if rotate:
            attrs += f' transform="rotate(-90 {_f(x)} {_f(y)})"'
        self.parts.append(f"<text {attrs}>{_e(text)}</text>")

    def svg(self, width: float, height: float, label: str, desc: str | None = None) -> str:
        """The chart; with ``desc``, also a ``<title>`` and a ``<desc>`` for assistive
        technology (what the chart shows, in words)."""
        w, h = math.ceil(width), math.ceil(height)
        head = (f'<svg class="chart" role="img" aria-label="{_e(label)}" '
                f'xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
                f'viewBox="0 0 {w} {h}" font-family="{_e(FONT_FAMILY)}" '
                f'font-size="{TEXT:g}" fill="{INK}">')
        about = [f"<title>{_e(label)}</title>", f"<desc>{_e(desc)}</desc>"] if desc else []
        return "\n".join([head, *about, *self.parts, "</svg>"])


def _x_axis(c: Canvas, scale: Scale, ticks: Sequence[float], top: float, bottom: float, *,
            grid: bool = True, labels: bool = True) -> None:
    """Vertical grid lines at ``ticks`` from ``top`` to ``bottom``, tick marks and labels."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else abs(ticks[0]) if ticks and ticks[0] else 1.0
    for t in ticks:
        x = scale(t)
        if grid:
            c.line(x, top, x, bottom, colour=GRID, width=0.6)
        c.line(x, bottom, x, bottom + TICK, colour=INK, width=0.8)
        if labels:
            c.text(x, bottom + TICK + PAD + TEXT * 0.72, tick_label(t, step), anchor="middle")


def _y_axis(c: Canvas, scale: Scale, ticks: Sequence[float], left: float, right: float, *,
            grid: bool = False, size: float = TEXT) -> None:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else abs(ticks[0]) if ticks and ticks[0] else 1.0
    for t in ticks:
        y = scale(t)
        if grid:
            c.line(left, y, right, y, colour=GRID, width=0.6)
        c.line(left - TICK, y, left, y, colour=INK, width=0.8)
        c.text(left - TICK - PAD / 2, y, tick_label(t, step), anchor="end", middle=True,
               size=size)


def _frame(c: Canvas, left: float, top: float, right: float, bottom: float) -> None:
    """The left and bottom spines (top and right are left open)."""
    c.line(left, top, left, bottom, colour=GRID, width=0.8)
    c.line(left, bottom, right, bottom, colour=GRID, width=0.8)


def _title_place(title: str, left: float, width: float) -> tuple[float, float]:
    """Where a chart's title starts, and the chart's width once it fits.

    The title starts above the plot's left edge when it fits there, further
    left when it does not, and widens the chart only if it is longer than that.
    """
    w = text_width(title, TITLE, bold=True)
    x = min(left, max(PAD, width - PAD - w))
    return x, max(width, x + w + PAD)


def _legend_width(entries: Sequence[tuple[str, str, str | None]]) -> float:
    return sum(22 + text_width(label, SMALL) + 14 for label, _, _ in entries)


def _legend(c: Canvas, x: float, y: float, entries: Sequence[tuple[str, str, str | None]], *,
            anchor: str = "start") -> None:
    """One line of legend entries (label, colour, dash pattern) starting at (x, y)."""
    if anchor == "end":
        x -= _legend_width(entries) - 14
    for label, colour, dash in entries:
        c.line(x, y, x + 18, y, colour=colour, width=1.4, dash=dash)
        c.text(x + 22, y, label, size=SMALL, middle=True)
        x += 22 + text_width(label, SMALL) + 14


def _threshold_entries(threshold: dict[str, float] | None) -> list[tuple[str, float]]:
    if not threshold:
        return []
    return [(f"threshold {name} {bound:g}", bound) for name in ("min", "max")
            if _finite(bound := threshold.get(name))]


# --------------------------------------------------------------------------- charts


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
    bounds = _threshold_entries(threshold)
    values = [v for r in rows for v in (r.value, r.lo, r.hi) if _finite(v)]
    values += [b for _, b in bounds] + ([reference] if _finite(reference) else [])
    plot_w = 440.0
    lo, hi, ticks = _axis_bounds(values, plot_w)

    labels = [plain(r.label) for r in rows]
    title = plain(title, 90)
    left = PAD + max(text_width(s) for s in labels) + TICK + PAD
    top = PAD + (TITLE + 10 if title else 4)
    first = top + ROW * 0.7  # the first row's centre: some air above and below the rows
    bottom = first + ROW * (len(rows) - 0.3)
    height = bottom + TICK + PAD + TEXT + PAD
    if xlabel:
        height += TEXT + 4
    legend = [(name, STATUS_COLOURS["fail"], "5,3") for name, _ in bounds]
    if legend:
        height += SMALL + 10
    width = max(left + plot_w + 2 * PAD + 12, left + _legend_width(legend) + PAD)
    title_x, width = _title_place(title, left, width)
    x = Scale(lo, hi, left, left + plot_w)

    c = Canvas()
    _x_axis(c, x, ticks, top, bottom)
    _frame(c, left, top, left + plot_w, bottom)
    if _finite(reference):
        c.line(x(reference), top, x(reference), bottom, colour=INK, width=0.8)
    for _, bound in bounds:
        c.line(x(bound), top, x(bound), bottom, colour=STATUS_COLOURS["fail"], width=1.0,
               dash="5,3")
    for i, (r, label) in enumerate(zip(rows, labels, strict=True)):
        y = first + ROW * i
        colour = STATUS_COLOURS.get(r.status if r.judged else None, STATUS_COLOURS[None])
        c.line(left - TICK, y, left, y, colour=INK, width=0.8)
        c.text(left - TICK - PAD / 2, y, label, anchor="end", middle=True)
        tip = f"{r.label}: {r.value:.4g}"
        if _finite(r.lo) and _finite(r.hi):
            c.line(x(r.lo), y, x(r.hi), y, colour=colour, width=1.6)
            c.line(x(r.lo), y - 4, x(r.lo), y + 4, colour=colour, width=1.0)
            c.line(x(r.hi), y - 4, x(r.hi), y + 4, colour=colour, width=1.0)
            tip += f" [{r.lo:.4g}, {r.hi:.4g}]"
        if not r.judged:
            tip += " (not judged)"
        c.circle(x(r.value), y, 4.0, colour=colour, fill=colour if r.judged else "#fff",
                 width=1.4, title=tip)
    if title:
        c.text(title_x, PAD + TITLE, title, size=TITLE, bold=True)
    y = bottom + TICK + PAD + TEXT + PAD
    if xlabel:
        y += TEXT
        c.text(left + plot_w / 2, y, plain(xlabel, 80), anchor="middle")
        y += 4
    if legend:
        _legend(c, left, y + SMALL / 2 + 4, legend)
    return c.svg(width, height, title or "forest plot")


def _metric(group: dict[str, Any], metric: str) -> tuple[Any, Any]:
    entry = (group.get("metrics") or {}).get(metric)
    if isinstance(entry, dict):
        return entry.get("value"), entry.get("ci")
    return entry, None


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
    labels = [plain(g) for g in names]
    title = plain(title, 100) if title else ""
    axis_label = plain(attribute)
    panel_w, gap = 170.0, 26.0
    left = PAD + TEXT + PAD + max(text_width(s) for s in labels) + TICK + PAD
    top = PAD + (TITLE + 8 if title else 0) + TEXT + 8
    first = top + ROW * 0.7
    bottom = first + ROW * (len(names) - 0.3)
    height = bottom + TICK + PAD + TEXT + PAD
    width = max(left + len(metrics) * (panel_w + gap) - gap + PAD + 12,
                PAD + text_width(title, TITLE, bold=True) + PAD)

    c = Canvas()
    if title:
        c.text(PAD, PAD + TITLE, title, size=TITLE, bold=True)
    for i, label in enumerate(labels):
        c.text(left - TICK - PAD / 2, first + ROW * i, label, anchor="end", middle=True)
    c.text(PAD + TEXT * 0.8, (top + bottom) / 2, axis_label, anchor="middle", rotate=True)
    for k, metric in enumerate(metrics):
        x0 = left + k * (panel_w + gap)
        values = []
        for g in names:
            value, ci = _metric(groups[g], metric)
            if _finite(value):
                values.append(value)
                if ci and len(ci) == 2 and _finite(ci[0]) and _finite(ci[1]):
                    values += [ci[0], ci[1]]
        if _finite(reference):
            values.append(reference)
        lo, hi, ticks = _axis_bounds(values, panel_w)
        x = Scale(lo, hi, x0, x0 + panel_w)
        _x_axis(c, x, ticks, top, bottom)
        _frame(c, x0, top, x0 + panel_w, bottom)
        c.text(x0, top - 8, plain(metric.replace("_", " "), 30), bold=True)
        for i, g in enumerate(names):
            y = first + ROW * i
            if k == 0:
                c.line(x0 - TICK, y, x0, y, colour=INK, width=0.8)
            value, ci = _metric(groups[g], metric)
            if not _finite(value):
                continue
            judged = groups[g].get("judged", True) is not False
            colour = ACCENT if judged else STATUS_COLOURS[None]
            tip = f"{g}, {metric}: {value:.4g}"
            if ci and len(ci) == 2 and _finite(ci[0]) and _finite(ci[1]):
                c.line(x(ci[0]), y, x(ci[1]), y, colour=colour, width=1.5)
                tip += f" [{ci[0]:.4g}, {ci[1]:.4g}]"
            c.circle(x(value), y, 3.5, colour=colour, fill=colour if judged else "#fff",
                     title=tip)
        if _finite(reference):
            c.line(x(reference), top, x(reference), bottom, colour=INK, width=0.8)
    return c.svg(width, height, title or f"Metrics by {attribute}")


def _unit_axes(left: float, top: float, size_x: float, size_y: float) -> tuple[Scale, Scale]:
    """Scales of a [0, 1] x [0, 1] plot whose top-left corner is at (left, top)."""
    return Scale(0.0, 1.0, left, left + size_x), Scale(0.0, 1.0, top + size_y, top)


UNIT_TICKS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


@_never_fails
def reliability(calibration: dict[str, Any]) -> str | None:
    """Reliability curve: mean predicted score against observed positive rate per bin."""
    pred = calibration.get("mean_predicted") or []
    obs = calibration.get("fraction_positive") or []
    count = calibration.get("count") or [None] * len(pred)
    pts = [(p, o, n) for p, o, n in zip(pred, obs, count, strict=False)
           if _finite(p) and _finite(o)]
    if not pts:
        return None
    edges = calibration.get("bin_edges") or []
    counts = calibration.get("count") or []
    bars: list[tuple[float, float, float]] = []
    if len(edges) == len(counts) + 1 and counts:
        bars = [(float(a), float(b), float(n))
                for a, b, n in zip(edges[:-1], edges[1:], counts, strict=True)]
    left, top, size = PAD + TEXT + PAD + 34.0, PAD + TITLE + 12, 330.0
    main_h, gap, hist_h = 250.0, 10.0, 70.0
    width = left + size + PAD + 14
    height = top + main_h + gap + hist_h + TICK + PAD + TEXT * 2 + PAD + 6
    c = Canvas()
    x, y = _unit_axes(left, top, size, main_h)
    for t in UNIT_TICKS:
        c.line(x(t), top, x(t), top + main_h, colour=GRID, width=0.6)
        c.line(left, y(t), left + size, y(t), colour=GRID, width=0.6)
    _y_axis(c, y, UNIT_TICKS, left, left + size)
    _frame(c, left, top, left + size, top + main_h)
    c.line(x(0), y(0), x(1), y(1), colour=GRID, width=1.0, dash="5,3")
    line = [(x(_clip(p)), y(_clip(o))) for p, o, _ in pts]
    c.polyline(line, colour=ACCENT, width=1.4)
    for (px, py), (p, o, n) in zip(line, pts, strict=True):
        tip = f"mean score {p:.3g}, observed {o:.3g}" + (f", {n:g} rows" if _finite(n) else "")
        c.circle(px, py, 3.0, colour=ACCENT, title=tip)
    c.text(left, PAD + TITLE, "Reliability (calibration)", size=TITLE, bold=True)
    _legend(c, left + 8, top + 12, [("perfectly calibrated", GRID, "5,3")])
    _legend(c, left + 8, top + 28, [("model", ACCENT, None)])
    c.text(PAD + TEXT * 0.8, top + main_h / 2, "observed fraction positive", anchor="middle",
           rotate=True)
    # the histogram of scores under it, on the same x axis
    h_top = top + main_h + gap
    h_bottom = h_top + hist_h
    if bars:
        peak = max(n for _, _, n in bars) or 1.0
        h_ticks = [t for t in nice_ticks(0.0, peak, 3) if t <= peak]
        hy = Scale(0.0, max(peak, h_ticks[-1]) * 1.05, h_bottom, h_top)
        _y_axis(c, hy, h_ticks, left, left + size, size=SMALL)
        for a, b, n in bars:
            c.rect(x(_clip(a)), hy(n), x(_clip(b)) - x(_clip(a)), h_bottom - hy(n),
                   fill=ACCENT, opacity=0.35, stroke="#fff", title=f"{a:.2g} to {b:.2g}: {n:g}")
    _frame(c, left, h_top, left + size, h_bottom)
    _x_axis(c, x, UNIT_TICKS, h_top, h_bottom, grid=False)
    c.text(PAD + TEXT * 0.8, (h_top + h_bottom) / 2, "rows", anchor="middle", rotate=True,
           size=SMALL)
    c.text(left + size / 2, h_bottom + TICK + PAD + TEXT * 2 + 4, "mean predicted score",
           anchor="middle")
    return c.svg(width, height, "Reliability (calibration) curve")


def _clip(v: float) -> float:
    return min(max(float(v), 0.0), 1.0)


@_never_fails
def roc(fpr: Sequence[float], tpr: Sequence[float], *, auc: float | None = None,
        title: str = "ROC curve", name: str = "model", xlabel: str = "false positive rate",
        ylabel: str = "true positive rate") -> str | None:
    """ROC curve of the scores on the evaluation data (or of another scorer: ``name``)."""
    pts = [(f, t) for f, t in zip(fpr, tpr, strict=False) if _finite(f) and _finite(t)]
    if len(pts) < 2:
        return None
    left, top, size_x, size_y = PAD + TEXT + PAD + 34.0, PAD + TITLE + 12, 330.0, 300.0
    width = left + size_x + PAD + 14
    height = top + size_y + TICK + PAD + TEXT * 2 + PAD + 6
    c = Canvas()
    x, y = _unit_axes(left, top, size_x, size_y)
    for t in UNIT_TICKS:
        c.line(x(t), top, x(t), top + size_y, colour=GRID, width=0.6)
        c.line(left, y(t), left + size_x, y(t), colour=GRID, width=0.6)
    _x_axis(c, x, UNIT_TICKS, top, top + size_y, grid=False)
    _y_axis(c, y, UNIT_TICKS, left, left + size_x)
    _frame(c, left, top, left + size_x, top + size_y)
    c.line(x(0), y(0), x(1), y(1), colour=GRID, width=1.0, dash="5,3")
    c.polyline([(x(_clip(f)), y(_clip(t))) for f, t in pts], colour=ACCENT, width=1.6)
    label = f"{name} (AUC {auc:.3f})" if _finite(auc) else name
    right = left + size_x - 8
    _legend(c, right, top + size_y - 28, [("chance", GRID, "5,3")], anchor="end")
    _legend(c, right, top + size_y - 12, [(label, ACCENT, None)], anchor="end")
    c.text(left, PAD + TITLE, title, size=TITLE, bold=True)
    c.text(PAD + TEXT * 0.8, top + size_y / 2, ylabel, anchor="middle", rotate=True)
    c.text(left + size_x / 2, top + size_y + TICK + PAD + TEXT * 2 + 4, xlabel,
           anchor="middle")
    return c.svg(width, height, title)


PSI_MODERATE = 0.1
PSI_MAJOR = 0.25


@_never_fails
def psi_bars(psi: dict[str, float]) -> str | None:
    """Population stability index per feature, largest first, with the 0.1 / 0.25 bands."""
    items = sorted(((k, v) for k, v in psi.items() if _finite(v)), key=lambda kv: -kv[1])
    items = items[:MAX_ROWS]
    if not items:
        return None
    labels = [plain(k) for k, _ in items]
    hi = max(PSI_MAJOR * 1.2, max(v for _, v in items) * 1.08)
    ticks = [t for t in nice_ticks(0.0, hi) if t <= hi + 1e-12]
    left = PAD + max(text_width(s) for s in labels) + TICK + PAD
    top = PAD + TITLE + 10
    plot_w = 440.0
    row = ROW * 0.85
    bottom = top + row * len(items)
    legend = [("0.1 moderate shift", STATUS_COLOURS["warn"], "5,3"),
              ("0.25 major shift", STATUS_COLOURS["fail"], "5,3")]
    height = bottom + TICK + PAD + TEXT + PAD + TEXT + 4 + SMALL + 10
    width = max(left + plot_w + 2 * PAD + 12, left + _legend_width(legend) + PAD)
    x = Scale(0.0, hi, left, left + plot_w)
    c = Canvas()
    _x_axis(c, x, ticks, top, bottom)
    _frame(c, left, top, left + plot_w, bottom)
    for i, ((name, v), label) in enumerate(zip(items, labels, strict=True)):
        y = top + row * (i + 0.5)
        colour = (STATUS_COLOURS["fail"] if v >= PSI_MAJOR else
                  STATUS_COLOURS["warn"] if v >= PSI_MODERATE else STATUS_COLOURS["pass"])
        c.rect(left, y - row * 0.31, x(max(v, 0.0)) - left, row * 0.62, fill=colour,
               title=f"{name}: PSI {v:.4g}")
        c.line(left - TICK, y, left, y, colour=INK, width=0.8)
        c.text(left - TICK - PAD / 2, y, label, anchor="end", middle=True)
    for value, colour in ((PSI_MODERATE, STATUS_COLOURS["warn"]),
                          (PSI_MAJOR, STATUS_COLOURS["fail"])):
        c.line(x(value), top, x(value), bottom, colour=colour, width=1.0, dash="5,3")
    c.text(left, PAD + TITLE, "Drift per feature", size=TITLE, bold=True)
    y = bottom + TICK + PAD + TEXT + PAD + TEXT
    c.text(left + plot_w / 2, y, "PSI (evaluation against reference)", anchor="middle")
    _legend(c, left, y + 4 + SMALL / 2 + 4, legend)
    return c.svg(width, height, "Population stability index per feature")


# --------------------------------------------------------------------------- time series


@dataclass
class TimePoint:
    """One window of a monitored rule: its first day, value, interval and state."""

    day: date
    value: float | None
    lo: float | None = None
    hi: float | None = None
    status: str | None = None


#: Points drawn as markers when there are at most this many (else only breaches and
#: warnings are marked; the line carries the rest).
MAX_MARKERS = 62


def _months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def date_ticks(first: date, last: date, target: int = 7) -> list[tuple[date, str]]:
    """Round dates covering ``first``..``last`` with their labels: days, weeks (on the
    first day's weekday), or the first days of months (1, 2, 3, 6 or 12 apart)."""
    span = (last - first).days
    if span <= 0:
        return [(first, first.isoformat())]
    if span <= 14 * target:  # days or weeks
        step = next(s for s in (1, 2, 7, 14) if span / s <= target)
        return [(first + timedelta(days=i), (first + timedelta(days=i)).isoformat())
                for i in range(0, span + 1, step)]
    months = _months_between(first, last)
    step = next((s for s in (1, 2, 3, 6, 12) if months / s <= target), 12 * math.ceil(
        months / 12 / target))
    out = []
    y, m = first.year, first.month
    d = date(y, m, 1)
    if d < first:
        m += 1
        y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
    while True:
        d = date(y, m, 1)
        if d > last:
            break
        if (_months_between(date(first.year, 1, 1), d)) % step == 0 or step == 1:
            out.append((d, f"{d.year}-{d.month:02d}" if step < 12 else str(d.year)))
        m += 1
        y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
    return out or [(first, first.isoformat())]


def _runs(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """The [start, end) index ranges where ``flags`` is true."""
    out, start = [], None
    for i, f in enumerate(flags):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(flags)))
    return out


@_never_fails
def timeseries(points: Sequence[TimePoint], *, title: str, ylabel: str = "",
               threshold: dict[str, float] | None = None, desc: str = "",
               width: float = 680.0) -> str | None:
    """A monitored value per window over time: the line of values, the interval as a
    shaded band, the threshold as dashed lines and breached windows marked.

    Windows without a value break the line and the band. Failed windows are
    red dots (``class="breach"``), warnings amber; with few windows every
    window gets a dot. The chart carries a ``<title>`` and a ``<desc>``
    (``desc``, or a sentence made from the numbers) for screen readers; the
    page's table of values is the full alternative. Returns None when no
    window has a value.
    """
    pts = sorted(points, key=lambda p: p.day)
    finite = [p for p in pts if _finite(p.value)]
    if not finite:
        return None
    bounds = _threshold_entries(threshold)
    values = [v for p in finite for v in (p.value, p.lo, p.hi) if _finite(v)]
    values += [b for _, b in bounds]
    plot_h = 170.0
    lo, hi, yticks = _axis_bounds(values, plot_h * 1.6)
    step = yticks[1] - yticks[0] if len(yticks) > 1 else 1.0
    ylabels = [tick_label(t, step) for t in yticks]
    title = plain(title, 100)
    left = PAD + (TEXT + PAD if ylabel else 0) + max(text_width(s) for s in ylabels) + TICK + PAD
    right_pad = 40.0  # room for the last date label
    plot_w = max(240.0, width - left - right_pad)
    top = PAD + TITLE + 12
    bottom = top + plot_h
    first, last = pts[0].day, pts[-1].day
    if first == last:
        first, last = first - timedelta(days=1), last + timedelta(days=1)
    x = Scale(float(first.toordinal()), float(last.toordinal()), left, left + plot_w)
    y = Scale(lo, hi, bottom, top)
    legend = [("value", ACCENT, None), ("interval", ACCENT, "1,0")]
    legend += [(name, STATUS_COLOURS["fail"], "5,3") for name, _ in bounds]
    height = bottom + TICK + PAD + TEXT + PAD + SMALL + 12
    c = Canvas()
    _y_axis(c, y, yticks, left, left + plot_w, grid=True)
    for d, label in date_ticks(first, last, max(3, min(8, round(plot_w / 95)))):
        px = x(float(d.toordinal()))
        c.line(px, bottom, px, bottom + TICK, colour=INK, width=0.8)
        c.text(px, bottom + TICK + PAD + TEXT * 0.72, label, anchor="middle")
    _frame(c, left, top, left + plot_w, bottom)

    def px(p: TimePoint) -> float:
        return x(float(p.day.toordinal()))

    def py(v: float) -> float:
        return y(min(max(v, lo), hi))

    has_band = [_finite(p.value) and _finite(p.lo) and _finite(p.hi) for p in pts]
    for a, b in _runs(has_band):
        run = pts[a:b]
        if len(run) == 1:  # a lone interval: a short vertical bar
            p = run[0]
            c.line(px(p), py(p.lo), px(p), py(p.hi), colour=ACCENT, width=3.0)
            continue
        upper = [(px(p), py(p.hi)) for p in run]
        lower = [(px(p), py(p.lo)) for p in reversed(run)]
        c.polygon(upper + lower, fill=ACCENT, opacity=0.18, cls="band")
    for _, bound in bounds:
        c.line(left, y(bound), left + plot_w, y(bound), colour=STATUS_COLOURS["fail"],
               width=1.2, dash="5,3", cls="threshold")
    for a, b in _runs([_finite(p.value) for p in pts]):
        run = pts[a:b]
        if len(run) > 1:
            c.polyline([(px(p), py(p.value)) for p in run], colour=ACCENT, width=1.5)
    every = len(finite) <= MAX_MARKERS
    breaches = 0
    for p in finite:
        status = p.status or None
        if status == "fail":
            breaches += 1
        if not every and status not in ("fail", "warn"):
            continue
        tip = f"{p.day.isoformat()}: {p.value:.4g}"
        if _finite(p.lo) and _finite(p.hi):
            tip += f" [{p.lo:.4g}, {p.hi:.4g}]"
        tip += f" ({status or 'not judged'})"
        colour = STATUS_COLOURS.get(status, STATUS_COLOURS[None])
        big = status in ("fail", "warn")
        c.circle(px(p), py(p.value), 4.0 if big else 2.5, colour=colour, title=tip,
                 cls="breach" if status == "fail" else status if big else None)
    if title:
        c.text(left, PAD + TITLE, title, size=TITLE, bold=True)
    if ylabel:
        c.text(PAD + TEXT * 0.8, (top + bottom) / 2, plain(ylabel, 30), anchor="middle",
               rotate=True)
    ly = bottom + TICK + PAD + TEXT + PAD + SMALL / 2 + 4
    lx = left
    for label, colour, dash in legend:
        if label == "interval":
            c.rect(lx, ly - 5, 18, 10, fill=colour, opacity=0.18)
        else:
            c.line(lx, ly, lx + 18, ly, colour=colour, width=1.4, dash=dash)
        c.text(lx + 22, ly, label, size=SMALL, middle=True)
        lx += 22 + text_width(label, SMALL) + 14
    c.circle(lx + 4, ly, 4.0, colour=STATUS_COLOURS["fail"])
    c.text(lx + 12, ly, "breached", size=SMALL, middle=True)
    lx += 12 + text_width("breached", SMALL) + 14
    total_w = max(left + plot_w + right_pad, lx + PAD, left + text_width(title, TITLE, bold=True)
                  + PAD)
    if not desc:
        vals = [p.value for p in finite]
        desc = (f"{len(pts)} windows from {pts[0].day.isoformat()} to "
                f"{pts[-1].day.isoformat()}; values from {min(vals):.4g} to {max(vals):.4g}, "
                f"latest {finite[-1].value:.4g}; {breaches} window(s) breached the threshold"
                + (f" ({', '.join(n for n, _ in bounds)})" if bounds else ""))
    return c.svg(total_w, height, title or "value per window", desc=desc)


# --------------------------------------------------------------------------- trends and bars


@_never_fails
def trend(points: Sequence[tuple[str, float | None]], *, title: str, ylabel: str = "",
          lo: float | None = None, hi: float | None = None,
          colour: str = ACCENT) -> str | None:
    """A line over labelled steps (weeks, days): one point per step, a gap where a step
    has no value. ``lo``/``hi`` fix the vertical range (0 to 1 for a rate)."""
    values = [v for _, v in points if _finite(v)]
    if not points:
        return None
    title = plain(title, 100)
    plot_h, step = 150.0, 44.0
    lo_v = lo if lo is not None else min([0.0, *values])
    hi_v = hi if hi is not None else max([*values, lo_v + 1.0])
    if hi_v <= lo_v:
        hi_v = lo_v + 1.0
    ticks = [t for t in nice_ticks(lo_v, hi_v, 5) if lo_v - 1e-12 <= t <= hi_v + 1e-12]
    step_ = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    left = PAD + (TEXT + PAD if ylabel else 0) + max(
        (text_width(tick_label(t, step_)) for t in ticks), default=0) + TICK + PAD
    top = PAD + TITLE + 12
    bottom = top + plot_h
    labels = [plain(label, 12) for label, _ in points]
    every = max(1, math.ceil(len(points) / 8))  # at most eight labels on the axis
    plot_w = max(step * len(points), 380.0)
    step = plot_w / len(points)
    x0 = left + step / 2
    y = Scale(lo_v, hi_v, bottom, top)
    c = Canvas()
    _y_axis(c, y, ticks, left, left + plot_w, grid=True)
    _frame(c, left, top, left + plot_w, bottom)
    run: list[tuple[float, float]] = []
    for i, (_, v) in enumerate(points):
        if _finite(v):
            run.append((x0 + step * i, y(v)))
        elif run:
            if len(run) > 1:
                c.polyline(run, colour=colour, width=1.8)
            run = []
    if len(run) > 1:
        c.polyline(run, colour=colour, width=1.8)
    for i, ((label, v), short) in enumerate(zip(points, labels, strict=True)):
        x = x0 + step * i
        c.line(x, bottom, x, bottom + TICK, colour=INK, width=0.8)
        if i % every == 0:
            c.text(x, bottom + TICK + PAD + SMALL, short, size=SMALL, anchor="middle")
        if _finite(v):
            c.circle(x, y(v), 3.2, colour=colour, title=f"{label}: {v:.4g}")
    if not values:
        c.text(left + plot_w / 2, (top + bottom) / 2, "no data in the period",
               anchor="middle", middle=True, colour=STATUS_COLOURS[None])
    if ylabel:
        c.text(PAD + TEXT * 0.8, (top + bottom) / 2, plain(ylabel), anchor="middle",
               rotate=True)
    tx, width = _title_place(title, left, left + plot_w + PAD + 12)
    c.text(tx, PAD + TITLE, title, size=TITLE, bold=True)
    height = bottom + TICK + PAD + SMALL + PAD + 4
    return c.svg(width, height, title)


@_never_fails
def bars(items: Sequence[tuple[str, float | None]], *, title: str, xlabel: str = "",
         hi: float | None = None, colours: Sequence[str] | None = None,
         fmt: str = "{:.4g}") -> str | None:
    """Horizontal bars, one per labelled value, in the given order, each with its value
    written at its end. ``hi`` fixes the axis maximum (1 for shares)."""
    items = list(items)[:MAX_ROWS]
    if not items:
        return None
    title = plain(title, 100)
    labels = [plain(k) for k, _ in items]
    values = [v for _, v in items if _finite(v)]
    top_v = hi if hi is not None else max([*values, 1.0]) * 1.1
    ticks = [t for t in nice_ticks(0.0, top_v, 5) if t <= top_v + 1e-12]
    left = PAD + max(text_width(s) for s in labels) + TICK + PAD
    top = PAD + TITLE + 10
    plot_w = 320.0
    row = ROW * 0.9
    bottom = top + row * len(items)
    x = Scale(0.0, top_v, left, left + plot_w)
    c = Canvas()
    _x_axis(c, x, ticks, top, bottom)
    _frame(c, left, top, left + plot_w, bottom)
    for i, ((name, v), label) in enumerate(zip(items, labels, strict=True)):
        yc = top + row * (i + 0.5)
        c.line(left - TICK, yc, left, yc, colour=INK, width=0.8)
        c.text(left - TICK - PAD / 2, yc, label, anchor="end", middle=True)
        if not _finite(v):
            c.text(left + PAD, yc, "no data", size=SMALL, middle=True,
                   colour=STATUS_COLOURS[None])
            continue
        colour = colours[i % len(colours)] if colours else ACCENT
        end = x(min(max(v, 0.0), top_v))
        c.rect(left, yc - row * 0.3, end - left, row * 0.6, fill=colour,
               title=f"{name}: {fmt.format(v)}")
        c.text(end + PAD / 2, yc, fmt.format(v), size=SMALL, middle=True)
    height = bottom + TICK + PAD + TEXT + (PAD + TEXT if xlabel else 0) + PAD
    if xlabel:
        c.text(left + plot_w / 2, bottom + TICK + PAD + TEXT + PAD + TEXT, plain(xlabel),
               anchor="middle")
    tx, width = _title_place(title, left, left + plot_w + PAD + 40)
    c.text(tx, PAD + TITLE, title, size=TITLE, bold=True)
    return c.svg(width, height, title)


@_never_fails
def tornado(rows: Sequence[tuple[str, float | None, float | None]], baseline: float, *,
            title: str, xlabel: str = "", fmt: str = "{:.4g}") -> str | None:
    """A tornado chart: per row (label, value when the assumption is low, value when it
    is high), a bar from the baseline to each, widest swing first as given."""
    rows = [r for r in rows if _finite(r[1]) and _finite(r[2])][:MAX_ROWS]
    if not rows or not _finite(baseline):
        return None
    title = plain(title, 100)
    labels = [plain(r[0]) for r in rows]
    lo_v, hi_v = data_range([baseline, *(r[1] for r in rows), *(r[2] for r in rows)],
                            margin=0.12)
    ticks = [t for t in nice_ticks(lo_v, hi_v, 5) if lo_v - 1e-12 <= t <= hi_v + 1e-12]
    left = PAD + max(text_width(s) for s in labels) + TICK + PAD
    top = PAD + TITLE + 10 + SMALL + PAD
    plot_w = 360.0
    row = ROW
    bottom = top + row * len(rows)
    x = Scale(lo_v, hi_v, left, left + plot_w)
    c = Canvas()
    _x_axis(c, x, ticks, top, bottom)
    _frame(c, left, top, left + plot_w, bottom)
    low_colour, high_colour = "#c62828", ACCENT
    for i, ((name, low, high), label) in enumerate(zip(rows, labels, strict=True)):
        yc = top + row * (i + 0.5)
        c.text(left - TICK - PAD / 2, yc, label, anchor="end", middle=True)
        for v, colour, side in ((low, low_colour, "low"), (high, high_colour, "high")):
            a, b = sorted((x(baseline), x(v)))  # type: ignore[arg-type]
            c.rect(a, yc - row * 0.3, b - a, row * 0.6, fill=colour, opacity=0.8,
                   title=f"{name} {side}: {fmt.format(v)}")
    c.line(x(baseline), top, x(baseline), bottom, colour=INK, width=1.2)
    c.text(x(baseline), top - PAD / 2, f"baseline {fmt.format(baseline)}", size=SMALL,
           anchor="middle")
    legend = [("assumption low", low_colour, None), ("assumption high", high_colour, None)]
    _legend(c, left, bottom + TICK + PAD + TEXT + PAD + (TEXT + PAD if xlabel else 0),
            legend)
    height = bottom + TICK + PAD + TEXT + PAD + (TEXT + PAD if xlabel else 0) + SMALL + 2 * PAD
    if xlabel:
        c.text(left + plot_w / 2, bottom + TICK + PAD + TEXT + PAD + TEXT, plain(xlabel),
               anchor="middle")
    tx, width = _title_place(title, left, left + plot_w + PAD)
    width = max(width, left + _legend_width(legend) + PAD)
    c.text(tx, PAD + TITLE, title, size=TITLE, bold=True)
    return c.svg(width, height, title, desc=f"{title}: the value per decision when each "
                 "assumption is set low or high, beside the baseline")


@_never_fails
def tradeoff(points: Sequence[tuple[float, float]], *, before: tuple[float, float] | None = None,
             proposal: tuple[float, float] | None = None, title: str,
             xlabel: str, ylabel: str) -> str | None:
    """A trade-off curve: the best ``y`` (accuracy, value) reachable at each fairness
    gap ``x``, with the current rule (``before``) and the proposal marked."""
    pts = sorted((float(x), float(y)) for x, y in points if _finite(x) and _finite(y))
    marks = [m for m in (before, proposal) if m is not None and _finite(m[0])
             and _finite(m[1])]
    if not pts and not marks:
        return None
    title = plain(title, 100)
    xs = [x for x, _ in pts] + [m[0] for m in marks]
    ys = [y for _, y in pts] + [m[1] for m in marks]
    plot_w, plot_h = 380.0, 220.0
    x_lo, x_hi, x_ticks = _axis_bounds([0.0, *xs], plot_w)
    y_lo, y_hi, y_ticks = _axis_bounds(ys, plot_h)
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    left = PAD + TEXT + PAD + max((text_width(tick_label(t, y_step)) for t in y_ticks),
                                  default=0) + TICK + PAD
    top = PAD + TITLE + 12 + 16
    bottom = top + plot_h
    x = Scale(x_lo, x_hi, left, left + plot_w)
    y = Scale(y_lo, y_hi, bottom, top)
    c = Canvas()
    _x_axis(c, x, x_ticks, top, bottom)
    _y_axis(c, y, y_ticks, left, left + plot_w, grid=True)
    _frame(c, left, top, left + plot_w, bottom)
    if len(pts) > 1:
        c.polyline([(x(a), y(b)) for a, b in pts], colour=ACCENT, width=1.6)
    for a, b in pts:
        c.circle(x(a), y(b), 3.0, colour=ACCENT, title=f"gap {a:.4g}: {b:.4g}")
    entries = [("best at each gap", ACCENT, None)]
    if before is not None and before in marks:
        c.circle(x(before[0]), y(before[1]), 5.0, colour=STATUS_COLOURS["warn"], fill="#fff",
                 width=2.0, title=f"current rule: gap {before[0]:.4g}, {before[1]:.4g}")
        entries.append(("current rule", STATUS_COLOURS["warn"], None))
    if proposal is not None and proposal in marks:
        c.circle(x(proposal[0]), y(proposal[1]), 5.0, colour=STATUS_COLOURS["pass"],
                 width=2.0, title=f"proposal: gap {proposal[0]:.4g}, {proposal[1]:.4g}")
        entries.append(("proposal", STATUS_COLOURS["pass"], None))
    _legend(c, left, PAD + TITLE + 16, entries)
    c.text(PAD + TEXT * 0.8, (top + bottom) / 2, plain(ylabel), anchor="middle", rotate=True)
    c.text(left + plot_w / 2, bottom + TICK + PAD + TEXT * 2 + 4, plain(xlabel),
           anchor="middle")
    tx, width = _title_place(title, left, left + plot_w + PAD + 12)
    c.text(tx, PAD + TITLE, title, size=TITLE, bold=True)
    height = bottom + TICK + PAD + TEXT * 2 + PAD + 8
    return c.svg(width, height, title, f"{ylabel} against {xlabel}: {len(pts)} points")


def confusion_matrix(classes: Sequence[str], matrix: Sequence[Sequence[int]], *,
                     title: str = "Confusion matrix") -> str | None:
    """A heatmap of a confusion matrix: rows are the true classes, columns the predicted
    ones; each cell shows its count and its share of the true class (the row), shaded by
    that share. At most :data:`MAX_ROWS` classes are drawn."""
    k = min(len(classes), MAX_ROWS)
    if k == 0 or len(matrix) < k:
        return None
    labels = [plain(c, 24) for c in classes[:k]]
    counts = [[int(matrix[i][j]) for j in range(k)] for i in range(k)]
    title = plain(title, 100)
    cell = max(44.0, max(text_width(f"{max(map(max, counts)):,}", SMALL) + 2 * PAD, 0))
    left = PAD + TEXT + PAD + max(text_width(s) for s in labels) + PAD
    top = PAD + TITLE + PAD + TEXT + PAD + max(text_width(s) for s in labels) + PAD
    c = Canvas()
    for j, lab in enumerate(labels):  # predicted classes along the top, turned
        x = left + cell * (j + 0.5)
        c.text(x + TEXT * 0.36, top - PAD, lab, rotate=True)
    c.text(left + cell * k / 2, PAD + TITLE + PAD + TEXT, "predicted class", anchor="middle",
           size=SMALL)
    for i, lab in enumerate(labels):
        y = top + cell * (i + 0.5)
        c.text(left - PAD, y, lab, anchor="end", middle=True)
        total = sum(counts[i])
        for j in range(k):
            share = counts[i][j] / total if total else 0.0
            colour = STATUS_COLOURS["pass"] if i == j else STATUS_COLOURS["fail"]
            c.rect(left + cell * j, top + cell * i, cell, cell, fill="#ffffff", stroke=GRID)
            c.rect(left + cell * j, top + cell * i, cell, cell, fill=colour,
                   opacity=round(0.08 + 0.8 * share, 3) if counts[i][j] else 0.0,
                   title=f"true {classes[i]}, predicted {classes[j]}: {counts[i][j]:,} "
                         f"({share:.1%} of true {classes[i]})")
            ink = "#ffffff" if share > 0.55 else INK
            c.text(left + cell * (j + 0.5), top + cell * (i + 0.42), f"{counts[i][j]:,}",
                   anchor="middle", size=SMALL, colour=ink, middle=True)
            c.text(left + cell * (j + 0.5), top + cell * (i + 0.75), f"{share:.0%}",
                   anchor="middle", size=SMALL * 0.9, colour=ink, middle=True)
    bottom = top + cell * k
    c.text(PAD + TEXT, top + cell * k / 2, "true class", anchor="middle", size=SMALL,
           rotate=True)
    tx, width = _title_place(title, left, left + cell * k + PAD)
    c.text(tx, PAD + TITLE, title, size=TITLE, bold=True)
    desc = (f"{k} classes; diagonal (correct) shares: " +
            ", ".join(f"{classes[i]} {counts[i][i] / max(sum(counts[i]), 1):.0%}"
                      for i in range(k)))
    return c.svg(width, bottom + PAD, title, desc)
