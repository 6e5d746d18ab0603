"""Privacy checks: personal data among the columns, re-identification risk,
membership inference and data minimisation (see ``docs/privacy.md``).

* ``privacy.pii_columns``: direct identifiers (e-mail, phone, national ids
  with their check digits, IBAN, payment cards, dates of birth, person
  names) and quasi-identifiers (age, postcode, sex, ...) in the evaluation
  and the training data, by column name and by the values of a seeded
  sample. Judged: how many direct identifiers the model reads as features.
  Results name columns and kinds, never a value.
* ``privacy.k_anonymity`` / ``privacy.l_diversity``: the smallest
  equivalence class over the quasi-identifiers (k) and the fewest distinct
  values of the sensitive column within a class (l), with the share of rows
  in classes below ``k`` / ``l``.
* ``privacy.membership_inference``: AUC of a loss-threshold attack telling
  training rows (members) from evaluation rows (non-members), with a DeLong
  interval.
* ``privacy.data_minimisation``: features whose permutation importance is
  indistinguishable from zero.

Every check runs on a seeded uniform sample whose size is a parameter
(``sample_rows``) and says its size in the notes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

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
from assay.data.identifiers import pii_columns as find_pii
from assay.errors import AssayError, PolicyError

PII_SAMPLE = 5_000
CLASS_SAMPLE = 100_000
ATTACK_SAMPLE = 5_000
IMPORTANCE_SAMPLE = 2_000


def _float_param(spec: CheckSpec, name: str, default: float, low: float, high: float) -> float:
    v = spec.params.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int | float) or not low <= v <= high:
        raise PolicyError(f"{where(spec)}: parameter '{name}': expected a number between "
                          f"{low:g} and {high:g}, got {v!r}")
    return float(v)


def _choice(spec: CheckSpec, name: str, options: tuple[str, ...]) -> str:
    v = spec.params.get(name, options[0])
    if v is None:
        return options[0]
    if v not in options:
        raise PolicyError(f"{where(spec)}: parameter '{name}': expected one of "
                          f"{', '.join(options)}, got {v!r}")
    return str(v)


def _names(spec: CheckSpec, name: str) -> list[str] | None:
    v = spec.params.get(name)
    if v is None:
        return None
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
        raise PolicyError(f"{where(spec)}: parameter '{name}': expected a list of column "
                          f"names, got {v!r}")
    return list(v)


def _model_features(ctx: CheckContext) -> list[str]:
    feats = ctx.roles.feature_columns(ctx.evaluation.column_names)
    return list(ctx.model.input_columns(feats)) if ctx.model is not None else feats


def _sampled(ds: Any, n: int) -> str:
    total = ds.num_rows
    return (f"all {total:,} rows" if n >= total
            else f"a seeded sample of {n:,} of {total:,} rows")


# --------------------------------------------------------------------------- PII


def _pii(ctx: CheckContext, n: int, seed: int) -> dict[str, list[Any]]:
    def build() -> dict[str, list[Any]]:
        out = {"evaluation": find_pii(ctx.evaluation, sample_rows=n, seed=seed)}
        if ctx.reference is not None:
            out["training"] = find_pii(ctx.reference, sample_rows=n, seed=seed)
        return out

    return ctx.cached(f"privacy.pii:{n}:{seed}", build)


@check("privacy.pii_columns", family="privacy", title="Personal data among the columns",
       params=("sample_rows", "seed"))
def pii_columns(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Direct and quasi-identifiers by column name and values; judged: direct ones as features.

    Reports column names and kinds, never values."""
    n = int_param(spec, "sample_rows", PII_SAMPLE)
    seed = seed_param(ctx, spec)
    found = _pii(ctx, n, seed)
    feats = set(_model_features(ctx))
    roles = ctx.roles
    role_of = {c: r for r, c in (("target", roles.target), ("prediction", roles.prediction),
                                 ("score", roles.score), ("weight", roles.weight)) if c}
    rows: list[dict[str, str]] = []
    for data, findings in found.items():
        for f in findings:
            if f.column in feats:
                role = "model feature"
            elif f.column in role_of:
                role = role_of[f.column]
            elif f.column in roles.excluded:
                role = "left out of the features (identifier-like)"
            else:
                role = "not a feature"
            rows.append({"data": data, **f.to_dict(), "role": role})
    direct_feats = sorted({r["column"] for r in rows
                           if r["category"] == "direct" and r["role"] == "model feature"})
    direct = sorted({r["column"] for r in rows if r["category"] == "direct"})
    quasi = sorted({r["column"] for r in rows if r["category"] == "quasi"})
    scanned = "; ".join(f"{d} data: {_sampled(ds, n)}" for d, ds in
                        (("evaluation", ctx.evaluation), ("training", ctx.reference))
                        if ds is not None)
    ms = [
        Measurement("identifiers among features", float(len(direct_feats)),
                    note=(", ".join(direct_feats) or "none") + f" (values scanned in {scanned})"),
        Measurement("identifiers in the data", float(len(direct)), judged=False,
                    note=", ".join(direct) or "none"),
        Measurement("quasi-identifiers in the data", float(len(quasi)), judged=False,
                    note=", ".join(quasi) or "none"),
    ]
    if direct_feats:
        msg = (f"{len(direct_feats)} direct identifier(s) used as model features: "
               f"{', '.join(direct_feats)}; remove them from the model's inputs")
    elif direct:
        msg = (f"direct identifier(s) found but not used as features: {', '.join(direct)}")
    else:
        msg = "no direct identifier found"
    if quasi:
        msg += f"; quasi-identifier(s): {', '.join(quasi)}"
    return CheckOutput(ms, message=msg, details={
        "columns": rows, "sample_rows": n,
        "table": {"columns": ["data", "column", "kind", "category", "found_by", "role"],
                  "rows": [[r[k] for k in ("data", "column", "kind", "category", "found_by",
                                           "role")] for r in rows]}})


# --------------------------------------------------------------------------- k-anonymity


def _quasi_identifiers(ctx: CheckContext, spec: CheckSpec, ds: Any) -> list[str]:
    declared = _names(spec, "quasi_identifiers")
    if declared is not None:
        missing = [c for c in declared if c not in ds.column_names]
        if missing:
            raise PolicyError(f"{where(spec)}: parameter 'quasi_identifiers': "
                              f"{', '.join(missing)} not in {ds.name} (columns: "
                              f"{', '.join(ds.column_names[:20])})")
        return declared
    seed = seed_param(ctx, spec)
    found = [f for f in _pii(ctx, PII_SAMPLE, seed)["evaluation"]
             if f.category == "quasi" or f.kind == "date of birth"]
    return [f.column for f in found if f.column in ds.column_names]


def _codes(s: pd.Series) -> np.ndarray:
    """Integer codes of a column's values, missing values one more code."""
    codes, _ = pd.factorize(s, use_na_sentinel=True)
    return codes.astype(np.int64) + 1


def _combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense codes of the pairs ``(a, b)``."""
    key = a * (int(b.max()) + 1) + b
    return np.unique(key, return_inverse=True)[1].astype(np.int64)


def _generalise(df: pd.DataFrame, qis: list[str], bins: int,
                dob: set[str]) -> tuple[np.ndarray, list[str]]:
    """Equivalence class of each row over the quasi-identifiers: dates of birth as years,
    numbers with more than ``bins`` distinct values in ``bins`` quantile ranges (said in the
    returned notes), other values as they are; a missing value is a value of its own."""
    said = []
    classes = np.zeros(len(df), dtype=np.int64)
    for c in qis:
        s = df[c]
        if c in dob or pd.api.types.is_datetime64_any_dtype(s):
            if not pd.api.types.is_datetime64_any_dtype(s):
                s = s.astype("string")
            s = pd.to_datetime(s, errors="coerce").dt.year.astype("Float64")
            said.append(f"{c}: year")
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) \
                and s.nunique(dropna=True) > bins:
            s = pd.qcut(s.astype(float), q=bins, duplicates="drop", labels=False)
            said.append(f"{c}: {bins} quantile ranges")
        classes = _combine(classes, _codes(s))
    return classes, said


def _classes(ctx: CheckContext, spec: CheckSpec, sensitive: bool) -> dict[str, Any]:
    n = int_param(spec, "sample_rows", CLASS_SAMPLE)
    seed = seed_param(ctx, spec)
    bins = int_param(spec, "bins", 10, low=2)
    which = _choice(spec, "data", ("evaluation", "training"))
    ds = ctx.evaluation if which == "evaluation" else ctx.reference
    if ds is None:
        raise SkipCheck("no training data was given (parameter data: training)")
    qis = _quasi_identifiers(ctx, spec, ds)
    if not qis:
        raise SkipCheck("no quasi-identifier declared (parameter quasi_identifiers) or found "
                        "by column name (age, date of birth, postcode, sex, ...)")
    col = None
    if sensitive:
        col = spec.params.get("sensitive_column") or ctx.roles.target
        if not col or col not in ds.column_names:
            raise SkipCheck("no sensitive column: give parameter sensitive_column or a target "
                            f"present in the {which} data")
        if col in qis:
            raise PolicyError(f"{where(spec)}: the sensitive column {col!r} is also a "
                              "quasi-identifier")
    cols = [*qis, *([col] if col else [])]
    df = ds.sample(n, seed=seed, columns=cols)
    dob = {f.column for f in _pii(ctx, PII_SAMPLE, seed)["evaluation"]
           if f.kind == "date of birth"}
    codes, said = _generalise(df, qis, bins, dob)
    sizes = np.bincount(codes)
    out: dict[str, Any] = {"qis": qis, "said": said, "codes": codes, "sizes": sizes,
                           "n": len(df), "scope": f"{which} data, {_sampled(ds, n)}"}
    if col:
        sens = _codes(df[col])
        pairs = np.unique(codes * (int(sens.max()) + 1) + sens)
        out["distinct"] = np.bincount(pairs // (int(sens.max()) + 1), minlength=len(sizes))
        out["sensitive"] = col
    return out


def _class_output(spec: CheckSpec, info: dict[str, Any], per_class: np.ndarray, what: str,
                  limit: int, name: str) -> CheckOutput:
    measure = _choice(spec, "measure", (what, f"share_below_{what}"))
    sizes = info["sizes"]
    below = float(sizes[per_class < limit].sum() / info["n"]) if info["n"] else 0.0
    gen = "; generalised: " + ", ".join(info["said"]) if info["said"] else ""
    scope = (f"over {', '.join(info['qis'])}{gen}; {info['scope']}, {len(sizes):,} classes")
    ms = [Measurement(f"smallest {name}", float(per_class.min()), n=info["n"],
                      judged=measure == what, note=scope),
          Measurement(f"share of rows with {what} < {limit}", below, n=info["n"],
                      judged=measure != what)]
    hist = np.bincount(np.minimum(per_class, limit), weights=sizes, minlength=limit + 1)
    details = {"quasi_identifiers": info["qis"], "generalised": info["said"],
               "classes": len(sizes), "rows": int(info["n"]), what: int(per_class.min()),
               "limit": limit,
               "rows_by_class_" + what: {(f">= {limit}" if v == limit else str(v)): int(h)
                                         for v, h in enumerate(hist) if h and v > 0}}
    msg = (f"{name} {int(per_class.min())} over {', '.join(info['qis'])}; {below:.1%} of rows "
           f"in classes with {what} < {limit} ({info['scope']}{gen})")
    return CheckOutput(ms, message=msg, details=details)


@check("privacy.k_anonymity", family="privacy", title="k-anonymity over quasi-identifiers",
       params=("quasi_identifiers", "bins", "k", "measure", "data", "sample_rows", "seed"))
def k_anonymity(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Smallest class of rows sharing their quasi-identifiers (k), share of rows below k."""
    info = _classes(ctx, spec, sensitive=False)
    return _class_output(spec, info, info["sizes"], "k", int_param(spec, "k", 5), "k")


@check("privacy.l_diversity", family="privacy",
       title="l-diversity of the sensitive column within classes",
       params=("quasi_identifiers", "bins", "l", "measure", "data", "sample_rows", "seed",
               "sensitive_column"))
def l_diversity(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Fewest distinct sensitive values (default: target) within a class (l), rows below l."""
    info = _classes(ctx, spec, sensitive=True)
    out = _class_output(spec, info, info["distinct"], "l", int_param(spec, "l", 2), "l")
    out.details["sensitive_column"] = info["sensitive"]
    out.message += f"; sensitive column {info['sensitive']}"
    return out


# --------------------------------------------------------------------------- membership


def delong_auc(members: np.ndarray, others: np.ndarray,
               confidence: float = 0.95) -> tuple[float, tuple[float, float], float]:
    """AUC of ``members`` scored above ``others`` (ties count 1/2), its DeLong interval and
    standard error (DeLong, DeLong & Clarke-Pearson 1988, with midranks)."""
    m, n = len(members), len(others)
    both = np.concatenate([members, others])
    r_all = stats.rankdata(both)
    v10 = (r_all[:m] - stats.rankdata(members)) / n
    v01 = 1.0 - (r_all[m:] - stats.rankdata(others)) / m
    auc = float(v10.mean())
    var = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n
    se = float(np.sqrt(max(var, 0.0)))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    return auc, (max(0.0, auc - z * se), min(1.0, auc + z * se)), se


def _attack_scores(ctx: CheckContext, X: pd.DataFrame, y: np.ndarray,
                   attack: str) -> tuple[np.ndarray, str]:
    """Membership score per row: higher means "more likely a training row"."""
    from assay.metrics.importance import row_losses

    model = ctx.model
    if ctx.roles.task == "regression":
        return -row_losses(model, X, y, "squared_error"), "negative squared error"
    if not model.has_proba:
        return -row_losses(model, X, y, "accuracy"), "correct decision (no predict_proba)"
    if attack == "confidence":
        classes = model.classes or []
        top = np.max(np.column_stack([model.predict_proba(X, positive_label=c)
                                      for c in classes]), axis=1)
        return top, "highest class probability"
    return -row_losses(model, X, y, "log_loss"), "negative log loss"


@check("privacy.membership_inference", family="privacy",
       title="Membership inference attack AUC", requires=("model", "reference", "target"),
       params=("attack", "sample_rows", "seed", "confidence"))
def membership_inference(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """AUC of a loss-threshold attack telling training rows from evaluation rows (0.5: none).

    Members and non-members are balanced seeded samples of ``sample_rows`` each."""
    if ctx.model is None:
        raise SkipCheck("no model was given")
    if ctx.reference is None:
        raise SkipCheck("no training data was given (the members of the attack)")
    target = ctx.roles.target
    if target is None:
        raise SkipCheck("no target column: the attack compares the model's loss on labelled rows")
    if target not in ctx.reference.column_names:
        raise SkipCheck(f"the training data has no target column {target!r}: the attack "
                        "needs labelled training rows")
    attack = _choice(spec, "attack", ("loss", "confidence"))
    n = int_param(spec, "sample_rows", ATTACK_SAMPLE, low=10)
    seed = seed_param(ctx, spec)
    conf = _float_param(spec, "confidence", 0.95, 0.5, 0.999)
    inputs = _model_features(ctx)
    missing = [c for c in inputs if c not in ctx.reference.column_names]
    if missing:
        raise SkipCheck(f"the training data lacks model input(s) {', '.join(missing[:10])}")
    cols = list(dict.fromkeys([*inputs, target]))
    k = min(n, ctx.reference.num_rows, ctx.evaluation.num_rows)
    members = ctx.reference.sample(k, seed=seed, columns=cols).dropna(subset=[target])
    others = ctx.evaluation.sample(k, seed=seed + 1, columns=cols).dropna(subset=[target])
    k = min(len(members), len(others))
    if k < 10:
        raise SkipCheck(f"too few labelled rows for the attack: {k} per side (need 10)")
    rng = np.random.default_rng(seed)
    members = members.iloc[np.sort(rng.choice(len(members), k, replace=False))]
    others = others.iloc[np.sort(rng.choice(len(others), k, replace=False))]
    try:
        s_in, how = _attack_scores(ctx, members[inputs], members[target].to_numpy(), attack)
        s_out, _ = _attack_scores(ctx, others[inputs], others[target].to_numpy(), attack)
    except AssayError as exc:
        raise SkipCheck(f"the model could not score the rows: {exc}") from None
    auc, ci, se = delong_auc(s_in, s_out, conf)
    # the attack's ROC curve, thinned to at most 200 points for the report
    thresholds = np.unique(np.concatenate([s_in, s_out]))[::-1]
    if len(thresholds) > 200:
        thresholds = thresholds[np.linspace(0, len(thresholds) - 1, 200).astype(int)]
    tpr = [0.0, *[float((s_in >= t).mean()) for t in thresholds], 1.0]
    fpr = [0.0, *[float((s_out >= t).mean()) for t in thresholds], 1.0]
    note = (f"{k:,} training rows (members) against {k:,} evaluation rows (non-members), "
            f"seeded samples; attack score: {how}; DeLong {conf:.0%} interval")
    m = Measurement("attack AUC", auc, ci=ci, n=2 * k, note=note)
    gap = float(np.mean(-s_in) - np.mean(-s_out)) if attack == "loss" else None
    msg = (f"attack AUC {auc:.3f} (CI {ci[0]:.3f} to {ci[1]:.3f}) on {k:,} members and {k:,} "
           f"non-members; 0.5 means the model's outputs do not reveal membership")
    return CheckOutput([m], message=msg, details={
        "attack": attack, "score": how, "members": k, "non_members": k, "auc": auc,
        "se": se, "roc": {"fpr": fpr, "tpr": tpr},
        **({"mean_loss_gap": -gap} if gap is not None else {}),
        "assumptions": "the evaluation rows were not used in training and come from the "
                       "same population as the training rows"})


# --------------------------------------------------------------------------- minimisation


@check("privacy.data_minimisation", family="privacy", title="Features the model does not use",
       requires=("model", "target"),
       params=("metric", "n_repeats", "replicates", "sample_rows", "seed", "confidence"))
def data_minimisation(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Features whose permutation importance interval includes zero: data without a use."""
    from assay.metrics.importance import LOSSES, permutation_importance

    if ctx.model is None:
        raise SkipCheck("no model was given")
    target = ctx.roles.target
    if target is None:
        raise SkipCheck("no target column: importance is a loss increase against the labels")
    regression = ctx.roles.task == "regression"
    default = "squared_error" if regression else "accuracy"
    metric = spec.params.get("metric") or default
    if metric not in LOSSES:
        raise PolicyError(f"{where(spec)}: parameter 'metric': expected one of "
                          f"{', '.join(LOSSES)}, got {metric!r}")
    repeats = int_param(spec, "n_repeats", 5)
    replicates = int_param(spec, "replicates", 200)
    n = int_param(spec, "sample_rows", IMPORTANCE_SAMPLE, low=10)
    seed = seed_param(ctx, spec)
    conf = _float_param(spec, "confidence", 0.95, 0.5, 0.999)
    inputs = _model_features(ctx)
    df = ctx.evaluation.sample(n, seed=seed, columns=list(dict.fromkeys([*inputs, target])))
    df = df.dropna(subset=[target]).reset_index(drop=True)
    if len(df) < 10:
        raise SkipCheck(f"too few labelled rows: {len(df)}")
    try:
        imp = permutation_importance(ctx.model, df[inputs], df[target].to_numpy(), metric,
                                     repeats, np.random.default_rng(seed), n_boot=replicates,
                                     confidence=conf)
    except AssayError as exc:
        raise SkipCheck(f"the model could not be scored on permuted inputs: {exc}") from None
    unused = imp.unused()
    scope = (f"{_sampled(ctx.evaluation, n)}, {repeats} permutations per feature, loss "
             f"{metric}, {conf:.0%} bootstrap intervals ({replicates} replicates)")
    ms = [Measurement("unused features", float(len(unused)),
                      n=len(df), note=(", ".join(unused) or "none") + f"; {scope}")]
    for f in imp.features:
        ms.append(Measurement(f"{f}", imp.mean[f], ci=imp.ci[f], n=imp.n, judged=False,
                              note="interval includes zero: not shown to be used"
                              if imp.indistinguishable_from_zero(f) else None))
    msg = (f"{len(unused)} of {len(imp.features)} features indistinguishable from unused: "
           f"{', '.join(unused)}" if unused else
           f"every one of the {len(imp.features)} features is used by the model")
    return CheckOutput(ms, message=msg + f" ({scope})", details={
        "unused": unused, "metric": metric, "n_repeats": repeats, "replicates": replicates,
        "rows": len(df), "importance": imp.rows()})
