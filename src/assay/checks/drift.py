"""Drift checks: does the evaluation data still look like the reference data?

Every check needs reference data (``SkipCheck`` otherwise) and reads one
shared drift summary (:func:`assay.metrics.drift.drift_summary`), computed
once per certification: the reference is profiled on bins it fixes itself,
the evaluation data on the same bins, both in one streaming pass each.

Parameters shared by every drift check: ``features`` (default: every
feature column present in both data sets), ``bins`` (coarse quantile bins,
10), ``fine_bins`` (100), ``max_categories`` (50). ``drift.share`` also takes
``thresholds`` (see :data:`assay.metrics.drift.DEFAULT_THRESHOLDS`).

Suggested thresholds: ``drift.psi`` max 0.25 (0.1 for a warning tier),
``drift.jensen_shannon`` max 0.1, ``drift.ks`` max 0.1,
``drift.wasserstein`` max 0.1 (reference standard deviations),
``drift.chi2`` min 0.001 (a p-value: at large n it flags trivial shifts;
prefer the effect sizes), ``drift.share`` max 0.2, ``drift.prediction`` max 0.1
(PSI of the model's scores; needs no labels, so it also serves monitoring).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assay.checks.base import CheckContext, CheckOutput, CheckSpec, Measurement, SkipCheck, check
from assay.errors import InputError, PolicyError
from assay.metrics.drift import DEFAULT_THRESHOLDS, MAX_CATEGORIES, drift_summary
from assay.metrics.profile import profile

COMMON = ("features", "bins", "fine_bins", "max_categories")


def _int_param(spec: CheckSpec | None, name: str, default: int, low: int = 2) -> int:
    if spec is None or spec.params.get(name) is None:
        return default
    v = spec.params[name]
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        where = f" ({spec.source})" if spec.source else ""
        raise PolicyError(f"{spec.id}{where}: parameter '{name}': expected an integer >= {low}, "
                          f"got {v!r}")
    return v


def drift_features(ctx: CheckContext, spec: CheckSpec | None = None) -> list[str]:
    """Feature columns compared for drift (present in both data sets)."""
    if ctx.reference is None:
        raise SkipCheck("no reference data was given")
    eval_cols = ctx.evaluation.column_names
    ref_cols = ctx.reference.column_names
    wanted = spec.params.get("features") if spec is not None else None
    if wanted:
        if isinstance(wanted, str):
            wanted = [wanted]
        for c in wanted:
            for ds, cols in ((ctx.evaluation, eval_cols), (ctx.reference, ref_cols)):
                if c not in cols:
                    raise InputError(f"{ds.name}: drift feature {c!r} is not a column")
        return list(wanted)
    feats = ctx.roles.feature_columns(eval_cols)
    return [c for c in feats if c in ref_cols]


def context_drift(ctx: CheckContext, spec: CheckSpec | None = None,
                  thresholds: Mapping[str, float | None] | None = None) -> dict[str, Any]:
    """The drift summary between ``ctx.reference`` and ``ctx.evaluation`` (cached)."""
    feats = drift_features(ctx, spec)
    if not feats:
        raise SkipCheck("no feature column is present in both the reference and the "
                        "evaluation data")
    bins = _int_param(spec, "bins", 10)
    fine = _int_param(spec, "fine_bins", 100)
    max_cat = _int_param(spec, "max_categories", MAX_CATEGORIES, low=1)
    key_p = f"drift.profiles:{','.join(feats)}:{bins}:{fine}"

    def _profiles() -> tuple[Any, Any]:
        ref = profile(ctx.reference, columns=feats, n_bins=bins, fine_bins=fine)
        cur = profile(ctx.evaluation, ref.bins)
        return ref, cur

    ref, cur = ctx.cached(key_p, _profiles)
    th = dict(thresholds or {})
    key = f"drift.summary:{key_p}:{max_cat}:{sorted(th.items())}"
    return ctx.cached(key, lambda: drift_summary(ref, cur, thresholds=th,
                                                 max_categories=max_cat))


def _per_feature(ctx: CheckContext, spec: CheckSpec, measure: str, *, numeric_only: bool = False,
                 note_fn: Any = None) -> CheckOutput:
    summary = context_drift(ctx, spec)
    out: list[Measurement] = []
    for name, f in summary["features"].items():
        if numeric_only and f["kind"] != "numeric":
            continue
        value = f.get(measure)
        note = note_fn(f) if note_fn else None
        if value is None:
            note = f.get("note") or (
                "reference standard deviation is 0" if measure == "wasserstein_norm"
                else "not computed")
        out.append(Measurement(label=name, value=value, n=f["current"]["count"], note=note))
    if not out:
        raise SkipCheck("no numeric feature to compare" if numeric_only else "no feature")
    judged = [m for m in out if m.value is not None]
    worst = max(judged, key=lambda m: m.value, default=None)  # type: ignore[arg-type, return-value]
    if measure == "chi2_p":
        worst = min(judged, key=lambda m: m.value, default=None)  # type: ignore[arg-type, return-value]
    msg = f"largest shift: {worst.label} ({measure} {worst.value:.4g})" if worst else ""
    return CheckOutput(measurements=out, message=msg,
                       details={"n_reference": summary["n_reference"],
                                "n_current": summary["n_current"],
                                "method": summary["method"]})


@check("drift.psi", family="drift", title="Population stability index per feature",
       requires=("reference",), params=COMMON)
def psi_check(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """PSI of each feature, reference vs evaluation data (0.1 / 0.25 conventions)."""
    return _per_feature(ctx, spec, "psi", note_fn=lambda f: f"severity {f['severity']}")


@check("drift.jensen_shannon", family="drift", title="Jensen-Shannon distance per feature",
       requires=("reference",), params=COMMON)
def js_check(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Jensen-Shannon distance (base 2, 0 to 1) of each feature's distribution."""
    return _per_feature(ctx, spec, "js")


@check("drift.ks", family="drift", title="Kolmogorov-Smirnov statistic per numeric feature",
       requires=("reference",), params=COMMON)
def ks_check(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Binned two-sample KS statistic of each numeric feature (p-value in the note)."""
    return _per_feature(ctx, spec, "ks", numeric_only=True,
                        note_fn=lambda f: f"p-value {f['ks_p']:.3g}" if f["ks_p"] is not None
                        else None)


@check("drift.chi2", family="drift", title="Chi-squared test of homogeneity per feature",
       requires=("reference",), params=COMMON)
def chi2_check(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """p-value of the chi-squared homogeneity test on each feature's bins or categories."""
    return _per_feature(ctx, spec, "chi2_p",
                        note_fn=lambda f: f"chi2 {f['chi2']:.4g}, PSI {f['psi']:.3g}"
                        if f.get("chi2") is not None else None)


@check("drift.wasserstein", family="drift", title="Normalised Wasserstein distance per feature",
       requires=("reference",), params=COMMON)
def wasserstein_check(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Wasserstein-1 distance of each numeric feature in reference standard deviations."""
    return _per_feature(ctx, spec, "wasserstein_norm", numeric_only=True)


@check("drift.share", family="drift", title="Share of drifted features",
       requires=("reference",), params=(*COMMON, "thresholds"))
def share_check(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Share of features whose drift effect size reaches its threshold (and is significant)."""
    th = spec.params.get("thresholds") or {}
    where = spec.id + (f" ({spec.source})" if spec.source else "")
    if not isinstance(th, Mapping):
        raise PolicyError(f"{where}: parameter 'thresholds': expected a mapping of "
                          f"{', '.join(DEFAULT_THRESHOLDS)} to numbers, got {th!r}")
    for k, v in th.items():
        if k not in DEFAULT_THRESHOLDS:
            raise PolicyError(f"{where}: parameter 'thresholds': unknown name {k!r}; expected "
                              f"some of {', '.join(DEFAULT_THRESHOLDS)}")
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise PolicyError(f"{where}: parameter 'thresholds': {k} must be a number, "
                              f"got {v!r}")
    summary = context_drift(ctx, spec, thresholds=th)
    drifted = summary["drifted"]
    n = len(summary["features"])
    msg = (f"{len(drifted)} of {n} features drifted: {', '.join(drifted)}" if drifted
           else f"none of {n} features drifted")
    return CheckOutput(
        measurements=[Measurement(label="drifted share", value=summary["drifted_share"], n=n)],
        message=msg,
        details={"drifted": drifted, "thresholds": summary["thresholds"],
                 "features": {k: {m: v.get(m) for m in ("kind", "psi", "js", "ks", "chi2_p",
                                                        "wasserstein_norm", "severity",
                                                        "drifted")}
                              for k, v in summary["features"].items()}})


def _output_profiles(ctx: CheckContext, bins_n: int, fine_n: int) -> tuple[Any, Any, str]:
    """Profiles of the model's score (or decision) on the reference and evaluation data."""
    import pyarrow as pa

    from assay.data import open_dataset
    from assay.metrics.profile import Profile, fit_bins

    if ctx.reference is None:
        raise SkipCheck("no reference data was given")
    roles = ctx.roles
    given = roles.score or roles.prediction
    ref_ds, cur_ds = ctx.reference, ctx.evaluation
    if given and given in ref_ds.column_names and given in cur_ds.column_names:
        ref = profile(ref_ds, columns=[given], n_bins=bins_n, fine_bins=fine_n)
        return ref, profile(cur_ds, ref.bins), given
    model = ctx.model
    if model is None:
        raise SkipCheck("the reference data has no score or prediction column and no model "
                        "was given to score it")
    use_score = model.has_proba and roles.task == "classification"
    out = roles.with_model_outputs(has_score=use_score)
    column = out.score if use_score else out.prediction

    def outputs(ds: Any) -> Any:
        for batch in ds.with_model(model, roles, columns=[]):
            yield batch.select([column])

    # bins from a sample of the reference's outputs, then one streaming pass over each
    n = min(ref_ds.num_rows, 200_000)
    inputs = model.input_columns(roles.feature_columns(ref_ds.column_names))
    sample = ref_ds.sample(n, seed=0, columns=inputs)
    if use_score:
        values = model.predict_proba(sample, positive_label=roles.positive_label)
    else:
        values = model.predict(sample)
    bins = fit_bins(open_dataset(pa.table({column: values})), [column], bins=bins_n,
                    fine_bins=fine_n)
    profiles = []
    for ds in (ref_ds, cur_ds):
        prof = Profile.empty(bins)
        for batch in outputs(ds):
            prof.update_batch(batch)
        profiles.append(prof)
    return profiles[0], profiles[1], column


@check("drift.prediction", family="drift", title="Shift of the model's scores",
       requires=("reference",), params=("bins", "fine_bins", "measure"))
def prediction_drift(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Drift of the model's output (score, else decision) between reference and evaluation
    data; judged on ``measure`` (``psi`` by default, or ``js``, ``ks``, ``wasserstein_norm``).

    Works without labels, so it is the first sign of a change in production."""
    measure = spec.params.get("measure", "psi")
    if measure not in ("psi", "js", "ks", "wasserstein_norm"):
        where = spec.id + (f" ({spec.source})" if spec.source else "")
        raise PolicyError(f"{where}: parameter 'measure': expected psi, js, ks or "
                          f"wasserstein_norm, got {measure!r}")
    bins = _int_param(spec, "bins", 10)
    fine = _int_param(spec, "fine_bins", 100)
    ref, cur, column = ctx.cached(f"drift.prediction:{bins}:{fine}",
                                  lambda: _output_profiles(ctx, bins, fine))
    f = drift_summary(ref, cur)["features"][column]
    value = f.get(measure)
    others = ", ".join(f"{k} {f[k]:.3g}" for k in ("psi", "js", "ks", "wasserstein_norm")
                       if k != measure and f.get(k) is not None)
    m = Measurement(label=f"model output ({column})", value=value, n=f["current"]["count"],
                    note=others or None, judged=value is not None)
    return CheckOutput(measurements=[m], message=f"{measure} of the model's output: "
                       + (f"{value:.4g}" if value is not None else "not defined"),
                       details={"reference": f["reference"], "current": f["current"]})
