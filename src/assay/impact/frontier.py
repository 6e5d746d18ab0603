"""The value-fairness frontier: the value kept at each level of a fairness constraint
with group-specific thresholds, i.e. the price of fairness in the user's currency.

Constraints:

* ``demographic_parity_ratio >= r``: the lowest group selection rate is at least
  ``r`` times the highest;
* ``equal_opportunity_difference <= d``: the true-positive rates of the groups
  differ by at most ``d``.

Each group's options come from :class:`~assay.impact.value.ScoreStats`: at each
of its thresholds (every distinct score, and "nobody") its rate ``x`` (selection
rate or TPR) and its total value ``v``, both exact. A solution has every group's
rate in a window ``[a, U(a)]`` (``U(a) = a / r``, or ``a + d``) and maximises the
sum of the groups' values.

* **Deterministic** thresholds: for each lower end ``a``, each group takes its
  best threshold inside the window (a range maximum). The lower ends tried are
  every rate a group reaches, so the solution is exact over the distinct scores;
  when a group has more than :data:`MAX_EXACT_POINTS` thresholds, its options are
  first reduced to the best point of each of that many rate bins and only bins
  entirely inside a window are used (the constraint always holds; the value may
  fall short of the exact optimum by what one bin can hold, stated in the result).
* **Randomised** thresholds (as Fairlearn's ``ThresholdOptimizer`` uses them): a
  group may mix two thresholds at random, so its options are the upper concave
  hull of its (rate, value) points, and the best rate in a window is the hull's
  peak clipped into it. The total is piecewise linear in ``a`` with breakpoints
  where ``a`` or ``U(a)`` meets a hull vertex; all of them are tried, so the
  randomised solution is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assay.errors import InputError
from assay.impact.value import (
    ScoreStats,
    ValueModel,
    best_index,
    group_curve,
    group_value_curves,
    pooled,
)

CONSTRAINTS = ("demographic_parity_ratio", "equal_opportunity_difference")
DEFAULT_LEVELS = {"demographic_parity_ratio": (0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
                  "equal_opportunity_difference": (0.2, 0.15, 0.1, 0.05, 0.0)}
MAX_EXACT_POINTS = 65_536
_EPS = 1e-12


@dataclass
class _Group:
    name: str
    x: np.ndarray        # rate at each option, ascending
    v: np.ndarray        # total value at each option
    j: np.ndarray        # threshold index (into stats.scores; k = nobody)
    binned: bool
    _rm: Any = None

    def range_max(self) -> _RangeMax:
        if self._rm is None:
            self._rm = _RangeMax(self.v)
        return self._rm


def _options(stats: ScoreStats, model: ValueModel, constraint: str) -> list[_Group]:
    out = []
    for g, name in enumerate(stats.groups):
        pos, curve, sel = group_curve(stats, model, g)  # sel: (2, m)
        if constraint == "demographic_parity_ratio":
            den = stats.counts[g].sum()
            x = (sel[0] + sel[1]) / max(den, 1)
        else:
            den = stats.counts[g, 1].sum()
            if den == 0:
                raise InputError(f"group {name!r} has no rows of the positive label: its "
                                 "true-positive rate, and equal opportunity, is undefined")
            x = sel[1] / den
        xs, vs, js = x[::-1], curve[::-1], pos[::-1]
        binned = False
        if len(xs) > MAX_EXACT_POINTS:
            xs, vs, js = _bin_best(xs, vs, js, MAX_EXACT_POINTS)
            binned = True
        out.append(_Group(name, np.ascontiguousarray(xs), np.ascontiguousarray(vs),
                          np.ascontiguousarray(js), binned))
    return out


def _bin_best(x: np.ndarray, v: np.ndarray, j: np.ndarray, bins: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The best option (the first among equals) in each of ``bins`` equal-width rate bins
    (x ascending, so each bin is one run)."""
    b = np.minimum((x * bins).astype(np.int64), bins - 1)
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    top = np.maximum.reduceat(v, starts)
    sizes = np.diff(np.r_[starts, len(v)])
    hit = np.flatnonzero(v == np.repeat(top, sizes))
    first = hit[np.searchsorted(hit, starts)]
    return x[first], v[first], j[first]


class _RangeMax:
    """Range-maximum queries (value and its position) over a fixed array: a sparse table."""

    def __init__(self, v: np.ndarray) -> None:
        self.levels = [np.arange(len(v))]
        self.v = v
        span = 1
        while 2 * span <= len(v):
            prev = self.levels[-1]
            a, b = prev[:-span], prev[span:]
            self.levels.append(np.where(v[b] > v[a], b, a))
            span *= 2

    def argmax(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Index of the max over [lo, hi) for each pair (hi > lo)."""
        length = hi - lo
        lvl = np.floor(np.log2(np.maximum(length, 1))).astype(np.int64)
        out = np.empty(len(lo), np.int64)
        for L in np.unique(lvl):
            m = lvl == L
            t = self.levels[L]
            a = t[lo[m]]
            b = t[hi[m] - (1 << L)]
            out[m] = np.where(self.v[b] > self.v[a], b, a)
        return out


def _upper(a: np.ndarray, constraint: str, level: float) -> np.ndarray:
    if constraint == "demographic_parity_ratio":
        return np.where(a > 0, a / level, 0.0) if level > 0 else np.full_like(a, 1.0)
    return a + level


def _deterministic(groups: list[_Group], constraint: str, level: float
                   ) -> tuple[float, list[int]] | None:
    cands = np.unique(np.concatenate([g.x for g in groups]))
    upper = _upper(cands, constraint, level)
    total = np.zeros(len(cands))
    ok = np.ones(len(cands), bool)
    picks = []
    for g in groups:
        if g.binned:  # only bins entirely inside the window
            width = 1.0 / MAX_EXACT_POINTS
            binno = np.minimum((g.x * MAX_EXACT_POINTS).astype(np.int64),
                               MAX_EXACT_POINTS - 1)
            lo = np.searchsorted(binno * width, cands - _EPS, "left")
            hi = np.searchsorted((binno + 1) * width, upper + _EPS, "right")
        else:
            lo = np.searchsorted(g.x, cands - _EPS, "left")
            hi = np.searchsorted(g.x, upper + _EPS, "right")
        feasible = hi > lo
        ok &= feasible
        idx = np.zeros(len(cands), np.int64)
        rm = g.range_max()
        if feasible.any():
            idx[feasible] = rm.argmax(lo[feasible], hi[feasible])
        total += np.where(feasible, g.v[idx], -np.inf)
        picks.append(idx)
    if not ok.any():
        return None
    total = np.where(ok, total, -np.inf)
    best = int(np.argmax(total))
    return float(total[best]), [int(p[best]) for p in picks]


def _hull(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Indices of the upper concave hull of points (x ascending), left to right."""
    # keep the best value at each x
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
    order = np.lexsort((-v, x))
    first = order[np.searchsorted(x[order], x[starts])]
    if len(first) <= 2:
        return first
    from scipy.spatial import ConvexHull, QhullError

    pts = np.column_stack([x[first], v[first]])
    span = np.ptp(pts, axis=0)
    span[span == 0] = 1.0
    try:
        verts = ConvexHull(pts / span).vertices
    except QhullError:  # all on one line: the two ends
        return first[[0, -1]]
    verts = np.sort(verts)
    hx, hv = pts[verts, 0], pts[verts, 1]
    # the upper chain: vertices on or above the chord through the ends, left to right
    keep = []
    for i in range(len(verts)):
        keep.append(i)
        while len(keep) >= 3:
            (x0, y0), (x1, y1), (x2, y2) = ((hx[keep[-3]], hv[keep[-3]]),
                                            (hx[keep[-2]], hv[keep[-2]]),
                                            (hx[keep[-1]], hv[keep[-1]]))
            if (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0) >= 0:
                keep.pop(-2)
            else:
                break
    return first[verts[keep]]


def _randomized(groups: list[_Group], constraint: str, level: float
                ) -> tuple[float, list[tuple[int, int, float]], list[float]] | None:
    hulls = []
    for g in groups:
        h = _hull(g.x, g.v)
        hulls.append((g.x[h], g.v[h], h))
    cands = [0.0, 1.0]
    for hx, _, _ in hulls:
        cands.extend(hx)
        if constraint == "demographic_parity_ratio":
            cands.extend(hx * level)
        else:
            cands.extend(hx - level)
    c = np.unique(np.clip(np.asarray(cands, float), 0.0, 1.0))
    upper = _upper(c, constraint, level)
    total = np.zeros(len(c))
    ok = np.ones(len(c), bool)
    rates = []
    for hx, hv, _ in hulls:
        peak = hx[int(np.argmax(hv))]
        lo_ok = c <= hx[-1] + _EPS
        hi_ok = upper >= hx[0] - _EPS
        ok &= lo_ok & hi_ok
        r = np.clip(peak, c, np.minimum(upper, hx[-1]))
        r = np.clip(r, hx[0], hx[-1])
        total += np.interp(r, hx, hv)
        rates.append(r)
    if not ok.any():
        return None
    total = np.where(ok, total, -np.inf)
    best = int(np.argmax(total))
    mixes = []
    out_rates = []
    for (hx, _, h), g, r in zip(hulls, groups, rates, strict=True):
        rate = float(r[best])
        i = int(np.searchsorted(hx, rate, "left"))
        if i < len(hx) and abs(hx[i] - rate) <= _EPS:
            mixes.append((int(g.j[h[i]]), int(g.j[h[i]]), 1.0))
        else:
            lo_i, hi_i = i - 1, i
            p = (hx[hi_i] - rate) / (hx[hi_i] - hx[lo_i])  # probability of the lower rate
            mixes.append((int(g.j[h[lo_i]]), int(g.j[h[hi_i]]), float(p)))
        out_rates.append(rate)
    return float(total[best]), mixes, out_rates


@dataclass
class FrontierResult:
    """The frontier: one row per constraint level."""

    constraint: str
    unconstrained: dict[str, Any]
    single_threshold: dict[str, Any]
    levels: list[dict[str, Any]]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"constraint": self.constraint, "unconstrained": self.unconstrained,
                "single_threshold": self.single_threshold, "levels": self.levels,
                "settings": self.settings}


def _thr(stats: ScoreStats, j: int) -> float | None:
    return float(stats.scores[j]) if j < len(stats.scores) else None


def _achieved(constraint: str, rates: Sequence[float]) -> float:
    lo, hi = min(rates), max(rates)
    if constraint == "demographic_parity_ratio":
        return 1.0 if hi == 0 else lo / hi
    return hi - lo


def value_fairness_frontier(stats: ScoreStats, model: ValueModel, *,
                            constraint: str = "demographic_parity_ratio",
                            levels: Sequence[float] | None = None,
                            randomized: bool = False) -> FrontierResult:
    """The best total value with group-specific thresholds at each constraint level."""
    if constraint not in CONSTRAINTS:
        raise InputError(f"{{constraint}}: unknown constraint {constraint!r} "
                         f"(expected {' or '.join(CONSTRAINTS)})", fields=["constraint"])
    if len(stats.groups) < 2:
        raise InputError("{sensitive}: the frontier needs at least two groups "
                         f"(got {len(stats.groups)})", fields=["sensitive"])
    levels = list(DEFAULT_LEVELS[constraint] if levels is None else levels)
    for lv in levels:
        if constraint == "demographic_parity_ratio" and not 0 <= lv <= 1:
            raise InputError(f"{{levels}}: a parity ratio is between 0 and 1, got {lv}",
                             fields=["levels"])
        if constraint == "equal_opportunity_difference" and not 0 <= lv <= 1:
            raise InputError(f"{{levels}}: a TPR difference is between 0 and 1, got {lv}",
                             fields=["levels"])
    n = stats.n
    groups = _options(stats, model, constraint)
    total_curve = group_value_curves(pooled(stats), model)[0]
    jb = best_index(total_curve)
    own = [int(g.j[np.argmax(g.v)]) for g in groups]

    unconstrained_total = float(sum(g.v.max() for g in groups))
    single = {"threshold": _thr(stats, jb), "total_value": float(total_curve[jb]),
              "value_per_decision": float(total_curve[jb] / n)}
    unconstrained = {"total_value": unconstrained_total,
                     "value_per_decision": unconstrained_total / n,
                     "thresholds": {g.name: _thr(stats, j) for g, j in zip(groups, own,
                                                                           strict=True)}}
    rows = []
    for lv in levels:
        row: dict[str, Any] = {"level": lv}
        if randomized:
            res = _randomized(groups, constraint, lv)
            if res is None:
                row.update(feasible=False)
            else:
                tot, mixes, rates = res
                row.update(feasible=True, total_value=tot, value_per_decision=tot / n,
                           price_of_fairness=unconstrained_total - tot,
                           price_per_decision=(unconstrained_total - tot) / n,
                           achieved=_achieved(constraint, rates),
                           groups={g.name: {"rate": r,
                                            "threshold_low": _thr(stats, m[1]),
                                            "threshold_high": _thr(stats, m[0]),
                                            "probability_high": m[2]}
                                   for g, m, r in zip(groups, mixes, rates, strict=True)})
        else:
            res2 = _deterministic(groups, constraint, lv)
            if res2 is None:
                row.update(feasible=False)
            else:
                tot, picks = res2
                rates = [float(g.x[p]) for g, p in zip(groups, picks, strict=True)]
                row.update(feasible=True, total_value=tot, value_per_decision=tot / n,
                           price_of_fairness=unconstrained_total - tot,
                           price_per_decision=(unconstrained_total - tot) / n,
                           achieved=_achieved(constraint, rates),
                           groups={g.name: {"rate": r, "threshold": _thr(stats, int(g.j[p]))}
                                   for g, p, r in zip(groups, picks, rates, strict=True)})
        rows.append(row)
    binned = any(g.binned for g in groups)
    settings = {
        "rule": "positive decision when score >= the group's threshold",
        "thresholds": ("randomised: each group mixes two thresholds (threshold_high with "
                       "probability_high, else threshold_low); exact on the concave hull"
                       if randomized else
                       "deterministic: one threshold per group, "
                       + (f"rates reduced to {MAX_EXACT_POINTS} bins per group (the "
                          "constraint holds; the value may fall short of the exact "
                          f"optimum by at most one bin of width 1/{MAX_EXACT_POINTS})"
                          if binned else "exact over every distinct score")),
        "rate": ("selection rate" if constraint == "demographic_parity_ratio"
                 else "true-positive rate"),
        "grouping": stats.grouping or None,
    }
    return FrontierResult(constraint, unconstrained, single, rows, settings)
