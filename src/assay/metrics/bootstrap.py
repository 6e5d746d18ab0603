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
* weights: a resampled cell's weighted sum is its drawn row count times the
  cell's mean weight. This is exact when weights are constant within a cell,
  an approximation otherwise.

Intervals are percentile intervals. The interval of a max - min gap over
groups is biased upward when groups are small (the max of noisy values
exceeds the max of the true values); gaps against a reference group do not
have that bias and are preferred.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay.errors import InputError
from assay.metrics import _cells
from assay.metrics._formulas import COUNT_METRICS, FORMULAS, Parts

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
        self._cm_idx, self._cm_draws = _draw(rng, st.counts, self.n_boot)
        self._cm_factor = (st.wsums.ravel()[self._cm_idx] / st.counts.ravel()[self._cm_idx])
        self._cell_shape = st.counts.shape
        if st.has_score:
            bb = self.boot_bins if st.n_bins % self.boot_bins == 0 else st.n_bins
            if bb % 10:
                bb = st.n_bins
            self._bb = bb

            def coarse(a: np.ndarray) -> np.ndarray:
                return a.reshape(*a.shape[:-1], bb, -1).sum(axis=-1)

            hn = coarse(st.hist_n)
            self._hist_shape = hn.shape
            self._h_idx, self._h_draws = _draw(rng, hn, self.n_boot)
            cnt = hn.ravel()[self._h_idx].astype(np.float64)
            self._h_factor = {name: coarse(getattr(st, attr)).ravel()[self._h_idx] / cnt
                              for name, attr in (("hist", "hist_w"), ("hs", "hist_ws"),
                                                 ("nll", "hist_nll"), ("sq", "hist_sq"))}
            self._coarse_full = {name: coarse(getattr(st, attr)) for name, attr in
                                 (("hist", "hist_w"), ("hs", "hist_ws"), ("nll", "hist_nll"),
                                  ("sq", "hist_sq"))}

    # ---------------------------------------------------------------- core
    def _scatter(self, idx: np.ndarray, draws: np.ndarray, factor: np.ndarray | None,
                 shape: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
        out = np.zeros((hi - lo, int(np.prod(shape))))
        d = draws[lo:hi]
        out[:, idx] = d if factor is None else d * factor
        return out.reshape(hi - lo, *shape)

    def replicates(self, metrics: Sequence[str], by: Sequence[str] | str | None = None
                   ) -> dict[str, np.ndarray]:
        """Replicates of each metric: arrays of shape (n_boot, groups of ``by``)."""
        axes, _ = _cells.group_axes(self.stats.names, by)
        key = tuple(axes)
        cached = self._cache.setdefault(key, {})
        todo = [m for m in metrics if m not in cached]
        if not todo:
            return {m: cached[m] for m in metrics}
        k = len(self.stats.names)
        need_score = any(m not in COUNT_METRICS for m in todo)
        chunks: dict[str, list[np.ndarray]] = {m: [] for m in todo}
        for lo in range(0, self.n_boot, _CHUNK):
            hi = min(lo + _CHUNK, self.n_boot)
            cm = self._scatter(self._cm_idx, self._cm_draws, self._cm_factor,
                               self._cell_shape, lo, hi)
            parts = Parts(cm=_cells.reduce_to_groups(cm, k, axes, lead=1))
            if need_score:
                for name, fac in self._h_factor.items():
                    arr = self._scatter(self._h_idx, self._h_draws, fac, self._hist_shape, lo, hi)
                    setattr(parts, name, _cells.reduce_to_groups(arr, k, axes, lead=1))
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
        ok = np.isfinite(rep).sum(axis=0) >= max(2, int(0.5 * rep.shape[0]))
        if ok.any():
            sub = rep[:, ok]
            with np.errstate(all="ignore"):
                q = np.nanquantile(sub, [alpha, 1 - alpha], axis=0)
            out[ok] = np.moveaxis(q, 0, -1)
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
    """Draw ``n_boot`` replicates of ``stats`` (seeded); see :class:`Bootstrap`."""
    return Bootstrap(stats, n_boot=n_boot, seed=seed, confidence=confidence, boot_bins=boot_bins)
