"""Metric formulas on arrays of sufficient statistics.

Every formula takes arrays with any number of leading axes (groups, bootstrap
replicates, or both) and returns an array of that leading shape, so the same
code computes a point estimate, every group, and 1,000 bootstrap replicates
at once. Undefined ratios (zero denominator) are NaN, never 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from assay.errors import InputError

# metrics computed from the (label, prediction) contingency table
COUNT_METRICS: tuple[str, ...] = (
    "accuracy", "balanced_accuracy", "precision", "recall", "tpr", "fpr", "fnr", "tnr",
    "selection_rate", "base_rate", "f1",
)
# metrics computed from the per-(label, score bin) histograms and loss sums
SCORE_METRICS: tuple[str, ...] = (
    "roc_auc", "average_precision", "log_loss", "brier", "ece", "mean_score",
    "calibration_in_the_large",
)
CLASSIFICATION_METRICS: tuple[str, ...] = COUNT_METRICS + SCORE_METRICS
# an alias accepted everywhere a metric is named
ALIASES = {"true_positive_rate": "tpr", "false_positive_rate": "fpr",
           "false_negative_rate": "fnr", "true_negative_rate": "tnr", "auc": "roc_auc",
           "brier_score": "brier", "expected_calibration_error": "ece", "ppv": "precision",
           "sensitivity": "recall", "specificity": "tnr"}


def resolve_metric(name: str, *, has_score: bool = True) -> str:
    """Canonical metric name; a clear error for unknown names or missing scores."""
    key = ALIASES.get(name, name)
    if key not in CLASSIFICATION_METRICS:
        raise InputError(
            f"unknown classification metric '{name}': expected one of "
            f"{', '.join(CLASSIFICATION_METRICS)}")
    if key in SCORE_METRICS and not has_score:
        raise InputError(f"metric '{name}' needs a score column (predicted probability), "
                         "and none was given")
    return key


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    return np.where(b == 0, np.nan, out)


@dataclass
class Parts:
    """Sufficient statistics reduced to groups, with any leading axes.

    ``cm[..., label, pred]`` weighted contingency table; ``hist[..., label,
    bin]`` weighted score histogram; ``hs`` weighted sum of scores per bin;
    ``nll`` and ``sq`` weighted sums of log loss and squared error per bin.
    """

    cm: np.ndarray
    hist: np.ndarray | None = None
    hs: np.ndarray | None = None
    nll: np.ndarray | None = None
    sq: np.ndarray | None = None
    ece_bins: int = 10

    @property
    def tp(self) -> np.ndarray:
        return self.cm[..., 1, 1]

    @property
    def fp(self) -> np.ndarray:
        return self.cm[..., 0, 1]

    @property
    def tn(self) -> np.ndarray:
        return self.cm[..., 0, 0]

    @property
    def fn(self) -> np.ndarray:
        return self.cm[..., 1, 0]


def _count(name: str) -> Callable[[Parts], np.ndarray]:
    def f(p: Parts) -> np.ndarray:
        tp, fp, tn, fn = p.tp, p.fp, p.tn, p.fn
        n = tp + fp + tn + fn
        if name == "accuracy":
            return _div(tp + tn, n)
        if name in ("recall", "tpr"):
            return _div(tp, tp + fn)
        if name == "fnr":
            return _div(fn, tp + fn)
        if name == "fpr":
            return _div(fp, fp + tn)
        if name == "tnr":
            return _div(tn, fp + tn)
        if name == "precision":
            return _div(tp, tp + fp)
        if name == "selection_rate":
            return _div(tp + fp, n)
        if name == "base_rate":
            return _div(tp + fn, n)
        if name == "f1":
            return _div(2 * tp, 2 * tp + fp + fn)
        if name == "balanced_accuracy":
            return (_div(tp, tp + fn) + _div(tn, fp + tn)) / 2
        raise KeyError(name)

    return f


def roc_auc(hist: np.ndarray) -> np.ndarray:
    """Area under the ROC curve from per-label histograms, ties within a bin count 1/2."""
    neg, pos = hist[..., 0, :], hist[..., 1, :]
    below = np.cumsum(neg, axis=-1) - neg
    num = (pos * (below + 0.5 * neg)).sum(axis=-1)
    return _div(num, pos.sum(axis=-1) * neg.sum(axis=-1))


def auc_tie_bound(hist: np.ndarray, mixed: np.ndarray) -> np.ndarray:
    """Largest possible error of :func:`roc_auc` against the exact AUC.

    Pairs (positive, negative) that share a bin are counted as ties (1/2);
    the exact contribution of a pair lies in [0, 1], so the error is at most
    half the share of such pairs, counted only in bins whose scores are not
    all equal (``mixed``).
    """
    neg, pos = hist[..., 0, :], hist[..., 1, :]
    tie = (pos * neg * mixed).sum(axis=-1)
    return 0.5 * _div(tie, pos.sum(axis=-1) * neg.sum(axis=-1))


def average_precision(hist: np.ndarray) -> np.ndarray:
    """Average precision, sum over thresholds of (R_k - R_{k-1}) P_k, bins as thresholds."""
    neg, pos = hist[..., 0, ::-1], hist[..., 1, ::-1]
    tp = np.cumsum(pos, axis=-1)
    fp = np.cumsum(neg, axis=-1)
    prec = np.where(tp + fp > 0, _div(tp, tp + fp), 0.0)
    total = tp[..., -1]
    return _div((pos * prec).sum(axis=-1), total)


def ece_parts(p: Parts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per coarse bin: weight, mean predicted score and fraction positive."""
    assert p.hist is not None and p.hs is not None
    b = p.hist.shape[-1]
    k = p.ece_bins
    w = p.hist.reshape(*p.hist.shape[:-1], k, b // k).sum(axis=-1)  # (..., 2, k)
    s = p.hs.reshape(*p.hs.shape[:-1], k, b // k).sum(axis=-1)
    weight = w.sum(axis=-2)
    return weight, _div(s.sum(axis=-2), weight), _div(w[..., 1, :], weight)


def ece(p: Parts) -> np.ndarray:
    """Expected calibration error: sum over equal-width bins of (W_b / W) |mean p - frac pos|."""
    weight, mean_pred, frac_pos = ece_parts(p)
    gap = np.where(weight > 0, np.abs(mean_pred - frac_pos), 0.0)
    return _div((weight * gap).sum(axis=-1), weight.sum(axis=-1))


def _score(name: str) -> Callable[[Parts], np.ndarray]:
    def f(p: Parts) -> np.ndarray:
        if p.hist is None:
            raise KeyError(name)
        w = p.hist.sum(axis=(-1, -2))
        if name == "roc_auc":
            return roc_auc(p.hist)
        if name == "average_precision":
            return average_precision(p.hist)
        if name == "log_loss":
            return _div(p.nll.sum(axis=(-1, -2)), w)
        if name == "brier":
            return _div(p.sq.sum(axis=(-1, -2)), w)
        if name == "ece":
            return ece(p)
        if name == "mean_score":
            return _div(p.hs.sum(axis=(-1, -2)), w)
        if name == "calibration_in_the_large":
            return _div(p.hs.sum(axis=(-1, -2)) - p.hist[..., 1, :].sum(axis=-1), w)
        raise KeyError(name)

    return f


FORMULAS: dict[str, Callable[[Parts], np.ndarray]] = {
    **{m: _count(m) for m in COUNT_METRICS},
    **{m: _score(m) for m in SCORE_METRICS},
}


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of the proportion ``k / n`` (None when ``n`` is 0).

    Unlike the normal approximation it stays inside [0, 1] and keeps its
    coverage near 0 and 1, where shares of rows often lie.
    """
    if n <= 0:
        return None
    from scipy.stats import norm

    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * float(np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / den
    return max(0.0, mid - half), min(1.0, mid + half)
