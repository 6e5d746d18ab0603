"""Fast bootstrap of every metric, by multinomial resampling of statistic cells.

A row-level bootstrap replicate draws ``n`` rows with replacement. For a
statistic that depends only on how many rows fall in each cell of a
contingency table, that is the same, in distribution, as drawing the cell
counts from ``Multinomial(n, counts / n)``, which costs O(cells) instead of
O(rows). All replicates are drawn at once as a 2-D array and every metric is
computed on arrays of counts, for every group at once.

What is exact and what is approximate:

* exact in distribution (unweighted data): every metric of the
  (label, prediction) table: accuracy, balanced accuracy, precision, recall,
  TPR, FPR, FNR, TNR, selection rate, base rate, F1, and every gap between
  groups built from them (demographic parity, equalized odds, ...);
* approximate: score-based metrics (ROC AUC, average precision, log loss,
  Brier, ECE, mean score, calibration in the large) are resampled over the
  per-(cell, label) score histogram coarsened to ``boot_bins`` bins (default
  100): rows in one bin are treated as one value (their mean loss / score),
  and the replicates are shifted by the difference between the full-data
  metric on fine bins and on coarse bins, so the interval is centred where
  the point estimate is;
* regression (:class:`RegressionBootstrap`): MAE, MSE, RMSE, R2 and the mean
  error are resampled over the statistic's fine (cell, error bin, target
  bin) table; exact in distribution when the rows of a fine cell share their
  values, a binned approximation otherwise (see
  :mod:`assay.metrics.regression`);
* weights: a resampled cell's weighted sum is its drawn row count times the
  cell's mean weight. This is exact when weights are constant within a cell,
  an approximation otherwise.

Intervals are percentile intervals. ECE, a sum of absolute gaps, is biased
upward under resampling, so its interval sits above the point estimate on
small groups. The interval of a max - min gap over
groups is biased upward when groups are small (the max of noisy values
exceeds the max of the true values); gaps against a reference group do not
have that bias and are preferred.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from assay.errors import InputError
from assay.metrics import _cells
from assay.metrics._formulas import COUNT_METRICS, FORMULAS, Parts, resolve_metric

DEFAULT_REPLICATES = 1000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_BOOT_BINS = 100
_CHUNK = 100  # replicates reduced at a time (bounds memory for histogram metrics)


def _draw(rng: np.random.Generator, counts: np.ndarray, n_boot: int) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Multinomial draws over the non-empty categories of ``counts`` (flat)."""
    flat = counts.ravel()
    nz = np.flatnonzero(flat)
    n = int(flat.sum())
    if n == 0:
        return nz, np.zeros((n_boot, 0), np.int64)
    draws = rng.multinomial(n, flat[nz] / n, size=n_boot)
    return nz, draws


def _chunks(draws: np.ndarray) -> list[np.ndarray]:
    """Replicates split in blocks of ``_CHUNK``, each (categories x replicates), contiguous
    float64: the layout the sparse group sums read fastest."""
    return [np.ascontiguousarray(draws[lo:lo + _CHUNK].T, dtype=np.float64)
            for lo in range(0, draws.shape[0], _CHUNK)]


@dataclass
class Bootstrap:
    """Replicates of a :class:`~assay.metrics.ClassificationStats`; metrics on demand."""

    stats: Any
    n_boot: int = DEFAULT_REPLICATES
    seed: int = 0
    confidence: float = DEFAULT_CONFIDENCE
    boot_bins: int = DEFAULT_BOOT_BINS
    _cache: dict[Any, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        st = self.stats
        if not isinstance(self.n_boot, int | np.integer) or self.n_boot < 10:
            raise InputError(f"bootstrap replicates: expected an integer >= 10, "
                             f"got {self.n_boot!r}")
        if not 0 < self.confidence < 1:
            raise InputError(f"bootstrap confidence: expected a number between 0 and 1, "
                             f"got {self.confidence!r}")
        rng = np.random.default_rng(self.seed)
        # the histogram replicates use their own stream, drawn on first use
        self._h_seed = rng.integers(0, 2**63 - 1)
        self._h_drawn = False
        self._cm_idx, draws = _draw(rng, st.counts, self.n_boot)
        self._cm_chunks = _chunks(draws)
        self._cm_factor = (st.wsums.ravel()[self._cm_idx] / st.counts.ravel()[self._cm_idx])
        self._cell_shape = st.counts.shape
        if st.has_score:
            bb = self.boot_bins if st.n_bins % self.boot_bins == 0 else st.n_bins
            if bb % 10:
                bb = st.n_bins
            self._bb = bb

            def coarse(a: np.ndarray) -> np.ndarray:
                return a.reshape(*a.shape[:-1], bb, -1).sum(axis=-1)

            self._hn = coarse(st.hist_n)
            self._hist_shape = self._hn.shape
            self._coarse_full = {name: coarse(getattr(st, attr)) for name, attr in
                                 (("hist", "hist_w"), ("hs", "hist_ws"), ("nll", "hist_nll"),
                                  ("sq", "hist_sq"))}

    # ---------------------------------------------------------------- core
    def _draw_hist(self) -> None:
        if self._h_drawn:
            return
        rng = np.random.default_rng(self._h_seed)
        self._h_idx, draws = _draw(rng, self._hn, self.n_boot)
        self._h_chunks = _chunks(draws)
        del draws
        cnt = self._hn.ravel()[self._h_idx].astype(np.float64)
        self._h_factor = {name: a.ravel()[self._h_idx] / cnt
                          for name, a in self._coarse_full.items()}
        self._h_drawn = True

    def _aggregator(self, idx: np.ndarray, shape: tuple[int, ...], axes: list[int],
                    factor: np.ndarray) -> tuple[sparse.csr_matrix, tuple[int, ...]]:
        """Sparse matrix summing drawn categories into (group, trailing...) slots.

        ``idx`` are flat positions in an array of ``shape`` = (*cells, *trailing);
        the result maps them to the groups of ``axes`` (row-major in ``axes``
        order, as :func:`assay.metrics._cells.reduce_to_groups`) times the
        trailing axes, each weighted by ``factor``.
        """
        k = len(self.stats.names)
        multi = np.unravel_index(idx, shape)
        cell_shape, trailing = shape[:k], shape[k:]
        if axes:
            group = np.ravel_multi_index(tuple(multi[a] for a in axes),
                                         tuple(cell_shape[a] for a in axes))
            n_groups = int(np.prod([cell_shape[a] for a in axes]))
        else:
            group = np.zeros(len(idx), dtype=np.int64)
            n_groups = 1
        tail = np.ravel_multi_index(tuple(multi[k:]), trailing) if trailing else 0
        size_tail = int(np.prod(trailing)) if trailing else 1
        target = group * size_tail + tail
        m = sparse.csr_matrix((factor, (target, np.arange(len(idx)))),
                              shape=(n_groups * size_tail, len(idx)))
        return m, (n_groups, *trailing)

    def replicates(self, metrics: Sequence[str], by: Sequence[str] | str | None = None
                   ) -> dict[str, np.ndarray]:
        """Replicates of each metric: arrays of shape (n_boot, groups of ``by``)."""
        names = [resolve_metric(m, has_score=self.stats.has_score) for m in metrics]
        if names != list(metrics):
            return dict(zip(metrics, self.replicates(names, by).values(), strict=True))
        axes, _ = _cells.group_axes(self.stats.names, by)
        key = tuple(axes)
        cached = self._cache.setdefault(key, {})
        todo = [m for m in metrics if m not in cached]
        if not todo:
            return {m: cached[m] for m in metrics}
        need_score = any(m not in COUNT_METRICS for m in todo)
        cm_m, cm_shape = self._aggregator(self._cm_idx, self._cell_shape, axes, self._cm_factor)
        h_m: dict[str, Any] = {}
        if need_score:
            self._draw_hist()
            for name, fac in self._h_factor.items():
                h_m[name] = self._aggregator(self._h_idx, self._hist_shape, axes, fac)
        chunks: dict[str, list[np.ndarray]] = {m: [] for m in todo}
        for c, d in enumerate(self._cm_chunks):
            r = d.shape[1]
            parts = Parts(cm=np.asarray(cm_m @ d).T.reshape(r, *cm_shape))
            if need_score:
                dh = self._h_chunks[c]
                for name, (m, shp) in h_m.items():
                    setattr(parts, name, np.asarray(m @ dh).T.reshape(r, *shp))
            for m in todo:
                chunks[m].append(FORMULAS[m](parts))
        for m in todo:
            rep = np.concatenate(chunks[m], axis=0)
            if m not in COUNT_METRICS:
                rep = rep + self._binning_shift(m, axes)
            cached[m] = rep
        return {m: cached[m] for m in metrics}

    def _binning_shift(self, metric: str, axes: list[int]) -> np.ndarray:
        """Fine-bin point estimate minus coarse-bin point estimate, per group."""
        k = len(self.stats.names)
        fine, _, _ = self.stats.parts([self.stats.names[a] for a in axes] or None)
        coarse = Parts(cm=fine.cm, **{name: _cells.reduce_to_groups(a, k, axes)
                                      for name, a in self._coarse_full.items()})
        shift = FORMULAS[metric](fine) - FORMULAS[metric](coarse)
        return np.nan_to_num(shift)

    def interval(self, replicates: np.ndarray) -> np.ndarray:
        """Percentile interval along the replicate axis: array (..., 2)."""
        alpha = (1 - self.confidence) / 2
        rep = np.asarray(replicates, dtype=np.float64)
        out = np.full((*rep.shape[1:], 2), np.nan)
        fin = np.isfinite(rep)
        n_fin = fin.sum(axis=0)
        full = n_fin == rep.shape[0]
        part = ~full & (n_fin >= max(2, int(0.5 * rep.shape[0])))
        if full.any():
            out[full] = np.moveaxis(np.quantile(rep[:, full], [alpha, 1 - alpha], axis=0), 0, -1)
        if part.any():  # replicates where the metric is undefined are left out
            sub = np.where(fin[:, part], rep[:, part], np.nan)
            with np.errstate(all="ignore"):
                q = np.nanquantile(sub, [alpha, 1 - alpha], axis=0)
            out[part] = np.moveaxis(q, 0, -1)
        return out

    def p_value(self, replicates: np.ndarray) -> np.ndarray:
        """Two-sided bootstrap p-value of "the quantity is 0": 2 min(P(rep <= 0), P(rep >= 0))."""
        rep = np.asarray(replicates, dtype=np.float64)
        fin = np.isfinite(rep)
        m = np.maximum(fin.sum(axis=0), 1)
        le = ((rep <= 0) & fin).sum(axis=0) / m
        ge = ((rep >= 0) & fin).sum(axis=0) / m
        return np.minimum(1.0, 2 * np.minimum(le, ge))


def bootstrap(stats: Any, *, n_boot: int = DEFAULT_REPLICATES, seed: int = 0,
              confidence: float = DEFAULT_CONFIDENCE, boot_bins: int = DEFAULT_BOOT_BINS
              ) -> Bootstrap:
    """Draw ``n_boot`` replicates of ``stats`` (seeded); see :class:`Bootstrap` and, for a
    regression statistic, :class:`RegressionBootstrap`."""
    from assay.metrics.regression import RegressionStats

    if isinstance(stats, RegressionStats):
        return RegressionBootstrap(stats, n_boot=n_boot, seed=seed, confidence=confidence)
    return Bootstrap(stats, n_boot=n_boot, seed=seed, confidence=confidence, boot_bins=boot_bins)


# ------------------------------------------------------------------------- regression
_REG_CHUNK = 50  # replicates drawn at a time
_REG_CACHE_LIMIT = 10_000_000  # cell-level replicate sums kept when n_boot x cells x 6 <= this


@dataclass
class RegressionBootstrap(Bootstrap):
    """Replicates of a :class:`~assay.metrics.RegressionStats` by multinomial resampling of
    its fine (cell, error bin, target bin) table.

    A replicate draws ``n`` rows over the fine cells (``Multinomial(n, counts / n)``)
    and credits each drawn row with its fine cell's mean contribution: weight,
    weighted error, absolute error, squared error, and the target's mean and
    within-cell M2. From these sums come MAE, MSE, RMSE, R2 and the mean
    error of every group in every replicate. Exactness: see
    :mod:`assay.metrics.regression`. Replicates are seeded and reproducible;
    the per-cell replicate sums are kept when small enough, else recomputed
    (same draws) for each grouping.
    """

    def __post_init__(self) -> None:
        st = self.stats
        if not isinstance(self.n_boot, int | np.integer) or self.n_boot < 10:
            raise InputError(f"bootstrap replicates: expected an integer >= 10, "
                             f"got {self.n_boot!r}")
        if not 0 < self.confidence < 1:
            raise InputError(f"bootstrap confidence: expected a number between 0 and 1, "
                             f"got {self.confidence!r}")
        if st.fine_key is None or st.fine is None:
            raise InputError("this regression statistic has no fine error table (it was saved "
                             "by an older version): rebuild it from the data to bootstrap it")
        from assay.metrics import regression as rg

        self._cell_shape = tuple(len(c) for c in st.categories)
        self._n_cells = int(np.prod(self._cell_shape)) if self._cell_shape else 1
        fine = st.fine
        cnt = fine[:, rg.F_N]
        keep = cnt > 0
        fine, key = fine[keep], st.fine_key[keep]
        cnt = cnt[keep]
        cell = rg.split_key(key)[0]
        self._fine_cell = cell
        self._fine_counts = cnt.astype(np.int64)
        # centre the target on its cell's exact mean (stable sums of squares)
        centre = st.mean.reshape(-1, 3)[:, rg._Y][cell] if self._n_cells else np.zeros(0)
        wbar = fine[:, rg.F_W] / cnt
        dy = fine[:, rg.F_YM] - centre
        self._centre = st.mean.reshape(-1, 3)[:, rg._Y]
        # per drawn row: w, w e, w |e|, w e^2, w (y - c), w (y - c)^2 + within-cell M2
        self._factors = np.stack([wbar, fine[:, rg.F_E] / cnt, fine[:, rg.F_A] / cnt,
                                  fine[:, rg.F_E2] / cnt, wbar * dy,
                                  wbar * dy * dy + fine[:, rg.F_YM2] / cnt])
        k = len(cnt)
        self._to_cells = sparse.csr_matrix(
            (np.ones(k), (cell, np.arange(k))), shape=(self._n_cells, k))
        rng = np.random.default_rng(self.seed)
        self._chunk_seeds = [int(s) for s in rng.integers(0, 2**63 - 1,
                                                          size=-(-self.n_boot // _REG_CHUNK))]
        self._cell_reps: np.ndarray | None = None

    def _cell_sums(self) -> Any:
        """Per chunk of replicates: array (r, cells, 6) of the drawn sums per cell."""
        if self._cell_reps is not None:
            yield self._cell_reps
            return
        keep = self.n_boot * self._n_cells * 6 <= _REG_CACHE_LIMIT
        parts = []
        n = int(self._fine_counts.sum())
        p = self._fine_counts / n
        for c, seed in enumerate(self._chunk_seeds):
            r = min(_REG_CHUNK, self.n_boot - c * _REG_CHUNK)
            draws = np.random.default_rng(seed).multinomial(n, p, size=r).astype(np.float64)
            sums = np.stack([(self._to_cells @ (draws * f).T).T for f in self._factors],
                            axis=-1)
            if keep:
                parts.append(sums)
            else:
                yield sums
        if keep:
            self._cell_reps = np.concatenate(parts, axis=0)
            yield self._cell_reps

    def replicates(self, metrics: Sequence[str], by: Sequence[str] | str | None = None
                   ) -> dict[str, np.ndarray]:
        """Replicates of each regression metric: arrays of shape (n_boot, groups of ``by``)."""
        from assay.metrics.regression import resolve_regression_metric

        names = [resolve_regression_metric(m) for m in metrics]
        axes, _ = _cells.group_axes(self.stats.names, by)
        cached = self._cache.setdefault(tuple(axes), {})
        if not all(m in cached for m in names):
            chunks = [self._metrics_of(s, axes) for s in self._cell_sums()]
            for m in chunks[0]:
                cached[m] = np.concatenate([c[m] for c in chunks], axis=0)
        return {orig: cached[m] for orig, m in zip(metrics, names, strict=True)}

    def _metrics_of(self, sums: np.ndarray, axes: list[int]) -> dict[str, np.ndarray]:
        """Every metric per group from per-cell replicate sums (r, cells, 6)."""
        k = len(self.stats.names)
        r = sums.shape[0]
        cell_sums = sums.reshape(r, *self._cell_shape, 6)
        with np.errstate(invalid="ignore", divide="ignore"):
            w_c = sums[..., 0]
            # each cell's replicate mean of y and sum of squares about it
            a_c, b_c = sums[..., 4], sums[..., 5]
            mean_c = np.where(w_c > 0, self._centre[None, :] + a_c / w_c, 0.0)
            ss_c = np.where(w_c > 0, b_c - a_c * a_c / np.where(w_c > 0, w_c, 1), 0.0)
            grp = _cells.reduce_to_groups(cell_sums, k, axes, lead=1)  # (r, G, 6)
            w = grp[..., 0]
            wm = _cells.reduce_to_groups((w_c * mean_c).reshape(r, *self._cell_shape), k,
                                         axes, lead=1)
            mu = np.where(w > 0, wm / np.where(w > 0, w, 1), 0.0)
            if axes:
                gidx = np.ravel_multi_index(
                    tuple(np.unravel_index(np.arange(self._n_cells), self._cell_shape)[a]
                          for a in axes), tuple(self._cell_shape[a] for a in axes))
            else:
                gidx = np.zeros(self._n_cells, dtype=np.int64)
            dev = np.where(w_c > 0, mean_c - mu[:, gidx], 0.0)
            sst = _cells.reduce_to_groups((ss_c + w_c * dev * dev).reshape(r, *self._cell_shape),
                                          k, axes, lead=1)
            ok = w > 0
            sw = np.where(ok, w, 1)
            mse = grp[..., 3] / sw
            r2 = np.where(sst > 0, 1 - grp[..., 3] / np.where(sst > 0, sst, 1),
                          np.where(mse == 0, 1.0, 0.0))
            out = {"mae": grp[..., 2] / sw, "mse": mse, "rmse": np.sqrt(mse), "r2": r2,
                   "mean_error": grp[..., 1] / sw}
        return {m: np.where(ok, v, np.nan) for m, v in out.items()}


def regression_bootstrap(stats: Any, *, n_boot: int = DEFAULT_REPLICATES, seed: int = 0,
                         confidence: float = DEFAULT_CONFIDENCE) -> RegressionBootstrap:
    """Draw ``n_boot`` replicates of a :class:`~assay.metrics.RegressionStats` (seeded)."""
    return RegressionBootstrap(stats, n_boot=n_boot, seed=seed, confidence=confidence)
