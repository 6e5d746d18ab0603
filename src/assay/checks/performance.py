"""Performance and calibration checks: one check per metric, ``performance.<metric>``.

Classification: ``performance.accuracy``, ``balanced_accuracy``, ``precision``,
``recall``, ``tpr``, ``fpr``, ``fnr``, ``tnr``, ``selection_rate``,
``base_rate``, ``f1``; with scores: ``roc_auc``, ``average_precision``,
``log_loss``, ``brier``, ``ece``, ``mean_score``, ``calibration_in_the_large``.
Regression: ``performance.mae``, ``rmse``, ``mse``, ``r2``, ``mean_error``.

Parameters: ``by`` (optional) a sensitive feature, a list of features (their
intersection) or a list of such lists; adds one measurement per group, judged like
the overall value; groups below the policy's ``min_group_size`` are reported
but not judged. Every classification measurement carries a bootstrap
interval (policy ``bootstrap`` settings), so ``judge: interval`` works; so
does every regression measurement (:class:`assay.metrics.bootstrap.RegressionBootstrap`).

    - id: performance.roc_auc
      threshold: {min: 0.75}
      judge: interval
      params: {by: [sex]}

All checks read one shared statistic of the evaluation data
(:func:`clf_stats`), computed in a single streaming pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from assay.checks.base import CheckContext, CheckOutput, CheckSpec, Measurement, SkipCheck, check
from assay.errors import PolicyError
from assay.metrics import context
from assay.metrics._formulas import COUNT_METRICS, FORMULAS, SCORE_METRICS
from assay.metrics.classification import ClassificationStats
from assay.metrics.frame import SEP, group_label
from assay.metrics.regression import REGRESSION_METRICS, RegressionStats

TITLES = {
    "accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy",
    "precision": "Precision (positive predictive value)", "recall": "Recall",
    "tpr": "True positive rate", "fpr": "False positive rate", "fnr": "False negative rate",
    "tnr": "True negative rate (specificity)", "selection_rate": "Selection rate",
    "base_rate": "Base rate (share of positives)", "f1": "F1 score", "roc_auc": "ROC AUC",
    "average_precision": "Average precision", "log_loss": "Log loss", "brier": "Brier score",
    "ece": "Expected calibration error", "mean_score": "Mean score",
    "calibration_in_the_large": "Calibration in the large (mean score - positive rate)",
    "mae": "Mean absolute error", "rmse": "Root mean squared error",
    "mse": "Mean squared error", "r2": "R squared", "mean_error": "Mean error (bias)",
}


def clf_stats(ctx: CheckContext) -> ClassificationStats:
    """The evaluation data's classification statistic (one pass, cached per certification)."""
    return context.classification_stats(ctx)


def reg_stats(ctx: CheckContext) -> RegressionStats:
    """The evaluation data's regression statistic (one pass, cached per certification)."""
    return context.regression_stats(ctx)


def _where(spec: CheckSpec) -> str:
    return spec.id + (f" ({spec.source})" if spec.source else "")


def parse_by(spec: CheckSpec, sensitive: Sequence[str], *, default_each: bool = False
             ) -> list[list[str]]:
    """``by`` as a list of groupings, each a list of features.

    ``sex`` is one feature; ``[sex, race]`` and ``"sex x race"`` are the
    intersection of both; ``[[sex], [race], [sex, race]]`` is several
    groupings. Without ``by``: each sensitive feature alone when
    ``default_each``, else no grouping.
    """
    by = spec.params.get("by")
    if by is None:
        return [[s] for s in sensitive] if default_each else []
    if isinstance(by, str):
        items: list[Any] = [by]
    elif isinstance(by, list | tuple) and by and all(isinstance(x, str) for x in by):
        items = [list(by)]
    elif isinstance(by, list | tuple) and by:
        items = list(by)
    else:
        raise PolicyError(f"{_where(spec)}: params.by: expected a feature name or a list of "
                          f"feature names, got {by!r}")
    out = []
    for item in items:
        if isinstance(item, str):
            group = [p.strip() for p in item.split(SEP)]
        elif isinstance(item, list | tuple) and item and all(isinstance(x, str) for x in item):
            group = list(item)
        else:
            raise PolicyError(f"{_where(spec)}: params.by: expected feature names, got {item!r}")
        for f in group:
            if f not in sensitive:
                known = ", ".join(sensitive) or "none were given"
                raise PolicyError(f"{_where(spec)}: params.by: '{f}' is not a sensitive "
                                  f"feature (sensitive features: {known})")
        if len(set(group)) != len(group):
            raise PolicyError(f"{_where(spec)}: params.by: a feature is listed twice in {item!r}")
        out.append(group)
    return out


def _classification(ctx: CheckContext, spec: CheckSpec, metric: str) -> CheckOutput:
    if getattr(ctx.roles, "task", "classification") == "multiclass":
        return _on_multiclass(ctx, spec, metric)
    if getattr(ctx.roles, "task", "classification") != "classification":
        raise SkipCheck(f"not run: {metric} is a classification metric and the task is "
                        f"{ctx.roles.task}")
    stats = clf_stats(ctx)
    if metric in SCORE_METRICS and not stats.has_score:
        raise SkipCheck("not run: needs scores (a score column or a model with "
                        "predict_proba), which were not given")
    cfg = context.settings_of(ctx)
    boot = context.shared_bootstrap(ctx)
    groupings = parse_by(spec, list(stats.names))
    out: list[Measurement] = []
    for by in [None, *groupings]:
        parts, n, labels = stats.parts(by)
        values = FORMULAS[metric](parts)
        cis = boot.interval(boot.replicates([metric], by)[metric]) if boot is not None else None
        for i in range(len(n)):
            if by is not None and n[i] == 0:
                continue
            judged = by is None or bool(n[i] >= cfg.min_group_size)
            label = "overall" if by is None else group_label(by, labels[i])
            ci = _ci(cis[i]) if cis is not None else None
            note = None if judged else f"fewer than {cfg.min_group_size} rows: reported, not judged"
            out.append(Measurement(label=label, value=_f(values[i]), ci=ci, n=int(n[i]),
                                   judged=judged, note=note))
    details: dict[str, Any] = {"metric": metric}
    if metric in ("roc_auc", "average_precision"):
        details["exact"] = stats.auc_exact()
        details["auc_error_bound"] = _f(stats.auc_error_bound())
    if metric == "ece":
        details["reliability"] = stats.reliability_curve(10)
    if boot is not None:
        details["interval"] = (f"bootstrap percentile, {boot.n_boot} replicates, "
                               f"confidence {boot.confidence:g}")
    return CheckOutput(measurements=out, details=details)


#: What a binary performance check judges on a multiclass task (``docs/multiclass.md``).
MULTICLASS_COUNTERPART = {
    "accuracy": "accuracy", "balanced_accuracy": "balanced_accuracy",
    "precision": "macro_precision", "recall": "macro_recall", "f1": "macro_f1",
    "log_loss": "log_loss", "roc_auc": "roc_auc_ovr", "ece": "top_label_ece",
}


def _on_multiclass(ctx: CheckContext, spec: CheckSpec, metric: str) -> CheckOutput:
    """The multiclass counterpart of ``metric`` (the registered ``multiclass.*`` check), or
    a skip with the reason when the metric needs one positive class."""
    from assay.checks.base import REGISTRY

    target = MULTICLASS_COUNTERPART.get(metric)
    if target is None:
        raise SkipCheck(f"not run: {metric} is defined for two classes (one positive class "
                        "and a decision threshold); on a multiclass task use the multiclass "
                        "checks (multiclass.class_recall, class_precision, ...) instead")
    defn = REGISTRY.get(f"multiclass.{target}")
    if defn is None:
        raise SkipCheck(f"not run: the multiclass check multiclass.{target} is not available")
    out = defn.fn(ctx, spec)
    if isinstance(out, list):
        out = CheckOutput(measurements=out)
    out.details["binary_check_on_multiclass"] = (f"performance.{metric} judged as "
                                                 f"multiclass.{target}")
    return out


def _regression(ctx: CheckContext, spec: CheckSpec, metric: str) -> CheckOutput:
    if getattr(ctx.roles, "task", "classification") != "regression":
        raise SkipCheck(f"not run: {metric} is a regression metric and the task is "
                        f"{getattr(ctx.roles, 'task', 'classification')}")
    stats = reg_stats(ctx)
    cfg = context.settings_of(ctx)
    boot = context.shared_regression_bootstrap(ctx)
    out: list[Measurement] = []
    for by in [None, *parse_by(spec, list(stats.names))]:
        rows, w, mean, m2, labels = stats.groups(by)
        values = stats._metrics(w, mean, m2)[metric]
        iv = boot.interval(boot.replicates([metric], by)[metric]) if boot is not None else \
            stats.intervals(by, cfg.confidence).get(metric)
        for i in range(len(rows)):
            if by is not None and rows[i] == 0:
                continue
            judged = by is None or bool(rows[i] >= cfg.min_group_size)
            label = "overall" if by is None else group_label(by, labels[i])
            out.append(Measurement(
                label=label, value=_f(values[i]), ci=_ci(iv[i]) if iv is not None else None,
                n=int(rows[i]), judged=judged,
                note=None if judged else f"fewer than {cfg.min_group_size} rows: reported, "
                                         "not judged"))
    details: dict[str, Any] = {"metric": metric}
    if boot is not None:
        details["interval"] = (f"bootstrap percentile, {boot.n_boot} replicates, "
                               f"confidence {boot.confidence:g}")
        share = stats.target_spread_in_bins()
        if metric == "r2" and share > 0.05:
            details["interval_note"] = (f"{share:.0%} of the target's spread lies within the "
                                        "bootstrap bins: the R2 interval is too narrow")
    return CheckOutput(measurements=out, details=details)


def _f(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _ci(pair: np.ndarray) -> tuple[float, float] | None:
    lo, hi = float(pair[0]), float(pair[1])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return (lo, hi)


def _register_classification(metric: str) -> None:
    requires = ("target", "prediction", "score") if metric in SCORE_METRICS else \
        ("target", "prediction")

    def run(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
        return _classification(ctx, spec, metric)

    run.__doc__ = f"{TITLES[metric]}, overall and per group of ``by``, with a bootstrap interval."
    check(f"performance.{metric}", family="performance", title=TITLES[metric],
          requires=requires, params=("by",))(run)


def _register_regression(metric: str) -> None:
    def run(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
        return _regression(ctx, spec, metric)

    run.__doc__ = f"{TITLES[metric]} of a regression model, overall and per group of ``by``."
    check(f"performance.{metric}", family="performance", title=TITLES[metric],
          requires=("target", "prediction"), params=("by",))(run)


for _m in (*COUNT_METRICS, *SCORE_METRICS):
    _register_classification(_m)
for _m in REGRESSION_METRICS:
    _register_regression(_m)


@check("performance.metric", family="performance", title="Performance metric",
       requires=("target", "prediction"), params=("metric", "by"))
def performance_metric(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Any performance metric named by ``params.metric`` (e.g. ``roc_auc``, ``mae``)."""
    from assay.errors import InputError
    from assay.metrics.classification import resolve_metric
    from assay.metrics.regression import resolve_regression_metric

    name = spec.params.get("metric")
    if not isinstance(name, str):
        raise PolicyError(f"{_where(spec)}: params.metric: expected a metric name such as "
                          f"'roc_auc', got {name!r}")
    task = getattr(ctx.roles, "task", "classification")
    try:
        if task == "regression":
            return _regression(ctx, spec, resolve_regression_metric(name))
        return _classification(ctx, spec, resolve_metric(name))
    except InputError as exc:
        if "unknown" in str(exc):
            raise PolicyError(f"{_where(spec)}: params.metric: {exc}") from None
        raise
