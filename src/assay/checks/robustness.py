"""Robustness checks: how the model's decisions react to perturbed inputs.

Every check needs a model (``SkipCheck`` otherwise) and runs on a seeded
uniform sample of the evaluation data (``sample`` rows, default 2,000;
``seed`` defaults to the policy's bootstrap seed). A "decision" is the
model's ``predict()`` output; for regression a prediction counts as changed
when it moves by more than ``tolerance`` (default 0.1) standard deviations of
the baseline predictions. Each check reports the share of changed
decisions (judged by default, ``measure: changed_decisions``) and the drop
of the model's accuracy (MAE increase for regression) against the target
(``measure: metric_drop`` judges that one instead).

A model that fails on perturbed input (missing values it cannot handle, a
category it has never seen) is a finding, not a crash: the measurement is
1.0 (every decision lost) with the model's error message in the note.

Suggested thresholds: max 0.05 for ``gaussian_noise`` (scale 0.1),
``missing_injection`` and ``counterfactual_flip``; max 0 for
``monotonicity``; ``category_swap`` is exploratory (say max 0.3).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from assay.checks.base import (
    CheckContext,
    CheckOutput,
    CheckSpec,
    Measurement,
    SkipCheck,
    check,
    int_param,
    seed_param,
    where,
)
from assay.errors import AssayError, InputError, PolicyError

SAMPLE_ROWS = 2_000
COMMON = ("sample", "seed", "features", "measure", "tolerance")


@dataclass
class Baseline:
    X: pd.DataFrame
    y: pd.Series | None
    pred: np.ndarray
    regression: bool
    tolerance: float  # absolute change that counts as a changed regression prediction

    def metric(self, pred: np.ndarray) -> float | None:
        if self.y is None:
            return None
        y = self.y.to_numpy()
        if self.regression:
            return float(np.mean(np.abs(pred.astype(float) - y.astype(float))))
        return float(np.mean(_same(pred, y)))

    def changed(self, pred: np.ndarray) -> np.ndarray:
        if self.regression:
            return np.abs(pred.astype(float) - self.pred.astype(float)) > self.tolerance
        return ~_same(pred, self.pred)


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "biuf" and b.dtype.kind in "biuf":
        return a.astype(float) == b.astype(float)
    return a.astype(str) == b.astype(str)





def _float_param(spec: CheckSpec, name: str, default: float, low: float = 0.0,
                 high: float = float("inf")) -> float:
    v = spec.params.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not low <= v <= high:
        raise PolicyError(f"{where(spec)}: parameter '{name}': expected a number between "
                          f"{low:g} and {high:g}, got {v!r}")
    return float(v)


def _inputs(ctx: CheckContext) -> list[str]:
    return ctx.model.input_columns(ctx.roles.feature_columns(ctx.evaluation.column_names))


def baseline(ctx: CheckContext, spec: CheckSpec) -> Baseline:
    """The sample and the model's decisions on it (cached per sample and seed)."""
    if ctx.model is None:
        raise SkipCheck("no model was given")
    n = int_param(spec, "sample", SAMPLE_ROWS)
    seed = seed_param(ctx, spec)
    tol = _float_param(spec, "tolerance", 0.1)

    def build() -> Baseline:
        inputs = _inputs(ctx)
        target = ctx.roles.target
        cols = list(dict.fromkeys([*inputs, *([target] if target else [])]))
        df = ctx.evaluation.sample(n, seed=seed, columns=cols).reset_index(drop=True)
        X = df[inputs]
        pred = np.asarray(ctx.model.predict(X))
        regression = ctx.roles.task == "regression"
        std = float(np.std(pred.astype(float))) if regression else 0.0
        return Baseline(X, df[target] if target else None, pred, regression,
                        tol * std if regression else 0.0)

    return ctx.cached(f"robustness.baseline:{n}:{seed}:{tol}", build)


def _features(ctx: CheckContext, spec: CheckSpec, base: Baseline,
              kind: str | None) -> list[str]:
    wanted = spec.params.get("features")
    if wanted is not None:
        if isinstance(wanted, str):
            wanted = [wanted]
        for f in wanted:
            if f not in base.X.columns:
                raise InputError(f"{where(spec)}: feature {f!r} is not a model input "
                                 f"(inputs: {', '.join(map(str, base.X.columns[:20]))})")
        return list(wanted)
    out = []
    for c in base.X.columns:
        numeric = pd.api.types.is_numeric_dtype(base.X[c]) and not pd.api.types.is_bool_dtype(
            base.X[c])
        if kind is None or (kind == "numeric") == numeric:
            out.append(c)
    return out


def _run(ctx: CheckContext, X: pd.DataFrame) -> tuple[np.ndarray | None, str | None]:
    try:
        return np.asarray(ctx.model.predict(X)), None
    except AssayError as exc:
        return None, str(exc)


#: Most copies of the sample whose changed rows are predicted in one call, in rows of the
#: sample (25 copies of a 2,000-row sample).
JOINT_ROWS = 50_000
K = TypeVar("K")


def _run_all(ctx: CheckContext, base: Baseline,
             variants: Iterable[tuple[K, pd.DataFrame, np.ndarray | None]],
             ) -> Iterator[tuple[K, np.ndarray | None, str | None]]:
    """The model's decisions on each perturbed copy of the sample, as :func:`_run` gives,
    with the key that came with it.

    Each variant is ``(key, X, rows)``: the perturbed copy and the mask of the
    rows the perturbation changed (None: any row may have changed). Only
    those rows are predicted, the changed rows of several copies stacked in
    one call (at a few thousand rows a model's fixed cost per call outweighs
    its cost per row); the other rows keep the baseline's decisions. That
    relies on what scikit-learn's API promises, that a row's prediction does
    not depend on the other rows of the call, and is checked once per model
    and certification: on the first joint call, the first copy is also
    predicted alone, in full, and must get the same decisions (later joint
    calls, of this check or another, rely on that). Until that check has
    passed, and whenever the joint call fails, each copy is predicted alone,
    so a failure is attributed to the perturbation that caused it.
    ``variants`` is read :data:`JOINT_ROWS` rows of copies at a time.
    """
    per_call = max(1, JOINT_ROWS // max(len(base.X), 1))
    it = iter(variants)
    while chunk := list(itertools.islice(it, per_call)):
        joint = _run_joint(ctx, base, chunk) if len(chunk) > 1 else None
        for i, (key, X, _) in enumerate(chunk):
            pred, err = (joint[i], None) if joint is not None else _run(ctx, X)
            yield key, pred, err


def _run_joint(ctx: CheckContext, base: Baseline,
               chunk: list[tuple[Any, pd.DataFrame, np.ndarray | None]],
               ) -> list[np.ndarray] | None:
    n, columns = len(base.X), list(base.X.columns)
    if any(len(X) != n or list(X.columns) != columns for _, X, _ in chunk):
        return None
    masks = [np.ones(n, bool) if rows is None else np.asarray(rows, dtype=bool)
             for _, _, rows in chunk]
    counts = [int(m.sum()) for m in masks]
    pred = base.pred[:0]
    if sum(counts):
        pred, _ = _run(ctx, pd.concat([X[m] for (_, X, _), m in zip(chunk, masks, strict=True)
                                       if m.any()], ignore_index=True))
        if pred is None or len(pred) != sum(counts):
            return None
    kind = np.result_type(base.pred, pred)
    out, start = [], 0
    for m, k in zip(masks, counts, strict=True):
        full = base.pred.astype(kind, copy=True)
        full[m] = pred[start:start + k]
        start += k
        out.append(full)
    first = next((i for i, k in enumerate(counts) if k), None)
    checked = _row_independence(ctx)
    if first is not None and not checked.get("rows independent"):
        alone, _ = _run(ctx, chunk[first][1])
        if alone is None or not _identical(base, alone, out[first]):
            return None
        checked["rows independent"] = True
    return out


def _row_independence(ctx: CheckContext) -> dict[str, bool]:
    """What is known, in this certification, of whether the model's prediction of a row
    depends on the other rows of the call."""
    return ctx.cached("robustness.row_independence", dict)


def _identical(base: Baseline, a: np.ndarray, b: np.ndarray) -> bool:
    """The same decisions (regression: the same predictions up to rounding)."""
    if len(a) != len(b):
        return False
    if base.regression:
        return bool(np.allclose(a.astype(float), b.astype(float), rtol=1e-9, atol=0.0))
    return bool(np.all(_same(a, b)))


def _measure(spec: CheckSpec) -> str:
    m = spec.params.get("measure", "changed_decisions")
    if m not in ("changed_decisions", "metric_drop"):
        raise PolicyError(f"{where(spec)}: parameter 'measure': expected 'changed_decisions' or "
                          f"'metric_drop', got {m!r}")
    return m


def _pair(base: Baseline, spec: CheckSpec, label: str, pred: np.ndarray | None,
          error: str | None, rows: np.ndarray | None = None) -> list[Measurement]:
    """Changed-decision share and metric drop of one perturbation."""
    measure = _measure(spec)
    rows = np.ones(len(base.X), bool) if rows is None else rows
    n = int(rows.sum())
    if pred is None:
        note = f"the model failed on the perturbed input: {error}"
        return [Measurement(label=f"{label}: changed decisions", value=1.0, n=n, note=note,
                            judged=measure == "changed_decisions"),
                Measurement(label=f"{label}: metric drop", value=None, n=n, note=note,
                            judged=False)]
    changed = float(base.changed(pred)[rows].mean()) if n else 0.0
    before = base.metric(base.pred)
    after = base.metric(pred)
    drop = None
    if before is not None and after is not None:
        drop = after - before if base.regression else before - after
    what = "MAE increase" if base.regression else "accuracy drop"
    return [Measurement(label=f"{label}: changed decisions", value=changed, n=n,
                        judged=measure == "changed_decisions"),
            Measurement(label=f"{label}: metric drop", value=drop, n=n, note=what,
                        judged=measure == "metric_drop" and drop is not None)]


def _output(ms: list[Measurement], what: str) -> CheckOutput:
    judged = [m for m in ms if m.judged and m.value is not None]
    worst = max(judged, key=lambda m: m.value, default=None)  # type: ignore[arg-type, return-value]
    failed = [m for m in ms if m.judged and m.note and m.note.startswith("the model failed")]
    msg = f"{what}; worst {worst.label}: {worst.value:.4g}" if worst else what
    if failed:
        names = ", ".join(m.label.split(":")[0] for m in failed)
        msg = f"{what}; {failed[0].note} (perturbed: {names})"
    return CheckOutput(measurements=ms, message=msg)


@check("robustness.gaussian_noise", family="robustness", title="Stability under noise",
       requires=("model",), params=(*COMMON, "scale"))
def gaussian_noise(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Add Gaussian noise of ``scale`` standard deviations to every numeric input."""
    base = baseline(ctx, spec)
    scale = _float_param(spec, "scale", 0.1, 0.0, 100.0)
    feats = _features(ctx, spec, base, "numeric")
    if not feats:
        raise SkipCheck("the model has no numeric input")
    rng = np.random.default_rng(seed_param(ctx, spec))
    X = base.X.copy()
    for f in feats:
        x = X[f].astype(float)
        sd = float(np.nanstd(x))
        X[f] = x + rng.normal(0.0, scale * sd if sd > 0 else 0.0, len(x))
    pred, err = _run(ctx, X)
    ms = _pair(base, spec, f"noise {scale:g} sd on {len(feats)} feature(s)", pred, err)
    return _output(ms, f"Gaussian noise of {scale:g} standard deviations on "
                       f"{', '.join(feats)}")


@check("robustness.category_swap", family="robustness",
       title="Stability when a category is replaced", requires=("model",),
       params=(*COMMON, "rate"))
def category_swap(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Replace each categorical input, in a ``rate`` share of rows, by another observed category."""
    base = baseline(ctx, spec)
    rate = _float_param(spec, "rate", 1.0, 0.0, 1.0)
    feats = _features(ctx, spec, base, "categorical")
    if not feats:
        raise SkipCheck("the model has no categorical input")
    rng = np.random.default_rng(seed_param(ctx, spec))
    found: dict[str, list[Measurement]] = {}

    def swapped() -> Iterator[tuple[tuple[str, np.ndarray], pd.DataFrame, np.ndarray]]:
        for f in feats:
            codes, cats = pd.factorize(base.X[f])
            k = len(cats)
            rows = (rng.random(len(codes)) < rate) & (codes >= 0)
            if k < 2 or not rows.any():
                found[f] = [Measurement(label=f"{f}: changed decisions", value=None,
                                        judged=False,
                                        note="fewer than two categories in the sample")]
                continue
            new = codes.copy()
            new[rows] = (codes[rows] + rng.integers(1, k, size=int(rows.sum()))) % k
            X = base.X.copy()
            X[f] = pd.Series(np.asarray(cats, dtype=object)[new], index=X.index).where(
                codes >= 0, base.X[f])
            yield (f, rows), X, rows

    for (f, rows), pred, err in _run_all(ctx, base, swapped()):
        found[f] = _pair(base, spec, f, pred, err, rows)
    ms = [m for f in feats for m in found[f]]
    return _output(ms, f"categories swapped in {rate:.0%} of rows, one feature at a time")


@check("robustness.missing_injection", family="robustness",
       title="Behaviour with missing values", requires=("model",),
       params=(*COMMON, "rate"))
def missing_injection(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Set a ``rate`` share of each input's values to missing, one feature at a time."""
    base = baseline(ctx, spec)
    rate = _float_param(spec, "rate", 0.1, 0.0, 1.0)
    feats = _features(ctx, spec, base, None)
    rng = np.random.default_rng(seed_param(ctx, spec))

    def masked() -> Iterator[tuple[tuple[str, np.ndarray], pd.DataFrame, np.ndarray]]:
        for f in feats:
            rows = rng.random(len(base.X)) < rate
            X = base.X.copy()
            if pd.api.types.is_numeric_dtype(X[f]):
                X[f] = X[f].astype(float).mask(rows)
            else:
                X[f] = X[f].astype(object).mask(rows, None)
            yield (f, rows), X, rows

    ms: list[Measurement] = []
    for (f, rows), pred, err in _run_all(ctx, base, masked()):
        ms.extend(_pair(base, spec, f, pred, err, rows))
    return _output(ms, f"{rate:.0%} of values set to missing, one feature at a time")


def _flip_values(s: pd.Series) -> list[Any]:
    uniq = pd.unique(s.dropna())
    if pd.api.types.is_numeric_dtype(s) and len(uniq) > 10:
        return sorted(set(np.quantile(s.dropna(), [0.1, 0.3, 0.5, 0.7, 0.9],
                                      method="inverted_cdf").tolist()))
    return sorted(uniq.tolist(), key=str)


@check("robustness.counterfactual_flip", family="robustness",
       title="Decisions unchanged when a protected attribute is flipped",
       requires=("model", "sensitive"), params=COMMON)
def counterfactual_flip(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Share of decisions that change when a protected attribute takes another value."""
    base = baseline(ctx, spec)
    sens = [s for s in ctx.roles.sensitive if s in base.X.columns]
    if not ctx.roles.sensitive:
        raise SkipCheck("no sensitive column was given")
    if not sens:
        raise SkipCheck("no protected attribute is a model input "
                        f"({', '.join(ctx.roles.sensitive)} are not among its inputs)")
    ms: list[Measurement] = []
    for s in sens:
        any_change = np.zeros(len(base.X), bool)
        failed: str | None = None
        per_value: list[Measurement] = []

        def flipped(s: str = s) -> Iterator[tuple[tuple[Any, np.ndarray], pd.DataFrame,
                                                  np.ndarray]]:
            col = base.X[s]
            for v in _flip_values(col):
                if pd.api.types.is_numeric_dtype(col):
                    rows = (col.astype(float) != float(v)).to_numpy()
                else:
                    rows = (col.astype(str) != str(v)).to_numpy()
                if not rows.any():
                    continue
                X = base.X.copy()
                X.loc[rows, s] = v
                yield (v, rows), X, rows

        for (v, rows), pred, err in _run_all(ctx, base, flipped()):
            if pred is None:
                failed = err
                break
            ch = base.changed(pred) & rows
            any_change |= ch
            per_value.append(Measurement(label=f"{s} -> {v}", value=float(ch[rows].mean()),
                                         n=int(rows.sum()), judged=False))
        if failed:
            ms.append(Measurement(label=s, value=1.0, n=len(base.X),
                                  note=f"the model failed on the flipped input: {failed}"))
        else:
            ms.append(Measurement(label=s, value=float(any_change.mean()), n=len(base.X),
                                  note="share of rows whose decision changes under some flip"))
        ms.extend(per_value)
    return _output(ms, f"protected attribute(s) flipped: {', '.join(sens)}")


@check("robustness.monotonicity", family="robustness", title="Monotone response to features",
       requires=("model",), params=(*COMMON, "constraints", "step"))
def monotonicity(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Share of rows where raising a feature by ``step`` standard deviations moves the score
    against its declared direction (``constraints: {feature: increasing|decreasing}``)."""
    cons = spec.params.get("constraints")
    if not isinstance(cons, dict) or not cons:
        raise PolicyError(f"{where(spec)}: parameter 'constraints': expected a mapping of "
                          "feature to 'increasing' or 'decreasing'")
    for f, d in cons.items():
        if d not in ("increasing", "decreasing"):
            raise PolicyError(f"{where(spec)}: constraint on {f!r}: expected 'increasing' or "
                              f"'decreasing', got {d!r}")
    if ctx.roles.task == "multiclass":
        raise SkipCheck("not run: monotonicity needs one score or numeric output to order; a "
                        "multiclass model has one probability per class")
    base = baseline(ctx, spec)
    step = _float_param(spec, "step", 0.5, 0.0, 100.0)
    score_of: Callable[[pd.DataFrame], np.ndarray]
    if ctx.model.has_proba and ctx.roles.task == "classification":

        def score_of(X: pd.DataFrame) -> np.ndarray:
            return ctx.model.predict_proba(X, positive_label=ctx.roles.positive_label)

        before = score_of(base.X)
    else:
        before = base.pred.astype(float)

        def score_of(X: pd.DataFrame) -> np.ndarray:
            return np.asarray(ctx.model.predict(X), dtype=float)
    ms: list[Measurement] = []
    for f, direction in cons.items():
        if f not in base.X.columns:
            raise InputError(f"{where(spec)}: constrained feature {f!r} is not a model input")
        if not pd.api.types.is_numeric_dtype(base.X[f]):
            raise InputError(f"{where(spec)}: constrained feature {f!r} is not numeric")
        X = base.X.copy()
        x = X[f].astype(float)
        sd = float(np.nanstd(x))
        X[f] = x + step * (sd if sd > 0 else 1.0)
        try:
            after = score_of(X)
        except AssayError as exc:
            ms.append(Measurement(label=f, value=1.0, n=len(X),
                                  note=f"the model failed on the raised input: {exc}"))
            continue
        tol = 1e-9
        bad = after < before - tol if direction == "increasing" else after > before + tol
        ms.append(Measurement(label=f, value=float(bad.mean()), n=len(X),
                              note=f"{direction}; raised by {step:g} sd"))
    return _output(ms, "monotonicity constraints")
