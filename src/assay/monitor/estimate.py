"""Confidence-based performance estimation (CBPE) from a window's score histograms.

Before labels arrive, a *calibrated* score ``s`` of a row is the probability
that its label is positive. The expected confusion matrix of a window is then
``E[TP] = sum of s over rows predicted positive``, ``E[FP] = sum of (1 - s)``
over the same rows, and likewise for rows predicted negative; every count
metric follows from it. The expected ROC AUC treats each row as ``s`` of a
positive and ``1 - s`` of a negative at its score (on the window's score
bins, ties within a bin counted as half).

Assumptions (docs/monitoring.md): the scores are calibrated on production
data (``P(y = 1 | s) = s``; a calibration check at certification is the
evidence), labels are independent given the score, and the relation between
score and label has not changed (concept drift is invisible to CBPE: only
realised performance, once labels arrive, detects it). The interval comes
from drawing the labels of every (predicted class, score bin) cell from a
binomial with the cell's mean score, so it is the spread of the *realised*
metric that calibrated scores imply.
"""

from __future__ import annotations

import numpy as np

from assay.errors import InputError
from assay.metrics import ClassificationStats

ESTIMABLE = ("accuracy", "roc_auc", "precision", "recall", "selection_rate")


def _cells(outputs: ClassificationStats) -> tuple[np.ndarray, np.ndarray]:
    """Rows and summed scores per (predicted class, score bin), over every group cell."""
    if outputs.hist_n is None or outputs.hist_ws is None:
        raise InputError("performance estimation needs the model's scores (--score)")
    k = len(outputs.names)
    axes = tuple(range(k))
    n = outputs.hist_n.sum(axis=axes) if k else outputs.hist_n
    ws = outputs.hist_ws.sum(axis=axes) if k else outputs.hist_ws
    return np.asarray(n, dtype=np.float64), np.asarray(ws, dtype=np.float64)


def _metric(metric: str, pos: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``metric`` from positives ``pos`` and rows ``n`` per (pred, bin); leading axes kept."""
    neg = n - pos
    tp, fp = pos[..., 1, :].sum(-1), neg[..., 1, :].sum(-1)
    fn, tn = pos[..., 0, :].sum(-1), neg[..., 0, :].sum(-1)
    total = tp + fp + fn + tn
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "accuracy":
            return (tp + tn) / total
        if metric == "precision":
            return tp / (tp + fp)
        if metric == "recall":
            return tp / (tp + fn)
        if metric == "selection_rate":
            return (tp + fp) / total
        if metric == "roc_auc":
            p_bin = pos.sum(-2)  # positives per score bin (both predicted classes)
            n_bin = neg.sum(-2)
            below = np.cumsum(n_bin, axis=-1) - n_bin
            pairs = (p_bin * (below + 0.5 * n_bin)).sum(-1)
            return pairs / (p_bin.sum(-1) * n_bin.sum(-1))
    raise InputError(f"metric '{metric}' cannot be estimated; expected one of "
                     f"{', '.join(ESTIMABLE)}")


def estimate(outputs: ClassificationStats, metric: str, *, n_boot: int = 500, seed: int = 0,
             confidence: float = 0.95) -> tuple[float, tuple[float, float] | None]:
    """The expected ``metric`` of the window and the interval of its realised value."""
    n, ws = _cells(outputs)
    point = float(_metric(metric, ws, n))
    if n_boot <= 0 or n.sum() == 0:
        return point, None
    rng = np.random.default_rng(seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, ws / np.maximum(n, 1), 0.0)
    draws = rng.binomial(n.astype(np.int64), np.clip(p, 0, 1), size=(n_boot, *n.shape))
    reps = _metric(metric, draws.astype(np.float64), n)
    reps = reps[np.isfinite(reps)]
    if reps.size < n_boot // 2:
        return point, None
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(reps, [alpha, 1 - alpha])
    return point, (float(lo), float(hi))
