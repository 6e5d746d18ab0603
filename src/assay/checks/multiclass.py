"""Multiclass classification checks, ``multiclass.<metric>`` (see ``docs/multiclass.md``).

Count metrics, exact on every row, with the exact multinomial bootstrap of the
per-cell confusion matrices: ``multiclass.accuracy``, ``balanced_accuracy``,
``macro_precision``, ``macro_recall``, ``macro_f1``, ``micro_precision``,
``micro_recall``, ``micro_f1``, ``weighted_precision``, ``weighted_recall``,
``weighted_f1``; per class (one measurement per class, the worst class decides):
``class_precision``, ``class_recall``, ``class_f1``.

Score metrics, exact on a seeded sample of ``sample_rows`` rows (all rows when
fewer), with a row bootstrap of that sample: ``log_loss``, ``roc_auc_ovr``,
``roc_auc_ovo``, ``top_label_ece``, ``classwise_ece`` (``n_bins`` equal-width
bins, as the binary ECE).

The count checks also run on a binary task, read as two classes (``not <positive>``
and ``<positive>``: ``class_recall`` is then the TNR and the TPR); the score
checks skip there (the binary ``performance`` checks measure them).

Parameters: ``by`` as the performance checks (a measurement per group, groups
below ``min_group_size`` reported, not judged); score checks also take
``sample_rows`` (default 100,000) and ``replicates`` (bootstrap replicates of
the sample, default the policy's, at most 200).

The binary checks of the ``performance`` family judge their multiclass
counterpart when the task is multiclass (``accuracy``, ``balanced_accuracy``,
``precision``/``recall``/``f1`` as macro averages, ``log_loss``, ``roc_auc`` as
one-vs-rest macro AUC, ``ece`` as top-label ECE) and skip the threshold-based
ones (TPR, FPR, selection rate ...) with the reason; the ``fairness`` checks run
one-vs-rest for every class (:func:`fairness_per_class`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from assay.checks.base import (
    CheckContext,
    CheckOutput,
    CheckSpec,
    Measurement,
    SkipCheck,
    check,
    int_param,
    seed_param,
)
from assay.checks.performance import parse_by
from assay.metrics import context
from assay.metrics.frame import SEP, group_label
from assay.metrics.multiclass import (
    DEFAULT_SAMPLE_ROWS,
    MC_COUNT_METRICS,
    MC_SCORE_METRICS,
    class_table,
    count_metrics,
    percentile_interval,
    score_point,
    score_replicates,
)
from assay.metrics.multiclass_context import multiclass_data, shared_bootstrap

TITLES = {
    "accuracy": "Accuracy (multiclass)", "balanced_accuracy": "Balanced accuracy (multiclass)",
    "macro_precision": "Macro-averaged precision", "macro_recall": "Macro-averaged recall",
    "macro_f1": "Macro-averaged F1", "micro_precision": "Micro-averaged precision",
    "micro_recall": "Micro-averaged recall", "micro_f1": "Micro-averaged F1",
    "weighted_precision": "Support-weighted precision",
    "weighted_recall": "Support-weighted recall", "weighted_f1": "Support-weighted F1",
    "class_precision": "Precision of each class", "class_recall": "Recall of each class",
    "class_f1": "F1 of each class", "log_loss": "Log loss (multiclass)",
    "roc_auc_ovr": "ROC AUC, one-vs-rest macro", "roc_auc_ovo": "ROC AUC, one-vs-one macro",
    "top_label_ece": "Top-label expected calibration error",
    "classwise_ece": "Classwise expected calibration error",
}
MAX_SCORE_REPLICATES = 200

def _need_multiclass(ctx: CheckContext, what: str, *, binary: bool = True) -> None:
    """Skip unless the task is multiclass (or binary, read as two classes, when
    ``binary``)."""
    task = getattr(ctx.roles, "task", "classification")
    if task == "multiclass" or (binary and task == "classification"):
        return
    if task == "classification":
        raise SkipCheck(f"not run: {what} is computed for a multiclass task; on a binary "
                        "task the performance checks (performance.log_loss, roc_auc, ece) "
                        "measure it")
    raise SkipCheck(f"not run: {what} is a classification metric and the task is {task}")


def _f(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _ci(pair: Any) -> tuple[float, float] | None:
    lo, hi = float(pair[0]), float(pair[1])
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def _small(cfg: Any) -> str:
    return f"fewer than {cfg.min_group_size} rows: reported, not judged"


def count_check(ctx: CheckContext, spec: CheckSpec, metric: str) -> CheckOutput:
    """A count metric overall and per group of ``by``, exact, with the count bootstrap."""
    _need_multiclass(ctx, metric)
    stats, _ = multiclass_data(ctx)
    cfg = context.settings_of(ctx)
    boot = shared_bootstrap(ctx)
    out: list[Measurement] = []
    for by in [None, *parse_by(spec, list(stats.names))]:
        cm, n, labels = stats.table(by)
        values = count_metrics(cm)[metric]
        cis = boot.interval(boot.replicates(by)[metric]) if boot is not None else None
        for i in range(len(n)):
            if by is not None and n[i] == 0:
                continue
            judged = by is None or bool(n[i] >= cfg.min_group_size)
            out.append(Measurement(
                label="overall" if by is None else group_label(by, labels[i]),
                value=_f(values[i]), ci=_ci(cis[i]) if cis is not None else None, n=int(n[i]),
                judged=judged, note=None if judged else _small(cfg)))
    details: dict[str, Any] = {"metric": metric, "classes": list(stats.classes),
                               "exact": True}
    if boot is not None:
        details["interval"] = (f"bootstrap percentile, {boot.n_boot} replicates (multinomial "
                               f"over the confusion matrices), confidence {boot.confidence:g}")
    return CheckOutput(measurements=out, details=details)


def class_check(ctx: CheckContext, spec: CheckSpec, metric: str) -> CheckOutput:
    """One measurement per class (and per group x class with ``by``): the worst decides."""
    _need_multiclass(ctx, f"class_{metric}")
    stats, _ = multiclass_data(ctx)
    cfg = context.settings_of(ctx)
    boot = shared_bootstrap(ctx)
    out: list[Measurement] = []
    for by in [None, *parse_by(spec, list(stats.names))]:
        cm, n, labels = stats.table(by)
        t = class_table(cm)
        cis = (boot.interval(boot.replicates(by)[f"class_{metric}"]) if boot is not None
               else None)
        for i in range(len(n)):
            if by is not None and n[i] == 0:
                continue
            for j, c in enumerate(stats.classes):
                denom = t["support"][i, j] if metric == "recall" else (
                    t["predicted"][i, j] if metric == "precision"
                    else t["support"][i, j] + t["predicted"][i, j])
                big = by is None or bool(n[i] >= cfg.min_group_size)
                judged = big and denom > 0
                note = None
                if not big:
                    note = _small(cfg)
                elif denom == 0:
                    note = ("no rows of this class" if metric != "precision"
                            else "never predicted") + ": reported, not judged"
                base = f"class={c}"
                out.append(Measurement(
                    label=base if by is None else f"{base}{SEP}{group_label(by, labels[i])}",
                    value=_f(t[metric][i, j]) if denom > 0 else None,
                    ci=_ci(cis[i, j]) if (cis is not None and denom > 0) else None,
                    n=int(t["support"][i, j]), judged=judged, note=note))
    details: dict[str, Any] = {"metric": metric, "classes": list(stats.classes),
                               "exact": True, "judged": "each class; the worst class decides"}
    if boot is not None:
        details["interval"] = (f"bootstrap percentile, {boot.n_boot} replicates, "
                               f"confidence {boot.confidence:g}")
    return CheckOutput(measurements=out, details=details)


def score_check(ctx: CheckContext, spec: CheckSpec, metric: str) -> CheckOutput:
    """A score metric on the seeded sample, overall and per group, with a row bootstrap."""
    _need_multiclass(ctx, metric, binary=False)
    sample_rows = int_param(spec, "sample_rows", DEFAULT_SAMPLE_ROWS, low=100)
    n_bins = int_param(spec, "n_bins", 10, low=1)
    if n_bins > 1000 or 1000 % n_bins:
        from assay.checks.base import where
        from assay.errors import PolicyError

        raise PolicyError(f"{where(spec)}: parameter 'n_bins': expected a divisor of 1000 "
                          f"(10, 20, 50, ...), got {n_bins}")
    cfg = context.settings_of(ctx)
    n_boot = int_param(spec, "replicates", min(cfg.replicates, MAX_SCORE_REPLICATES), low=0)
    stats, sample = multiclass_data(ctx, sample_rows)
    if sample is None:
        raise SkipCheck("not run: needs per-class scores (class score columns or a model with "
                        "predict_proba), which were not given")
    groups: list[tuple[str, np.ndarray | None, bool, str | None]] = [("overall", None, True,
                                                                      None)]
    for by in parse_by(spec, list(stats.names)):
        gi, labels = sample.group_index(by)
        for i, lab in enumerate(labels):
            mask = gi == i
            if not mask.any():
                continue
            big = int(mask.sum()) >= cfg.min_group_size
            groups.append((group_label(by, lab), mask, big, None if big else _small(cfg)))
    if metric in ("roc_auc_ovr", "roc_auc_ovo"):
        present = set(np.unique(sample.y).tolist())
        if len(present) < len(stats.classes):
            absent = [c for j, c in enumerate(stats.classes) if j not in present]
            raise SkipCheck(f"not run: ROC AUC needs rows of every class in the score sample; "
                            f"none of {', '.join(absent)}")
    reps = None
    if n_boot >= 10:
        reps = score_replicates(sample, metric, [g[1] for g in groups], n_boot=n_boot,
                                seed=seed_param(ctx, spec), n_bins=n_bins)
        cis = percentile_interval(reps, cfg.confidence)
    sampled = (f"on a seeded sample of {sample.n:,} of {sample.total:,} rows"
               if sample.n < sample.total else f"on all {sample.n:,} rows")
    out: list[Measurement] = []
    for j, (label, mask, judged, note) in enumerate(groups):
        value = score_point(sample, metric, mask, n_bins=n_bins)
        n = sample.n if mask is None else int(mask.sum())
        out.append(Measurement(label=label, value=_f(value),
                               ci=_ci(cis[j]) if reps is not None else None, n=n,
                               judged=judged, note="; ".join(x for x in (note, sampled) if x)))
    details: dict[str, Any] = {"metric": metric, "classes": list(stats.classes),
                               "sample_rows": sample.n, "rows": sample.total,
                               "exact": sample.n == sample.total}
    if metric in ("top_label_ece", "classwise_ece"):
        details["n_bins"] = n_bins
    if reps is not None:
        details["interval"] = (f"row bootstrap of the sample, {n_boot} replicates, percentile, "
                               f"confidence {cfg.confidence:g}")
    return CheckOutput(measurements=out, details=details)


def fairness_per_class(ctx: CheckContext, spec: CheckSpec, name: str,
                       measure: Callable[..., CheckOutput]) -> CheckOutput:
    """A binary fairness check run one-vs-rest for every class: each class in turn is the
    positive class (label and prediction); the measurements of all classes are judged
    together, so the worst class decides. ``measure(stats, boot)`` is the binary check's
    measuring on one class's :class:`ClassificationStats`."""
    from assay.metrics.bootstrap import Bootstrap

    stats, _ = multiclass_data(ctx)
    if not stats.names:
        raise SkipCheck("not run: needs protected attribute columns (sensitive=...), "
                        "which were not given")
    cfg = context.settings_of(ctx)
    out: list[Measurement] = []
    details: dict[str, Any] = {"metric": name, "classes": list(stats.classes),
                               "judged": "one-vs-rest for each class; the worst class decides",
                               "per_class": {}}
    for j, c in enumerate(stats.classes):
        ovr = stats.one_vs_rest(c)
        boot = (Bootstrap(ovr, n_boot=cfg.replicates, seed=cfg.seed + j,
                          confidence=cfg.confidence) if cfg.replicates > 0 else None)
        res = measure(ovr, boot)
        for m in res.measurements:
            m.label = f"class={c}{SEP}{m.label}"
            if m.judged and m.value is None:  # e.g. a ratio 0 / 0: no group has this class
                m.judged = False
                m.note = "; ".join(x for x in (
                    m.note, f"undefined for class {c} (no rows of it, or none predicted, in the "
                            "groups compared): reported, not judged") if x)
            out.append(m)
        details["per_class"][c] = res.details
        if "interval" in res.details:
            details["interval"] = res.details["interval"]
    return CheckOutput(measurements=out, details=details)


def _register_count(metric: str) -> None:
    def run(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
        return count_check(ctx, spec, metric)

    run.__doc__ = f"{TITLES[metric]}, overall and per group of ``by``; exact, bootstrap interval."
    check(f"multiclass.{metric}", family="multiclass", title=TITLES[metric],
          requires=("target", "prediction"), params=("by",))(run)


def _register_class(metric: str) -> None:
    def run(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
        return class_check(ctx, spec, metric)

    run.__doc__ = (f"{TITLES['class_' + metric]} (one-vs-rest), per class and per group of "
                   "``by``; the worst class decides.")
    check(f"multiclass.class_{metric}", family="multiclass", title=TITLES[f"class_{metric}"],
          requires=("target", "prediction"), params=("by",))(run)


def _register_score(metric: str) -> None:
    def run(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
        return score_check(ctx, spec, metric)

    run.__doc__ = (f"{TITLES[metric]}, on a seeded sample of ``sample_rows`` rows, with a row "
                   "bootstrap interval.")
    params = ("by", "sample_rows", "replicates", "seed")
    if metric.endswith("ece"):
        params = (*params, "n_bins")
    check(f"multiclass.{metric}", family="multiclass", title=TITLES[metric],
          requires=("target", "score"), params=params)(run)


for _m in MC_COUNT_METRICS:
    _register_count(_m)
for _m in ("precision", "recall", "f1"):
    _register_class(_m)
for _m in MC_SCORE_METRICS:
    _register_score(_m)
