"""Permutation importance with confidence intervals.

The importance of a feature is how much the model's loss grows when the
feature's values are shuffled across rows, breaking its link with the
target while keeping its distribution (Breiman 2001; scikit-learn's
``sklearn.inspection.permutation_importance``). With a loss that is a mean
over rows (``accuracy``: 1 - correct, ``log_loss``, ``brier``,
``squared_error``, ``absolute_error``) the importance is the mean over rows
of ``d_i = mean over repeats of loss_i(permuted) - loss_i(original)``, and

* the point value equals scikit-learn's ``importances_mean`` for the same
  permutations (with ``scoring="accuracy"``, ``"neg_log_loss"``,
  ``"neg_brier_score"``, ``"neg_mean_squared_error"``,
  ``"neg_mean_absolute_error"``);
* the interval is a t interval over the rows' ``d_i``: it covers the
  sampling of the rows and, averaged into ``d_i``, the permutations. A
  feature the model does not read has ``d_i = 0`` on every row, so its
  interval is ``[0, 0]``; one whose interval includes zero is
  indistinguishable from unused at that sample size.

All ``n_repeats`` permuted copies of a feature are predicted in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from assay.errors import InputError

#: Per-row losses by name; each takes ``(y, pred, proba_of_true_class)``.
LOSSES = ("accuracy", "log_loss", "brier", "squared_error", "absolute_error")
_EPS = 1e-15


@dataclass(frozen=True)
class FeatureImportance:
    """Importance of one feature: mean loss increase when it is permuted, with its interval."""

    feature: str
    mean: float
    ci: tuple[float, float]
    std: float  # standard deviation of the importance over the repeats
    n: int  # rows

    @property
    def indistinguishable_from_zero(self) -> bool:
        """Whether the interval includes zero (the model may not use the feature)."""
        return self.ci[0] <= 0.0 <= self.ci[1]

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "mean": self.mean, "ci": list(self.ci),
                "std": self.std, "n": self.n}


def _labels_match(y: np.ndarray, cls: Any) -> np.ndarray:
    eq = y == cls
    if isinstance(eq, np.ndarray) and eq.any():
        return eq
    return np.asarray([str(v) == str(cls) for v in y])


def _proba_of_true(adapter: Any, X: pd.DataFrame, y: np.ndarray) -> np.ndarray:
    """The model's probability of each row's own label (0 for a label it does not know)."""
    classes = adapter.classes
    if classes is None:
        raise InputError(f"{adapter.name}: the model does not list its classes; a "
                         "probability loss needs them")
    out = np.zeros(len(X))
    for c in classes:
        rows = _labels_match(y, c)
        if rows.any():
            out[rows] = adapter.predict_proba(X[rows], positive_label=c)
    return out


def row_losses(adapter: Any, X: pd.DataFrame, y: np.ndarray, metric: str) -> np.ndarray:
    """Per-row loss of the model on ``X`` against ``y`` (see :data:`LOSSES`)."""
    if metric == "accuracy":
        pred = np.asarray(adapter.predict(X))
        same = (pred == y) if pred.dtype.kind == np.asarray(y).dtype.kind else (
            pred.astype(str) == np.asarray(y).astype(str))
        return 1.0 - np.asarray(same, dtype=float)
    if metric in ("log_loss", "brier"):
        p = _proba_of_true(adapter, X, y)
        if metric == "log_loss":
            return -np.log(np.clip(p, _EPS, 1.0))
        if len(adapter.classes) != 2:
            raise InputError("metric 'brier': expected a binary classifier")
        return (1.0 - p) ** 2
    if metric in ("squared_error", "absolute_error"):
        err = np.asarray(adapter.predict(X), dtype=float) - np.asarray(y, dtype=float)
        return err ** 2 if metric == "squared_error" else np.abs(err)
    raise InputError(f"metric: expected one of {', '.join(LOSSES)}, got {metric!r}")


def permutation_importance(
    adapter: Any,
    X: pd.DataFrame,
    y: Sequence[Any] | np.ndarray | pd.Series,
    metric: str | Callable[[Any, pd.DataFrame, np.ndarray], np.ndarray] = "accuracy",
    n_repeats: int = 5,
    rng: Any = None,
    *,
    features: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> list[FeatureImportance]:
    """Permutation importance of each of ``features`` (default: every column of ``X``).

    ``adapter`` is an :class:`assay.data.ModelAdapter` (a fitted estimator is
    wrapped in one); ``metric`` names a per-row loss of :data:`LOSSES` or is a
    function ``(adapter, X, y) -> per-row losses``; ``rng`` draws the
    permutations, ``n_repeats`` calls of ``rng.permutation(len(X))`` per feature (a
    seed, a ``numpy.random.Generator``, a ``RandomState`` or any object with that
    method). Returns one
    :class:`FeatureImportance` per feature, in the order given.
    """
    from assay.data.model import ModelAdapter

    if not isinstance(adapter, ModelAdapter):
        adapter = ModelAdapter.from_estimator(adapter)
    if rng is None or isinstance(rng, int | np.integer):
        rng = np.random.default_rng(rng)
    if n_repeats < 1:
        raise InputError(f"n_repeats: expected an integer >= 1, got {n_repeats!r}")
    if not 0 < confidence < 1:
        raise InputError(f"confidence: expected a number between 0 and 1, got {confidence!r}")
    X = X.reset_index(drop=True)
    y_arr = np.asarray(y)
    n = len(X)
    if n < 2 or len(y_arr) != n:
        raise InputError(f"permutation importance: expected at least 2 rows and as many "
                         f"labels as rows, got {n} rows and {len(y_arr)} labels")
    loss: Callable[[Any, pd.DataFrame, np.ndarray], np.ndarray]
    loss = metric if callable(metric) else (lambda a, x, t: row_losses(a, x, t, metric))
    base = np.asarray(loss(adapter, X, y_arr), dtype=float)
    feats = list(features) if features is not None else list(X.columns)
    missing = [f for f in feats if f not in X.columns]
    if missing:
        raise InputError(f"features: {', '.join(map(str, missing))} not among the columns "
                         f"({', '.join(map(str, X.columns[:20]))})")
    t = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    y_rep = np.tile(y_arr, n_repeats)
    out: list[FeatureImportance] = []
    for f in feats:
        stacked = pd.concat([X] * n_repeats, ignore_index=True)
        col = X[f].to_numpy()
        stacked[f] = np.concatenate([col[rng.permutation(n)] for _ in range(n_repeats)])
        permuted = np.asarray(loss(adapter, stacked, y_rep), dtype=float).reshape(n_repeats, n)
        d = permuted.mean(axis=0) - base
        mean = float(d.mean())
        half = t * float(d.std(ddof=1)) / np.sqrt(n)
        per_repeat = permuted.mean(axis=1) - base.mean()
        out.append(FeatureImportance(
            feature=str(f), mean=mean, ci=(mean - half, mean + half),
            std=float(per_repeat.std()), n=n))
    return out


__all__ = ["LOSSES", "FeatureImportance", "permutation_importance", "row_losses"]
