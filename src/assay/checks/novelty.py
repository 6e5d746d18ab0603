"""Out-of-distribution rows: evaluation rows unlike anything in the training data.

``integrity.out_of_distribution`` fits the k-nearest-neighbour novelty score of
:mod:`assay.metrics.novelty` on a seeded sample of the reference (training)
data (half to fit, half to calibrate the 99th percentile out of sample) and
reports the share of a seeded sample of the evaluation rows beyond it, with a
Wilson interval. Rows drawn from the training distribution give about 1%.

Suggested threshold: max 0.05 judged on the interval (five times what
in-distribution data gives).
"""

from __future__ import annotations

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
    where,
)
from assay.checks.integrity import SAMPLE_ROWS as INTEGRITY_SAMPLE_ROWS
from assay.checks.integrity import _features as integrity_features
from assay.checks.integrity import _sample as integrity_sample
from assay.errors import InputError
from assay.metrics._formulas import wilson_interval
from assay.metrics.novelty import MIN_CALIBRATION, NoveltyScorer, fit_novelty
from assay.metrics.profile import NUMERIC, column_kind

#: Reference rows sampled to fit (half) and calibrate (half) the score.
REFERENCE_ROWS = 4_000
#: Evaluation rows sampled and scored.
SAMPLE_ROWS = 10_000
NEIGHBOURS = 5
MAX_CATEGORIES = 20


def _feature_kinds(ctx: CheckContext, spec: CheckSpec) -> tuple[list[str], list[str]]:
    ev, ref = ctx.evaluation, ctx.reference
    cols = spec.params.get("columns")
    if cols is None:
        cols = [c for c in ctx.roles.feature_columns(ev.column_names) if c in ref.column_names]
    else:
        if isinstance(cols, str):
            cols = [cols]
        for name, ds in (("evaluation", ev), ("reference", ref)):
            missing = [c for c in cols if c not in ds.column_names]
            if missing:
                raise InputError(f"{ds.name}: column(s) {', '.join(map(repr, missing))} named "
                                 f"by {where(spec)} are not in the {name} data")
    numeric, categorical = [], []
    for c in cols:
        kinds = {column_kind(ev.schema.field(c).type), column_kind(ref.schema.field(c).type)}
        (numeric if kinds == {NUMERIC} else categorical).append(c)
    return numeric, categorical


def _evaluation_sample(ctx: CheckContext, spec: CheckSpec, cols: list[str], n: int,
                       seed: int) -> Any:
    """A seeded uniform sample of ``n`` evaluation rows of ``cols``.

    Drawn from the sample the leakage screen reads (``integrity.target_leakage``: 50,000
    rows of the features and the target, cached for the certification) when that one is
    large enough: a seeded subset of a uniform sample is a uniform sample, and the data
    is then read once for both checks.
    """
    ev = ctx.evaluation
    target = ctx.roles.target
    feats = [c for c in integrity_features(ctx) if c != target]
    shared_ok = (spec.params.get("columns") is None and target is not None
                 and target in ev.column_names and set(cols) <= set(feats)
                 and n <= min(INTEGRITY_SAMPLE_ROWS, int(ev.num_rows)))
    if not shared_ok:
        return ev.sample(n, seed=seed + 1, columns=cols)
    shared = integrity_sample(ctx, CheckSpec(id=spec.id, params={"seed": seed}),
                              [*feats, target])
    if len(shared) < n:
        return ev.sample(n, seed=seed + 1, columns=cols)
    pick = np.sort(np.random.default_rng(seed + 1).choice(len(shared), n, replace=False))
    return shared.iloc[pick][cols].reset_index(drop=True)


def _histogram(cal: list[float], scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Shares of reference (calibration) and evaluation scores in 20 common bins."""
    top = max(float(np.quantile(scores, 0.995)) if scores.size else 0.0,
              cal[-1] if cal else 0.0, threshold) * 1.05 or 1.0
    edges = np.linspace(0.0, top, 21)
    ev = np.histogram(np.minimum(scores, top), bins=edges)[0]
    # the calibration scores are kept as 101 quantiles: each stands for 1% of the rows
    rf = np.histogram(np.minimum(np.asarray(cal), top), bins=edges)[0]
    return {"edges": [float(e) for e in edges],
            "evaluation": [float(v) for v in ev / max(ev.sum(), 1)],
            "reference": [float(v) for v in rf / max(rf.sum(), 1)],
            "threshold": threshold}


@check("integrity.out_of_distribution", family="integrity",
       title="Out-of-distribution rows",
       requires=("reference",),
       params=("sample_rows", "reference_rows", "k", "columns", "max_categories", "seed"))
def out_of_distribution(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Share of evaluation rows beyond the training data's 99th percentile of a k-NN score.

    About 1% for rows drawn from the training distribution (docs/operational-and-ood.md).
    """
    if ctx.reference is None:
        raise SkipCheck("no reference (training) data was given: the novelty score is fitted "
                        "on it")
    n_sample = int_param(spec, "sample_rows", SAMPLE_ROWS)
    n_ref = int_param(spec, "reference_rows", REFERENCE_ROWS, low=2 * MIN_CALIBRATION + 2)
    k = int_param(spec, "k", NEIGHBOURS)
    max_cat = int_param(spec, "max_categories", MAX_CATEGORIES)
    seed = seed_param(ctx, spec)
    numeric, categorical = _feature_kinds(ctx, spec)
    if not numeric and not categorical:
        raise SkipCheck("no feature column in both the evaluation and the reference data")
    cols = [*numeric, *categorical]
    ref_df = ctx.reference.sample(n_ref, seed=seed, columns=cols)
    if len(ref_df) < 2 * MIN_CALIBRATION + 2:
        raise SkipCheck(f"the reference data has {len(ref_df)} rows; the novelty score needs "
                        f"at least {2 * MIN_CALIBRATION + 2} (half to fit, half to calibrate "
                        "its 99th percentile)")
    scorer: NoveltyScorer = fit_novelty(ref_df, numeric=numeric, categorical=categorical, k=k,
                                        seed=seed, max_categories=max_cat)
    ev_df = _evaluation_sample(ctx, spec, cols, n_sample, seed)
    scores = scorer.score(ev_df)
    novel = scores > scorer.threshold
    n, hits = int(scores.size), int(novel.sum())
    total = int(ctx.evaluation.num_rows)
    confidence = float(getattr(getattr(ctx.settings, "bootstrap", None), "confidence", 0.95))
    sampled = (f"seeded sample of {n:,} of {total:,} evaluation rows" if n < total
               else f"all {n:,} evaluation rows")
    note = (f"{sampled}; {k}-NN score fitted on {scorer.fit_rows:,} training rows, "
            f"99th percentile calibrated on {scorer.calibration_rows:,} others; "
            f"expected 0.01 for in-distribution data")
    m = Measurement(label="out-of-distribution rows", value=hits / n if n else None,
                    ci=wilson_interval(hits, n, confidence), n=n, note=note, judged=n > 0)
    # what sets the novel rows apart: their mean |z| per number, their share of values
    # the training sample lacks per category
    far: dict[str, float] = {}
    unseen: dict[str, float] = {}
    if hits:
        X = ev_df[novel]
        for i, c in enumerate(numeric):
            z = np.abs((np.asarray(X[c], dtype=float) - scorer.means[i]) / scorer.stds[i])
            far[c] = float(np.nanmean(z)) if np.isfinite(z).any() else 0.0
        for c in categorical:
            known = set(scorer.categorical[c]) | set(scorer.rare[c] or [])
            unseen[c] = float(np.mean([str(v) not in known for v in X[c].astype(str)]))
    details: dict[str, Any] = {
        "method": f"mean distance to the {k} nearest training rows (standardised numbers, "
                  "one-hot categories)",
        "threshold": scorer.threshold, "expected_share": scorer.expected_share,
        "novel_rows": hits, "sample_rows": n, "evaluation_rows": total,
        "fit_rows": scorer.fit_rows, "calibration_rows": scorer.calibration_rows,
        "numeric_features": numeric, "categorical_features": categorical,
        "score_histogram": _histogram(scorer.calibration_scores, scores, scorer.threshold),
    }
    if far:
        details["novel_rows_mean_abs_z"] = dict(sorted(far.items(), key=lambda kv: -kv[1])[:10])
    if unseen:
        details["novel_rows_unseen_share"] = dict(sorted(unseen.items(),
                                                         key=lambda kv: -kv[1])[:10])
    message = (f"{hits:,} of {n:,} sampled evaluation rows ({hits / max(n, 1):.2%}) lie beyond "
               f"the training data's 99th percentile of the novelty score (1% expected)")
    return CheckOutput(measurements=[m], message=message, details=details)
