"""Explainability checks: what drives the model, whether that depends on a protected
group, and the reasons a declined applicant is given.

``explain.importance``
    permutation importance of every model input with bootstrap intervals,
    overall and per protected group (reported); judged on the share of the
    total importance the ``top_k`` features carry (a concentrated, explainable
    model scores near 1). Without a threshold it is reported only.
``explain.group_dependence``
    (a) the share of the total importance carried by each protected attribute
    and by it together with its proxies (inputs associated with it at
    ``proxy_threshold`` or more, Cramer's V), and (b) per group, the distance
    between the group's normalised importance profile and the reference
    group's (total variation: half the L1 distance; 0 = the same explanation).
    All are on [0, 1], 0 meaning no dependence; judge them with ``max``.
``explain.reason_coverage``
    share of declined rows that get ``k`` distinct adverse reasons.
``explain.reason_stability``
    share of declined rows whose top-``k`` reasons are unchanged when the
    numeric inputs move by ``noise`` standard deviations.

Every check runs on a seeded sample of ``sample_rows`` rows of the evaluation
data (default 2,000; ``seed`` defaults to the policy's bootstrap seed), says
the sample size in its measurements, and needs a model (``SkipCheck``
otherwise). Methods, assumptions and limits: ``docs/explain.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
from assay.errors import InputError, PolicyError
from assay.metrics._formulas import wilson_interval
from assay.metrics.importance import METRICS, Importance, permutation_importance_by_group
from assay.metrics.reasons import ReasonCodes, compute_reasons, reference_values

SAMPLE_ROWS = 2_000
COMMON = ("sample_rows", "seed", "features")
IMPORTANCE = (*COMMON, "metric", "repeats", "replicates")


def _float_param(spec: CheckSpec, name: str, default: float, low: float = 0.0,
                 high: float = float("inf")) -> float:
    v = spec.params.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not low <= v <= high:
        raise PolicyError(f"{where(spec)}: parameter '{name}': expected a number between "
                          f"{low:g} and {high:g}, got {v!r}")
    return float(v)


def _confidence(ctx: CheckContext) -> float:
    return float(getattr(getattr(ctx.settings, "bootstrap", None), "confidence", 0.95) or 0.95)


@dataclass
class Sample:
    X: pd.DataFrame            # model inputs
    y: pd.Series | None        # target
    sensitive: pd.DataFrame    # protected attributes
    rows: np.ndarray           # row numbers in the evaluation data
    total: int                 # rows of the evaluation data


def _inputs(ctx: CheckContext) -> list[str]:
    return ctx.model.input_columns(ctx.roles.feature_columns(ctx.evaluation.column_names))


def sample(ctx: CheckContext, spec: CheckSpec) -> Sample:
    """The seeded evaluation sample the checks of this family share."""
    if ctx.model is None:
        raise SkipCheck("no model was given (the checks call it on modified inputs)")
    if ctx.roles.task == "multiclass":
        raise SkipCheck("explanations are computed for binary classifiers and regression "
                        "models; this is a multiclass model")
    n = int_param(spec, "sample_rows", SAMPLE_ROWS)
    seed = seed_param(ctx, spec)

    def build() -> Sample:
        from assay.data.dataset import _sample_indices

        inputs = _inputs(ctx)
        target = ctx.roles.target
        sens = [s for s in ctx.roles.sensitive if s in ctx.evaluation.column_names]
        cols = list(dict.fromkeys([*inputs, *sens, *([target] if target else [])]))
        df = ctx.evaluation.sample(n, seed=seed, columns=cols).reset_index(drop=True)
        total = int(ctx.evaluation.num_rows)
        rows = (np.arange(total) if n >= total
                else _sample_indices(total, n, np.random.default_rng(seed)))
        return Sample(X=df[inputs], y=df[target] if target else None, sensitive=df[sens],
                      rows=np.asarray(rows), total=total)

    return ctx.cached(f"explain.sample:{n}:{seed}", build)


def _features(spec: CheckSpec, X: pd.DataFrame) -> list[str]:
    wanted = spec.params.get("features")
    if wanted is None:
        return [str(c) for c in X.columns]
    if isinstance(wanted, str):
        wanted = [wanted]
    if not isinstance(wanted, list) or not wanted:
        raise PolicyError(f"{where(spec)}: parameter 'features': expected a list of model "
                          f"inputs, got {wanted!r}")
    for f in wanted:
        if f not in X.columns:
            raise InputError(f"{where(spec)}: feature {f!r} is not a model input (inputs: "
                             f"{', '.join(map(str, X.columns[:20]))})")
    return list(wanted)


# --------------------------------------------------------------------------- importance


def _metric(ctx: CheckContext, spec: CheckSpec) -> str:
    regression = ctx.roles.task == "regression"
    default = "mse" if regression else ("roc_auc" if ctx.model.has_proba else "accuracy")
    m = spec.params.get("metric", default)
    allowed = ["mse", "mae"] if regression else (
        [k for k in METRICS if k not in ("mse", "mae")] if ctx.model.has_proba
        else ["accuracy"])
    if m not in allowed:
        raise PolicyError(f"{where(spec)}: parameter 'metric': expected one of "
                          f"{', '.join(allowed)} for this model, got {m!r}")
    return str(m)


@dataclass
class Importances:
    overall: Importance
    groups: dict[str, dict[str, Importance]]  # attribute -> group -> importance
    small: dict[str, dict[str, int]]          # groups left out (too few rows)
    metric: str
    n: int


def importances(ctx: CheckContext, spec: CheckSpec) -> Importances:
    """Permutation importance overall and per protected group (cached per settings)."""
    s = sample(ctx, spec)
    if s.y is None:
        raise SkipCheck("no target column was given (importance is a drop in performance)")
    metric = _metric(ctx, spec)
    repeats = int_param(spec, "repeats", 5)
    replicates = int_param(spec, "replicates", 200, low=0)
    feats = _features(spec, s.X)
    seed = seed_param(ctx, spec)
    min_size = int(getattr(ctx.settings, "min_group_size", 30) or 30)
    conf = _confidence(ctx)
    key = (f"explain.importance:{len(s.X)}:{seed}:{metric}:{repeats}:{replicates}:"
           f"{','.join(feats)}:{conf}")

    def build() -> Importances:
        keep = s.y.notna().to_numpy()
        X, y = s.X[keep].reset_index(drop=True), s.y[keep].reset_index(drop=True)
        common: dict[str, Any] = dict(metric=metric, n_repeats=repeats, features=feats,
                                      positive_label=ctx.roles.positive_label,
                                      n_boot=replicates, confidence=conf)
        rng = np.random.default_rng(seed)
        masks: dict[tuple[str, str], np.ndarray] = {}
        small: dict[str, dict[str, int]] = {}
        sens = s.sensitive[keep].reset_index(drop=True)
        for attr in sens.columns:
            col = sens[attr].astype(str).where(sens[attr].notna(), "(missing)")
            small[attr] = {}
            for g, count in col.value_counts().items():
                rows = (col == g).to_numpy()
                if count < min_size or (metric == "roc_auc" and y[rows].nunique() < 2):
                    small[attr][str(g)] = int(count)
                    continue
                masks[(attr, str(g))] = rows
        # one set of shuffled copies and model calls serves the sample and every group
        overall, by_group = permutation_importance_by_group(ctx.model, X, y, rng=rng,
                                                            groups=masks, **common)
        groups: dict[str, dict[str, Importance]] = {attr: {} for attr in sens.columns}
        for (attr, g), imp in by_group.items():
            groups[attr][g] = imp
        return Importances(overall, groups, small, metric, len(X))

    return ctx.cached(key, build)


def _positive_share(values: np.ndarray) -> np.ndarray:
    """Importances clipped at 0 and scaled to sum to 1 (last axis); NaN when none is > 0."""
    v = np.clip(values, 0.0, None)
    total = v.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, v / total, np.nan)


def _interval(reps: np.ndarray, confidence: float) -> tuple[float, float] | None:
    finite = reps[np.isfinite(reps)]
    if len(finite) < 10:
        return None
    a = (1 - confidence) / 2
    return float(np.quantile(finite, a)), float(np.quantile(finite, 1 - a))


def _importance_dict(imp: Importance) -> dict[str, Any]:
    return {"n": imp.n, "baseline": imp.baseline,
            "features": [{"feature": f, "mean": imp.mean[f],
                          "ci": list(imp.ci[f]) if imp.ci[f] else None, "std": imp.std[f]}
                         for f in imp.ranked()]}


def _details(imps: Importances) -> dict[str, Any]:
    return {
        "metric": imps.metric, "sample_rows": imps.n,
        "repeats": imps.overall.n_repeats,
        "importance": _importance_dict(imps.overall),
        "by_group": {a: {g: _importance_dict(i) for g, i in gs.items()}
                     for a, gs in imps.groups.items()},
        "small_groups": imps.small,
    }


@check("explain.importance", family="explain", title="Global feature importance",
       requires=("model", "target"), params=(*IMPORTANCE, "top_k"))
def importance(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Permutation importance with intervals; judged on the share the top_k features carry."""
    imps = importances(ctx, spec)
    top_k = int_param(spec, "top_k", 3)
    imp = imps.overall
    ranked = imp.ranked()
    top = ranked[:top_k]
    conf = _confidence(ctx)
    idx = [imp.features.index(f) for f in top]
    point = _positive_share(np.array([imp.mean[f] for f in imp.features]))
    share = float(np.nansum(point[idx])) if np.isfinite(point).all() else None
    ci = None
    if imp.replicates is not None and len(imp.replicates):
        ci = _interval(_positive_share(imp.replicates)[:, idx].sum(axis=1), conf)
    ms = [Measurement(label=f"share of importance in the top {len(top)}", value=share, ci=ci,
                      n=imp.n, judged=share is not None,
                      note=f"{', '.join(top)}; {imps.metric} drop, sample of {imp.n:,} rows"
                      if share is not None else "no feature lowers the "
                      f"{imps.metric} when shuffled: importance cannot be apportioned")]
    for f in ranked:
        ms.append(Measurement(label=f, value=imp.mean[f], ci=imp.ci[f], n=imp.n, judged=False,
                              note=f"{imps.metric} drop when shuffled (sd over "
                                   f"{imp.n_repeats} repeats {imp.std[f]:.2g})"))
    for attr, gs in imps.groups.items():
        for g, gi in gs.items():
            gtop = gi.ranked()[:top_k]
            ms.append(Measurement(label=f"{attr}={g}: top {len(gtop)}", value=None, n=gi.n,
                                  judged=False, note=", ".join(
                                      f"{f} {gi.mean[f]:.3g}" for f in gtop)))
    msg = (f"top {len(top)} of {len(ranked)} inputs by permutation importance "
           f"({imps.metric} drop, sample of {imp.n:,} rows): {', '.join(top)}")
    return CheckOutput(measurements=ms, message=msg, details=_details(imps))


# --------------------------------------------------------------------------- group dependence


def _codes(s: pd.Series, bins: int = 10) -> np.ndarray:
    """Integer codes of a column for an association table: quantile bins for numbers."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) \
            and s.nunique() > bins:
        return pd.qcut(s.rank(method="first"), bins, labels=False).fillna(-1).to_numpy(int)
    return pd.factorize(s.astype(str).where(s.notna(), "(missing)"))[0]


def cramers_v(a: pd.Series, b: pd.Series) -> float:
    """Cramer's V between two columns (numbers in 10 quantile bins); 0 when either is
    constant. Without bias correction (matches ``scipy.stats.contingency.association``)."""
    ca, cb = _codes(a), _codes(b)
    ka, kb = ca.max() + 1, cb.max() + 1
    if ka < 2 or kb < 2:
        return 0.0
    table = np.zeros((ka, kb))
    np.add.at(table, (ca, cb), 1.0)
    n = table.sum()
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / np.where(expected > 0, expected, 1)).sum())
    return float(np.sqrt(chi2 / (n * (min(ka, kb) - 1))))


@check("explain.group_dependence", family="explain",
       title="Explanation independent of protected attributes",
       requires=("model", "sensitive", "target"),
       params=(*IMPORTANCE, "proxy_threshold", "reference"))
def group_dependence(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Importance share of protected attributes and proxies; distance between group profiles.

    0 means the explanation does not depend on the group (docs/explain.md)."""
    imps = importances(ctx, spec)
    s = sample(ctx, spec)
    proxy_t = _float_param(spec, "proxy_threshold", 0.5, 0.0, 1.0)
    conf = _confidence(ctx)
    imp = imps.overall
    feats = imp.features
    point = _positive_share(np.array([imp.mean[f] for f in feats]))
    reps = (_positive_share(imp.replicates) if imp.replicates is not None
            and len(imp.replicates) else None)
    ms: list[Measurement] = []
    proxies_of: dict[str, list[tuple[str, float]]] = {}
    for attr in s.sensitive.columns:
        assoc = [(f, cramers_v(s.X[f], s.sensitive[attr])) for f in feats if f != attr]
        proxies = sorted([(f, v) for f, v in assoc if v >= proxy_t], key=lambda t: -t[1])
        proxies_of[attr] = proxies
        for label, members in ((f"{attr}: importance share", [attr]),
                               (f"{attr} and its proxies: importance share",
                                [attr, *[f for f, _ in proxies]])):
            idx = [feats.index(f) for f in members if f in feats]
            if label.startswith(f"{attr} and") and not proxies:
                continue
            if not idx:
                ms.append(Measurement(label=label, value=0.0, n=imp.n, note=f"{attr} is not "
                                      "a model input (or not among the features examined)"))
                continue
            value = float(point[idx].sum()) if np.isfinite(point).all() else None
            ci = _interval(reps[:, idx].sum(axis=1), conf) if reps is not None else None
            note = (f"proxies (Cramer's V >= {proxy_t:g}): "
                    + ", ".join(f"{f} {v:.2f}" for f, v in proxies)) if len(members) > 1 \
                else f"{imps.metric} drop, sample of {imp.n:,} rows"
            ms.append(Measurement(label=label, value=value, ci=ci, n=imp.n, note=note,
                                  judged=value is not None))
    ref_param = spec.params.get("reference")
    for attr, gs in imps.groups.items():
        if len(gs) < 2:
            if gs or imps.small.get(attr):
                ms.append(Measurement(label=f"{attr}: profile distance", value=None,
                                      judged=False, note="fewer than two groups with at "
                                      "least the minimum group size in the sample"))
            continue
        ref = str(ref_param.get(attr) if isinstance(ref_param, dict) else ref_param) \
            if ref_param is not None else max(gs, key=lambda g: gs[g].n)
        if ref not in gs:
            raise InputError(f"{where(spec)}: reference group {ref!r} of {attr} is not among "
                             f"the groups examined ({', '.join(gs)})")
        r = gs[ref]
        rv = _positive_share(np.array([r.mean[f] for f in feats]))
        for g, gi in gs.items():
            if g == ref:
                continue
            gv = _positive_share(np.array([gi.mean[f] for f in feats]))
            value = float(0.5 * np.abs(gv - rv).sum()) if np.isfinite(gv).all() \
                and np.isfinite(rv).all() else None
            ci = None
            if r.replicates is not None and gi.replicates is not None and len(r.replicates):
                b = min(len(r.replicates), len(gi.replicates))
                d = 0.5 * np.abs(_positive_share(gi.replicates[:b])
                                 - _positive_share(r.replicates[:b])).sum(axis=1)
                ci = _interval(d, conf)
            rho = _spearman([gi.mean[f] for f in feats], [r.mean[f] for f in feats])
            ms.append(Measurement(
                label=f"{attr}={g} vs {ref}: profile distance", value=value, ci=ci,
                n=gi.n, judged=value is not None,
                note=(f"total variation between normalised importance profiles; "
                      f"Spearman rank correlation {rho:.2f}" if value is not None else
                      "no feature lowers the metric in one of the groups")))
        for g, count in imps.small.get(attr, {}).items():
            ms.append(Measurement(label=f"{attr}={g}: profile distance", value=None, n=count,
                                  judged=False, note="below the minimum group size (or one "
                                  "class only) in the sample"))
    details = _details(imps)
    details["proxies"] = {a: [{"feature": f, "cramers_v": v} for f, v in p]
                          for a, p in proxies_of.items()}
    judged = [m for m in ms if m.judged and m.value is not None]
    worst = max(judged, key=lambda m: m.value, default=None)  # type: ignore[arg-type,return-value]
    msg = (f"largest dependence: {worst.label} {worst.value:.3g} (sample of {imp.n:,} rows)"
           if worst else f"sample of {imp.n:,} rows")
    return CheckOutput(measurements=ms, message=msg, details=details)


def _spearman(a: list[float], b: list[float]) -> float:
    ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    if np.std(ra) == 0 or np.std(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


# --------------------------------------------------------------------------- reason codes

REASONS = (*COMMON, "k", "min_contribution")
#: Smallest rise of the approval score (half a percentage point) that makes a feature a
#: reason: a feature at (or within rounding of) its reference value is no reason.
MIN_CONTRIBUTION = 0.005


def score_function(ctx: CheckContext) -> Callable[[pd.DataFrame], np.ndarray]:
    pl = ctx.roles.positive_label

    def score_of(X: pd.DataFrame) -> np.ndarray:
        return ctx.model.predict_proba(X, positive_label=pl)

    return score_of


@dataclass
class Declines:
    reasons: ReasonCodes
    X: pd.DataFrame           # the declined rows of the sample
    n_sample: int
    score_of: Callable[[pd.DataFrame], np.ndarray]


def declines(ctx: CheckContext, spec: CheckSpec) -> Declines:
    """Reason codes of the declined rows of the sample (cached per settings)."""
    s = sample(ctx, spec)
    if ctx.roles.task == "regression":
        raise SkipCheck("reason codes are for decisions of a classifier; this is a "
                        "regression model")
    if not ctx.model.has_proba:
        raise SkipCheck("reason codes need scores: the model has no predict_proba")
    if ctx.reference is None:
        raise SkipCheck("reason codes need the training data (--train): the reference "
                        "values are those of approved applicants in it")
    k = int_param(spec, "k", 4)
    min_c = _float_param(spec, "min_contribution", MIN_CONTRIBUTION, 0.0, 1.0)
    feats = _features(spec, s.X)
    seed = seed_param(ctx, spec)
    key = f"explain.reasons:{len(s.X)}:{seed}:{k}:{min_c}:{','.join(feats)}"

    def build() -> Declines:
        score_of = score_function(ctx)
        refs = reference_values(_approved_reference(ctx, spec, s), feats)
        decision = np.asarray(ctx.model.predict(s.X))
        declined = ~_is(decision, ctx.roles.positive_label)
        X = s.X[declined]
        X.index = s.rows[declined]
        rc = compute_reasons(score_of, X, refs, k, features=feats, min_contribution=min_c)
        return Declines(rc, X, len(s.X), score_of)

    return ctx.cached(key, build)


def _is(values: np.ndarray, label: Any) -> np.ndarray:
    v = np.asarray(values)
    if v.dtype.kind in "biuf" and isinstance(label, int | float | np.number) \
            and not isinstance(label, bool):
        return v.astype(float) == float(label)
    return v.astype(str) == str(label)


def _approved_reference(ctx: CheckContext, spec: CheckSpec, s: Sample) -> pd.DataFrame:
    n = int_param(spec, "sample_rows", SAMPLE_ROWS)
    seed = seed_param(ctx, spec)
    inputs = list(s.X.columns)
    missing = [c for c in inputs if c not in ctx.reference.column_names]
    if missing:
        raise InputError(f"{where(spec)}: the training data lacks the model input(s) "
                         f"{', '.join(missing)}")
    ref = ctx.reference.sample(n, seed=seed, columns=inputs).reset_index(drop=True)
    approved = ref[_is(np.asarray(ctx.model.predict(ref)), ctx.roles.positive_label)]
    if approved.empty:
        raise SkipCheck("the model approves none of the training rows sampled: there is no "
                        "approved applicant to take reference values from")
    return approved


def _principal(d: Declines, limit: int = 10) -> list[Measurement]:
    first = pd.Series([r[0][0] for r in d.reasons.reasons if r])
    n = len(d.reasons.reasons)
    out = []
    for f, c in first.value_counts().head(limit).items():
        out.append(Measurement(label=f"principal reason: {f}", value=c / n, n=n, judged=False,
                               note="share of declined rows whose first reason it is"))
    return out


def reason_table(d: Declines) -> dict[str, Any]:
    """The reason codes as a compact table for results.json (and ``reason_codes.csv``)."""
    frame = d.reasons.to_frame()
    return {"k": d.reasons.k, "columns": list(frame.columns),
            "rows": [[_plain(v) for v in row] for row in frame.itertuples(index=False)],
            "reference": {f: _plain(v) for f, v in d.reasons.reference.items()},
            "method": "replacement by the median / most frequent value among approved "
                      "training rows; contribution = rise of the approval score"}


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


@check("explain.reason_coverage", family="explain",
       title="Adverse-action reasons for every decline",
       requires=("model", "reference"), params=REASONS)
def reason_coverage(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Share of declined rows that get k distinct adverse reasons (reason codes written out)."""
    d = declines(ctx, spec)
    k = d.reasons.k
    n = len(d.reasons.reasons)
    full = sum(1 for r in d.reasons.reasons if len(r) >= k)
    if n == 0:
        return CheckOutput([Measurement(label="declined rows with reasons", value=None, n=0,
                                        judged=False, note="no declined row in the sample of "
                                        f"{d.n_sample:,} rows")],
                           message="the model declines no row of the sample")
    ms = [Measurement(label=f"declined rows with {k} adverse reasons", value=full / n,
                      ci=wilson_interval(full, n, _confidence(ctx)), n=n,
                      note=f"{n:,} declined of a sample of {d.n_sample:,} rows"),
          *_principal(d)]
    sens = set(ctx.roles.sensitive)
    named = sum(1 for r in d.reasons.reasons if any(f in sens for f, _ in r))
    if sens:
        ms.append(Measurement(label="declines whose reasons name a protected attribute",
                              value=named / n, n=n, judged=False,
                              note="a protected attribute given as a reason is a finding for "
                                   "fair-lending review" if named else
                                   "no reason names a protected attribute"))
    details = {"reason_codes": reason_table(d), "sample_rows": d.n_sample, "declined": n}
    return CheckOutput(ms, message=f"{full:,} of {n:,} declined rows get {k} adverse reasons "
                                   f"(sample of {d.n_sample:,} rows)", details=details)


@check("explain.reason_stability", family="explain",
       title="Stable adverse-action reasons", requires=("model", "reference"),
       params=(*REASONS, "noise"))
def reason_stability(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Share of declined rows whose top-k reasons are unchanged under tiny input noise."""
    d = declines(ctx, spec)
    noise = _float_param(spec, "noise", 0.01, 0.0, 10.0)
    n0 = len(d.X)
    if n0 == 0:
        return CheckOutput([Measurement(label="declined rows with unchanged reasons",
                                        value=None, n=0, judged=False,
                                        note=f"no declined row in the sample of "
                                             f"{d.n_sample:,} rows")],
                           message="the model declines no row of the sample")
    rng = np.random.default_rng(seed_param(ctx, spec) + 1)
    X = d.X.copy()
    moved = []
    for f in d.reasons.features:
        col = X[f]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            x = col.astype(float)
            sd = float(np.nanstd(x))
            if sd > 0:
                X[f] = x + rng.normal(0.0, noise * sd, len(x))
                moved.append(f)
    after = compute_reasons(d.score_of, X, d.reasons.reference, d.reasons.k,
                            features=d.reasons.features,
                            min_contribution=d.reasons.min_contribution)
    still = ~_is(np.asarray(ctx.model.predict(X)), ctx.roles.positive_label)
    same = np.array([a == b for a, b in zip(d.reasons.top_sets(), after.top_sets(),
                                            strict=True)])
    n = int(still.sum())
    k_same = int((same & still).sum())
    note = (f"noise of {noise:g} sd on {len(moved)} numeric input(s); {n:,} of {n0:,} declined "
            f"rows still declined (sample of {d.n_sample:,} rows)")
    m = Measurement(label=f"declined rows with the same top {d.reasons.k} reasons",
                    value=k_same / n if n else None,
                    ci=wilson_interval(k_same, n, _confidence(ctx)), n=n, note=note,
                    judged=n > 0)
    changed = pd.Series([f for a, b, keep in zip(d.reasons.top_sets(), after.top_sets(),
                                                  still, strict=True)
                         if keep and a != b for f in a ^ b])
    extra = [Measurement(label=f"reason that changes: {f}", value=c / max(n, 1), n=n,
                         judged=False, note="share of declined rows where it enters or "
                                            "leaves the top reasons")
             for f, c in changed.value_counts().head(5).items()]
    return CheckOutput([m, *extra], message=f"{k_same:,} of {n:,} declined rows keep their "
                                            f"top {d.reasons.k} reasons under {noise:g} sd "
                                            f"noise (sample of {d.n_sample:,} rows)",
                       details={"sample_rows": d.n_sample, "declined": n0, "noise": noise})
