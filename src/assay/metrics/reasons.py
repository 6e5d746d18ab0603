"""Reason codes for declined applications (adverse-action notices), model-agnostic.

For a declined row ``x`` and each feature ``j``, the *contribution* of ``j``
is how much the score (probability of the favourable outcome) rises when
``x_j`` alone is replaced by the feature's *reference value*, the value
typical of approved applicants: the median among approved rows for a number,
the most frequent category for the rest:

    contribution_j(x) = score(x with x_j := ref_j) - score(x)

A positive contribution means the applicant's own value of ``j`` lowered the
score by that much against a typical approved applicant: ``j`` is an adverse
reason. The row's reasons are the ``k`` features with the largest positive
contributions (above ``min_contribution``), largest first; a row may get
fewer than ``k`` when fewer features count against it.

For a linear model on the log-odds scale (logistic regression) the
replacement changes the log-odds by ``coef_j * (ref_j - x_j)``, and the
sigmoid is increasing, so the reasons rank exactly as ``coef_j * (ref_j -
x_j)`` does. The method is one-at-a-time: interactions between features
are not attributed (two features that only count together each show a part),
and a replaced value may form a combination that never occurs in the data.
Cost: one model call on ``rows x features`` rows, batched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class ReasonCodes:
    """Reasons per declined row.

    ``rows`` are the row labels of the declined rows (as given in ``X``'s
    index), ``reasons[i]`` the list of ``(feature, contribution)`` of row
    ``i``, largest first (at most ``k``), ``scores[i]`` the row's score.
    ``contributions`` is the full (rows x features) matrix.
    """

    rows: list[Any]
    features: list[str]
    reasons: list[list[tuple[str, float]]]
    scores: np.ndarray
    contributions: np.ndarray
    reference: dict[str, Any]
    k: int
    min_contribution: float = 0.0

    def top_sets(self) -> list[frozenset[str]]:
        return [frozenset(f for f, _ in r) for r in self.reasons]

    def to_frame(self) -> pd.DataFrame:
        """One line per declined row: ``row``, ``score``, ``reason_1`` ...,
        ``contribution_1`` ... (empty when the row has fewer reasons)."""
        data: dict[str, list[Any]] = {"row": list(self.rows),
                                      "score": [float(s) for s in self.scores]}
        for i in range(self.k):
            data[f"reason_{i + 1}"] = [r[i][0] if len(r) > i else "" for r in self.reasons]
            data[f"contribution_{i + 1}"] = [r[i][1] if len(r) > i else None
                                             for r in self.reasons]
        return pd.DataFrame(data)


def reference_values(X: pd.DataFrame, features: Sequence[str]) -> dict[str, Any]:
    """The median (numbers) or most frequent value (other columns) of each feature in
    ``X`` (the approved rows); missing values are ignored."""
    out: dict[str, Any] = {}
    for f in features:
        s = X[f].dropna()
        if s.empty:
            raise ValueError(f"feature {f!r} has no value among the approved rows")
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            v = s.median()
            if pd.api.types.is_integer_dtype(s):
                v = type(s.iloc[0])(round(float(v)))  # an integer column keeps integers
            out[f] = v.item() if hasattr(v, "item") else v
        else:
            counts = s.astype(object).value_counts(sort=False)
            best = counts.max()
            # ties: the first in sorted text order, so the choice is reproducible
            out[f] = sorted((v for v, c in counts.items() if c == best), key=str)[0]
    return out


#: Most rows (declined rows x features) scored in one model call.
BATCH_ROWS = 200_000


def compute_reasons(
    score_of: Callable[[pd.DataFrame], np.ndarray],
    X: pd.DataFrame,
    reference: dict[str, Any],
    k: int = 4,
    *,
    features: Sequence[str] | None = None,
    min_contribution: float = 0.0,
    scores: np.ndarray | None = None,
) -> ReasonCodes:
    """Reason codes for every row of ``X`` (give the declined rows only).

    ``score_of`` returns the probability of the favourable outcome for a
    frame of model inputs; ``reference`` maps each feature to its reference
    value (:func:`reference_values` of the approved rows); ``features`` are
    the candidates for reasons (default: every key of ``reference``).
    """
    feats = list(features) if features is not None else list(reference)
    n, d = len(X), len(feats)
    base = np.asarray(score_of(X), dtype=float) if scores is None else np.asarray(scores, float)
    contrib = np.zeros((n, d))
    if n and d:
        per_call = max(1, BATCH_ROWS // n)
        for start in range(0, d, per_call):
            chunk = feats[start:start + per_call]
            parts = []
            for f in chunk:
                Xr = X.copy()
                Xr[f] = reference[f]
                parts.append(Xr)
            out = np.asarray(score_of(pd.concat(parts, ignore_index=True)), dtype=float)
            for i in range(len(chunk)):
                contrib[:, start + i] = out[i * n:(i + 1) * n] - base
    reasons: list[list[tuple[str, float]]] = []
    for i in range(n):
        row = contrib[i]
        order = np.argsort(-row, kind="stable")[:k]
        reasons.append([(feats[j], float(row[j])) for j in order
                        if row[j] > min_contribution])
    return ReasonCodes(rows=list(X.index), features=feats, reasons=reasons, scores=base,
                       contributions=contrib, reference=dict(reference), k=k,
                       min_contribution=min_contribution)
