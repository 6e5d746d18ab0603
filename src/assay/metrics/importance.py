"""Permutation importance with bootstrap intervals, model-agnostic.

The importance of a feature is how much the model's performance drops when
that feature's column is shuffled (its link to the target and to the other
features is broken, its distribution kept), as in
:func:`sklearn.inspection.permutation_importance`: ``n_repeats`` shuffles per
feature, importance = baseline score minus shuffled score (for losses:
shuffled minus baseline), averaged over the repeats. The point values match
scikit-learn's for the same shuffles.

Intervals: a row-level bootstrap, paired. Each replicate resamples the rows
(multinomial counts, the row bootstrap exactly) and recomputes, on the same
resample, the baseline score and every shuffled score, so the interval is
that of the mean importance over the repeats under resampling of the
evaluated rows. The spread between repeats (the shuffles' own noise) is
reported beside it as ``std``. Every score here is computed on weight
vectors, so the replicates cost O(replicates x rows) per shuffle and no
model call: the model is called once per (feature, repeat).

Metrics: ``roc_auc``, ``accuracy`` (higher is better), ``brier``,
``log_loss``, ``mse``, ``mae`` (lower is better); a callable
``metric(y_true, output) -> float`` is scored on the output of
``output_of`` without a bootstrap (no interval).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: metric -> (higher is better, needs scores (True) or decisions (False))
METRICS: dict[str, tuple[bool, bool]] = {
    "roc_auc": (True, True),
    "accuracy": (True, False),
    "brier": (False, True),
    "log_loss": (False, True),
    "mse": (False, False),
    "mae": (False, False),
}


@dataclass
class Importance:
    """Permutation importance per feature: ``mean``, ``ci`` (or None), ``std`` over repeats.

    ``replicates`` holds the bootstrap replicates of each feature's
    importance (rows: replicates), in the order of ``features``: shares and
    ranks computed from them get intervals of their own.
    """

    features: list[str]
    mean: dict[str, float]
    ci: dict[str, tuple[float, float] | None]
    std: dict[str, float]
    metric: str
    baseline: float
    n: int
    n_repeats: int
    replicates: np.ndarray | None = field(default=None, repr=False)

    def ranked(self) -> list[str]:
        """The features, most important first (ties: in input order)."""
        return sorted(self.features, key=lambda f: -self.mean[f])

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric, "baseline": self.baseline, "n": self.n,
            "n_repeats": self.n_repeats,
            "features": {f: {"mean": self.mean[f],
                             "ci": list(self.ci[f]) if self.ci[f] else None,
                             "std": self.std[f]} for f in self.ranked()},
        }


def _auc(y: np.ndarray, s: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC of scores ``s`` for labels ``y`` (bool), one per row of ``W``.

    Ties count one half, as in scikit-learn's ``roc_auc_score``.
    """
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    Wo = W[:, order]
    pos, neg = Wo * y[order], Wo * ~y[order]
    if len(starts) < len(s):  # tied scores: one group per distinct score
        pos = np.add.reduceat(pos, starts, axis=1)
        neg = np.add.reduceat(neg, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    P, N = pos.sum(axis=1), neg.sum(axis=1)
    num = (pos * (below + 0.5 * neg)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((P > 0) & (N > 0), num / (P * N), np.nan)


def _losses(metric: str, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Per-row values whose weighted mean is the metric."""
    if metric == "accuracy":
        if y.dtype.kind in "biuf" and out.dtype.kind in "biuf":
            return (out.astype(float) == y.astype(float)).astype(float)
        return (out.astype(str) == y.astype(str)).astype(float)
    if metric == "brier":
        return (out - y.astype(float)) ** 2
    if metric == "log_loss":
        p = np.clip(out, 1e-15, 1 - 1e-15)
        return -(y * np.log(p) + (1 - y) * np.log1p(-p))
    if metric == "mse":
        return (out.astype(float) - y.astype(float)) ** 2
    if metric == "mae":
        return np.abs(out.astype(float) - y.astype(float))
    raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")


def score(metric: str, y: np.ndarray, out: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``metric`` of ``out`` against ``y`` under each row of weights ``W`` (shape (B, n))."""
    if metric == "roc_auc":
        return _auc(np.asarray(y, dtype=bool), np.asarray(out, dtype=float), W)
    loss = _losses(metric, y, out)
    return (W @ loss) / W.sum(axis=1)


def _default_output(adapter: Any, metric: str | Callable[..., float],
                    positive_label: Any) -> Callable[[pd.DataFrame], np.ndarray]:
    scores = METRICS[metric][1] if isinstance(metric, str) else bool(
        getattr(adapter, "has_proba", callable(getattr(adapter, "predict_proba", None))))
    if scores:
        def out(X: pd.DataFrame) -> np.ndarray:
            if hasattr(adapter, "has_proba"):  # an assay ModelAdapter
                return adapter.predict_proba(X, positive_label=positive_label)
            proba = np.asarray(adapter.predict_proba(X))
            classes = list(getattr(adapter, "classes_", range(proba.shape[1])))
            col = classes.index(positive_label) if positive_label in classes else -1
            return proba[:, col]
        return out

    def decide(X: pd.DataFrame) -> np.ndarray:
        return np.asarray(adapter.predict(X))
    return decide


def permutation_importance(
    adapter: Any,
    X: pd.DataFrame,
    y: Sequence[Any] | np.ndarray | pd.Series,
    metric: str | Callable[[np.ndarray, np.ndarray], float] = "roc_auc",
    n_repeats: int = 5,
    rng: np.random.Generator | int | None = None,
    *,
    features: Sequence[str] | None = None,
    positive_label: Any = 1,
    n_boot: int = 200,
    confidence: float = 0.95,
    output_of: Callable[[pd.DataFrame], np.ndarray] | None = None,
) -> Importance:
    """Permutation importance of each column of ``X`` (or of ``features``) with intervals.

    ``adapter`` is an :class:`assay.data.ModelAdapter` or a fitted scikit-learn
    estimator; ``y`` the true labels (for classification metrics, labels equal
    to ``positive_label`` are the positive class). The shuffles come from
    ``rng`` (a Generator or a seed): for each feature in turn, ``n_repeats``
    permutations of the rows. scikit-learn draws its permutations differently,
    so the point values agree with it in expectation (and exactly for the same
    permutations), not draw for draw. ``n_boot=0`` skips the bootstrap
    (``ci`` is None).
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if n_repeats < 1:
        raise ValueError(f"n_repeats: expected an integer >= 1, got {n_repeats!r}")
    X = X.reset_index(drop=True)
    feats = list(features) if features is not None else [str(c) for c in X.columns]
    yv = np.asarray(y)
    n = len(X)
    if len(yv) != n:
        raise ValueError(f"y has {len(yv)} values for {n} rows of X")
    if n == 0:
        raise ValueError("permutation importance needs at least one row")
    out_of = output_of or _default_output(adapter, metric, positive_label)
    name = metric if isinstance(metric, str) else getattr(metric, "__name__", "metric")
    if isinstance(metric, str):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
        higher = METRICS[metric][0]
        if metric in ("roc_auc", "brier", "log_loss"):
            yv = _positive(yv, positive_label)
    else:
        higher = True
    base_out = np.asarray(out_of(X))
    ones = np.ones((1, n))
    boot = n_boot > 0 and isinstance(metric, str)
    # bootstrap counts in single precision: exact integers, half the memory traffic
    W = (rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float32)
         if boot else None)

    def metric_of(out: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if isinstance(metric, str):
            return score(metric, yv, out, weights)
        return np.array([float(metric(yv, out))])

    base = float(metric_of(base_out, ones)[0])
    base_b = metric_of(base_out, W) if boot else None
    sign = 1.0 if higher else -1.0
    mean: dict[str, float] = {}
    ci: dict[str, tuple[float, float] | None] = {}
    std: dict[str, float] = {}
    alpha = (1 - confidence) / 2
    for f in feats:
        if f not in X.columns:
            raise ValueError(f"feature {f!r} is not a column of X")
    # Every shuffled copy is drawn first (per feature, n_repeats permutations, in order),
    # then scored in few model calls: up to JOINT_ROWS rows of stacked copies per call
    # (a model's fixed cost per call outweighs its cost per row at these sizes; rows
    # are scored independently, as scikit-learn's API promises).
    jobs = [(j, f, rng.permutation(n)) for j, f in enumerate(feats) for _ in range(n_repeats)]
    outs = _score_copies(out_of, X, jobs)
    points: dict[int, list[float]] = {j: [] for j in range(len(feats))}
    acc = np.zeros((n_boot if boot else 0, len(feats)))
    for (j, _, _), out in zip(jobs, outs, strict=True):
        points[j].append(sign * (base - float(metric_of(out, ones)[0])))
        if boot:
            acc[:, j] += sign * (base_b - metric_of(out, W))  # type: ignore[operator]
    reps = acc / n_repeats
    for j, f in enumerate(feats):
        mean[f] = float(np.mean(points[j]))
        std[f] = float(np.std(points[j]))
        if boot:
            finite = reps[:, j][np.isfinite(reps[:, j])]
            ci[f] = ((float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha)))
                     if len(finite) else None)
        else:
            ci[f] = None
    return Importance(features=feats, mean=mean, ci=ci, std=std, metric=name, baseline=base,
                      n=n, n_repeats=n_repeats, replicates=reps if boot else None)


#: Most rows of shuffled copies scored in one model call.
JOINT_ROWS = 100_000


def _score_copies(out_of: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame,
                  jobs: list[tuple[int, str, np.ndarray]]) -> list[np.ndarray]:
    """The model's output on each shuffled copy of ``X`` (one per job), in job order."""
    n = len(X)
    per_call = max(1, JOINT_ROWS // max(n, 1))
    outs: list[np.ndarray] = []
    for start in range(0, len(jobs), per_call):
        copies = []
        for _, f, perm in jobs[start:start + per_call]:
            Xp = X.copy()
            Xp[f] = X[f].to_numpy()[perm]
            copies.append(Xp)
        out = np.asarray(out_of(pd.concat(copies, ignore_index=True)))
        outs.extend(out[i * n:(i + 1) * n] for i in range(len(copies)))
    return outs


def _positive(y: np.ndarray, positive_label: Any) -> np.ndarray:
    hit = y == positive_label
    if not np.any(hit) and y.dtype.kind not in "biuf":
        hit = y.astype(str) == str(positive_label)
    return hit.astype(int)
