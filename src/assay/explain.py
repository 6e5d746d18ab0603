"""Explanations from Python: reason codes for adverse-action notices.

    import assay.explain

    codes = assay.explain.reason_codes(model, applications, reference=train,
                                       target="approved", positive_label=1, k=4)
    codes.to_csv("reason_codes.csv", index=False)

:func:`reason_codes` scores every row of ``data``, keeps the declined ones
and gives each its top ``k`` adverse reasons: the features whose replacement
by the value typical of approved applicants (median / most frequent value
among the rows of ``reference`` that the model approves) raises the approval
score most (method and limits: ``docs/explain.md``). ``assay certify`` writes
the same table, for the declined rows of its sample, as ``reason_codes.csv``
beside ``results.json`` when the policy runs ``explain.reason_coverage``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from assay.errors import InputError

#: The check whose details carry the reason codes of a certification.
REASON_CHECK = "explain.reason_coverage"
REASON_CODES_FILE = "reason_codes.csv"


def reason_codes(
    model: Any,
    data: Any,
    *,
    reference: Any = None,
    features: Sequence[str] | None = None,
    target: str | None = None,
    positive_label: Any = 1,
    k: int = 4,
    min_contribution: float = 0.005,
) -> pd.DataFrame:
    """The top ``k`` adverse reasons of every row of ``data`` that ``model`` declines.

    ``model`` is a fitted classifier with ``predict_proba`` (or a model file,
    or an :class:`assay.data.ModelAdapter`); ``data`` and ``reference``
    anything :func:`assay.data.open_dataset` accepts. ``reference`` (the
    training data; default ``data``) gives the reference values, taken from
    the rows the model approves. ``features`` are the candidate reasons
    (default: the model's inputs). Returns one line per declined row:
    ``row`` (position in ``data``), ``score`` (probability of
    ``positive_label``), ``reason_1``, ``contribution_1``, ... ``reason_k``,
    ``contribution_k`` (a contribution is the rise of the score when the
    feature takes its reference value; a feature is a reason only when it is
    above ``min_contribution``, by default half a percentage point).
    """
    from assay.data import ColumnRoles, ModelAdapter, load_model, open_dataset
    from assay.metrics.reasons import compute_reasons, reference_values

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(f"k: expected an integer >= 1, got {k!r}")
    if isinstance(model, ModelAdapter):
        adapter = model
    elif isinstance(model, str) or hasattr(model, "__fspath__"):
        adapter = load_model(model)
    else:
        adapter = ModelAdapter.from_estimator(model)
    if not adapter.has_proba:
        raise InputError(f"{adapter.name}: reason codes need scores; a "
                         f"{type(adapter.estimator).__name__} has no predict_proba()")
    roles = ColumnRoles(target=target, features=list(features) if features else None)
    ds = open_dataset(data, roles)
    names = [c for c in ds.column_names if c != target]
    inputs = adapter.input_columns(names)
    missing = [c for c in inputs if c not in ds.column_names]
    if missing:
        raise InputError(f"{ds.name}: the model input(s) {', '.join(missing)} are not columns "
                         "of the data")
    feats = list(features) if features else inputs
    bad = [f for f in feats if f not in inputs]
    if bad:
        raise InputError(f"features: {', '.join(bad)} are not model inputs "
                         f"(inputs: {', '.join(inputs[:20])})")
    X = ds.to_pandas(inputs)
    ref = X if reference is None else open_dataset(reference, ColumnRoles()).to_pandas(inputs)

    def approved(frame: pd.DataFrame) -> np.ndarray:
        return _is(np.asarray(adapter.predict(frame)), positive_label)

    good = ref[approved(ref)]
    if good.empty:
        raise InputError("reference: the model approves none of its rows; there is no approved "
                         "applicant to take reference values from")
    refs = reference_values(good, feats)
    declined = ~approved(X)

    def score_of(frame: pd.DataFrame) -> np.ndarray:
        return adapter.predict_proba(frame, positive_label=positive_label)

    rc = compute_reasons(score_of, X[declined], refs, k, features=feats,
                         min_contribution=min_contribution)
    return rc.to_frame()


def _is(values: np.ndarray, label: Any) -> np.ndarray:
    if values.dtype.kind in "biuf" and isinstance(label, int | float | np.number) \
            and not isinstance(label, bool):
        return values.astype(float) == float(label)
    return values.astype(str) == str(label)


def reason_codes_csv(results: Mapping[str, Any]) -> str | None:
    """``reason_codes.csv`` of a certification (its ``results.json`` as a dict), or None
    when the reason-code check did not run."""
    for c in results.get("checks") or []:
        if not isinstance(c, Mapping) or c.get("id") != REASON_CHECK:
            continue
        table = (c.get("details") or {}).get("reason_codes")
        if not isinstance(table, Mapping) or not table.get("columns"):
            return None
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(table["columns"])
        for row in table.get("rows") or []:
            w.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)
                        for v in row])
        return out.getvalue()
    return None


def principal_reasons(results: Mapping[str, Any], limit: int = 4) -> dict[str, Any] | None:
    """The adverse reasons a certification found most often (for the notice to affected
    people): ``{"k": k, "features": [...], "declined": n}``, or None when the reason-code
    check did not run or no row was declined."""
    for c in results.get("checks") or []:
        if not isinstance(c, Mapping) or c.get("id") != REASON_CHECK:
            continue
        details = c.get("details") or {}
        table = details.get("reason_codes") or {}
        feats = [str(m.get("label", "")).removeprefix("principal reason: ")
                 for m in c.get("measurements") or []
                 if isinstance(m, Mapping)
                 and str(m.get("label", "")).startswith("principal reason: ")]
        if not feats:
            return None
        return {"k": table.get("k"), "features": feats[:limit],
                "declined": details.get("declined")}
    return None
