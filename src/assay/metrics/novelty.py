"""A per-row novelty score fitted on reference (training) data, and its 99th percentile.

:func:`fit_novelty` fits a :class:`NoveltyScorer` on a sample of reference rows:

* **encoding**: numeric columns standardised by the fit rows' mean and standard
  deviation (a missing value is the mean, plus a 0/1 indicator when the fit rows
  have missing values in that column); every other column one-hot encoded on its
  ``max_categories`` most frequent values plus an *other* slot (rarer values) and
  an *unseen* slot (values the fit rows never had), each scaled by 1/sqrt(2) so
  that two different values are at distance 1, like one standard deviation;
* **score**: the mean Euclidean distance of a row to its ``k`` nearest
  neighbours among the fit rows (brute force, chunked: O(rows x fit rows));
* **threshold**: the reference is split at random into two halves; the score is
  fitted on one and the other, scored *out of sample*, gives the threshold: the
  ``ceil((m + 1) q)``-th smallest of its ``m`` scores (the conformal quantile).
  A row drawn from the reference's distribution is then beyond the threshold with
  probability at most ``1 - q`` and at least ``1 - q - 1 / (m + 1)``, so with
  ``q = 0.99`` the expected share of *novel* rows of in-distribution data is 1%.

The fitted state (:meth:`NoveltyScorer.to_dict`) is plain JSON: monitoring stores
it with a version's reference and counts the novel rows of each batch with it.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assay.errors import InputError

#: The percentile of the reference's out-of-sample scores beyond which a row is novel.
QUANTILE = 0.99
#: Fewest calibration rows that give a 99th percentile (ceil((m + 1) 0.99) <= m).
MIN_CALIBRATION = 99
#: Most rare values of a column listed to tell them from values never seen.
MAX_RARE = 1000
_ONE_HOT = 1.0 / math.sqrt(2.0)
_MISSING = "(missing)"
_CHUNK_CELLS = 4_000_000  # query rows x fit rows per distance block (32 MB of float64)


@dataclass
class NoveltyScorer:
    """A fitted novelty score (see the module docstring) and its threshold."""

    numeric: list[str]
    means: list[float]
    stds: list[float]
    indicators: list[str]  # numeric columns with a missing-value indicator
    categorical: dict[str, list[str]]  # column -> kept categories (most frequent first)
    #: column -> the fit rows' other (rare) values; None: more than MAX_RARE of them
    rare: dict[str, list[str] | None]
    points: np.ndarray  # fit rows, encoded (float32)
    k: int
    threshold: float
    quantile: float = QUANTILE
    calibration_rows: int = 0
    calibration_scores: list[float] = field(default_factory=list)  # sorted, for charts

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def fit_rows(self) -> int:
        return int(self.points.shape[0])

    @property
    def expected_share(self) -> float:
        """Share of in-distribution rows expected beyond the threshold (``1 - quantile``)."""
        return 1.0 - self.quantile

    # ------------------------------------------------------------------ encoding
    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """The rows of ``df`` as points of the score's space (float32)."""
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise InputError(f"the novelty score needs column(s) {', '.join(missing)}, which "
                             "the data does not have")
        n = len(df)
        parts: list[np.ndarray] = []
        if self.numeric:
            x = np.column_stack([_numbers(df[c]) for c in self.numeric])
            nan = np.isnan(x)
            z = (x - np.asarray(self.means)) / np.asarray(self.stds)
            z[nan] = 0.0
            parts.append(z)
            for c in self.indicators:
                parts.append(nan[:, self.numeric.index(c)].astype(np.float64)[:, None])
        for c, cats in self.categorical.items():
            block = np.zeros((n, len(cats) + 2))
            text = _text(df[c])
            pos = {v: i for i, v in enumerate(cats)}
            idx = np.fromiter((pos.get(v, -1) for v in text), dtype=np.int64, count=n)
            block[np.arange(n)[idx >= 0], idx[idx >= 0]] = _ONE_HOT
            # values not kept: "other" when... the fit rows had them; they are not kept
            # here, so the distinction is made on whether they look like a rare value
            # (kept list exhausted) or a value never seen: see _fit_categories
            rest = idx < 0
            block[rest, len(cats) + 1] = _ONE_HOT  # unseen
            parts.append(block)
        if not parts:
            return np.zeros((n, 0), dtype=np.float32)
        return np.hstack(parts).astype(np.float32)

    # ------------------------------------------------------------------ scoring
    def score(self, df: pd.DataFrame) -> np.ndarray:
        """Mean distance of each row of ``df`` to its ``k`` nearest fit rows."""
        return knn_distance(self.encode(df), self.points, self.k)

    def novel(self, df: pd.DataFrame) -> np.ndarray:
        """Whether each row of ``df`` lies beyond the reference's threshold."""
        return self.score(df) > self.threshold

    # ------------------------------------------------------------------ state
    def to_dict(self) -> dict[str, Any]:
        pts = np.ascontiguousarray(self.points, dtype="<f4")
        return {"v": 1, "numeric": list(self.numeric), "means": list(self.means),
                "stds": list(self.stds), "indicators": list(self.indicators),
                "categorical": {k: list(v) for k, v in self.categorical.items()},
                "rare": {k: None if v is None else list(v) for k, v in self.rare.items()},
                "shape": list(pts.shape), "points": base64.b64encode(pts.tobytes()).decode(),
                "k": self.k, "threshold": self.threshold, "quantile": self.quantile,
                "calibration_rows": self.calibration_rows,
                "calibration_scores": list(self.calibration_scores)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NoveltyScorer:
        shape = tuple(int(s) for s in d["shape"])
        pts = np.frombuffer(base64.b64decode(d["points"]), dtype="<f4").reshape(shape)
        return cls(numeric=list(d["numeric"]), means=[float(v) for v in d["means"]],
                   stds=[float(v) for v in d["stds"]], indicators=list(d["indicators"]),
                   categorical={k: list(v) for k, v in d["categorical"].items()},
                   rare={k: None if v is None else list(v) for k, v in d["rare"].items()},
                   points=pts.astype(np.float32), k=int(d["k"]),
                   threshold=float(d["threshold"]), quantile=float(d["quantile"]),
                   calibration_rows=int(d["calibration_rows"]),
                   calibration_scores=[float(v) for v in d.get("calibration_scores", [])])


def _numbers(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _text(s: pd.Series) -> np.ndarray:
    return s.astype(object).where(s.notna(), _MISSING).astype(str).to_numpy()


def knn_distance(queries: np.ndarray, points: np.ndarray, k: int) -> np.ndarray:
    """Mean Euclidean distance of each query to its ``k`` nearest ``points`` (brute force,
    in blocks of rows so that memory stays bounded)."""
    n, m = queries.shape[0], points.shape[0]
    if m == 0:
        raise InputError("the novelty score has no reference rows to compare with")
    k = min(k, m)
    out = np.empty(n, dtype=np.float64)
    p = points.astype(np.float64)
    p2 = np.einsum("ij,ij->i", p, p)
    step = max(1, _CHUNK_CELLS // m)
    for lo in range(0, n, step):
        q = queries[lo:lo + step].astype(np.float64)
        d2 = np.einsum("ij,ij->i", q, q)[:, None] + p2[None, :] - 2.0 * (q @ p.T)
        np.maximum(d2, 0.0, out=d2)
        near = np.partition(d2, k - 1, axis=1)[:, :k] if k < m else d2
        out[lo:lo + step] = np.sqrt(near).mean(axis=1)
    return out


def conformal_threshold(scores: np.ndarray, quantile: float = QUANTILE) -> float:
    """The ``ceil((m + 1) quantile)``-th smallest of ``m`` calibration scores."""
    m = int(scores.size)
    rank = math.ceil((m + 1) * quantile)
    if rank > m:
        raise InputError(f"the novelty threshold at the {quantile:.0%} percentile needs at least "
                         f"{math.ceil(quantile / (1 - quantile))} calibration rows, got {m}")
    return float(np.sort(scores)[rank - 1])


def fit_novelty(df: pd.DataFrame, *, numeric: Sequence[str], categorical: Sequence[str],
                k: int = 5, seed: int = 0, max_categories: int = 20,
                quantile: float = QUANTILE) -> NoveltyScorer:
    """Fit the score on one random half of ``df`` and its threshold on the other half."""
    if not numeric and not categorical:
        raise InputError("the novelty score needs at least one feature column")
    n = len(df)
    m = n - n // 2
    need = math.ceil(quantile / (1 - quantile))
    if m < need:
        raise InputError(f"the novelty score needs at least {2 * need} reference rows (half to "
                         f"fit, half to calibrate its {quantile:.0%} percentile), got {n}")
    order = np.random.default_rng(seed).permutation(n)
    fit = df.iloc[np.sort(order[: n // 2])]
    cal = df.iloc[np.sort(order[n // 2:])]
    means, stds, indicators = [], [], []
    for c in numeric:
        x = _numbers(fit[c])
        ok = x[~np.isnan(x)]
        mu = float(ok.mean()) if ok.size else 0.0
        sd = float(ok.std()) if ok.size > 1 else 0.0
        means.append(mu)
        stds.append(sd if sd > 0 and math.isfinite(sd) else 1.0)
        if ok.size < x.size:
            indicators.append(c)
    cats: dict[str, list[str]] = {}
    rare: dict[str, list[str] | None] = {}
    for c in categorical:
        vc = pd.Series(_text(fit[c])).value_counts(sort=True)
        cats[c] = [str(v) for v in vc.index[:max_categories]]
        rest = [str(v) for v in vc.index[max_categories:]]
        rare[c] = rest if len(rest) <= MAX_RARE else None
    scorer = NoveltyScorer(numeric=list(numeric), means=means, stds=stds,
                           indicators=indicators, categorical=cats, rare=rare,
                           points=np.zeros((0, 0), dtype=np.float32), k=k, threshold=math.inf,
                           quantile=quantile)
    scorer.points = scorer.encode(fit)
    cal_scores = knn_distance(scorer.encode(cal), scorer.points, k)
    scorer.threshold = conformal_threshold(cal_scores, quantile)
    scorer.calibration_rows = int(cal_scores.size)
    scorer.calibration_scores = [float(v) for v in np.quantile(cal_scores,
                                                               np.linspace(0, 1, 101))]
    return scorer
