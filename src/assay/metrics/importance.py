"""Permutation importance with bootstrap intervals, model-agnostic.

The importance of a feature is how much the model's performance drops when
that feature's column is shuffled (its link to the target and to the other
features is broken, its distribution kept), as in
:func:`sklearn.inspection.permutation_importance`: ``n_repeats`` shuffles per
feature, importance = baseline score minus shuffled score (for losses:
shuffled minus baseline), averaged over the repeats. The point values equal
scikit-learn's for the same shuffles (``scoring="roc_auc"``, ``"accuracy"``,
``"neg_brier_score"``, ``"neg_log_loss"``, ``"neg_mean_squared_error"``,
``"neg_mean_absolute_error"``), and ``std`` is its ``importances_std``.

Metrics: ``roc_auc``, ``accuracy`` (higher is better), ``brier``,
``log_loss``, ``mse`` (also spelt ``squared_error``), ``mae`` (also
``absolute_error``), lower is better. Every one but ``roc_auc`` is the mean
of a per-row value (:func:`row_losses` gives them as losses: ``accuracy`` is
1 for a wrong decision, 0 for a right one); ``log_loss`` and ``brier`` read
the probability of each row's own label (``brier`` needs a binary
classifier; ``log_loss`` takes any number of classes). A callable
``metric(y_true, output) -> float`` is scored on the output of ``output_of``
without a bootstrap (no interval).

Intervals, one method for every metric and every check (``explain.*`` and
``privacy.data_minimisation``): a row-level bootstrap, paired. Each replicate
resamples the rows (multinomial counts, the row bootstrap exactly) and
recomputes, on the same resample, the baseline score and every shuffled
score, so the interval is that of the mean importance over the repeats under
resampling of the evaluated rows; the percentile interval of the
replicates. For a mean over rows this is the bootstrap of the mean of each
row's difference ``d_i = mean over repeats of loss_i(shuffled) -
loss_i(original)``; ROC AUC, not a mean over rows, gets the same treatment.
The spread between repeats (the shuffles' own noise) is reported beside it as
``std``. Every score is computed on weight vectors, so a replicate costs no
model call: the model is called on stacked shuffled copies, up to
:data:`JOINT_ROWS` rows per call.

A feature the model does not read has the same output on every shuffled
copy, so every replicate of its importance is exactly 0 and its interval is
``[0, 0]``; a feature whose interval includes zero
(:meth:`Importance.indistinguishable_from_zero`) is not shown to be used at
that sample size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assay.errors import InputError

#: metric -> (higher is better, needs scores (True) or decisions (False))
METRICS: dict[str, tuple[bool, bool]] = {
    "roc_auc": (True, True),
    "accuracy": (True, False),
    "brier": (False, True),
    "log_loss": (False, True),
    "mse": (False, False),
    "mae": (False, False),
}
#: Every accepted spelling of a metric -> its name in :data:`METRICS` (scikit-learn's
#: loss names ``squared_error`` and ``absolute_error`` beside ``mse`` and ``mae``).
ALIASES: dict[str, str] = {**{m: m for m in METRICS},
                           "squared_error": "mse", "absolute_error": "mae"}
#: Metrics that are a mean of per-row values (every one but ``roc_auc``), in both spellings.
LOSSES: tuple[str, ...] = ("accuracy", "log_loss", "brier", "mse", "mae",
                           "squared_error", "absolute_error")
_EPS = 1e-15


def metric_name(metric: str) -> str:
    """The name of ``metric`` in :data:`METRICS` (``squared_error`` is ``mse`` ...)."""
    try:
        return ALIASES[metric]
    except (KeyError, TypeError):
        raise InputError(f"metric: expected one of {', '.join([*LOSSES, 'roc_auc'])}, "
                         f"got {metric!r}") from None


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

    def indistinguishable_from_zero(self, feature: str) -> bool | None:
        """Whether ``feature``'s interval includes zero (the model may not use it);
        None without an interval."""
        ci = self.ci[feature]
        return None if ci is None else ci[0] <= 0.0 <= ci[1]

    def unused(self) -> list[str]:
        """The features whose interval includes zero, in input order."""
        return [f for f in self.features if self.indistinguishable_from_zero(f)]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per feature (``feature``, ``mean``, ``ci``, ``std``), most important first."""
        return [{"feature": f, "mean": self.mean[f],
                 "ci": list(self.ci[f]) if self.ci[f] else None, "std": self.std[f]}
                for f in self.ranked()]

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "baseline": self.baseline, "n": self.n,
                "n_repeats": self.n_repeats, "features": self.rows()}


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


def _values(metric: str, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Per-row values whose mean is the metric. ``out``: decisions for ``accuracy``,
    predictions for ``mse``/``mae``, the probability of each row's own label for
    ``log_loss``/``brier`` (``y`` is not read for these)."""
    if metric == "accuracy":
        if y.dtype.kind in "biuf" and out.dtype.kind in "biuf":
            return (out.astype(float) == y.astype(float)).astype(float)
        return (out.astype(str) == y.astype(str)).astype(float)
    if metric == "brier":
        return (1.0 - out) ** 2
    if metric == "log_loss":
        return -np.log(np.clip(out, _EPS, 1.0))
    if metric == "mse":
        return (out.astype(float) - y.astype(float)) ** 2
    if metric == "mae":
        return np.abs(out.astype(float) - y.astype(float))
    raise InputError(f"metric {metric!r} is not a mean over rows; expected one of "
                     f"{', '.join(LOSSES)}")


def score(metric: str, y: np.ndarray, out: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``metric`` of ``out`` against ``y`` under each row of weights ``W`` (shape (B, n)).

    ``out`` is what the metric reads (see :func:`_values`; for ``roc_auc`` the
    positive class's score, ``y`` the positive-class indicator)."""
    metric = metric_name(metric)
    if metric == "roc_auc":
        return _auc(np.asarray(y, dtype=bool), np.asarray(out, dtype=float), W)
    return (W @ _values(metric, y, out)) / W.sum(axis=1)


def _own_label_columns(adapter: Any, y: np.ndarray) -> np.ndarray:
    """Per row, the column of ``predict_proba`` of the row's own label (-1: the model
    does not know the label, whose probability is then 0)."""
    from assay.data.roles import match_label

    classes = adapter.classes
    if classes is None:
        raise InputError(f"{adapter.name}: the model does not list its classes; a "
                         "probability loss needs them")
    uniq, inverse = np.unique(np.asarray(y).astype(str), return_inverse=True)
    first = {u: v for u, v in zip(np.asarray(y).astype(str), np.asarray(y), strict=True)}
    cols = [classes.index(hit) if (hit := match_label(classes, first[u])) is not None else -1
            for u in uniq]
    return np.asarray(cols, dtype=int)[inverse.reshape(-1)]


def _output_of(adapter: Any, metric: str, y: np.ndarray,
               positive_label: Any) -> Callable[[pd.DataFrame], np.ndarray]:
    """What ``metric`` reads of the model, for frames whose rows are copies of the rows
    labelled by ``y`` (in order, so the frame's length is a multiple of ``len(y)``)."""
    if metric == "roc_auc":
        return lambda X: adapter.predict_proba(X, positive_label=positive_label)
    if metric in ("log_loss", "brier"):
        if metric == "brier" and len(adapter.classes or ()) != 2:
            raise InputError("metric 'brier': expected a binary classifier, got classes "
                             f"{adapter.classes}")
        col = _own_label_columns(adapter, y)

        def own(X: pd.DataFrame) -> np.ndarray:
            proba = adapter.predict_proba_matrix(X)
            c = np.tile(col, len(X) // len(col))
            return np.where(c >= 0, proba[np.arange(len(X)), c], 0.0)
        return own
    return adapter.predict


def _adapter(model: Any) -> Any:
    from assay.data.model import ModelAdapter

    return model if isinstance(model, ModelAdapter) else ModelAdapter.from_estimator(model)


def row_losses(adapter: Any, X: pd.DataFrame, y: Sequence[Any] | np.ndarray | pd.Series,
               metric: str) -> np.ndarray:
    """Per-row loss of the model on ``X`` against ``y`` (a metric of :data:`LOSSES`;
    ``accuracy``: 1 for a wrong decision, 0 for a right one)."""
    if metric not in LOSSES:
        raise InputError(f"metric: expected one of {', '.join(LOSSES)}, got {metric!r}")
    name, adapter, yv = metric_name(metric), _adapter(adapter), np.asarray(y)
    values = _values(name, yv, np.asarray(_output_of(adapter, name, yv, None)(X)))
    return 1.0 - values if name == "accuracy" else values


def permutation_importance(
    adapter: Any,
    X: pd.DataFrame,
    y: Sequence[Any] | np.ndarray | pd.Series,
    metric: str | Callable[[np.ndarray, np.ndarray], float] = "roc_auc",
    n_repeats: int = 5,
    rng: Any = None,
    *,
    features: Sequence[str] | None = None,
    positive_label: Any = 1,
    n_boot: int = 200,
    confidence: float = 0.95,
    output_of: Callable[[pd.DataFrame], np.ndarray] | None = None,
) -> Importance:
    """Permutation importance of each column of ``X`` (or of ``features``) with intervals.

    ``adapter`` is an :class:`assay.data.ModelAdapter` or a fitted scikit-learn
    style estimator; ``y`` the true labels (for ``roc_auc``, labels equal to
    ``positive_label`` are the positive class). The shuffles come from ``rng``
    (a seed, a ``numpy.random.Generator``, a ``RandomState``, or, with
    ``n_boot=0``, any object with a ``permutation(n)`` method): first the
    bootstrap counts (``rng.multinomial``), then for each feature in turn
    ``n_repeats`` calls of ``rng.permutation(len(X))``. scikit-learn draws its
    permutations differently, so the point values agree with it in
    expectation, and exactly for the same permutations. ``n_boot=0`` skips the
    bootstrap (``ci`` is None).
    """
    overall, _ = permutation_importance_by_group(
        adapter, X, y, metric, n_repeats, rng, features=features,
        positive_label=positive_label, n_boot=n_boot, confidence=confidence,
        output_of=output_of)
    return overall


def permutation_importance_by_group(
    adapter: Any,
    X: pd.DataFrame,
    y: Sequence[Any] | np.ndarray | pd.Series,
    metric: str | Callable[[np.ndarray, np.ndarray], float] = "roc_auc",
    n_repeats: int = 5,
    rng: Any = None,
    *,
    groups: Mapping[Any, np.ndarray] | None = None,
    features: Sequence[str] | None = None,
    positive_label: Any = 1,
    n_boot: int = 200,
    confidence: float = 0.95,
    output_of: Callable[[pd.DataFrame], np.ndarray] | None = None,
) -> tuple[Importance, dict[Any, Importance]]:
    """:func:`permutation_importance` overall and, from the same shuffled copies and
    model calls, for each group of rows (``groups``: key -> boolean row mask): a group's
    importance is the drop in the metric on the group's rows when the feature is
    shuffled across all rows. Each group's interval comes from its own row bootstrap,
    drawn after the overall one, so the overall result equals
    :func:`permutation_importance`'s."""
    if rng is None or isinstance(rng, int | np.integer):
        rng = np.random.default_rng(rng)
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, int | np.integer) \
            or n_repeats < 1:
        raise InputError(f"n_repeats: expected an integer >= 1, got {n_repeats!r}")
    if not 0 < confidence < 1:
        raise InputError(f"confidence: expected a number between 0 and 1, got {confidence!r}")
    adapter = _adapter(adapter)
    X = X.reset_index(drop=True)
    feats = list(features) if features is not None else [str(c) for c in X.columns]
    missing = [f for f in feats if f not in X.columns]
    if missing:
        raise InputError(f"features: {', '.join(map(str, missing))} not among the columns "
                         f"({', '.join(map(str, X.columns[:20]))})")
    yv = np.asarray(y)
    n = len(X)
    if n < 1 or len(yv) != n:
        raise InputError(f"permutation importance: expected at least 1 row and as many "
                         f"labels as rows, got {n} rows and {len(yv)} labels")
    name = metric_name(metric) if isinstance(metric, str) else getattr(
        metric, "__name__", "metric")
    boot = n_boot > 0 and isinstance(metric, str)
    if boot and not callable(getattr(rng, "multinomial", None)):
        raise InputError("rng: the bootstrap draws with rng.multinomial; give a seed, a "
                         "numpy Generator or RandomState, or n_boot=0")
    if isinstance(metric, str):
        out_of = output_of or _output_of(adapter, name, yv, positive_label)
        higher = METRICS[name][0]
        if name == "roc_auc":
            yv = _positive(yv, positive_label)
    else:
        out_of = output_of or _output_of(
            adapter, "roc_auc" if adapter.has_proba else "accuracy", yv, positive_label)
        higher = True
    base_out = np.asarray(out_of(X))

    def draw(k: int) -> np.ndarray | None:
        # bootstrap counts in single precision: exact integers, half the memory traffic
        return (rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot).astype(np.float32)
                if boot else None)

    W = draw(n)
    sign = 1.0 if higher else -1.0
    alpha = (1 - confidence) / 2
    # Every shuffled copy is drawn first (per feature, n_repeats permutations, in order),
    # then scored in few model calls: up to JOINT_ROWS rows of stacked copies per call
    # (a model's fixed cost per call outweighs its cost per row at these sizes; rows
    # are scored independently, as scikit-learn's API promises).
    jobs = [(j, f, rng.permutation(n)) for j, f in enumerate(feats) for _ in range(n_repeats)]
    outs = _score_copies(out_of, X, jobs)

    def summarise(rows: np.ndarray | None, W: np.ndarray | None) -> Importance:
        yr = yv if rows is None else yv[rows]
        k = len(yr)
        ones = np.ones((1, k))

        def metric_of(out: np.ndarray, weights: np.ndarray) -> np.ndarray:
            out = out if rows is None else out[rows]
            if isinstance(metric, str):
                return score(name, yr, out, weights)
            return np.array([float(metric(yr, out))])

        base = float(metric_of(base_out, ones)[0])
        base_b = metric_of(base_out, W) if boot else None
        return _summary(jobs, outs, feats, n_repeats, boot, n_boot, metric_of, base, base_b,
                        sign, alpha, name, k, W)

    overall = summarise(None, W)
    by_group = {key: summarise(np.asarray(mask, dtype=bool), draw(int(np.sum(mask))))
                for key, mask in (groups or {}).items()}
    return overall, by_group


def _summary(jobs: list[tuple[int, str, np.ndarray]], outs: list[np.ndarray],
             feats: list[str], n_repeats: int, boot: bool, n_boot: int,
             metric_of: Callable[[np.ndarray, np.ndarray], np.ndarray], base: float,
             base_b: np.ndarray | None, sign: float, alpha: float, name: str, n: int,
             W: np.ndarray | None) -> Importance:
    """The importances from the scored copies: mean and spread over the repeats, and the
    interval of the bootstrap replicates ``W``."""
    ones = np.ones((1, n))
    points: dict[int, list[float]] = {j: [] for j in range(len(feats))}
    acc = np.zeros((n_boot if boot else 0, len(feats)))
    for (j, _, _), out in zip(jobs, outs, strict=True):
        points[j].append(sign * (base - float(metric_of(out, ones)[0])))
        if boot:
            acc[:, j] += sign * (base_b - metric_of(out, W))  # type: ignore[operator]
    reps = acc / n_repeats
    mean: dict[str, float] = {}
    ci: dict[str, tuple[float, float] | None] = {}
    std: dict[str, float] = {}
    for j, f in enumerate(feats):
        mean[f] = float(np.mean(points[j]))
        std[f] = float(np.std(points[j]))
        finite = reps[:, j][np.isfinite(reps[:, j])]
        ci[f] = ((float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha)))
                 if len(finite) else None)
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


__all__ = ["ALIASES", "JOINT_ROWS", "LOSSES", "METRICS", "Importance", "metric_name",
           "permutation_importance", "row_losses", "score"]
