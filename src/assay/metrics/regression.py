"""Mergeable sufficient statistics for regression.

:class:`RegressionStats` keeps, per cell of the sensitive features: the row
count, the weight sum, the weighted mean and M2 (sum of weighted squared
deviations from the mean) of the target ``y`` and of the error
``e = prediction - y``, and the weighted mean and M2 of ``|e|``. Batches and
cells combine with Chan et al.'s parallel update (exact and numerically
stable), so MAE, RMSE, R2 and the mean error (bias) match scikit-learn to
1e-9 overall and per group, weighted or not.

Besides the moments, the statistic keeps a *fine table* for the bootstrap
(:class:`assay.metrics.bootstrap.RegressionBootstrap`): one row per
(cell, error bin, target bin) actually seen, holding the row count, the
weight sum, the weighted sums of ``e``, ``|e|`` and ``e**2``, and the
weighted mean and M2 of ``y``. Bins are a deterministic function of the
value alone: a signed logarithmic grid, ``sign(v) * floor(64 * log2|v|)``
(64 bins per doubling, about 1.1 % relative width; 0 has its own bin), so
two batches bin every value the same way and the table merges exactly
(sums add; ``y`` moments combine with Chan's update). When a table would
exceed :data:`MAX_FINE_CELLS` rows, every bin is coarsened by a power of two
(``level``: ``floor(index / 2**level)``) until it fits; the level after a
merge is the smallest one at or above both inputs' levels at which the union
fits, which depends only on the rows, so merges stay associative and
commutative.

What is exact: every point estimate (from the moments, to 1e-9 of
scikit-learn). The bootstrap draws the fine table's row counts from a
multinomial and credits each drawn row with its fine cell's mean
contribution; this is exactly the row-level bootstrap in distribution when
all rows of a fine cell share the same error, target and weight, and a
binned approximation otherwise (rows within 1.1 % of each other in both
error and target are treated as one value; the within-cell spread of ``y``
still enters R2 through its M2, as a constant). Measured against a
row-level bootstrap (tests/test_metrics_regression_bootstrap.py): on the
Taiwan credit data (LIMIT_BAL, 15,000 rows, level 0) interval ends agree
within 3 % of the interval width; on synthetic data forced to coarser
grids, MAE, RMSE, mean error and R2 spreads stay within Monte-Carlo noise
up to level 5 (where a 1,000,000-row table lands), and R2 spreads fall
6-15 % short at levels 6-7. The log grid is relative, so a target with a
large common offset (``1e6 + noise``) falls in one target bin per error bin
and its R2 interval is narrower than the row-level one;
:meth:`RegressionStats.target_spread_in_bins` measures how much of the
target's spread the bins hide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from assay.errors import InputError
from assay.metrics import _cells

REGRESSION_METRICS: tuple[str, ...] = ("mae", "rmse", "mse", "r2", "mean_error")
_REG_ALIASES = {"bias": "mean_error", "mean_absolute_error": "mae",
                "root_mean_squared_error": "rmse", "mean_squared_error": "mse"}
# moment blocks, in order, along the last axis of `moments`: (mean, M2) of y, e, |e|
_Y, _E, _A = 0, 1, 2

#: Bins per doubling of the signed log grid of errors and targets (level 0).
FINE_STEPS = 64
#: Largest number of fine-table rows; above it the grid is coarsened by powers of two.
MAX_FINE_CELLS = 20_000
_MAX_LEVEL = 24
_BIG = 1 << 20  # offset making every non-zero code's magnitude positive
_HALF = 1 << 21  # codes lie in (-_HALF, _HALF)
# columns of the fine table
F_N, F_W, F_E, F_A, F_E2, F_YM, F_YM2 = range(7)
_FINE_COLS = 7


def bin_code(v: np.ndarray, level: int = 0) -> np.ndarray:
    """Signed log-grid bin of each value: ``sign * (floor(64 log2|v|) >> level) + _BIG``,
    0 for 0. A deterministic function of the value, so bins merge exactly."""
    v = np.asarray(v, dtype=np.float64)
    a = np.abs(v)
    with np.errstate(divide="ignore"):
        idx = np.floor(FINE_STEPS * np.log2(np.where(a > 0, a, 1.0))).astype(np.int64)
    idx = (idx >> level) + _BIG
    return np.where(a > 0, np.sign(v).astype(np.int64) * idx, 0)


def _coarsen_code(code: np.ndarray, by: int) -> np.ndarray:
    if by == 0:
        return code
    mag = ((np.abs(code) - _BIG) >> by) + _BIG
    return np.where(code != 0, np.sign(code) * mag, 0)


def _make_key(cell: np.ndarray, ecode: np.ndarray, ycode: np.ndarray) -> np.ndarray:
    return (cell.astype(np.int64) << 44) | ((ecode + _HALF) << 22) | (ycode + _HALF)


def split_key(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat cell, error code, target code) of fine-table keys."""
    mask = (1 << 22) - 1
    return key >> 44, ((key >> 22) & mask) - _HALF, (key & mask) - _HALF


def _group_fine(key: np.ndarray, fine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows with equal keys combined: sums add, target moments by Chan's update."""
    uniq, inv = np.unique(key, return_inverse=True)
    if len(uniq) == len(key):
        order = np.argsort(key, kind="stable")
        return key[order], fine[order]
    m = len(uniq)
    out = np.zeros((m, _FINE_COLS))
    for j in (F_N, F_W, F_E, F_A, F_E2):
        out[:, j] = np.bincount(inv, weights=fine[:, j], minlength=m)
    w = fine[:, F_W]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(inv, weights=w * fine[:, F_YM], minlength=m) / out[:, F_W]
    mean = np.where(out[:, F_W] > 0, mean, 0.0)
    dev = np.where(w > 0, fine[:, F_YM] - mean[inv], 0.0)
    out[:, F_YM] = mean
    out[:, F_YM2] = np.bincount(inv, weights=fine[:, F_YM2] + w * dev * dev, minlength=m)
    return uniq, out


def _fit_fine(key: np.ndarray, fine: np.ndarray, level: int
              ) -> tuple[np.ndarray, np.ndarray, int]:
    """Group equal keys, then coarsen until the table has at most MAX_FINE_CELLS rows."""
    key, fine = _group_fine(key, fine)
    while len(key) > MAX_FINE_CELLS and level < _MAX_LEVEL:
        cell, ec, yc = split_key(key)
        key, fine = _group_fine(_make_key(cell, _coarsen_code(ec, 1), _coarsen_code(yc, 1)),
                                fine)
        level += 1
    return key, fine, level


def _remap_cells(key: np.ndarray, names: Sequence[str], cats: Sequence[Sequence[str]],
                 to_names: Sequence[str], to_cats: Sequence[Sequence[str]]) -> np.ndarray:
    """Fine keys re-expressed in another feature order and category set."""
    if list(names) == list(to_names) and [list(c) for c in cats] == [list(c) for c in to_cats]:
        return key
    cell, ec, yc = split_key(key)
    if names:
        multi = np.unravel_index(cell, tuple(len(c) for c in cats))
        new = []
        for f in to_names:
            i = list(names).index(f)
            pos = {label: j for j, label in enumerate(to_cats[to_names.index(f)])}
            mapping = np.array([pos[label] for label in cats[i]], dtype=np.int64)
            new.append(mapping[multi[i]])
        cell = np.ravel_multi_index(tuple(new), tuple(len(c) for c in to_cats)).astype(np.int64)
    return _make_key(cell, ec, yc)


def resolve_regression_metric(name: str) -> str:
    key = _REG_ALIASES.get(name, name)
    if key not in REGRESSION_METRICS:
        raise InputError(f"unknown regression metric '{name}': expected one of "
                         f"{', '.join(REGRESSION_METRICS)}")
    return key


def combine(w: np.ndarray, mean: np.ndarray, m2: np.ndarray, axis: tuple[int, ...] | int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge groups of (weight, mean, M2) along ``axis`` (Chan's parallel update)."""
    wt = w.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mt = np.where(wt > 0, (w * mean).sum(axis=axis) / np.where(wt > 0, wt, 1), 0.0)
    mt_b = np.expand_dims(mt, axis) if mean.ndim > mt.ndim else mt
    dev = np.where(w > 0, mean - mt_b, 0.0)
    m2t = m2.sum(axis=axis) + (w * dev * dev).sum(axis=axis)
    return wt, mt, m2t


@dataclass
class RegressionStats:
    """Per-cell moments of target and error; see the module docstring."""

    names: list[str]
    categories: list[list[str]]
    n_rows: np.ndarray  # int64 (*cells,)
    w: np.ndarray  # float64 (*cells,)
    mean: np.ndarray  # float64 (*cells, 3): y, e, |e|
    m2: np.ndarray  # float64 (*cells, 3)
    weighted: bool = False
    #: fine table for the bootstrap (see the module docstring): sorted int64 keys
    #: (cell, error bin, target bin) and float64 rows (K, 7): n, w, sum w e, sum w |e|,
    #: sum w e^2, weighted mean of y, M2 of y. ``None`` for a state saved without one.
    fine_key: np.ndarray | None = None
    fine: np.ndarray | None = None
    fine_level: int = 0

    @classmethod
    def from_arrays(cls, y_true: Any, y_pred: Any, *, sensitive: Mapping[str, Any] | None = None,
                    weight: Any = None, names: Mapping[str, str] | None = None
                    ) -> RegressionStats:
        """Statistics of one batch of rows."""
        names = dict(names or {})
        tname, pname = names.get("target", "y_true"), names.get("prediction", "y_pred")
        y = _numeric(y_true, tname)
        p = _numeric(y_pred, pname)
        n = len(y)
        if len(p) != n:
            raise InputError(f"column '{pname}': expected {n} values, got {len(p)}")
        cell, fnames, cats = _cells.encode_cells(sensitive, n)
        _cells.check_size(fnames, cats, 0)
        shape = tuple(len(c) for c in cats)
        size = int(np.prod(shape)) if shape else 1
        if weight is None:
            w = np.ones(n)
        else:
            wname = names.get("weight", "weight")
            w = _numeric(weight, wname)
            if len(w) != n:
                raise InputError(f"column '{wname}': expected {n} values, got {len(w)}")
            if (w < 0).any():
                raise InputError(f"column '{wname}': expected non-negative weights")
        e = p - y
        vals = np.stack([y, e, np.abs(e)], axis=1)
        rows = np.bincount(cell, minlength=size)
        wsum = np.bincount(cell, weights=w, minlength=size)
        safe = np.where(wsum > 0, wsum, 1)
        mean = np.stack([np.bincount(cell, weights=w * vals[:, j], minlength=size) / safe
                         for j in range(3)], axis=1)
        dev = vals - mean[cell]
        m2 = np.stack([np.bincount(cell, weights=w * dev[:, j] ** 2, minlength=size)
                       for j in range(3)], axis=1)
        rowfine = np.zeros((n, _FINE_COLS))
        rowfine[:, F_N] = 1.0
        rowfine[:, F_W] = w
        rowfine[:, F_E] = w * e
        rowfine[:, F_A] = w * np.abs(e)
        rowfine[:, F_E2] = w * e * e
        rowfine[:, F_YM] = y
        fkey, fine, level = _fit_fine(_make_key(cell, bin_code(e), bin_code(y)), rowfine, 0)
        return cls(names=fnames, categories=cats, n_rows=rows.reshape(shape).astype(np.int64),
                   w=wsum.reshape(shape), mean=mean.reshape(*shape, 3), m2=m2.reshape(*shape, 3),
                   weighted=weight is not None, fine_key=fkey, fine=fine, fine_level=level)

    @classmethod
    def from_batch(cls, batch: pa.RecordBatch | pa.Table, *, target: str, prediction: str,
                   sensitive: Sequence[str] = (), weight: str | None = None) -> RegressionStats:
        cols = batch.schema.names
        for role, c in (("target", target), ("prediction", prediction), ("weight", weight),
                        *(("sensitive", s) for s in sensitive)):
            if c is not None and c not in cols:
                raise InputError(f"{role} column '{c}' is not in the data "
                                 f"(columns: {', '.join(cols)})")
        return cls.from_arrays(batch.column(target), batch.column(prediction),
                               sensitive={s: batch.column(s) for s in sensitive},
                               weight=batch.column(weight) if weight else None,
                               names={"target": target, "prediction": prediction,
                                      "weight": weight or "weight"})

    @classmethod
    def from_batches(cls, batches: Any, **columns: Any) -> RegressionStats:
        """Stream record batches into one merged statistic (``columns``: see
        :meth:`from_batch`)."""
        stats: RegressionStats | None = None
        for batch in batches:
            part = cls.from_batch(batch, **columns)
            stats = part if stats is None else stats.merge(part)
        if stats is None:
            raise InputError("no batches: the data has no rows")
        return stats

    def to_state(self) -> dict[str, Any]:
        """A plain, JSON-ready dict from which :meth:`from_state` rebuilds it."""
        state = {"kind": "regression", "version": 2, "names": list(self.names),
                 "categories": [list(c) for c in self.categories],
                 "n_rows": self.n_rows.tolist(), "w": self.w.tolist(),
                 "mean": self.mean.tolist(), "m2": self.m2.tolist(), "weighted": self.weighted}
        if self.fine_key is not None and self.fine is not None:
            state.update(fine_key=self.fine_key.tolist(), fine=self.fine.tolist(),
                         fine_level=self.fine_level)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RegressionStats:
        if not isinstance(state, dict) or state.get("kind") != "regression":
            raise InputError("expected a regression statistic state (kind: regression)")
        shape = tuple(len(c) for c in state["categories"])
        st = cls(names=list(state["names"]), categories=[list(c) for c in state["categories"]],
                 n_rows=np.asarray(state["n_rows"], dtype=np.int64).reshape(shape),
                 w=np.asarray(state["w"], dtype=np.float64).reshape(shape),
                 mean=np.asarray(state["mean"], dtype=np.float64).reshape(*shape, 3),
                 m2=np.asarray(state["m2"], dtype=np.float64).reshape(*shape, 3),
                 weighted=bool(state.get("weighted", False)))
        if state.get("fine_key") is not None:
            try:
                key = np.asarray(state["fine_key"], dtype=np.int64).reshape(-1)
                fine = np.asarray(state["fine"], dtype=np.float64).reshape(-1, _FINE_COLS)
                level = int(state.get("fine_level", 0))
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"regression statistic state: fine table is malformed "
                                 f"({exc})") from None
            n_cells = int(np.prod(shape)) if shape else 1
            if len(key) != len(fine) or not 0 <= level <= _MAX_LEVEL or (
                    len(key) and not 0 <= int(split_key(key)[0].max()) < n_cells):
                raise InputError("regression statistic state: expected one fine-table row per "
                                 "key, keys within the cells and a level between 0 and "
                                 f"{_MAX_LEVEL}")
            st.fine_key, st.fine, st.fine_level = key, fine, level
        return st

    def update_batch(self, *args: Any, **kwargs: Any) -> RegressionStats:
        """Add one batch in place (same arguments as :meth:`from_arrays` or :meth:`from_batch`)."""
        if args and isinstance(args[0], pa.RecordBatch | pa.Table):
            other = type(self).from_batch(*args, **kwargs)
        else:
            other = type(self).from_arrays(*args, **kwargs)
        self.__dict__.update(self.merge(other).__dict__)
        return self

    @property
    def n(self) -> int:
        return int(self.n_rows.sum())

    @property
    def has_score(self) -> bool:
        return False

    def merge(self, other: RegressionStats) -> RegressionStats:
        """A new statistic over the rows of both (associative and commutative)."""
        if sorted(self.names) != sorted(other.names):
            raise InputError(f"cannot merge statistics over different sensitive features: "
                             f"{self.names} and {other.names}")
        if other.names != self.names:
            perm = [other.names.index(x) for x in self.names]
            k = len(perm)
            pcats = [other.categories[i] for i in perm]
            okey = other.fine_key
            if okey is not None:
                okey = _remap_cells(okey, other.names, other.categories, self.names, pcats)
                okey, ofine = _group_fine(okey, other.fine)
            other = RegressionStats(
                names=list(self.names), categories=pcats,
                n_rows=np.transpose(other.n_rows, perm), w=np.transpose(other.w, perm),
                mean=np.transpose(other.mean, [*perm, k]), m2=np.transpose(other.m2, [*perm, k]),
                weighted=other.weighted, fine_key=okey,
                fine=None if okey is None else ofine, fine_level=other.fine_level)
        cats = _cells.union_categories(self.categories, other.categories)
        _cells.check_size(self.names, cats, 0)

        def al(st: RegressionStats, a: np.ndarray) -> np.ndarray:
            return _cells.realign(a, st.categories, cats)

        w = np.stack([al(self, self.w), al(other, other.w)])
        mean = np.stack([al(self, self.mean), al(other, other.mean)])
        m2 = np.stack([al(self, self.m2), al(other, other.m2)])
        wt, mt, m2t = combine(w[..., None], mean, m2, axis=0)
        fkey, fine, level = None, None, max(self.fine_level, other.fine_level)
        if self.fine_key is not None and other.fine_key is not None:
            keys, rows = [], []
            for st in (self, other):
                cell, ec, yc = split_key(_remap_cells(st.fine_key, st.names, st.categories,
                                                      self.names, cats))
                d = level - st.fine_level
                keys.append(_make_key(cell, _coarsen_code(ec, d), _coarsen_code(yc, d)))
                rows.append(st.fine)
            fkey, fine, level = _fit_fine(np.concatenate(keys), np.concatenate(rows), level)
        return RegressionStats(names=list(self.names), categories=cats,
                               n_rows=al(self, self.n_rows) + al(other, other.n_rows),
                               w=wt[..., 0], mean=mt, m2=m2t,
                               weighted=self.weighted or other.weighted,
                               fine_key=fkey, fine=fine, fine_level=level)

    __add__ = merge

    def groups(self, by: Sequence[str] | str | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[tuple[str, ...]]]:
        """(rows, weight, mean, M2) per group of ``by`` and the group labels."""
        axes, _ = _cells.group_axes(self.names, by)
        k = len(self.names)
        drop = tuple(i for i in range(k) if i not in axes)
        rows = _cells.reduce_to_groups(self.n_rows, k, axes)
        w, mean, m2 = self.w[..., None], self.mean, self.m2
        if drop:
            w, mean, m2 = combine(np.broadcast_to(w, mean.shape), mean, m2, axis=drop)
            w = w[..., :1]
        order = sorted(axes)
        perm = [order.index(a) for a in axes]
        w = np.transpose(w, [*perm, len(axes)]).reshape(-1, 1) if axes else w.reshape(1, 1)
        mean = np.transpose(mean, [*perm, len(axes)]).reshape(-1, 3) if axes else \
            mean.reshape(1, 3)
        m2 = np.transpose(m2, [*perm, len(axes)]).reshape(-1, 3) if axes else m2.reshape(1, 3)
        return rows, w[:, 0], mean, m2, _cells.group_labels(self.categories, axes)

    @staticmethod
    def _metrics(w: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> dict[str, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            ok = w > 0
            sw = np.where(ok, w, 1)
            mse = (m2[:, _E] + w * mean[:, _E] ** 2) / sw
            sst = m2[:, _Y]
            r2 = np.where(sst > 0, 1 - (mse * w) / np.where(sst > 0, sst, 1),
                          np.where(mse == 0, 1.0, 0.0))
            out = {"mae": mean[:, _A], "mse": mse, "rmse": np.sqrt(mse), "r2": r2,
                   "mean_error": mean[:, _E]}
        return {k: np.where(ok, v, np.nan) for k, v in out.items()}

    def compute(self, metric: str, by: Sequence[str] | str | None = None) -> np.ndarray | float:
        key = resolve_regression_metric(metric)
        _, w, mean, m2, _ = self.groups(by)
        v = self._metrics(w, mean, m2)[key]
        return float(v[0]) if by is None else v

    def frame(self, metrics: Sequence[str] | None = None, by: Sequence[str] | str | None = None,
              *, min_group_size: int = 0) -> Any:
        """Metrics overall and per group: a :class:`assay.metrics.MetricFrame`."""
        from assay.metrics.frame import MetricFrame

        names = [resolve_regression_metric(m) for m in (metrics or REGRESSION_METRICS)]
        _, w, mean, m2, _ = self.groups(None)
        allm = self._metrics(w, mean, m2)
        overall = {m: float(allm[m][0]) for m in names}
        _, by_names = _cells.group_axes(self.names, by)
        if not by_names:
            return MetricFrame(metrics=names, by=[], overall=overall, by_group={}, counts={},
                               min_group_size=min_group_size)
        rows, w, mean, m2, labels = self.groups(by_names)
        vals = self._metrics(w, mean, m2)
        keep = np.flatnonzero(rows > 0)
        return MetricFrame(metrics=names, by=by_names, overall=overall,
                           by_group={labels[i]: {m: float(vals[m][i]) for m in names}
                                     for i in keep},
                           counts={labels[i]: int(rows[i]) for i in keep},
                           min_group_size=min_group_size)

    def target_spread_in_bins(self) -> float:
        """Share of the target's sum of squares that lies within the fine table's bins
        (NaN without a table or spread). The bootstrap holds that part constant, so above a
        few percent the R2 intervals are too narrow."""
        total = float(self.groups(None)[3][0, _Y])
        if self.fine is None or not total > 0:
            return math.nan
        return float(self.fine[:, F_YM2].sum()) / total

    def intervals(self, by: Sequence[str] | str | None = None, confidence: float = 0.95
                  ) -> dict[str, np.ndarray]:
        """Normal-approximation intervals (groups x 2) of the mean error and MAE: the fallback
        for a statistic without a fine table (bootstrap intervals of every metric:
        :class:`assay.metrics.bootstrap.RegressionBootstrap`)."""
        from scipy.stats import norm

        rows, w, mean, m2, _ = self.groups(by)
        z = float(norm.ppf(0.5 + confidence / 2))
        out = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, j in (("mean_error", _E), ("mae", _A)):
                var = m2[:, j] / np.where(w > 0, w, np.nan)
                se = np.sqrt(var / np.where(rows > 1, rows - 1, np.nan))
                out[name] = np.stack([mean[:, j] - z * se, mean[:, j] + z * se], axis=1)
        return out


def _numeric(values: Any, name: str) -> np.ndarray:
    arr = _cells.to_numpy(values, name)
    if arr.dtype.kind not in "iufb":
        raise InputError(f"column '{name}': expected numbers, got {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise InputError(f"column '{name}': expected finite numbers, got NaN or infinity")
    return arr

