"""Mergeable statistics and metrics for multiclass classification.

:class:`MulticlassStats` holds, for every cell (one combination of the
sensitive features' categories, as in :mod:`assay.metrics._cells`), the
K x K confusion matrix over (true class, predicted class). It is built in one
vectorised pass per batch (``np.bincount`` over encoded cell, label and
prediction) and two statistics merge exactly (:meth:`MulticlassStats.merge`,
associative and commutative: class and category lists are united and the
tables realigned).

Every count metric is derived from it, exactly: accuracy, balanced accuracy,
per-class precision / recall / F1 / support, their macro, micro and weighted
averages, and one-vs-rest tables per class (:meth:`MulticlassStats.one_vs_rest`,
a binary :class:`~assay.metrics.ClassificationStats` whose fairness metrics
and bootstrap are the binary ones). Its bootstrap (:class:`MulticlassBootstrap`)
is a multinomial draw over the non-empty (cell, label, prediction) slots:
exact in distribution for the row bootstrap, O(cells x K^2) per replicate.

Score metrics (log loss, one-vs-rest and one-vs-one macro ROC AUC, top-label
and classwise ECE) need the per-class probabilities of every row; they are
computed exactly on :class:`ScoreSample`, a seeded sample of at most
``sample_rows`` rows (all rows when there are fewer), and bootstrapped by
resampling those rows (``R`` replicates of ``n`` row indices drawn with
replacement, so exact in distribution for the row bootstrap of the sample).

Conventions follow scikit-learn: a class that is never predicted has
precision 0, a class absent from a group's true labels takes no part in that
group's balanced accuracy, the macro average runs over the classes seen in
the true labels or the predictions, log loss clips probabilities to
``[eps, 1 - eps]`` after normalising each row to sum 1, ``roc_auc ovr`` is
the unweighted mean of each class against the rest and ``ovo`` the mean over
class pairs of the two one-vs-one AUCs (Hand & Till).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay.errors import InputError
from assay.metrics import _cells

#: Count metrics (exact on every row) and score metrics (exact on the sample).
MC_COUNT_METRICS: tuple[str, ...] = (
    "accuracy", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1",
    "micro_precision", "micro_recall", "micro_f1", "weighted_precision", "weighted_recall",
    "weighted_f1",
)
MC_CLASS_METRICS: tuple[str, ...] = ("precision", "recall", "f1", "support")
MC_SCORE_METRICS: tuple[str, ...] = ("log_loss", "roc_auc_ovr", "roc_auc_ovo", "top_label_ece",
                                     "classwise_ece")
#: The most classes a multiclass target may have (a table of K x K per cell).
MAX_CLASSES = 200
DEFAULT_SAMPLE_ROWS = 100_000
#: Fine bins of the ECE, as the binary statistic (``DEFAULT_BINS``): a score ``p`` falls in
#: ``min(floor(p * 1000), 999)`` and the ECE's equal-width bins are unions of those.
FINE_BINS = 1000
_EPS = float(np.finfo(np.float64).eps)
_CHUNK = 50


def _div(a: Any, b: Any) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), 0.0)


# --------------------------------------------------------------------------- count metrics


def class_table(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support of confusion matrices ``cm[..., label,
    pred]`` (any leading axes); zero where undefined (scikit-learn's ``zero_division=0``)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(axis=-1)
    predicted = cm.sum(axis=-2)
    precision = _div(tp, predicted)
    recall = _div(tp, support)
    f1 = _div(2 * tp, support + predicted)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support,
            "predicted": predicted, "tp": tp}


def count_metrics(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Every count metric of confusion matrices ``cm[..., label, pred]``; NaN for an empty
    table."""
    t = class_table(cm)
    support, predicted, tp = t["support"], t["predicted"], t["tp"]
    n = support.sum(axis=-1)
    seen = (support > 0) | (predicted > 0)  # the labels scikit-learn's macro average uses
    n_seen = seen.sum(axis=-1)
    present = support > 0
    nan = np.where(n > 0, 0.0, np.nan)
    out: dict[str, np.ndarray] = {}
    out["accuracy"] = _div(tp.sum(axis=-1), n) + nan
    out["balanced_accuracy"] = _div((t["recall"] * present).sum(axis=-1),
                                    present.sum(axis=-1)) + nan
    for m in ("precision", "recall", "f1"):
        out[f"macro_{m}"] = _div((t[m] * seen).sum(axis=-1), n_seen) + nan
        out[f"weighted_{m}"] = _div((t[m] * support).sum(axis=-1), n) + nan
        out[f"micro_{m}"] = out["accuracy"]  # single-label: micro P = R = F1 = accuracy
    return out


# --------------------------------------------------------------------------- statistic


@dataclass
class MulticlassStats:
    """Confusion matrices per cell; see the module docstring."""

    names: list[str]
    categories: list[list[str]]
    classes: list[str]
    counts: np.ndarray  # int64 (*cells, label, pred)

    @classmethod
    def from_arrays(cls, y_true: Any, y_pred: Any, *, sensitive: Mapping[str, Any] | None = None,
                    classes: Sequence[Any] = ()) -> MulticlassStats:
        """The statistic of one batch. ``classes`` adds classes that may not occur in it
        (the model's classes, the score columns' classes)."""
        y = _cells.to_numpy(y_true, "target")
        p = _cells.to_numpy(y_pred, "prediction")
        if len(y) != len(p):
            raise InputError(f"target and prediction: expected the same length, got {len(y)} "
                             f"and {len(p)}")
        yc, ylab = _encode_labels(y, "target")
        pc_, plab = _encode_labels(p, "prediction")
        labels = sorted(set(ylab) | set(plab) | {_cells._label(c) for c in classes})
        if len(labels) > MAX_CLASSES:
            raise InputError(f"column 'target': {len(labels)} classes, at most {MAX_CLASSES} "
                             "are supported")
        pos = {lab: i for i, lab in enumerate(labels)}
        ymap = np.array([pos[v] for v in ylab], dtype=np.int64)
        pmap = np.array([pos[v] for v in plab], dtype=np.int64)
        yi = ymap[yc] if len(yc) else yc
        pi = pmap[pc_] if len(pc_) else pc_
        cell, names, cats = _cells.encode_cells(sensitive, len(y))
        _cells.check_size(names, cats, len(labels) ** 2)
        k = len(labels)
        shape = (*tuple(len(c) for c in cats), k, k)
        flat = (cell * k + yi) * k + pi
        counts = np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)
        return cls(names=names, categories=cats, classes=labels, counts=counts.astype(np.int64))

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def merge(self, other: MulticlassStats) -> MulticlassStats:
        """The statistic of both batches together (exact; order does not matter)."""
        if list(self.names) != list(other.names):
            raise InputError(f"cannot merge statistics of sensitive features {self.names} and "
                             f"{other.names}")
        cats = _cells.union_categories(self.categories, other.categories)
        classes = sorted(set(self.classes) | set(other.classes))
        a = _cells.realign(self._with_classes(classes), self.categories, cats)
        b = _cells.realign(other._with_classes(classes), other.categories, cats)
        return MulticlassStats(names=list(self.names), categories=cats, classes=classes,
                               counts=a + b)

    def _with_classes(self, classes: list[str]) -> np.ndarray:
        if classes == self.classes:
            return self.counts
        pos = np.array([classes.index(c) for c in self.classes], dtype=np.int64)
        k = len(classes)
        out = np.zeros((*self.counts.shape[:-2], k, k), dtype=self.counts.dtype)
        out[..., pos[:, None], pos[None, :]] = self.counts
        return out

    def table(self, by: Sequence[str] | str | None = None
              ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, ...]]]:
        """Confusion matrices per group of ``by`` (groups, K, K), rows per group, labels."""
        axes, _ = _cells.group_axes(self.names, by)
        cm = _cells.reduce_to_groups(self.counts, len(self.names), axes)
        return cm, cm.sum(axis=(-1, -2)), _cells.group_labels(self.categories, axes)

    def metrics(self, by: Sequence[str] | str | None = None) -> dict[str, np.ndarray]:
        """Every count metric per group of ``by`` (one value per group)."""
        cm, _, _ = self.table(by)
        return count_metrics(cm)

    def one_vs_rest(self, cls: str) -> Any:
        """Class ``cls`` against the rest as a binary, count-only
        :class:`~assay.metrics.ClassificationStats` (label and prediction 1 = ``cls``)."""
        from assay.metrics.classification import ClassificationStats

        k = self.classes.index(cls)
        c = self.counts
        tp = c[..., k, k]
        fn = c[..., k, :].sum(axis=-1) - tp
        fp = c[..., :, k].sum(axis=-1) - tp
        tn = c.sum(axis=(-1, -2)) - tp - fn - fp
        counts = np.stack([np.stack([tn, fp], axis=-1), np.stack([fn, tp], axis=-1)], axis=-2)
        return ClassificationStats(names=list(self.names),
                                   categories=[list(x) for x in self.categories],
                                   counts=counts.astype(np.int64),
                                   wsums=counts.astype(np.float64), positive_label=cls)

    def to_state(self) -> dict[str, Any]:
        return {"names": list(self.names), "categories": [list(c) for c in self.categories],
                "classes": list(self.classes), "counts": self.counts.tolist()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> MulticlassStats:
        return cls(names=list(state["names"]), categories=[list(c) for c in state["categories"]],
                   classes=list(state["classes"]),
                   counts=np.asarray(state["counts"], dtype=np.int64))


def _encode_labels(values: np.ndarray, name: str) -> tuple[np.ndarray, list[str]]:
    codes, labels = _cells.encode_feature(values, name)
    if _cells.MISSING in labels:
        raise InputError(f"column '{name}': expected no missing values, got "
                         f"{int((codes == labels.index(_cells.MISSING)).sum())}")
    return codes, labels


# --------------------------------------------------------------------------- bootstrap


@dataclass
class MulticlassBootstrap:
    """Replicates of :class:`MulticlassStats` by multinomial draws over its non-empty slots."""

    stats: MulticlassStats
    n_boot: int = 1000
    seed: int = 0
    confidence: float = 0.95
    _cache: dict[Any, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.n_boot, int | np.integer) or self.n_boot < 10:
            raise InputError(f"bootstrap replicates: expected an integer >= 10, "
                             f"got {self.n_boot!r}")
        rng = np.random.default_rng(self.seed)
        flat = self.stats.counts.ravel()
        self._idx = np.flatnonzero(flat)
        n = int(flat.sum())
        self._draws = (rng.multinomial(n, flat[self._idx] / n, size=self.n_boot) if n
                       else np.zeros((self.n_boot, 0), np.int64))

    def tables(self, by: Sequence[str] | str | None = None) -> np.ndarray:
        """Replicated confusion matrices: (n_boot, groups, K, K)."""
        st = self.stats
        full = np.zeros((self.n_boot, st.counts.size), dtype=np.int64)
        full[:, self._idx] = self._draws
        full = full.reshape(self.n_boot, *st.counts.shape)
        axes, _ = _cells.group_axes(st.names, by)
        return _cells.reduce_to_groups(full, len(st.names), axes, lead=1)

    def replicates(self, by: Sequence[str] | str | None = None) -> dict[str, np.ndarray]:
        """Every count metric's replicates (n_boot, groups) and the per-class table's
        (n_boot, groups, K)."""
        axes, _ = _cells.group_axes(self.stats.names, by)
        key = tuple(axes)
        if key not in self._cache:
            cm = self.tables(by)
            out = count_metrics(cm)
            t = class_table(cm)
            out.update({f"class_{m}": t[m] for m in ("precision", "recall", "f1")})
            self._cache[key] = out
        return self._cache[key]

    def interval(self, replicates: np.ndarray) -> np.ndarray:
        return percentile_interval(replicates, self.confidence)


def percentile_interval(replicates: np.ndarray, confidence: float) -> np.ndarray:
    """Percentile interval along the first axis, NaN replicates left out: (..., 2)."""
    alpha = (1 - confidence) / 2
    rep = np.asarray(replicates, dtype=np.float64)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.nanquantile(rep, [alpha, 1 - alpha], axis=0)
    return np.moveaxis(q, 0, -1)


# --------------------------------------------------------------------------- scores


@dataclass
class ScoreSample:
    """A seeded sample of rows with their true class, cell and per-class probabilities.

    ``proba[:, k]`` is the probability of ``classes[k]``, each row normalised to sum 1;
    ``total`` is the number of rows the sample was drawn from.
    """

    classes: list[str]
    y: np.ndarray  # int64 class index
    proba: np.ndarray  # float64 (n, K)
    cell: np.ndarray  # int64 flat cell index into ``categories``
    names: list[str]
    categories: list[list[str]]
    total: int

    @property
    def n(self) -> int:
        return len(self.y)

    def group_index(self, by: Sequence[str] | str | None) -> tuple[np.ndarray,
                                                                   list[tuple[str, ...]]]:
        """Each row's group of ``by`` and the groups' labels."""
        axes, _ = _cells.group_axes(self.names, by)
        if not axes:
            return np.zeros(self.n, dtype=np.int64), [()]
        shape = tuple(len(c) for c in self.categories)
        multi = np.unravel_index(self.cell, shape) if shape else ()
        g = np.ravel_multi_index(tuple(multi[a] for a in axes), tuple(shape[a] for a in axes))
        return np.asarray(g, dtype=np.int64), _cells.group_labels(self.categories, axes)


def sample_indices(total: int, sample_rows: int, seed: int) -> np.ndarray | None:
    """Sorted row numbers of a seeded sample of ``sample_rows`` out of ``total`` (None: all)."""
    if total <= sample_rows:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(total, size=sample_rows, replace=False))


def normalise_proba(proba: np.ndarray, what: str) -> np.ndarray:
    """Rows of per-class probabilities divided by their sum, refusing bad rows."""
    proba = np.asarray(proba, dtype=np.float64)
    if not np.isfinite(proba).all():
        raise InputError(f"{what}: expected per-class probabilities, got missing or infinite "
                         "values")
    if (proba < 0).any() or (proba > 1).any():
        raise InputError(f"{what}: expected per-class probabilities between 0 and 1, got "
                         f"values from {proba.min():.4g} to {proba.max():.4g}")
    s = proba.sum(axis=1)
    bad = np.abs(s - 1) > 1e-3
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{what}: expected per-class probabilities summing to 1 in each row, "
                         f"got {s[i]:.6g} in row {i + 1} of the sample ({int(bad.sum())} such "
                         "rows)")
    return proba / s[:, None]


def _nll(sample: ScoreSample) -> np.ndarray:
    p = sample.proba[np.arange(sample.n), sample.y]
    return -np.log(np.clip(p, _EPS, 1 - _EPS))


def _bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    fine = np.minimum((p * FINE_BINS).astype(np.int64), FINE_BINS - 1)
    return fine // (FINE_BINS // n_bins)


def _sum_by(w: np.ndarray, key: np.ndarray, n_keys: int,
            values: Sequence[np.ndarray] = ()) -> list[np.ndarray]:
    """For each row of weights ``w`` (R, n): the sums of ``w`` (then of ``w * v`` for each
    ``v`` of ``values``) over the rows of each key: a list of (R, n_keys) arrays.

    One sparse product (n rows x n_keys columns, one entry per row) per quantity: the
    cost is O(R x n), without building R x n index arrays."""
    from scipy import sparse

    n = len(key)
    q = 1 + len(values)
    vals = np.concatenate([np.ones(n), *(np.asarray(v, dtype=np.float64) for v in values)])
    cols = np.concatenate([key + j * n_keys for j in range(q)])
    m = sparse.csr_matrix((vals, (np.tile(np.arange(n), q), cols)), shape=(n, q * n_keys))
    both = np.asarray(w @ m)
    return [both[:, j * n_keys:(j + 1) * n_keys] for j in range(q)]


def _ece_w(w: np.ndarray, bins: np.ndarray, conf: np.ndarray, hit: np.ndarray,
           n_bins: int) -> np.ndarray:
    """ECE for each row of weights ``w`` (R, n): sum_b (W_b / W) |mean conf - mean hit|."""
    wb, cb, hb = _sum_by(w, bins, n_bins, (conf, hit))
    tot = wb.sum(axis=1)
    gap = np.abs(cb - hb)  # W_b |mean conf - mean hit| = |sum conf - sum hit|
    out = _div(gap.sum(axis=1), tot)
    return np.where(tot > 0, out, np.nan)


def _class_hists(w: np.ndarray, sample: ScoreSample) -> list[np.ndarray]:
    """For each class ``a``: the weighted histogram (R, true class, fine bin of p_a)."""
    r, k = w.shape[0], len(sample.classes)
    out = []
    for a in range(k):
        b = np.minimum((sample.proba[:, a] * FINE_BINS).astype(np.int64), FINE_BINS - 1)
        (h,) = _sum_by(w, sample.y * FINE_BINS + b, k * FINE_BINS)
        out.append(h.reshape(r, k, FINE_BINS))
    return out


def _auc_hist(pw: np.ndarray, nw: np.ndarray) -> np.ndarray:
    """AUC from positive and negative weights per score bin (R, bins); a bin's rows tie."""
    below = np.cumsum(nw, axis=1) - nw
    num = (pw * (below + 0.5 * nw)).sum(axis=1)
    den = pw.sum(axis=1) * nw.sum(axis=1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _auc_from_hists(metric: str, hists: list[np.ndarray], k: int) -> np.ndarray:
    if metric == "roc_auc_ovr":
        return np.mean([_auc_hist(h[:, a], h.sum(axis=1) - h[:, a])
                        for a, h in enumerate(hists)], axis=0)
    pairs = [(_auc_hist(hists[a][:, a], hists[a][:, b]) + _auc_hist(hists[b][:, b],
                                                                    hists[b][:, a])) / 2
             for a in range(k) for b in range(a + 1, k)]
    return np.mean(pairs, axis=0)


def _auc_binned(w: np.ndarray, score: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """:func:`_auc_w` with the scores on :data:`FINE_BINS` bins (rows of a bin tie):
    O(rows) per replicate, no sort. Used for the bootstrap replicates, shifted to the
    exact point estimate."""
    r = w.shape[0]
    b = np.minimum((score * FINE_BINS).astype(np.int64), FINE_BINS - 1)
    key = b * 2 + pos.astype(np.int64)
    idx = (np.arange(r)[:, None] * (2 * FINE_BINS) + key[None, :]).ravel()
    h = np.bincount(idx, weights=w.ravel(), minlength=r * 2 * FINE_BINS).reshape(
        r, FINE_BINS, 2)
    nw, pw = h[..., 0], h[..., 1]
    below = np.cumsum(nw, axis=1) - nw
    num = (pw * (below + 0.5 * nw)).sum(axis=1)
    den = pw.sum(axis=1) * nw.sum(axis=1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _auc_w(w: np.ndarray, score: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUC for each row of weights ``w`` (R, n), ties counted half."""
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ws = w[:, order]
    pw = np.add.reduceat(ws * pos[order][None, :], starts, axis=1)
    nw = np.add.reduceat(ws * (~pos[order])[None, :], starts, axis=1)
    below = np.cumsum(nw, axis=1) - nw
    num = (pw * (below + 0.5 * nw)).sum(axis=1)
    den = pw.sum(axis=1) * nw.sum(axis=1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def score_metric(sample: ScoreSample, metric: str, w: np.ndarray, *,
                 n_bins: int = 10, binned_auc: bool = False) -> np.ndarray:
    """``metric`` for each row of row weights ``w`` (R, n) over ``sample``: (R,).

    ``binned_auc`` computes the AUCs on fine score bins (:func:`_auc_binned`)."""
    k = len(sample.classes)
    auc = _auc_binned if binned_auc else _auc_w
    if metric == "log_loss":
        tot = w.sum(axis=1)
        return np.where(tot > 0, (w @ _nll(sample)) / np.where(tot > 0, tot, 1), np.nan)
    if metric == "top_label_ece":
        top = np.argmax(sample.proba, axis=1)
        conf = sample.proba[np.arange(sample.n), top]
        return _ece_w(w, _bins(conf, n_bins), conf, (top == sample.y).astype(np.float64),
                      n_bins)
    if metric == "classwise_ece":
        per = [_ece_w(w, _bins(sample.proba[:, j], n_bins), sample.proba[:, j],
                      (sample.y == j).astype(np.float64), n_bins) for j in range(k)]
        return np.mean(per, axis=0)
    if metric in ("roc_auc_ovr", "roc_auc_ovo") and binned_auc:
        return _auc_from_hists(metric, _class_hists(w, sample), k)
    if metric == "roc_auc_ovr":
        per = [auc(w, sample.proba[:, j], sample.y == j) for j in range(k)]
        return np.mean(per, axis=0)
    if metric == "roc_auc_ovo":
        pairs = []
        for a in range(k):
            for b in range(a + 1, k):
                mask = (sample.y == a) | (sample.y == b)
                wm = w[:, mask]
                ya = sample.y[mask] == a
                pairs.append((auc(wm, sample.proba[mask, a], ya)
                              + auc(wm, sample.proba[mask, b], ~ya)) / 2)
        return np.mean(pairs, axis=0)
    raise InputError(f"unknown multiclass score metric {metric!r}: expected one of "
                     f"{', '.join(MC_SCORE_METRICS)}")


def score_point(sample: ScoreSample, metric: str, mask: np.ndarray | None = None, *,
                n_bins: int = 10) -> float:
    """``metric`` on the sample's rows (those of ``mask``)."""
    w = np.ones((1, sample.n)) if mask is None else mask[None, :].astype(np.float64)
    return float(score_metric(sample, metric, w, n_bins=n_bins)[0])


def score_replicates(sample: ScoreSample, metric: str, masks: Sequence[np.ndarray | None], *,
                     n_boot: int, seed: int, n_bins: int = 10) -> np.ndarray:
    """Row-bootstrap replicates of ``metric`` on the sample, for each mask: (n_boot, masks).

    Replicate ``r`` draws ``n`` rows of the sample with replacement (the same draws for
    every mask and every metric, so groups are resampled together as in the count
    bootstrap). Log loss and the ECEs are exact on each replicate; the AUCs are computed
    on :data:`FINE_BINS` score bins and shifted by the exact minus the binned point
    estimate, so their interval is centred where the exact value is."""
    cache = sample.__dict__.setdefault("_replicates", {})
    key = (metric, n_boot, seed, n_bins)
    if masks and all(m is None for m in masks) and key in cache:
        return np.repeat(cache[key][:, None], len(masks), axis=1)
    weights = _boot_weights(sample, n_boot, seed)
    auc = metric.startswith("roc_auc")
    shift = np.zeros(len(masks))
    if auc:
        for j, mask in enumerate(masks):
            ones = np.ones((1, sample.n)) if mask is None else mask[None, :].astype(np.float64)
            shift[j] = (score_metric(sample, metric, ones, n_bins=n_bins)[0]
                        - score_metric(sample, metric, ones, n_bins=n_bins, binned_auc=True)[0])
    out = np.full((n_boot, len(masks)), np.nan)
    for lo in range(0, n_boot, _CHUNK):
        w = weights[lo:lo + _CHUNK].astype(np.float64)
        for j, mask in enumerate(masks):
            wm = w if mask is None else w * mask[None, :]
            out[lo:lo + w.shape[0], j] = score_metric(sample, metric, wm, n_bins=n_bins,
                                                      binned_auc=auc) + shift[j]
    for j, mask in enumerate(masks):
        if mask is None:  # the overall replicates are shared by the checks and the summary
            cache[key] = out[:, j].copy()
    return out


def _boot_weights(sample: ScoreSample, n_boot: int, seed: int) -> np.ndarray:
    """How often each sample row is drawn in each replicate: (n_boot, n) uint8 counts
    (a row drawn more than 255 times in one replicate of at least 100 rows is
    practically impossible; the counts are capped there), kept on the sample."""
    key = (n_boot, seed)
    cache = sample.__dict__.setdefault("_weights", {})
    if key not in cache:
        rng = np.random.default_rng(seed)
        n = sample.n
        out = np.empty((n_boot, n), dtype=np.uint8)
        for lo in range(0, n_boot, _CHUNK):
            r = min(_CHUNK, n_boot - lo)
            idx = rng.integers(0, n, size=(r, n)) + (np.arange(r) * n)[:, None]
            counts = np.bincount(idx.ravel(), minlength=r * n).reshape(r, n)
            out[lo:lo + r] = np.minimum(counts, 255)
        cache.clear()
        cache[key] = out
    return cache[key]


def reliability(sample: ScoreSample, n_bins: int = 10) -> dict[str, list[float]]:
    """Top-label reliability curve in the binary curve's form: per bin of the top-label
    confidence the rows (``count``), the mean confidence (``mean_predicted``) and the share
    of rows whose top label is right (``fraction_positive``)."""
    top = np.argmax(sample.proba, axis=1)
    conf = sample.proba[np.arange(sample.n), top]
    b = _bins(conf, n_bins)
    cnt = np.bincount(b, minlength=n_bins)
    mc = _div(np.bincount(b, weights=conf, minlength=n_bins), cnt)
    acc = _div(np.bincount(b, weights=(top == sample.y).astype(float), minlength=n_bins), cnt)
    empty = cnt == 0
    return {"kind": "top-label", "count": cnt.tolist(),
            "mean_predicted": [None if e else float(v) for v, e in zip(mc, empty, strict=True)],
            "fraction_positive": [None if e else float(v) for v, e in zip(acc, empty,
                                                                          strict=True)],
            "bin_edges": [i / n_bins for i in range(n_bins + 1)]}


__all__ = [
    "DEFAULT_SAMPLE_ROWS",
    "MC_CLASS_METRICS",
    "MC_COUNT_METRICS",
    "MC_SCORE_METRICS",
    "MulticlassBootstrap",
    "MulticlassStats",
    "ScoreSample",
    "class_table",
    "count_metrics",
    "normalise_proba",
    "percentile_interval",
    "reliability",
    "sample_indices",
    "score_metric",
    "score_point",
    "score_replicates",
]
