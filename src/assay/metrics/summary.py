"""The JSON-ready ``metrics`` block of ``results.json``.

:func:`classification_summary` and :func:`regression_summary` turn a
statistic into plain dicts and lists (NaN becomes ``None``) with intervals
for every number that has one. The certification report and the certify
orchestration read this shape; see ``docs/architecture.md``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from assay.errors import InputError
from assay.metrics._formulas import FORMULAS
from assay.metrics.bootstrap import Bootstrap, RegressionBootstrap
from assay.metrics.classification import ClassificationStats
from assay.metrics.fairness import (
    REGRESSION_FAIRNESS_METRICS,
    fairness_report,
    regression_fairness_report,
)
from assay.metrics.frame import SEP, group_name
from assay.metrics.regression import REGRESSION_METRICS, RegressionStats

NOTES_CLASSIFICATION = [
    "Intervals are bootstrap percentile intervals from multinomial resampling of the "
    "statistic's cells; count-based metrics are exact in distribution for the row-level "
    "bootstrap, score-based metrics (ROC AUC, average precision, log loss, Brier, ECE) "
    "are resampled over score histograms coarsened to 100 bins.",
    "fairlearn convention: difference = largest minus smallest group value, ratio = smallest "
    "over largest; its bootstrap interval is biased upward when groups are small. aif360 "
    "convention: signed group minus reference (or group over reference); the headline is the "
    "group furthest from the reference.",
    "p-values: rate gaps use the two-proportion z-test against the reference group (aif360) "
    "or the chi-squared test of equal rates across groups (fairlearn), on unweighted counts; "
    "equalized odds takes the smaller TPR / FPR p-value, doubled; score-based gaps against a "
    "reference use a bootstrap p-value.",
    "ECE: 10 equal-width bins of the score, |mean score - fraction positive| weighted by the "
    "bin's share of rows. Calibration gap: difference between groups of mean score minus "
    "observed positive rate. Undefined values (zero denominators) are null.",
    "ECE is a sum of absolute gaps, so resampling noise inflates it: its bootstrap "
    "interval (and that of ECE differences) sits above the point estimate on small groups.",
]


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def _ci(pair: Any) -> list[float | None] | None:
    if pair is None:
        return None
    lo, hi = _num(pair[0]), _num(pair[1])
    return None if lo is None and hi is None else [lo, hi]


def _clean(obj: Any) -> Any:
    """Recursively make an object JSON-ready (NaN and infinity become None)."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return _num(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def groupings(sensitive: Sequence[str], intersections: bool = True) -> list[list[str]]:
    """Each feature alone, then (with ``intersections``) every pair, then all of them
    when there are three."""
    out = [[s] for s in sensitive]
    if intersections and len(sensitive) >= 2:
        out += [list(p) for p in itertools.combinations(sensitive, 2)]
        if len(sensitive) == 3:
            out.append(list(sensitive))
    return out


def _validate(sensitive: Sequence[str], names: Sequence[str], min_group_size: int) -> None:
    for s in sensitive:
        if s not in names:
            raise InputError(f"sensitive feature '{s}' is not in the statistic "
                             f"(features: {', '.join(names) or 'none'})")
    if not isinstance(min_group_size, int) or min_group_size < 0:
        raise InputError(f"min_group_size: expected a non-negative integer, got {min_group_size!r}")



def _from_context(ctx: Any, expected: type, stats_of: Any, boot_of: Any,
                  sensitive: list[str] | None) -> tuple[Any, Any, list[str], Any]:
    """Statistic, shared bootstrap, sensitive features and settings of a certification.

    The statistic and its replicates are the ones the checks use, so the
    summary and the checks report the same numbers.
    """
    if not hasattr(ctx, "evaluation"):
        raise TypeError(f"expected {expected.__name__} or a certification context, "
                        f"got {type(ctx).__name__}")
    from assay.metrics import context

    sens = list(ctx.roles.sensitive) if sensitive is None else sensitive
    return stats_of(ctx), boot_of(ctx), sens, context.settings_of(ctx)


def classification_summary(
    stats: ClassificationStats | Any,
    *,
    sensitive: Sequence[str] | None = None,
    intersections: bool = True,
    min_group_size: int = 30,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    reference: dict[str, str] | None = None,
    metrics: Sequence[str] | None = None,
    boot: Bootstrap | None = None,
) -> dict[str, Any]:
    """Metrics, groups, fairness, calibration and ROC of a classification statistic.

    ``reference`` maps a feature (or ``"sex x race"``) to its reference group;
    by default the largest group. ``boot`` reuses bootstrap replicates
    already drawn (with the same ``n_boot``, ``seed`` and ``confidence``).

    ``stats`` may also be a certification context (``ctx.evaluation``,
    ``ctx.roles``, ``ctx.settings``): the statistic, the sensitive features,
    the minimum group size and the bootstrap settings then come from it, and
    the statistic and replicates are shared with the checks.
    """
    if not isinstance(stats, ClassificationStats):
        from assay.metrics import context

        stats, boot, sensitive, cfg = _from_context(
            stats, ClassificationStats, context.classification_stats,
            context.shared_bootstrap, sensitive)
        min_group_size, n_boot = cfg.min_group_size, cfg.replicates
        confidence, seed = cfg.confidence, cfg.seed
    sensitive = list(stats.names if sensitive is None else sensitive)
    _validate(sensitive, stats.names, min_group_size)
    reference = dict(reference or {})
    names = stats.metric_names(metrics)
    if boot is None and n_boot > 0:
        boot = Bootstrap(stats, n_boot=n_boot, seed=seed, confidence=confidence)
    notes = list(NOTES_CLASSIFICATION)
    if stats.weighted:
        notes.append("Sample weights were given: metrics are weighted; the bootstrap resamples "
                     "rows and uses each cell's mean weight (exact when weights are constant "
                     "within a cell); group sizes and p-values use unweighted row counts.")
    if stats.has_score:
        if stats.auc_exact():
            notes.append("ROC AUC and average precision are exact: no score bin holds two "
                         "different scores.")
        else:
            notes.append(f"ROC AUC and average precision are computed on {stats.n_bins} score "
                         f"bins; the overall AUC is within {stats.auc_error_bound():.2g} of the "
                         "exact value.")

    def block(by: list[str] | None) -> tuple[dict[str, Any], np.ndarray, list[str]]:
        parts, n, labels = stats.parts(by)
        vals = {m: FORMULAS[m](parts) for m in names}
        cis = {}
        if boot is not None:
            reps = boot.replicates(names, by)
            cis = {m: boot.interval(reps[m]) for m in names}
        out = {m: [{"value": _num(vals[m][i]), "ci": _ci(cis[m][i]) if cis else None}
                   for i in range(len(n))] for m in names}
        return out, n, [group_name(lb) for lb in labels]

    overall_vals, _, _ = block(None)
    result: dict[str, Any] = {
        "task": "classification",
        "n": stats.n,
        "overall": {m: overall_vals[m][0] for m in names},
        "groups": {},
        "fairness": {},
        "calibration": None,
        "roc": None,
        "notes": notes,
    }
    for by in groupings(sensitive, intersections):
        key = SEP.join(by)
        vals, n, labels = block(by)
        groups = {}
        for i, label in enumerate(labels):
            if n[i] == 0:
                continue
            judged = bool(n[i] >= min_group_size)
            groups[label] = {"n": int(n[i]), "judged": judged,
                             "metrics": {m: vals[m][i] for m in names}}
        result["groups"][key] = groups
        small = [g for g, v in groups.items() if not v["judged"]]
        if small:
            notes.append(f"{key}: {len(small)} group(s) below {min_group_size} rows are reported "
                         f"but not judged: {', '.join(small[:10])}"
                         f"{' ...' if len(small) > 10 else ''}")
        fr = fairness_report(stats, by, reference=reference.get(key),
                             min_group_size=min_group_size, boot=boot)
        fr.pop("_groups")
        # every max - min metric also gets its per-group gaps against the reference group,
        # whose intervals have no small-group bias
        pairwise = fairness_report(stats, by, reference=reference.get(key),
                                   min_group_size=min_group_size, boot=boot,
                                   convention="aif360",
                                   metrics=[m for m, e in fr.items()
                                            if e["convention"] == "fairlearn"])
        pairwise.pop("_groups")

        def gaps(e: dict[str, Any]) -> dict[str, Any]:
            return {g: {"value": _num(v["value"]), "ci": _ci(v["ci"]),
                        "p_value": _num(v["p_value"])} for g, v in e["groups"].items()}

        block_f: dict[str, Any] = {}
        for m, e in fr.items():
            entry = {"value": _num(e["value"]), "ci": _ci(e["ci"]),
                     "convention": e["convention"], "reference": e["reference"],
                     "p_value": _num(e["p_value"])}
            if e["groups"]:
                entry["groups"] = gaps(e)
            elif m in pairwise and pairwise[m]["groups"]:
                entry["gaps_to_reference"] = {"reference": pairwise[m]["reference"],
                                              "convention": "aif360",
                                              "groups": gaps(pairwise[m])}
            if "note" in e:
                entry["note"] = e["note"]
            block_f[m] = entry
        result["fairness"][key] = block_f
    if stats.has_score:
        result["calibration"] = stats.reliability_curve(10)
        result["roc"] = stats.roc_curve(200)
    return _clean(result)


NOTES_REGRESSION = [
    "Intervals are bootstrap percentile intervals from multinomial resampling of the "
    "statistic's fine table (cell x error bin x target bin, bins on a signed log grid of "
    "about 1% relative width): exact in distribution for the row-level bootstrap when the "
    "rows of a fine cell share their values, a binned approximation otherwise. Point "
    "estimates are exact.",
    "Mean error is the mean of prediction minus target (positive: over-prediction).",
    "fairlearn convention (<metric>_difference): largest minus smallest group value; its "
    "interval is biased upward when groups are small. aif360 convention (<metric>_gap): "
    "signed group minus reference, the headline is the group furthest from the reference; "
    "each gap has a two-sided bootstrap p-value of no difference.",
]


def _regression_boot(stats: RegressionStats, n_boot: int, seed: int,
                                   confidence: float) -> RegressionBootstrap | None:
    if n_boot <= 0 or stats.fine_key is None:
        return None
    return RegressionBootstrap(stats, n_boot=n_boot, seed=seed, confidence=confidence)


def regression_summary(
    stats: RegressionStats | Any,
    *,
    sensitive: Sequence[str] | None = None,
    intersections: bool = True,
    min_group_size: int = 30,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    reference: dict[str, str] | None = None,
    boot: RegressionBootstrap | None = None,
) -> dict[str, Any]:
    """The ``metrics`` block for a regression: overall, per group and gaps between groups.

    Every metric, overall and per group, carries a bootstrap percentile
    interval (:class:`assay.metrics.bootstrap.RegressionBootstrap`, ``n_boot``
    replicates, seeded; ``n_boot=0``: none). Fairness entries are, per
    metric, ``<metric>_difference`` (``fairlearn``: largest minus smallest
    judged group value, with ``gaps_to_reference``) and ``<metric>_gap``
    (``aif360``: signed gap of each group to the reference group, default
    the largest group, each with an interval and a bootstrap p-value).
    ``stats`` may also be a certification context, as for
    :func:`classification_summary`; the statistic and replicates are then
    shared with the checks.
    """
    if not isinstance(stats, RegressionStats):
        from assay.metrics import context

        stats, boot, sensitive, cfg = _from_context(
            stats, RegressionStats, context.regression_stats,
            context.shared_regression_bootstrap, sensitive)
        min_group_size, n_boot = cfg.min_group_size, cfg.replicates
        confidence, seed = cfg.confidence, cfg.seed
    sensitive = list(stats.names if sensitive is None else sensitive)
    _validate(sensitive, stats.names, min_group_size)
    reference = dict(reference or {})
    names = list(REGRESSION_METRICS)
    if boot is None:
        boot = _regression_boot(stats, n_boot, seed, confidence)
    notes = list(NOTES_REGRESSION)
    if boot is None:
        notes[0] = ("No bootstrap was drawn: intervals of the mean error and MAE use the "
                    "normal approximation of the mean; RMSE, MSE and R2 have none.")
    elif stats.fine_level > 0:
        width = 2 ** (2 ** stats.fine_level / 64) - 1
        notes.append(f"The bootstrap table of {len(stats.fine_key):,} fine cells was coarsened "
                     f"to level {stats.fine_level} to bound its size: error and target bins are "
                     f"about {width:.0%} wide, so rows within that relative distance share a "
                     "value in the resampling (point estimates stay exact).")
    if boot is not None:
        share = stats.target_spread_in_bins()
        if share > 0.05:
            notes.append(f"{share:.0%} of the target's spread lies within the "
                         "bootstrap table's target bins (a target far from 0 relative to its "
                         "spread, or a coarsened table): the R2 intervals are too narrow.")
    if stats.weighted:
        notes.append("Sample weights were given: metrics are weighted; the bootstrap resamples "
                     "rows and uses each fine cell's mean weight (exact when weights are "
                     "constant within a fine cell); group sizes use unweighted row counts.")

    def block(by: list[str] | None
              ) -> tuple[dict[str, list[dict[str, Any]]], np.ndarray, list[str]]:
        rows, w, mean, m2, labels = stats.groups(by)
        vals = stats._metrics(w, mean, m2)
        if boot is not None:
            reps = boot.replicates(names, by)
            iv = {m: boot.interval(reps[m]) for m in names}
        else:
            iv = stats.intervals(by, confidence)
        out = {m: [{"value": _num(vals[m][i]), "ci": _ci(iv[m][i]) if m in iv else None}
                   for i in range(len(rows))] for m in names}
        return out, rows, [group_name(lb) for lb in labels]

    overall, _, _ = block(None)
    result: dict[str, Any] = {"task": "regression", "n": stats.n,
                              "overall": {m: overall[m][0] for m in names},
                              "groups": {}, "fairness": {}, "calibration": None, "roc": None,
                              "notes": notes}

    def gaps(e: dict[str, Any]) -> dict[str, Any]:
        return {g: {"value": _num(v["value"]), "ci": _ci(v["ci"]),
                    "p_value": _num(v["p_value"])} for g, v in e["groups"].items()}

    for by in groupings(sensitive, intersections):
        key = SEP.join(by)
        vals, rows, labels = block(by)
        groups = {labels[i]: {"n": int(rows[i]), "judged": bool(rows[i] >= min_group_size),
                              "metrics": {m: vals[m][i] for m in names}}
                  for i in range(len(labels)) if rows[i] > 0}
        result["groups"][key] = groups
        ref = reference.get(key)
        if ref is not None and ref not in groups:
            raise InputError(f"reference group '{ref}' is not among the groups of {key}: "
                             f"{', '.join(groups)}")
        between = regression_fairness_report(stats, by, reference=ref,
                                             min_group_size=min_group_size, boot=boot,
                                             convention="fairlearn")
        to_ref = regression_fairness_report(stats, by, reference=ref,
                                            min_group_size=min_group_size, boot=boot,
                                            convention="aif360")
        fair: dict[str, Any] = {}
        for name in REGRESSION_FAIRNESS_METRICS:
            e, p = between[name], to_ref[name]
            entry = {"value": _num(e["value"]), "ci": _ci(e["ci"]), "convention": "fairlearn",
                     "reference": None, "p_value": None}
            if p["groups"]:
                entry["gaps_to_reference"] = {"reference": p["reference"],
                                              "convention": "aif360", "groups": gaps(p)}
            if "note" in e:
                entry["note"] = e["note"]
            fair[name] = entry
            if "note" in p and not p["groups"]:
                continue
            fair[name.replace("_difference", "_gap")] = {
                "value": _num(p["value"]), "ci": _ci(p["ci"]), "convention": "aif360",
                "reference": p["reference"], "p_value": _num(p["p_value"]),
                "groups": gaps(p)}
        result["fairness"][key] = fair
    return _clean(result)


__all__ = ["classification_summary", "groupings", "regression_summary"]
