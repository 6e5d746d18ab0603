"""The value of a decision rule at every threshold, overall and per group.

A *value model* gives the worth of each decision outcome: ``tp``, ``fp``, ``tn``
and ``fn`` (a positive decision is ``score >= threshold``). Each is a constant
(``--value "tp=1,fp=-5,tn=0,fn=-1"``) or the name of a per-row column (loan
amount x margin, loss given default...).

Everything is computed from one statistic, :class:`ScoreStats`: per (group,
label) the count of rows at each *distinct* score, and, for per-row value
columns, the sum of each outcome's column at each distinct score (rows of the
positive label carry ``tp``/``fn``, the others ``fp``/``tn``). A reversed
cumulative sum over the distinct scores gives the confusion matrix, and the
value, at every threshold that changes a decision, so the curve is **exact at
every distinct score**, with constant and per-row values alike, and the best
threshold is an exact argmax over them. Ties are broken toward the highest
threshold (the fewest positive decisions). "Select nobody" (a threshold above
every score) is a candidate too and is reported with ``threshold: null``.

Intervals come from the multinomial bootstrap over cells (DESIGN section 3):
the distinct scores are grouped into the bins between the thresholds of a
stated grid (the printed curve: up to ``points`` distinct scores at evenly
spaced ranks, plus the best threshold), and each replicate is a multinomial
draw over the (group, label, bin) cells: exact in distribution for the
row-level bootstrap with constant values. With per-row value columns a
replicate gives each resampled row of a cell the cell's mean value (the sums
scale with the counts); the point estimates stay exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from assay.errors import InputError
from assay.metrics import _cells
from assay.metrics.frame import SEP

OUTCOMES = ("tp", "fp", "tn", "fn")
#: The label of the rows whose value each outcome carries (1 = positive label).
OUTCOME_LABEL = {"tp": 1, "fn": 1, "fp": 0, "tn": 0}
DEFAULT_POINTS = 200
DEFAULT_REPLICATES = 1000
DEFAULT_CONFIDENCE = 0.95
OVERALL = "overall"


@dataclass(frozen=True)
class ValueModel:
    """The value of each decision outcome: a number, or the name of a per-row column."""

    tp: float | str
    fp: float | str
    tn: float | str
    fn: float | str

    def get(self, outcome: str) -> float | str:
        return getattr(self, outcome)

    @property
    def columns(self) -> list[str]:
        """The per-row value columns this model reads, in outcome order."""
        return list(dict.fromkeys(v for o in OUTCOMES if isinstance(v := self.get(o), str)))

    def with_value(self, outcome: str, value: float | str) -> ValueModel:
        return replace(self, **{outcome: value})

    def as_dict(self) -> dict[str, float | str]:
        return {o: self.get(o) for o in OUTCOMES}


def parse_value_model(text: str | Mapping[str, Any], *, option: str = "--value") -> ValueModel:
    """``"tp=1,fp=-5,tn=0,fn=-1"`` (or a mapping) as a :class:`ValueModel`.

    Every outcome must be given exactly once; a value that is not a number is
    the name of a per-row column.
    """
    if isinstance(text, Mapping):
        pairs = [(str(k), v) for k, v in text.items()]
    else:
        pairs = []
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise InputError(f"{option}: expected OUTCOME=VALUE, got {part!r} "
                                 f"(e.g. \"tp=1,fp=-5,tn=0,fn=-1\")")
            k, v = part.split("=", 1)
            pairs.append((k.strip(), v.strip()))
    got: dict[str, float | str] = {}
    for k, v in pairs:
        key = k.lower()
        if key not in OUTCOMES:
            raise InputError(f"{option}: unknown outcome {k!r} "
                             f"(expected tp, fp, tn and fn)")
        if key in got:
            raise InputError(f"{option}: outcome {key!r} is given twice")
        got[key] = _number_or_column(v, key, option)
    missing = [o for o in OUTCOMES if o not in got]
    if missing:
        raise InputError(f"{option}: the value model is missing {', '.join(missing)} "
                         f"(give all of tp, fp, tn, fn, e.g. \"tp=1,fp=-5,tn=0,fn=-1\")")
    return ValueModel(**got)  # type: ignore[arg-type]


def _number_or_column(v: Any, key: str, option: str) -> float | str:
    if isinstance(v, bool):
        raise InputError(f"{option}: {key}={v!r} is not a number or a column name")
    if isinstance(v, int | float):
        x = float(v)
    else:
        s = str(v).strip()
        if not s:
            raise InputError(f"{option}: {key} has no value")
        try:
            x = float(s)
        except ValueError:
            return s  # a column name
    if not math.isfinite(x):
        raise InputError(f"{option}: {key}={v!r} is not a finite number")
    return x


@dataclass
class ScoreStats:
    """Per (group, label) counts at each distinct score, and per-row value sums.

    ``counts[g, y, i]`` is the number of rows of group ``g`` with label ``y``
    (1 = positive) and score ``scores[i]``; ``sums[c][g, y, i]`` the sum of value
    column ``c`` over those rows.
    """

    scores: np.ndarray
    groups: list[str]
    counts: np.ndarray
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    grouping: str = ""
    #: group curves already computed, by (value model, group); the counts never change
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n(self) -> int:
        return int(self.counts.sum())


def score_stats(y: Any, score: Any, group: Any = None, *,
                values: Mapping[str, Any] | None = None, target: str = "target",
                score_name: str = "score", grouping: str = "") -> ScoreStats:
    """Build :class:`ScoreStats` in one vectorised pass.

    ``y`` is 0/1 (1 = positive label), ``score`` numeric without missing values,
    ``group`` one label per row (None: one group), ``values`` per-row value
    columns by name.
    """
    yy = np.asarray(y)
    if yy.dtype.kind == "b":
        yy = yy.astype(np.int64)
    s = _cells.to_numpy(score, score_name)
    if s.dtype.kind not in "iufb":
        raise InputError(f"column '{score_name}': expected numeric scores, got {s.dtype}")
    s = s.astype(np.float64, copy=False)
    if np.isnan(s).any():
        raise InputError(f"column '{score_name}': expected no missing values, "
                         f"got {int(np.isnan(s).sum())}")
    if len(s) != len(yy):
        raise InputError(f"column '{score_name}': {len(s)} rows, but '{target}' has {len(yy)}")
    if len(s) == 0:
        raise InputError("no rows to compute the value on")
    if group is None:
        gcode = np.zeros(len(s), np.int64)
        groups = [OVERALL]
    else:
        garr = _cells.to_numpy(group, grouping or "group")
        uniq_g, gcode = np.unique(garr.astype(str), return_inverse=True)
        groups = [str(g) for g in uniq_g]
    uniq, inv = np.unique(s, return_inverse=True)
    k = len(uniq)
    key = (gcode * 2 + yy) * k + inv
    size = len(groups) * 2 * k
    counts = np.bincount(key, minlength=size).reshape(len(groups), 2, k)
    sums: dict[str, np.ndarray] = {}
    for name, col in (values or {}).items():
        v = _cells.to_numpy(col, name)
        if v.dtype.kind not in "iufb":
            raise InputError(f"column '{name}': expected numbers (a per-row value), "
                             f"got {v.dtype}")
        v = v.astype(np.float64, copy=False)
        if not np.isfinite(v).all():
            raise InputError(f"column '{name}': expected finite numbers, got "
                             f"{int((~np.isfinite(v)).sum())} missing or infinite")
        sums[name] = np.bincount(key, weights=v, minlength=size).reshape(len(groups), 2, k)
    return ScoreStats(uniq, groups, counts, sums, grouping)


def outcome_sums(stats: ScoreStats, model: ValueModel) -> dict[str, np.ndarray]:
    """Per outcome, the value its rows carry at each (group, distinct score): (G, k)."""
    out = {}
    for o in OUTCOMES:
        lab = OUTCOME_LABEL[o]
        v = model.get(o)
        if isinstance(v, str):
            if v not in stats.sums:
                raise InputError(f"value model: {o}={v!r} names no value column "
                                 f"(columns read: {', '.join(stats.sums) or 'none'})")
            out[o] = stats.sums[v][:, lab, :]
        else:
            out[o] = float(v) * stats.counts[:, lab, :]
    return out


def _rev_cumsum(a: np.ndarray) -> np.ndarray:
    """``out[..., j] = a[..., j:].sum()`` for j = 0..k (the last is 0): what a threshold
    at the j-th distinct score selects (j = k: nobody)."""
    k = a.shape[-1]
    dtype = np.int64 if a.dtype.kind in "iub" else np.float64
    out = np.empty((*a.shape[:-1], k + 1), dtype)
    out[..., k] = 0
    if k:  # one pass: the cumulative sum of the reversed array, written reversed
        np.cumsum(a[..., ::-1], axis=-1, out=out[..., k - 1::-1])
    return out


def pooled(stats: ScoreStats) -> ScoreStats:
    """The statistic with every group pooled into one (computed once per statistic)."""
    if "pooled" not in stats.cache:
        stats.cache["pooled"] = _pooled(stats)
    return stats.cache["pooled"]


def _pooled(stats: ScoreStats) -> ScoreStats:
    return ScoreStats(stats.scores, [OVERALL], stats.counts.sum(axis=0, keepdims=True),
                      {c: v.sum(axis=0, keepdims=True) for c, v in stats.sums.items()},
                      "")


def group_curve(stats: ScoreStats, model: ValueModel, g: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group ``g``'s options, at only the distinct scores it holds: the threshold indices
    (its scores' indices, then k for nobody), its total value at each, and what each
    selects per label, (2, m). A global threshold index j is option
    ``searchsorted(positions, j)``."""
    key = (tuple(model.as_dict().items()), g)
    if key not in stats.cache:
        stats.cache[key] = _group_curve(stats, model, g)
    return stats.cache[key]


def _group_curve(stats: ScoreStats, model: ValueModel, g: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cg = stats.counts[g]
    idx = np.flatnonzero(cg.any(axis=0))
    c = cg[:, idx]
    if not model.columns:
        sel = _rev_cumsum(c)
        return np.append(idx, len(stats.scores)), _constant_curves(c, model, sel), sel
    sums = {}
    for o in OUTCOMES:
        lab, v = OUTCOME_LABEL[o], model.get(o)
        if isinstance(v, str):
            if v not in stats.sums:
                raise InputError(f"value model: {o}={v!r} names no value column "
                                 f"(columns read: {', '.join(stats.sums) or 'none'})")
            sums[o] = stats.sums[v][g, lab, idx][None]
        else:
            sums[o] = (float(v) * c[lab])[None]
    curve = curves_from_sums(sums)[0]
    return np.append(idx, len(stats.scores)), curve, _rev_cumsum(c)


def group_value_curves(stats: ScoreStats, model: ValueModel) -> np.ndarray:
    """Total value of each group at each threshold index j = 0..k: (G, k + 1).

    Index j selects the rows with ``score >= scores[j]``; j = k selects nobody.
    """
    key = ("curves", tuple(model.as_dict().items()))
    if key not in stats.cache:
        if model.columns:
            stats.cache[key] = curves_from_sums(outcome_sums(stats, model))
        else:
            stats.cache[key] = _constant_curves(stats.counts, model)
    return stats.cache[key]


def _constant_curves(counts: np.ndarray, model: ValueModel,
                     sel: np.ndarray | None = None) -> np.ndarray:
    """Value curves of constant values from the counts alone (..., 2, k) -> (..., k + 1):
    ``(tp - fn) TP + (fp - tn) FP + fn P + tn N``, two cumulative sums in all."""
    tp, fp, tn, fn = (float(model.get(o)) for o in ("tp", "fp", "tn", "fn"))
    if sel is None:
        sel = _rev_cumsum(counts)
    out = (tp - fn) * sel[..., 1, :]
    out += (fp - tn) * sel[..., 0, :]
    out += fn * sel[..., 1, :1] + tn * sel[..., 0, :1]
    return out


def curves_from_sums(s: Mapping[str, np.ndarray]) -> np.ndarray:
    """:func:`group_value_curves` from the outcome sums of :func:`outcome_sums`."""
    sel_tp, sel_fp = _rev_cumsum(s["tp"]), _rev_cumsum(s["fp"])
    sel_fn, sel_tn = _rev_cumsum(s["fn"]), _rev_cumsum(s["tn"])
    tot_fn, tot_tn = sel_fn[:, :1], sel_tn[:, :1]
    return sel_tp + sel_fp + (tot_fn - sel_fn) + (tot_tn - sel_tn)


def _threshold(stats: ScoreStats, j: int) -> float | None:
    return float(stats.scores[j]) if j < len(stats.scores) else None


def best_index(total: np.ndarray) -> int:
    """The exact argmax; among ties the highest threshold (the fewest positive decisions)."""
    top = total.max()
    return int(np.flatnonzero(total == top)[-1])


def check_replicates(n_boot: int, seed: int = 0) -> None:
    """Refuse a negative number of bootstrap replicates or seed."""
    if n_boot < 0:
        raise InputError(f"{{n_boot}}: expected 0 or more replicates, got {n_boot}",
                         fields={"n_boot": "n_boot"})
    if seed < 0:
        raise InputError(f"{{seed}}: expected a seed of 0 or more, got {seed}",
                         fields={"seed": "seed"})


def grid_indices(k: int, points: int, must: Sequence[int] = ()) -> np.ndarray:
    """Up to ``points`` threshold indices at evenly spaced ranks of the k + 1 candidates,
    with the ends and ``must`` included."""
    if points <= 0:
        raise InputError("{points}: expected a positive number", fields=["points"])
    base = np.unique(np.round(np.linspace(0, k, min(points, k + 1))).astype(np.int64))
    return np.unique(np.concatenate([base, np.asarray(must, np.int64)]))


@dataclass
class ValueResult:
    """The value curve, the best threshold and their intervals."""

    stats: ScoreStats
    model: ValueModel
    best: dict[str, Any]
    curve: list[dict[str, Any]]
    groups: dict[str, dict[str, Any]]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"best": self.best, "curve": self.curve, "groups": self.groups,
                "value_model": self.model.as_dict(), "settings": self.settings}


def value_curve(stats: ScoreStats, model: ValueModel, *, points: int = DEFAULT_POINTS,
                n_boot: int = DEFAULT_REPLICATES, seed: int = 0,
                confidence: float = DEFAULT_CONFIDENCE) -> ValueResult:
    """The value of the rule ``score >= t`` at every distinct score (exact), the best
    threshold, and bootstrap intervals on a grid of ``points`` thresholds."""
    check_replicates(n_boot, seed)
    total = group_value_curves(pooled(stats), model)[0]
    n = stats.n
    n_g = stats.counts.sum(axis=(1, 2))
    k = len(stats.scores)
    jb = best_index(total)
    grid = grid_indices(k, points, [jb])
    lo, hi = _bootstrap(stats, model, grid, n_boot, seed, confidence) if n_boot else (None, None)
    # each group's value at the grid and at its own best, from its own distinct scores
    at_grid = np.empty((len(stats.groups), len(grid)))
    own = []
    for gx in range(len(stats.groups)):
        pos, curve, _ = group_curve(stats, model, gx)
        at_grid[gx] = curve[np.searchsorted(pos, grid)]
        ib = best_index(curve)
        own.append((int(pos[ib]), float(curve[ib])))
    gcol = {int(j): i for i, j in enumerate(grid)}
    sel = _rev_cumsum(pooled(stats).counts[0])  # (2, k+1)

    def ci(arr: np.ndarray | None, g: int | None, i: int) -> list[float] | None:
        if arr is None:
            return None
        x = arr[0 if g is None else g + 1][i]
        if not np.isfinite(x).all():
            return None
        return [float(x[0]), float(x[1])]

    both = None if lo is None else np.stack([lo, hi], -1)
    curve = []
    gi = {int(j): i for i, j in enumerate(grid)}
    for i, j in enumerate(grid):
        pos = int(sel[0, j] + sel[1, j])
        curve.append({
            "threshold": _threshold(stats, int(j)),
            "value_per_decision": float(total[j] / n),
            "value_per_decision_ci": ci(both, None, i),
            "total_value": float(total[j]),
            "selection_rate": pos / n,
            "tp": int(sel[1, j]), "fp": int(sel[0, j]),
            "groups": {g: float(at_grid[gx, i] / n_g[gx]) if n_g[gx] else None
                       for gx, g in enumerate(stats.groups)},
            "groups_ci": {g: ci(both, gx, i) for gx, g in enumerate(stats.groups)},
        })
    best = {"threshold": _threshold(stats, jb),
            "value_per_decision": float(total[jb] / n),
            "value_per_decision_ci": ci(both, None, gi[jb]),
            "total_value": float(total[jb]),
            "selection_rate": float((sel[0, jb] + sel[1, jb]) / n)}
    groups = {}
    for gx, g in enumerate(stats.groups):
        jg, vg = own[gx]
        groups[g] = {"n": int(n_g[gx]),
                     "value_per_decision_at_best": float(at_grid[gx, gcol[jb]] / n_g[gx]),
                     "value_per_decision_at_best_ci": ci(both, gx, gi[jb]),
                     "own_best_threshold": _threshold(stats, jg),
                     "own_best_value_per_decision": vg / float(n_g[gx])}
    settings = {
        "rule": "positive decision when score >= threshold; threshold null = nobody",
        "distinct_scores": k,
        "exactness": "value and best threshold exact over every distinct score",
        "ties": "highest threshold among equal values",
        "interval_grid": f"{len(grid)} thresholds (distinct scores at evenly spaced ranks,"
                         " with the best)",
        "replicates": n_boot, "seed": seed, "confidence": confidence,
        "interval_method": ("multinomial bootstrap over (group, label, grid bin) cells"
                            + ("; per-row values at their cell mean" if model.columns
                               else "")),
        "grouping": stats.grouping or None,
    }
    return ValueResult(stats, model, best, curve, groups, settings)


def _bootstrap(stats: ScoreStats, model: ValueModel, grid: np.ndarray, n_boot: int,
               seed: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals of value per decision at each grid threshold: overall (row 0)
    and per group (rows 1..G); arrays (G + 1, len(grid))."""
    k = len(stats.scores)
    # bin b holds distinct scores i with grid[b-1] <= i < grid[b]; a threshold at grid[m]
    # selects the bins b > m (bin 0 holds the scores below the lowest grid threshold).
    edges = np.concatenate([[0], grid[grid < k], [k]]).astype(np.int64)
    edges = np.unique(edges)
    G = len(stats.groups)
    nb = len(edges) - 1
    starts = edges[:-1]

    def binned(a: np.ndarray) -> np.ndarray:  # (..., k) -> (..., nb)
        return np.add.reduceat(a, starts, axis=-1) if k else a

    counts = binned(stats.counts)  # (G, 2, nb)
    means = {}
    for o in OUTCOMES:
        v, lab = model.get(o), OUTCOME_LABEL[o]
        if isinstance(v, str):
            with np.errstate(invalid="ignore", divide="ignore"):
                means[o] = np.nan_to_num(binned(stats.sums[v][:, lab, :]) / counts[:, lab, :])
        else:
            means[o] = np.full(counts[:, lab, :].shape, float(v))
    rng = np.random.default_rng(seed)
    flat = counts.ravel().astype(np.float64)
    n = int(flat.sum())
    nz = np.flatnonzero(flat)
    draws = rng.multinomial(n, flat[nz] / n, size=n_boot)
    rep = np.zeros((n_boot, flat.size))
    rep[:, nz] = draws
    rep = rep.reshape(n_boot, G, 2, nb)
    # which bins each grid threshold selects: bin b is selected at grid[m] iff
    # edges[b] >= grid[m]
    sel = (edges[:-1][None, :] >= grid[:, None]).astype(np.float64)  # (m, nb)
    pos, neg = rep[:, :, 1, :], rep[:, :, 0, :]
    v_sel = pos * means["tp"] + neg * means["fp"]  # (B, G, nb)
    v_not = pos * means["fn"] + neg * means["tn"]
    tot_not = v_not.sum(-1)
    val = v_sel @ sel.T + tot_not[..., None] - v_not @ sel.T  # (B, G, m)
    n_g = rep.sum(axis=(2, 3))  # (B, G)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_g = val / n_g[..., None]
    overall = val.sum(1) / n
    allv = np.concatenate([overall[:, None, :], per_g], axis=1)  # (B, G+1, m)
    alpha = (1 - confidence) / 2
    lo = np.nanquantile(allv, alpha, axis=0)
    hi = np.nanquantile(allv, 1 - alpha, axis=0)
    return lo, hi


def group_column(table: Mapping[str, Any], sensitive: Sequence[str]) -> np.ndarray | None:
    """One label per row: the sensitive columns' values joined as assay names
    intersections (``"Female x White"``); None without sensitive columns."""
    if not sensitive:
        return None
    parts = [np.asarray(_cells.to_numpy(table[c], c)).astype(str) for c in sensitive]
    out = parts[0]
    for p in parts[1:]:
        out = np.char.add(np.char.add(out, SEP), p)
    return out


def read_columns(data: Any, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """The named columns of a file or frame as NumPy arrays (each name checked, with the
    file's columns listed when one is missing)."""
    from assay.data.dataset import open_dataset

    ds = open_dataset(data)
    table = ds.to_arrow(list(dict.fromkeys(columns)))
    return {c: _cells.to_numpy(table.column(c), c) for c in table.column_names}


def stats_from_data(data: Any, *, target: str, positive_label: Any, score: str,
                    model: ValueModel, sensitive: Sequence[str] = ()) -> ScoreStats:
    """:class:`ScoreStats` of a data set (path, frame or table) for ``model``."""
    names = [target, score, *sensitive, *model.columns]
    cols = read_columns(data, names)
    y = _cells.binarize(cols[target], target, positive_label)
    if not y.any():
        raise InputError(f"column '{target}': the positive label {positive_label!r} "
                         "occurs in no row")
    return score_stats(y, cols[score], group_column(cols, sensitive),
                       values={c: cols[c] for c in model.columns}, target=target,
                       score_name=score, grouping=SEP.join(sensitive))
