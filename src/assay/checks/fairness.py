"""Fairness checks: one check per fairness metric, ``fairness.<metric>``.

``fairness.demographic_parity_difference``, ``demographic_parity_ratio``,
``statistical_parity_difference``, ``disparate_impact_ratio``,
``equalized_odds_difference``, ``equalized_odds_ratio``,
``equal_opportunity_difference``, ``equal_opportunity_ratio``,
``predictive_parity_difference``, ``fpr_difference``, ``fnr_difference``,
``accuracy_difference``; with scores: ``calibration_gap``,
``ece_difference``, ``roc_auc_difference``; for regression:
``mae_difference``, ``rmse_difference``, ``mse_difference``,
``mean_error_difference``, ``r2_difference`` (definitions and conventions:
:mod:`assay.metrics.fairness`).

Parameters:

``by``
    a sensitive feature, a list of features (their intersection) or a list
    of such lists. Default: each sensitive feature separately.
``convention``
    ``fairlearn`` (largest minus smallest group value, or smallest over
    largest: one measurement per grouping) or ``aif360`` (each group against
    the reference group, signed: one measurement per group, so every gap is
    judged with its own interval). Default: the metric's own
    (``aif360`` for ``statistical_parity_difference`` and
    ``disparate_impact_ratio``, ``fairlearn`` otherwise).
``reference``
    the reference (privileged) group, a label (``"Male"``, ``"Male x White"``)
    or a mapping feature -> label. Default: the largest group.

Groups below the policy's ``min_group_size`` take no part and are listed in
the measurement's note. Intervals are bootstrap percentile intervals (policy
``bootstrap`` settings), so ``judge: interval`` works; the interval of a
largest-minus-smallest gap is biased upward on small groups, which is why
``aif360`` per-group gaps are preferred with ``judge: interval``.

    - id: fairness.disparate_impact_ratio
      threshold: {min: 0.8}
      params: {by: race, reference: White}
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from assay.checks.base import CheckContext, CheckOutput, CheckSpec, Measurement, SkipCheck, check
from assay.checks.performance import clf_stats, parse_by
from assay.errors import PolicyError
from assay.metrics import context
from assay.metrics._formulas import SCORE_METRICS
from assay.metrics.fairness import (
    CONVENTIONS,
    FAIRNESS_METRICS,
    REGRESSION_FAIRNESS_METRICS,
    fairness_report,
    regression_fairness_report,
)
from assay.metrics.frame import SEP, group_label


def _where(spec: CheckSpec) -> str:
    return spec.id + (f" ({spec.source})" if spec.source else "")


def _reference(spec: CheckSpec, key: str) -> str | None:
    ref = spec.params.get("reference")
    if ref is None:
        return None
    if isinstance(ref, dict):
        value = ref.get(key)
        return None if value is None else str(value)
    if isinstance(ref, str | int | float | bool):
        return str(ref) if not isinstance(ref, float) or not ref.is_integer() else str(int(ref))
    raise PolicyError(f"{_where(spec)}: params.reference: expected a group label or a mapping "
                      f"feature -> label, got {ref!r}")


def _fmt(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def _run(ctx: CheckContext, spec: CheckSpec, name: str) -> CheckOutput:
    task = getattr(ctx.roles, "task", "classification")
    if task not in ("classification", "multiclass"):
        raise SkipCheck(f"not run: {name} needs a classification task, the task is "
                        f"{ctx.roles.task}")
    defn = FAIRNESS_METRICS[name]
    convention = spec.params.get("convention")
    if convention is not None and convention not in CONVENTIONS:
        raise PolicyError(f"{_where(spec)}: params.convention: expected one of "
                          f"{', '.join(CONVENTIONS)}, got {convention!r}")
    if task == "multiclass":
        return _run_multiclass(ctx, spec, name, defn, convention or defn.default_convention)
    stats = clf_stats(ctx)
    if not stats.names:
        raise SkipCheck("not run: needs protected attribute columns (sensitive=...), "
                        "which were not given")
    if any(b in SCORE_METRICS for b in defn.base) and not stats.has_score:
        raise SkipCheck("not run: needs scores (a score column or a model with predict_proba), "
                        "which were not given")
    cfg = context.settings_of(ctx)
    boot = context.shared_bootstrap(ctx)
    return _measure(spec, name, defn, convention or defn.default_convention, cfg,
                    list(stats.names),
                    lambda by, **kw: fairness_report(stats, by, boot=boot, **kw),
                    fairlearn_p="chi-squared, equal rates", group_p=None)


def _run_multiclass(ctx: CheckContext, spec: CheckSpec, name: str, defn: Any,
                    conv: str) -> CheckOutput:
    """The binary metric one-vs-rest for each class (``assay.checks.multiclass``)."""
    from assay.checks.multiclass import fairness_per_class

    if any(b in SCORE_METRICS for b in defn.base):
        raise SkipCheck(f"not run: {name} compares binary scores; on a multiclass task the "
                        "one-vs-rest fairness checks use decisions only (selection rate, TPR, "
                        "FPR, ...)")
    cfg = context.settings_of(ctx)
    return fairness_per_class(
        ctx, spec, name,
        lambda stats, boot: _measure(spec, name, defn, conv, cfg, list(stats.names),
                                     lambda by, **kw: fairness_report(stats, by, boot=boot, **kw),
                                     fairlearn_p="chi-squared, equal rates", group_p=None))


def _run_regression(ctx: CheckContext, spec: CheckSpec, name: str) -> CheckOutput:
    """A regression group gap (``mae_difference``, ...): one measurement per grouping
    (``fairlearn``) or per group against the reference (``aif360``), each with a bootstrap
    interval; aif360 gaps carry a two-sided bootstrap p-value."""
    if getattr(ctx.roles, "task", "classification") != "regression":
        raise SkipCheck(f"not run: {name} needs a regression task, the task is "
                        f"{getattr(ctx.roles, 'task', 'classification')}")
    defn = REGRESSION_FAIRNESS_METRICS[name]
    convention = spec.params.get("convention")
    if convention is not None and convention not in CONVENTIONS:
        raise PolicyError(f"{_where(spec)}: params.convention: expected one of "
                          f"{', '.join(CONVENTIONS)}, got {convention!r}")
    stats = context.regression_stats(ctx)
    if not stats.names:
        raise SkipCheck("not run: needs protected attribute columns (sensitive=...), "
                        "which were not given")
    cfg = context.settings_of(ctx)
    boot = context.shared_regression_bootstrap(ctx)
    return _measure(spec, name, defn, convention or defn.default_convention, cfg,
                    list(stats.names),
                    lambda by, **kw: regression_fairness_report(stats, by, boot=boot, **kw),
                    fairlearn_p=None, group_p="bootstrap", interval_of=boot)


def _measure(spec: CheckSpec, name: str, defn: Any, conv: str, cfg: Any,
             names: list[str], report: Callable[..., dict[str, Any]], *,
             fairlearn_p: str | None, group_p: str | None,
             interval_of: Any = None) -> CheckOutput:
    """Measurements of one fairness metric for each grouping the spec names.

    ``fairlearn``: one measurement per grouping (max - min or min / max over
    groups); ``aif360``: one per group against the reference group. Groups
    below the minimum size are named in the note and not judged.
    ``fairlearn_p`` and ``group_p`` say how the report's p-values were
    computed; ``interval_of`` is the bootstrap to describe in the details.
    """
    out: list[Measurement] = []
    details: dict[str, Any] = {"metric": name, "convention": conv,
                               "description": defn.description, "groupings": {}}
    for by in parse_by(spec, names, default_each=True):
        key = SEP.join(by)
        rep = report(by, metrics=[name], reference=_reference(spec, key), convention=conv,
                     min_group_size=cfg.min_group_size)
        groups, e = rep["_groups"], rep[name]
        small = [g for g, v in groups.items() if not v["judged"]]
        n_judged = sum(v["n"] for v in groups.values() if v["judged"])
        small_note = (f"not judged (fewer than {cfg.min_group_size} rows): {', '.join(small)}"
                      if small else None)
        details["groupings"][key] = {k: v for k, v in e.items() if k != "description"} | \
            {"group_sizes": groups}
        if "note" in e:
            out.append(Measurement(label=key, value=None, n=n_judged, judged=False,
                                   note="; ".join(x for x in (e["note"], small_note) if x)))
            continue
        if conv == "fairlearn":
            how = "max - min" if defn.kind == "difference" else "min / max"
            extra = f"fairlearn convention ({how} over groups)"
            if e.get("min_group") is not None:
                extra += f"; lowest {e['min_group']}, highest {e['max_group']}"
            if fairlearn_p and e.get("p_value") is not None:
                extra += f"; p = {_fmt(e['p_value'])} ({fairlearn_p})"
            out.append(Measurement(label=key, value=_num(e["value"]), ci=_pair(e["ci"]),
                                   n=n_judged,
                                   note="; ".join(x for x in (extra, small_note) if x)))
            continue
        for g, ge in e["groups"].items():
            i_note = f"aif360 convention: {g} vs reference {e['reference']}"
            if ge["p_value"] is not None:
                i_note += f"; p = {_fmt(ge['p_value'])}" + (f" ({group_p})" if group_p else "")
            out.append(Measurement(label=f"{group_label(by, g)} vs {e['reference']}",
                                   value=_num(ge["value"]), ci=_pair(ge["ci"]),
                                   n=groups[g]["n"] + groups[e["reference"]]["n"],
                                   note="; ".join(x for x in (i_note, small_note) if x)))
    if interval_of is not None:
        details["interval"] = (f"bootstrap percentile, {interval_of.n_boot} replicates, "
                               f"confidence {interval_of.confidence:g}")
    return CheckOutput(measurements=out, details=details)


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _pair(ci: Any) -> tuple[float, float] | None:
    if not ci:
        return None
    lo, hi = ci
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return (float(lo), float(hi))


def _register(name: str) -> None:
    defn = FAIRNESS_METRICS[name]
    requires = ("target", "prediction", "sensitive") + \
        (("score",) if any(b in SCORE_METRICS for b in defn.base) else ())

    def run(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
        return _run(ctx, spec, name)

    title = name.replace("_", " ").capitalize().replace("Fpr", "FPR").replace("Fnr", "FNR") \
        .replace("Roc auc", "ROC AUC").replace("Ece", "ECE")
    run.__doc__ = f"{title}: {defn.description}."
    check(f"fairness.{name}", family="fairness", title=title, requires=requires,
          params=("by", "reference", "convention"))(run)


for _name in FAIRNESS_METRICS:
    _register(_name)


def _register_regression(name: str) -> None:
    defn = REGRESSION_FAIRNESS_METRICS[name]

    def run(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
        return _run_regression(ctx, spec, name)

    title = name.replace("_", " ").capitalize().replace("Mae", "MAE").replace("Rmse", "RMSE") \
        .replace("Mse", "MSE").replace("R2", "R squared")
    run.__doc__ = f"{title} (regression): {defn.description}."
    check(f"fairness.{name}", family="fairness", title=title,
          requires=("target", "prediction", "sensitive"),
          params=("by", "reference", "convention"))(run)


for _name in REGRESSION_FAIRNESS_METRICS:
    _register_regression(_name)


@check("fairness.metric", family="fairness", title="Fairness metric",
       requires=("target", "prediction", "sensitive"),
       params=("metric", "by", "reference", "convention"))
def fairness_metric_check(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Any fairness metric named by ``params.metric`` (e.g. ``equalized_odds_difference``)."""
    name = spec.params.get("metric")
    if name in REGRESSION_FAIRNESS_METRICS:
        return _run_regression(ctx, spec, name)
    if name not in FAIRNESS_METRICS:
        raise PolicyError(f"{_where(spec)}: params.metric: expected one of "
                          f"{', '.join([*FAIRNESS_METRICS, *REGRESSION_FAIRNESS_METRICS])}, "
                          f"got {name!r}")
    return _run(ctx, spec, name)


@check("fairness.disparate_impact", family="fairness", title="Disparate impact ratio",
       requires=("target", "prediction", "sensitive"),
       params=("by", "reference", "convention"))
def disparate_impact(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Selection rate of each group over the reference group's (four-fifths rule)."""
    return _run(ctx, spec, "disparate_impact_ratio")
