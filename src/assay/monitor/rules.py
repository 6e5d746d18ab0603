"""Measure a monitoring rule on a window's statistics.

Each rule gives :class:`assay.checks.base.Measurement` objects (per feature,
per group, or one overall) that :func:`assay.checks.base.judge` judges on
the point or the interval, exactly as certification checks are judged. A
rule that cannot be measured on a window (no labels yet, no previous window,
no score column) raises :class:`assay.checks.base.SkipCheck` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from assay.checks.base import Measurement, SkipCheck
from assay.metrics import ClassificationStats
from assay.metrics.drift import (
    category_bins,
    compare_feature,
    js_distance,
    js_rows,
    psi,
    psi_rows,
)
from assay.metrics.profile import CATEGORICAL, NUMERIC, OTHER, FeatureStats, Profile
from assay.monitor.estimate import estimate
from assay.monitor.state import WindowState
from assay.policy.monitoring import MonitorRule

#: Metrics for which a lower value is better (a "drop" is then an increase).
LOWER_IS_BETTER = frozenset({"fpr", "brier", "log_loss", "ece"})


@dataclass
class RuleContext:
    """What a rule sees: the window, its neighbours, the reference and the settings."""

    reference: Profile
    current: WindowState
    previous: WindowState | None
    first: WindowState | None
    min_group_size: int
    n_boot: int
    confidence: float
    seed: int
    baseline: dict[str, float]  # certified value per metric


def metric_of(rule: MonitorRule) -> str:
    """The metric a rule judges (shown with its alerts)."""
    rid = rule.spec.id
    if rid.startswith("drift."):
        return str(rule.param("metric", "psi"))
    if rid.startswith(("performance.", "fairness.")):
        return str(rule.param("metric", "roc_auc" if rid != "fairness.gap" else
                              "selection_rate"))
    return {"quality.missing_share": "missing_share",
            "quality.unseen_categories": "unseen_share",
            "quality.out_of_range": "out_of_range_share",
            "quality.schema": "extra_columns", "volume.rows": "rows"}[rid]


def needs_labels(rule: MonitorRule) -> bool:
    """Whether the rule reads the labelled statistics (re-evaluated when labels arrive)."""
    return rule.spec.id == "performance.drop" or (
        rule.spec.id == "fairness.gap" and metric_of(rule) != "selection_rate")


def measure(rule: MonitorRule, ctx: RuleContext) -> list[Measurement]:
    fn = _RULES[rule.spec.id]
    return fn(rule, ctx)


# --------------------------------------------------------------------------- drift


def _features(rule: MonitorRule, ctx: RuleContext, kinds: tuple[str, ...]) -> list[str]:
    wanted = rule.param("features")
    names = list(ctx.reference.features)
    if wanted is not None:
        unknown = [f for f in wanted if f not in ctx.reference.features]
        if unknown:
            raise SkipCheck(f"feature(s) {', '.join(unknown)} are not among the monitored "
                            f"features ({', '.join(names)})")
        names = list(wanted)
    return [f for f in names if ctx.reference.features[f].kind in kinds]


def _counts(ref: FeatureStats, cur: FeatureStats) -> tuple[np.ndarray, np.ndarray]:
    if ref.kind == NUMERIC:
        assert ref.coarse is not None and cur.coarse is not None
        return ref.coarse, cur.coarse
    _, r, c = category_bins(ref, cur)
    return r, c


def _drift(ref: FeatureStats, cur: FeatureStats, metric: str, ctx: RuleContext,
           label: str) -> Measurement:
    if cur.count == 0 or ref.count == 0:
        return Measurement(label=label, value=None, n=cur.count, judged=False,
                           note="no non-missing values in the window or the reference")
    if metric in ("wasserstein", "chi2"):
        out = compare_feature(ref, cur)
        if metric == "wasserstein":
            return Measurement(label=label, value=out["wasserstein_norm"], n=cur.count,
                               note="Wasserstein-1 / reference std (binned)")
        return Measurement(label=label, value=out["chi2_p"], n=cur.count,
                           note="p-value of the chi-squared homogeneity test")
    # PSI and JS on the bins compare_feature uses (the coarse bins, the reference's
    # categories), without computing every other measure it gives
    r, c = _counts(ref, cur)
    value = psi(r, c) if metric == "psi" else js_distance(r, c)
    fn = psi_rows if metric == "psi" else js_rows
    ci = None
    if ctx.n_boot > 0:
        rng = np.random.default_rng(ctx.seed)
        n = int(c.sum())
        draws = rng.multinomial(n, c / n, size=min(ctx.n_boot, 400))
        reps = fn(r, draws)
        alpha = (1 - ctx.confidence) / 2
        lo, hi = np.quantile(reps, [alpha, 1 - alpha])
        ci = (float(min(lo, value)), float(max(hi, value)))
    return Measurement(label=label, value=value, ci=ci, n=cur.count)


def _feature_drift(rule: MonitorRule, ctx: RuleContext) -> list[Measurement]:
    against = rule.param("against", "training")
    if against == "training":
        base = ctx.reference
    else:
        if ctx.previous is None:
            raise SkipCheck("no previous window to compare with")
        base = ctx.previous.profile
    metric = metric_of(rule)
    kinds = (NUMERIC,) if metric == "wasserstein" else (NUMERIC, CATEGORICAL)
    return [_drift(base.features[f], ctx.current.profile.features[f], metric, ctx, f)
            for f in _features(rule, ctx, kinds)]


def _prediction_drift(rule: MonitorRule, ctx: RuleContext) -> list[Measurement]:
    against = rule.param("against", "previous_window")
    base = ctx.previous if against == "previous_window" else ctx.first
    if base is None or base is ctx.current:
        raise SkipCheck(f"no {'previous' if against == 'previous_window' else 'first'} "
                        "window to compare with")
    if ctx.current.scores is None or base.scores is None:
        raise SkipCheck("no scores or predictions in the window")
    if base.scores.kind != ctx.current.scores.kind:
        raise SkipCheck("the window has scores and the one compared with only predictions")
    return [_drift(base.scores, ctx.current.scores, metric_of(rule), ctx,
                   ctx.current.scores.name)]


# --------------------------------------------------------------------------- quality


def _wilson(k: int, n: int, confidence: float) -> tuple[float, float] | None:
    from assay.metrics.intervals import wilson_interval

    return wilson_interval(k, n, confidence)


def _share(label: str, k: int, n: int, ctx: RuleContext) -> Measurement:
    if n == 0:
        return Measurement(label=label, value=None, n=0, judged=False, note="no rows")
    return Measurement(label=label, value=k / n, ci=_wilson(k, n, ctx.confidence), n=n)


def _missing(rule: MonitorRule, ctx: RuleContext) -> list[Measurement]:
    out = []
    for f in _features(rule, ctx, (NUMERIC, CATEGORICAL)):
        st = ctx.current.profile.features[f]
        out.append(_share(f, st.nulls, st.rows, ctx))
    return out


def _unseen(rule: MonitorRule, ctx: RuleContext) -> list[Measurement]:
    out = []
    for f in _features(rule, ctx, (CATEGORICAL,)):
        known = set(ctx.reference.features[f].categories) - {OTHER}
        cur = ctx.current.profile.features[f]
        k = sum(c for cat, c in cur.categories.items() if cat not in known)
        out.append(_share(f, k, cur.count, ctx))
    if not out:
        raise SkipCheck("no categorical features")
    return out


def _out_of_range(rule: MonitorRule, ctx: RuleContext) -> list[Measurement]:
    out = []
    for f in _features(rule, ctx, (NUMERIC,)):
        cur = ctx.current.profile.features[f]
        out.append(_share(f, ctx.current.out_of_range.get(f, 0), cur.count, ctx))
    if not out:
        raise SkipCheck("no numeric features")
    return out


def _schema(rule: MonitorRule, ctx: RuleContext) -> list[Measurement]:
    extra = sorted(ctx.current.extra)
    note = ("columns not in the training data: " + ", ".join(extra)) if extra else ""
    return [Measurement(label="columns", value=float(len(extra)), n=ctx.current.rows,
                        note=note or None)]


def _volume(rule: MonitorRule, ctx: RuleContext) -> list[Measurement]:
    return [Measurement(label="rows", value=float(ctx.current.rows), n=ctx.current.rows)]


# --------------------------------------------------------------------------- performance


def _interval(stats: ClassificationStats, metric: str, by: str | None, ctx: RuleContext
              ) -> np.ndarray | None:
    """Bootstrap replicates of ``metric`` (overall or per group of ``by``)."""
    if ctx.n_boot <= 0:
        return None
    boot = stats.bootstrap(n_boot=ctx.n_boot, seed=ctx.seed, confidence=ctx.confidence)
    return boot.replicates([metric], by)[metric]


def _quantiles(reps: np.ndarray, ctx: RuleContext) -> tuple[float, float] | None:
    reps = reps[np.isfinite(reps)]
    if reps.size < 10:
        return None
    alpha = (1 - ctx.confidence) / 2
    lo, hi = np.quantile(reps, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _baseline(rule: MonitorRule, metric: str, ctx: RuleContext) -> float:
    given = rule.param("baseline")
    if given is not None:
        return float(given)
    if metric in ctx.baseline:
        return ctx.baseline[metric]
    raise SkipCheck(f"no certified value of {metric} to compare with: give the rule a "
                    "'baseline' parameter or certify the version with a "
                    f"performance.{metric} check")


def _performance_drop(rule: MonitorRule, ctx: RuleContext) -> list[Measurement]:
    stats = ctx.current.labeled
    if stats is None or stats.n == 0:
        raise SkipCheck("no labels have arrived for this window yet")
    metric = metric_of(rule)
    base = _baseline(rule, metric, ctx)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    value = float(stats.compute(metric))
    drop = sign * (base - value)
    reps = _interval(stats, metric, None, ctx)
    ci = None
    if reps is not None:
        q = _quantiles(sign * (base - reps[:, 0]), ctx)
        ci = q
    return [Measurement(label=f"{metric} drop from {base:.4g}", value=drop, ci=ci,
                        n=int(stats.n), note=f"{metric} {value:.4g} on {int(stats.n)} "
                                              "labelled rows")]


def _estimated(rule: MonitorRule, ctx: RuleContext) -> list[Measurement]:
    out = ctx.current.outputs
    if out is None or out.hist_n is None or out.n == 0:
        raise SkipCheck("performance estimation needs the model's scores in the window")
    metric = metric_of(rule)
    value, ci = estimate(out, metric, n_boot=ctx.n_boot, seed=ctx.seed,
                         confidence=ctx.confidence)
    return [Measurement(label=f"estimated {metric}", value=value, ci=ci, n=int(out.n),
                        note="CBPE: assumes calibrated scores")]


def _fairness(rule: MonitorRule, ctx: RuleContext) -> list[Measurement]:
    metric = metric_of(rule)
    stats = ctx.current.outputs if metric == "selection_rate" else ctx.current.labeled
    if stats is None or stats.n == 0:
        raise SkipCheck("no labels have arrived for this window yet" if metric !=
                        "selection_rate" else "no predictions in the window")
    names = rule.param("sensitive") or list(stats.names)
    unknown = [n for n in names if n not in stats.names]
    if unknown:
        raise SkipCheck(f"sensitive feature(s) {', '.join(unknown)} were not sent with the "
                        "window (--sensitive)")
    if not names:
        raise SkipCheck("no sensitive features were sent with the window (--sensitive)")
    out: list[Measurement] = []
    for feature in names:
        frame = stats.frame([metric], by=feature)
        values = {_group(g): frame.by_group[g][metric] for g in frame.by_group}
        counts = {_group(g): frame.counts[g] for g in frame.counts}
        big = [g for g in values if counts[g] >= ctx.min_group_size]
        if len(big) < 2:
            for g in values:
                out.append(Measurement(label=f"{feature}={g}", value=None, n=counts[g],
                                       judged=False, note=f"fewer than two groups of at least "
                                                          f"{ctx.min_group_size} rows"))
            continue
        ref = max(big, key=lambda g: (counts[g], g))  # the largest group is the reference
        reps = _interval(stats, metric, feature, ctx)
        _, _, labels = stats.parts(feature)
        index = {_group(lab): i for i, lab in enumerate(labels)}
        for g in sorted(values):
            if g == ref:
                continue
            label = f"{feature}={g} vs {ref}"
            if counts[g] < ctx.min_group_size:
                out.append(Measurement(label=label, value=None, n=counts[g], judged=False,
                                       note=f"group below the minimum size "
                                            f"{ctx.min_group_size}"))
                continue
            gap = abs(values[ref] - values[g])
            ci = None
            if reps is not None:
                q = _quantiles(np.abs(reps[:, index[ref]] - reps[:, index[g]]), ctx)
                ci = None if q is None else (min(q[0], gap), max(q[1], gap))
            out.append(Measurement(label=label, value=gap, ci=ci, n=counts[g],
                                   note=f"{metric} {values[g]:.4g} vs {values[ref]:.4g}"))
    return out


def _group(label: Any) -> str:
    """A group's name from a label that is a name or a 1-tuple of it."""
    return str(label[0]) if isinstance(label, tuple) else str(label)


_RULES: dict[str, Any] = {
    "drift.feature": _feature_drift,
    "drift.prediction": _prediction_drift,
    "quality.missing_share": _missing,
    "quality.unseen_categories": _unseen,
    "quality.out_of_range": _out_of_range,
    "quality.schema": _schema,
    "volume.rows": _volume,
    "performance.drop": _performance_drop,
    "performance.estimated": _estimated,
    "fairness.gap": _fairness,
}
