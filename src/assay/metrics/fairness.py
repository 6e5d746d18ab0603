"""Fairness metrics for one sensitive feature or an intersection of several.

Each fairness metric compares a base metric (selection rate, TPR, ...)
between groups, in one of two named conventions:

``fairlearn`` (between groups)
    difference = largest minus smallest group value (>= 0); ratio = smallest
    over largest (<= 1). For equalized odds, the larger of the TPR and FPR
    differences, and the smaller of the TPR and FPR ratios. These match
    ``fairlearn.metrics`` exactly.
``aif360`` (to a reference group)
    difference = group minus reference, signed (negative: the group has the
    lower rate); ratio = group over reference (disparate impact: below 1 the
    group is selected less often than the reference). The headline value is
    the group furthest from the reference (largest absolute difference;
    largest absolute log ratio), and every group's gap is reported with its
    own interval and p-value.

Groups with fewer than ``min_group_size`` rows are reported but take no part
in any difference or ratio. The default reference group is the largest
group.

Significance tests, per gap:

* rates (selection rate, TPR, FPR, FNR, precision, accuracy): the
  two-proportion z-test against the reference group (``aif360``), or the
  chi-squared test of equal rates across all judged groups (``fairlearn``);
  both on unweighted row counts; for equalized odds the smaller of the TPR
  and FPR p-values, doubled (Bonferroni), capped at 1;
* score-based gaps (calibration, ECE, AUC): a bootstrap p-value against the
  reference (``aif360``), none for ``fairlearn``.

Regression (:func:`regression_fairness_report`, ``REGRESSION_FAIRNESS_METRICS``):
gaps in MAE, RMSE, MSE, mean error and R2, in the same two conventions,
with intervals from :class:`assay.metrics.bootstrap.RegressionBootstrap` and
a two-sided bootstrap p-value per gap to the reference group.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from assay.errors import InputError
from assay.metrics import _cells
from assay.metrics._formulas import FORMULAS, SCORE_METRICS
from assay.metrics.frame import SEP, group_name


@dataclass(frozen=True)
class FairnessMetric:
    name: str
    base: tuple[str, ...]  # base metrics compared between groups
    kind: str  # "difference" or "ratio"
    default_convention: str  # "fairlearn" or "aif360"
    description: str


FAIRNESS_METRICS: dict[str, FairnessMetric] = {m.name: m for m in (
    FairnessMetric("demographic_parity_difference", ("selection_rate",), "difference",
                   "fairlearn", "gap in selection rate between groups"),
    FairnessMetric("demographic_parity_ratio", ("selection_rate",), "ratio", "fairlearn",
                   "ratio of selection rates between groups"),
    FairnessMetric("statistical_parity_difference", ("selection_rate",), "difference",
                   "aif360", "selection rate of each group minus the reference group's"),
    FairnessMetric("disparate_impact_ratio", ("selection_rate",), "ratio", "aif360",
                   "selection rate of each group over the reference group's "
                   "(four-fifths rule: >= 0.8)"),
    FairnessMetric("equalized_odds_difference", ("tpr", "fpr"), "difference", "fairlearn",
                   "larger of the TPR gap and the FPR gap"),
    FairnessMetric("equalized_odds_ratio", ("tpr", "fpr"), "ratio", "fairlearn",
                   "smaller of the TPR ratio and the FPR ratio"),
    FairnessMetric("equal_opportunity_difference", ("tpr",), "difference", "fairlearn",
                   "gap in true positive rate"),
    FairnessMetric("equal_opportunity_ratio", ("tpr",), "ratio", "fairlearn",
                   "ratio of true positive rates"),
    FairnessMetric("predictive_parity_difference", ("precision",), "difference", "fairlearn",
                   "gap in precision (positive predictive value)"),
    FairnessMetric("fpr_difference", ("fpr",), "difference", "fairlearn",
                   "gap in false positive rate"),
    FairnessMetric("fnr_difference", ("fnr",), "difference", "fairlearn",
                   "gap in false negative rate"),
    FairnessMetric("accuracy_difference", ("accuracy",), "difference", "fairlearn",
                   "gap in accuracy (equivalently in error rate)"),
    FairnessMetric("calibration_gap", ("calibration_in_the_large",), "difference", "fairlearn",
                   "gap in calibration in the large (mean score minus observed positive rate)"),
    FairnessMetric("ece_difference", ("ece",), "difference", "fairlearn",
                   "gap in expected calibration error"),
    FairnessMetric("roc_auc_difference", ("roc_auc",), "difference", "fairlearn",
                   "gap in ROC AUC"),
)}
CONVENTIONS = ("fairlearn", "aif360")

# rate metric -> (numerator cells, denominator cells) of the (label, pred) table
_RATE_CELLS = {
    "selection_rate": ([(0, 1), (1, 1)], [(0, 0), (0, 1), (1, 0), (1, 1)]),
    "tpr": ([(1, 1)], [(1, 0), (1, 1)]),
    "fnr": ([(1, 0)], [(1, 0), (1, 1)]),
    "fpr": ([(0, 1)], [(0, 0), (0, 1)]),
    "precision": ([(1, 1)], [(0, 1), (1, 1)]),
    "accuracy": ([(0, 0), (1, 1)], [(0, 0), (0, 1), (1, 0), (1, 1)]),
}


def fairness_metric(name: str) -> FairnessMetric:
    try:
        return FAIRNESS_METRICS[name]
    except KeyError:
        raise InputError(f"unknown fairness metric '{name}': expected one of "
                         f"{', '.join(FAIRNESS_METRICS)}") from None


def available_fairness_metrics(has_score: bool) -> list[str]:
    return [m for m, d in FAIRNESS_METRICS.items()
            if has_score or not any(b in SCORE_METRICS for b in d.base)]


def _rate_counts(cm: np.ndarray, base: str) -> tuple[np.ndarray, np.ndarray]:
    num_cells, den_cells = _RATE_CELLS[base]
    num = sum(cm[..., i, j] for i, j in num_cells)
    den = sum(cm[..., i, j] for i, j in den_cells)
    return np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)


def two_proportion_p(x1: float, n1: float, x2: float, n2: float) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (NaN when undefined)."""
    if n1 <= 0 or n2 <= 0:
        return math.nan
    p = (x1 + x2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0 if x1 / n1 == x2 / n2 else 0.0
    z = (x1 / n1 - x2 / n2) / se
    return float(2 * sps.norm.sf(abs(z)))


def homogeneity_p(num: np.ndarray, den: np.ndarray) -> float:
    """Chi-squared test that a rate is equal across groups (NaN when undefined)."""
    keep = den > 0
    num, den = num[keep], den[keep]
    if len(num) < 2:
        return math.nan
    table = np.stack([num, den - num])
    if (table.sum(axis=1) == 0).any():
        return 1.0
    return float(sps.chi2_contingency(table, correction=False)[1])


def _finite(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isfinite(a), a, np.nan)


def _headline(kind: str, convention: str, values: np.ndarray) -> tuple[float, int | None]:
    """Combine per-group values (already gaps or ratios for aif360) into one number."""
    fin = np.isfinite(values)
    if fin.sum() == 0:
        return math.nan, None
    if convention == "fairlearn":
        v = values[fin]
        if len(v) < 2:
            return math.nan, None
        if kind == "difference":
            return float(v.max() - v.min()), None
        return (float(v.min() / v.max()) if v.max() != 0 else math.nan), None
    idx = np.flatnonzero(fin)
    if kind == "difference":
        i = idx[np.argmax(np.abs(values[idx]))]
    else:
        with np.errstate(divide="ignore"):
            dev = np.abs(np.log(np.where(values[idx] > 0, values[idx], 1e-300)))
            i = idx[np.argmax(dev)]
    return float(values[i]), int(i)


def _resolve_groups(n: np.ndarray, labels: Sequence[Any], by: Sequence[str],
                    reference: str | None, min_group_size: int
                    ) -> tuple[np.ndarray, list[str], np.ndarray, str | None, int | None, bool]:
    """The groups present, which are judged, and the reference group.

    Returns ``(present, labels, judged_index, reference, reference_index,
    reference_judged)``. Without an explicit reference the largest judged group
    is the reference; an unknown reference is an InputError naming the groups.
    """
    present = np.flatnonzero(n > 0)
    glabels = [group_name(labels[i]) for i in present]
    judged = n[present] >= min_group_size
    jidx = present[judged]
    if reference is not None and reference not in glabels:
        raise InputError(f"reference group '{reference}' is not among the groups of "
                         f"{SEP.join(by)}: {', '.join(glabels)}")
    if reference is None and len(jidx):
        reference = glabels[int(np.argmax(n[present] * judged))]
    ref_i = int(present[glabels.index(reference)]) if reference is not None else None
    ref_ok = ref_i is not None and bool(n[ref_i] >= min_group_size)
    return present, glabels, jidx, reference, ref_i, ref_ok


def fairness_report(
    stats: Any,
    by: Sequence[str] | str,
    *,
    metrics: Sequence[str] | None = None,
    reference: str | None = None,
    convention: str | None = None,
    min_group_size: int = 0,
    boot: Any = None,
) -> dict[str, Any]:
    """Every requested fairness metric for the groups of ``by``.

    ``convention=None`` uses each metric's default (``FAIRNESS_METRICS``).
    With ``boot`` (an :class:`assay.metrics.bootstrap.Bootstrap` of ``stats``)
    every value carries a percentile interval. Returns
    ``{metric: {"value", "ci", "convention", "reference", "p_value",
    "worst_group", "groups": {group: {"value", "ci", "p_value"}}}}`` plus the
    key ``"_groups"`` describing the groups (n, judged).
    """
    if isinstance(by, str):
        by = [by]
    by = list(by)
    if convention is not None and convention not in CONVENTIONS:
        raise InputError(f"fairness convention '{convention}': expected one of "
                         f"{', '.join(CONVENTIONS)}")
    names = metrics if metrics is not None else available_fairness_metrics(stats.has_score)
    defs = [fairness_metric(m) for m in names]
    for d in defs:
        if any(b in SCORE_METRICS for b in d.base) and not stats.has_score:
            raise InputError(f"fairness metric '{d.name}' needs a score column, and none was given")
    parts, n, labels = stats.parts(by)
    k = len(stats.names)
    axes, _ = _cells.group_axes(stats.names, by)
    counts_cm = _cells.reduce_to_groups(stats.counts, k, axes)
    present, glabels, jidx, reference, ref_i, ref_ok = _resolve_groups(
        n, labels, by, reference, min_group_size)
    out: dict[str, Any] = {"_groups": {g: {"n": int(n[i]), "judged": bool(n[i] >= min_group_size)}
                                       for g, i in zip(glabels, present, strict=True)}}

    bases = sorted({b for d in defs for b in d.base})
    point = {b: FORMULAS[b](parts) for b in bases}
    reps = boot.replicates(bases, by) if boot is not None else {}

    for d in defs:
        conv = convention or d.default_convention
        entry: dict[str, Any] = {"value": math.nan, "ci": None, "convention": conv,
                                 "reference": reference if conv == "aif360" else None,
                                 "p_value": None, "worst_group": None, "groups": {},
                                 "description": d.description}
        out[d.name] = entry
        if len(jidx) < 2 or (conv == "aif360" and not ref_ok):
            entry["note"] = ("fewer than two groups with at least "
                             f"{min_group_size} rows" if len(jidx) < 2 else
                             f"the reference group '{reference}' has fewer than "
                             f"{min_group_size} rows")
            continue
        others = [i for i in jidx if i != ref_i]
        if conv == "fairlearn":
            per_base = [_headline(d.kind, conv, point[b][jidx])[0] for b in d.base]
            value = max(per_base) if d.kind == "difference" else min(per_base)
            entry["value"] = value
            if boot is not None:
                rep_base = []
                for b in d.base:
                    r = reps[b][:, jidx]
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        hi, lo = np.nanmax(r, axis=1), np.nanmin(r, axis=1)
                        rep_base.append(_finite(hi - lo if d.kind == "difference" else lo / hi))
                stacked = np.stack(rep_base)
                rep = stacked.max(axis=0) if d.kind == "difference" else stacked.min(axis=0)
                entry["ci"] = boot.interval(rep[:, None])[0].tolist()
            pv = [homogeneity_p(*[a[jidx] for a in _rate_counts(counts_cm, b)])
                  for b in d.base if b in _RATE_CELLS]
            if pv and len(pv) == len(d.base):
                entry["p_value"] = min(1.0, min(pv) * len(pv))
            if len(d.base) == 1:
                v = point[d.base[0]][jidx]
                if np.isfinite(v).any():
                    entry["min_group"] = group_name(labels[jidx[int(np.nanargmin(v))]])
                    entry["max_group"] = group_name(labels[jidx[int(np.nanargmax(v))]])
            continue
        # aif360: every group against the reference
        gaps = {}
        for b in d.base:
            pb = point[b]
            with np.errstate(all="ignore"):
                gaps[b] = _finite((pb[others] - pb[ref_i]) if d.kind == "difference" else
                                  pb[others] / pb[ref_i])
        # per group: the base with the larger deviation
        combined = np.stack([gaps[b] for b in d.base])
        with np.errstate(divide="ignore"):  # a ratio of 0 is the largest deviation
            dev = np.abs(combined) if d.kind == "difference" else np.abs(np.log(combined))
        dev = np.where(np.isnan(dev), -np.inf, dev)
        pick = np.argmax(dev, axis=0)
        group_vals = combined[pick, np.arange(len(others))]
        value, wi = _headline(d.kind, conv, group_vals)
        entry["value"] = value
        entry["worst_group"] = None if wi is None else group_name(labels[others[wi]])
        rep_group = None
        if boot is not None:
            rg = []
            for bi, b in enumerate(d.base):
                r = reps[b]
                with np.errstate(all="ignore"):
                    g = _finite((r[:, others] - r[:, [ref_i]]) if d.kind == "difference" else
                                r[:, others] / r[:, [ref_i]])
                rg.append(np.where(pick[None, :] == bi, g, np.nan))
            rep_group = np.nansum(np.stack(rg), axis=0) if len(rg) > 1 else rg[0]
            if len(rg) > 1:
                rep_group[np.all(np.isnan(np.stack(rg)), axis=0)] = np.nan
            cis = boot.interval(rep_group)
            if wi is not None:
                entry["ci"] = cis[wi].tolist()
        for j, gi in enumerate(others):
            ge: dict[str, Any] = {"value": float(group_vals[j]), "ci": None, "p_value": None}
            if rep_group is not None:
                ge["ci"] = cis[j].tolist()
            base = d.base[pick[j]]
            if base in _RATE_CELLS:
                num, den = _rate_counts(counts_cm, base)
                p = two_proportion_p(num[gi], den[gi], num[ref_i], den[ref_i])
                ge["p_value"] = min(1.0, p * len(d.base)) if not math.isnan(p) else None
            elif rep_group is not None:
                with np.errstate(all="ignore"):
                    centre = rep_group[:, j] if d.kind == "difference" else \
                        np.log(rep_group[:, j])
                ge["p_value"] = float(boot.p_value(centre[:, None])[0])
            entry["groups"][group_name(labels[gi])] = ge
        if entry["worst_group"] is not None:
            entry["p_value"] = entry["groups"][entry["worst_group"]]["p_value"]
    return out


# ------------------------------------------------------------------------- regression
REGRESSION_FAIRNESS_METRICS: dict[str, FairnessMetric] = {m.name: m for m in (
    FairnessMetric("mae_difference", ("mae",), "difference", "fairlearn",
                   "gap in mean absolute error between groups"),
    FairnessMetric("rmse_difference", ("rmse",), "difference", "fairlearn",
                   "gap in root mean squared error between groups"),
    FairnessMetric("mse_difference", ("mse",), "difference", "fairlearn",
                   "gap in mean squared error between groups"),
    FairnessMetric("mean_error_difference", ("mean_error",), "difference", "fairlearn",
                   "gap in mean error (bias: prediction minus target) between groups"),
    FairnessMetric("r2_difference", ("r2",), "difference", "fairlearn",
                   "gap in R squared between groups"),
)}


def regression_fairness_metric(name: str) -> FairnessMetric:
    try:
        return REGRESSION_FAIRNESS_METRICS[name]
    except KeyError:
        raise InputError(f"unknown regression fairness metric '{name}': expected one of "
                         f"{', '.join(REGRESSION_FAIRNESS_METRICS)}") from None


def regression_fairness_report(
    stats: Any,
    by: Sequence[str] | str,
    *,
    metrics: Sequence[str] | None = None,
    reference: str | None = None,
    convention: str | None = None,
    min_group_size: int = 0,
    boot: Any = None,
) -> dict[str, Any]:
    """Gaps in regression metrics between the groups of ``by``; same shape as
    :func:`fairness_report`.

    ``fairlearn``: largest minus smallest judged group value, with the
    percentile interval of that difference over the replicates (biased
    upward on small groups) and no p-value. ``aif360``: each judged group
    minus the reference group, signed, each with its percentile interval
    and a two-sided bootstrap p-value of "the gap is 0"
    (``2 min(P(rep <= 0), P(rep >= 0))``); the headline is the gap of largest
    magnitude. ``boot`` is a :class:`assay.metrics.bootstrap.RegressionBootstrap`
    of ``stats``; without it there are no intervals or p-values.
    """
    if isinstance(by, str):
        by = [by]
    by = list(by)
    if convention is not None and convention not in CONVENTIONS:
        raise InputError(f"fairness convention '{convention}': expected one of "
                         f"{', '.join(CONVENTIONS)}")
    defs = [regression_fairness_metric(m) for m in (metrics or REGRESSION_FAIRNESS_METRICS)]
    n, w, mean, m2, labels = stats.groups(by)
    vals = stats._metrics(w, mean, m2)
    present, glabels, jidx, reference, ref_i, ref_ok = _resolve_groups(
        n, labels, by, reference, min_group_size)
    out: dict[str, Any] = {"_groups": {g: {"n": int(n[i]), "judged": bool(n[i] >= min_group_size)}
                                       for g, i in zip(glabels, present, strict=True)}}
    bases = sorted({d.base[0] for d in defs})
    reps = boot.replicates(bases, by) if boot is not None else {}
    for d in defs:
        b = d.base[0]
        conv = convention or d.default_convention
        entry: dict[str, Any] = {"value": math.nan, "ci": None, "convention": conv,
                                 "reference": reference if conv == "aif360" else None,
                                 "p_value": None, "worst_group": None, "groups": {},
                                 "description": d.description}
        out[d.name] = entry
        point = _finite(vals[b])
        use = [i for i in jidx if np.isfinite(point[i])]
        if len(use) < 2 or (conv == "aif360" and (not ref_ok or ref_i not in use)):
            entry["note"] = ("fewer than two groups with at least "
                             f"{min_group_size} rows" if len(use) < 2 else
                             f"the reference group '{reference}' has fewer than "
                             f"{min_group_size} rows")
            continue
        if conv == "fairlearn":
            v = point[use]
            entry["value"] = float(v.max() - v.min())
            entry["min_group"] = group_name(labels[use[int(np.argmin(v))]])
            entry["max_group"] = group_name(labels[use[int(np.argmax(v))]])
            if boot is not None:
                r = reps[b][:, use]
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    rep = _finite(np.nanmax(r, axis=1) - np.nanmin(r, axis=1))
                entry["ci"] = boot.interval(rep[:, None])[0].tolist()
            continue
        others = [i for i in use if i != ref_i]
        gaps = point[others] - point[ref_i]
        value, wi = _headline("difference", "aif360", gaps)
        entry["value"] = value
        entry["worst_group"] = None if wi is None else group_name(labels[others[wi]])
        cis = pv = None
        if boot is not None:
            with np.errstate(all="ignore"):
                rg = _finite(reps[b][:, others] - reps[b][:, [ref_i]])
            cis = boot.interval(rg)
            pv = np.where(np.isfinite(rg).sum(axis=0) > 0, boot.p_value(rg), np.nan)
        for j, gi in enumerate(others):
            entry["groups"][group_name(labels[gi])] = {
                "value": float(gaps[j]), "ci": None if cis is None else cis[j].tolist(),
                "p_value": None if pv is None or np.isnan(pv[j]) else float(pv[j])}
        if entry["worst_group"] is not None:
            worst = entry["groups"][entry["worst_group"]]
            entry["ci"], entry["p_value"] = worst["ci"], worst["p_value"]
    return out
