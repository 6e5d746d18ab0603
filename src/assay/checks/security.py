"""Security checks: the model file, evasion of its decisions, the training labels, and
the red-team exercise recorded for the version.

* ``security.model_file`` reports the scan of the model file that
  :func:`assay.data.load_model` ran before loading it: the format, the file's
  SHA-256, every import it names and those outside the allow-list. A file
  with findings is loaded only when the user trusted it explicitly; the check
  then fails (the finding stays in the evidence).
* ``security.evasion`` is a black-box minimal-change attack: on a seeded
  sample of rows, a greedy coordinate search changes at most
  ``max_features`` inputs, each numeric one by at most ``max_change`` of
  ``max(|value|, sd)``, within the ranges and categories the training data
  shows, never touching ``immutable`` features (protected attributes by
  default), with at most ``query_budget`` rows scored per attacked row, and
  looks for the smallest change that flips the decision.
* ``security.label_noise`` screens the training labels with out-of-fold
  probabilities (confident learning): a row is suspect when the probability
  of its given label is below that class's mean self-confidence while
  another class is above its own.
* ``security.red_team`` judges the red-team findings recorded for the model
  version (:mod:`assay.registry.redteam`).

See docs/security.md.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from assay.errors import AssayError, PolicyError
from assay.metrics.intervals import wilson_interval

EVASION_ROWS = 200
NOISE_ROWS = 5_000
TOP_SUSPECTS = 20


def _confidence(ctx: CheckContext) -> float:
    return float(getattr(getattr(ctx.settings, "bootstrap", None), "confidence", 0.95) or 0.95)


def _number(spec: CheckSpec, name: str, default: float, low: float, high: float) -> float:
    v = spec.params.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not low <= v <= high:
        raise PolicyError(f"{where(spec)}: parameter '{name}': expected a number between "
                          f"{low:g} and {high:g}, got {v!r}")
    return float(v)


def _names(spec: CheckSpec, name: str) -> list[str]:
    v = spec.params.get(name)
    if v is None:
        return []
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise PolicyError(f"{where(spec)}: parameter '{name}': expected a list of names, "
                          f"got {v!r}")
    return list(v)


def _choice(spec: CheckSpec, name: str, default: str, choices: Sequence[str]) -> str:
    v = spec.params.get(name, default)
    if v not in choices:
        raise PolicyError(f"{where(spec)}: parameter '{name}': expected "
                          + " or ".join(f"'{c}'" for c in choices) + f", got {v!r}")
    return str(v)


# --------------------------------------------------------------------------- model file


@check("security.model_file", family="security", title="Model file scanned before loading",
       requires=("model",), params=("allow",))
def model_file(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Imports in the model file outside the allow-list (scanned before it was loaded)."""
    if ctx.model is None:
        raise SkipCheck("no model was given")
    scan = getattr(ctx.model, "scan", None)
    if scan is None:
        path = getattr(ctx.model, "path", None)
        if path is None:
            raise SkipCheck("the model was given as an object in memory: there is no file "
                            "to scan")
        from assay.data.modelfile import scan_model_file

        scan = scan_model_file(path)
    allow = _names(spec, "allow")
    findings = scan.judge(allow)
    if scan.error:
        findings = [*findings, f"<unscannable: {scan.error}>"]
    details = {**scan.to_dict(), "findings": findings, "allow": allow,
               "import_count": len(scan.imports)}
    n = len(findings)
    note = f"{scan.format} file, sha256 {scan.sha256}"
    if scan.trusted and n:
        note += "; loaded only because the user trusted it explicitly"
    ms = [Measurement(label="imports outside the allow-list", value=float(n),
                      n=len(scan.imports), note=note)]
    if n:
        msg = (f"{scan.format} file names {n} import(s) outside the allow-list: "
               + ", ".join(findings[:5]) + (" (loaded because it was trusted)"
                                           if scan.trusted else ""))
    else:
        msg = (f"{scan.format} file (sha256 {scan.sha256[:12]}...): {len(scan.imports)} "
               "distinct import(s), none outside the allow-list")
    return CheckOutput(measurements=ms, message=msg, details=details)


# --------------------------------------------------------------------------- evasion


def _inputs(ctx: CheckContext) -> list[str]:
    return ctx.model.input_columns(ctx.roles.feature_columns(ctx.evaluation.column_names))


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


class _Space:
    """Valid values of each feature, from the training data (else the evaluation data)."""

    def __init__(self, ref: pd.DataFrame, features: list[str], max_change: float,
                 steps: int, max_categories: int) -> None:
        self.numeric: dict[str, tuple[float, float, float, bool]] = {}
        self.categories: dict[str, list[Any]] = {}
        self.max_change = max_change
        self.steps = steps
        for f in features:
            col = ref[f]
            if _is_numeric(col):
                x = col.astype(float).dropna()
                if x.empty:
                    continue
                integer = pd.api.types.is_integer_dtype(col) or bool(
                    np.all(np.equal(np.mod(x, 1), 0)))
                sd = float(x.std(ddof=0))
                self.numeric[f] = (float(x.min()), float(x.max()), sd if sd > 0 else 1.0,
                                   integer)
            else:
                counts = col.dropna().astype(object).value_counts()
                self.categories[f] = list(counts.index[:max_categories])

    def candidates(self, f: str, value: Any, origin: Any) -> list[tuple[Any, float]]:
        """(new value, cost in sd units from the original value) of one feature."""
        if f in self.numeric:
            lo, hi, sd, integer = self.numeric[f]
            o = float(origin) if origin is not None and not pd.isna(origin) else None
            if o is None:
                return []
            bound = self.max_change * max(abs(o), sd)
            out: dict[float, float] = {}
            for k in range(1, self.steps + 1):
                for sign in (-1.0, 1.0):
                    v = o + sign * bound * k / self.steps
                    if integer:
                        v = float(np.round(v))
                    v = min(max(v, lo), hi)
                    if abs(v - o) > bound + 1e-12 or v == float(value):
                        continue
                    out[v] = abs(v - o) / sd
            return list(out.items())
        cats = self.categories.get(f, [])
        return [(c, 0.0 if str(c) == str(origin) else 1.0) for c in cats
                if str(c) != str(value)]


@check("security.evasion", family="security", title="Resistance to minimal-change evasion",
       requires=("model",),
       params=("sample_rows", "seed", "max_features", "max_change", "query_budget",
               "immutable", "steps", "max_categories"))
def evasion(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Share of sampled rows whose decision a small, valid change of a few inputs flips."""
    if ctx.model is None:
        raise SkipCheck("no model was given")
    if ctx.roles.task != "classification":
        raise SkipCheck("evasion is defined for classification models (a decision to flip)")
    n = int_param(spec, "sample_rows", EVASION_ROWS)
    seed = seed_param(ctx, spec)
    max_features = int_param(spec, "max_features", 3)
    max_change = _number(spec, "max_change", 0.2, 0.0, 100.0)
    budget = int_param(spec, "query_budget", 500)
    steps = int_param(spec, "steps", 4)
    max_cats = int_param(spec, "max_categories", 10)
    inputs = _inputs(ctx)
    immutable = list(dict.fromkeys([*ctx.roles.sensitive, *_names(spec, "immutable")]))
    unknown = [f for f in _names(spec, "immutable")
               if f not in inputs and f not in ctx.evaluation.column_names]
    if unknown:
        raise PolicyError(f"{where(spec)}: parameter 'immutable': {', '.join(unknown)} "
                          f"is not a column of the data (inputs: {', '.join(inputs[:20])})")
    mutable = [f for f in inputs if f not in immutable]
    if not mutable:
        raise SkipCheck("every model input is immutable")
    X = ctx.evaluation.sample(n, seed=seed, columns=inputs).reset_index(drop=True)
    if ctx.reference is not None and all(f in ctx.reference.column_names for f in mutable):
        ref = ctx.reference.sample(max(n, 5_000), seed=seed, columns=mutable)
        source = "training data"
    else:
        ref = X[mutable]
        source = "evaluation sample (no training data given)"
    space = _Space(ref, mutable, max_change, steps, max_cats)
    result = _attack(ctx, X, space, mutable, max_features, budget, seed)
    k, rows = result["successes"], len(X)
    ci = wilson_interval(k, rows, _confidence(ctx))
    feats = result["features_changed"]
    l1 = result["l1_sd"]
    med_f = float(np.median(feats)) if feats else None
    med_l1 = float(np.median(l1)) if l1 else None
    note = (f"{rows} sampled rows (seed {seed}); at most {max_features} feature(s), "
            f"{max_change:g} x max(|value|, sd) per numeric feature, {budget} queries per row; "
            f"ranges from the {source}")
    ms = [Measurement(label="evasion success rate", value=k / rows if rows else None, ci=ci,
                      n=rows, note=note),
          Measurement(label="median features changed (successful attacks)", value=med_f,
                      n=k, judged=False),
          Measurement(label="median L1 change in sd units (successful attacks)",
                      value=med_l1, n=k, judged=False)]
    details = {
        "sample_rows": rows, "seed": seed, "max_features": max_features,
        "max_change": max_change, "query_budget": budget, "immutable": immutable,
        "ranges_from": source, "successes": k, "queries": result["queries"],
        "queries_per_row_max": result["queries_max"],
        "features_changed_histogram": {str(i): int(sum(1 for f in feats if f == i))
                                       for i in range(1, max_features + 1)},
        "most_changed_features": dict(sorted(result["by_feature"].items(),
                                             key=lambda kv: -kv[1])[:10]),
        "scored_by": result["scored_by"],
    }
    msg = (f"{k} of {rows} sampled decisions flipped with at most {max_features} valid "
           f"change(s)" + (f"; median {med_f:g} feature(s), L1 {med_l1:.3g} sd" if k else ""))
    return CheckOutput(measurements=ms, message=msg, details=details)


def _attack(ctx: CheckContext, X: pd.DataFrame, space: _Space, mutable: list[str],
            max_features: int, budget: int, seed: int) -> dict[str, Any]:
    """Greedy coordinate search, all rows at once, one feature change per round."""
    model = ctx.model
    rng = np.random.default_rng(seed)
    pos = ctx.roles.positive_label
    proba = model.has_proba

    def score(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if proba:
            return model.predict_and_proba(frame, positive_label=pos)
        p = np.asarray(model.predict(frame))
        return p, np.zeros(len(p))

    try:
        pred0, s0 = score(X)
    except AssayError as exc:
        raise SkipCheck(f"the model could not score the sample: {exc}") from None
    # one array per column (cell lookups in a data frame cost more than the model)
    origin = {f: X[f].to_numpy() for f in X.columns}
    current = {f: (X[f].to_numpy(dtype=float, na_value=np.nan) if f in space.numeric
                   else X[f].to_numpy(dtype=object)).copy() if f in mutable
               else X[f].to_numpy() for f in X.columns}
    cur_score = s0.astype(float).copy()
    changed: list[set[str]] = [set() for _ in range(len(X))]
    cost = np.zeros(len(X))
    used = np.zeros(len(X), dtype=int)
    done = np.zeros(len(X), dtype=bool)
    success_feats: list[int] = []
    success_l1: list[float] = []
    by_feature: dict[str, int] = {}
    # toward the other decision: the positive class's probability goes down for a row
    # decided positive and up otherwise
    sign = np.where(pred0.astype(str) == str(pos), -1.0, 1.0) if proba else np.ones(len(X))

    def spent(f: str, i: int) -> float:
        """The cost (sd units) feature ``f`` of row ``i`` has used so far."""
        if f in space.numeric:
            return abs(float(current[f][i]) - float(origin[f][i])) / space.numeric[f][2]
        return 0.0 if str(current[f][i]) == str(origin[f][i]) else 1.0

    for _ in range(max_features):
        active = [i for i in range(len(X)) if not done[i] and used[i] < budget]
        if not active:
            break
        rows: list[int] = []
        edits: list[tuple[str, Any, float]] = []
        for i in active:
            cand: list[tuple[str, Any, float]] = []
            for f in mutable:
                if f not in changed[i] and len(changed[i]) >= max_features:
                    continue
                prev = spent(f, i)
                cand.extend((f, v, c - prev)
                            for v, c in space.candidates(f, current[f][i], origin[f][i]))
            room = budget - used[i]
            if len(cand) > room:
                keep = rng.choice(len(cand), size=room, replace=False)
                cand = [cand[j] for j in sorted(keep)]
            used[i] += len(cand)
            rows.extend([i] * len(cand))
            edits.extend(cand)
        if not edits:
            break
        rows_a = np.asarray(rows)
        cols = {f: current[f][rows_a].copy() for f in X.columns}
        for col in mutable:
            idx = [j for j, e in enumerate(edits) if e[0] == col]
            if idx:
                cols[col][idx] = [edits[j][1] for j in idx]
        trial = pd.DataFrame(cols, columns=list(X.columns))
        try:
            tp, ts = score(trial)
        except AssayError:
            break
        flipped = tp.astype(str) != pred0[rows_a].astype(str)
        gain = (ts.astype(float) - cur_score[rows_a]) * sign[rows_a]
        starts = np.flatnonzero(np.r_[True, rows_a[1:] != rows_a[:-1]])
        for lo, hi in zip(starts, [*starts[1:], len(rows_a)], strict=True):
            i = int(rows_a[lo])
            sel = np.arange(lo, hi)
            flips = sel[flipped[sel]]
            if len(flips):
                j = int(flips[np.argmin([edits[k][2] for k in flips])])
            else:
                if not proba or gain[sel].max() <= 0:
                    done[i] = True  # no single change helps: give up on this row
                    continue
                j = int(sel[np.argmax(gain[sel])])
            f, v, dc = edits[j]
            current[f][i] = v
            changed[i].add(f)
            cost[i] += dc
            cur_score[i] = float(ts[j])
            if len(flips):
                done[i] = True
                success_feats.append(len(changed[i]))
                success_l1.append(float(cost[i]))
                for g in changed[i]:
                    by_feature[g] = by_feature.get(g, 0) + 1
    return {"successes": len(success_feats), "features_changed": success_feats,
            "l1_sd": success_l1, "queries": int(used.sum()),
            "queries_max": int(used.max()) if len(used) else 0,
            "by_feature": by_feature,
            "scored_by": "predict_proba" if proba else "predict (no scores: one-change flips)"}


# --------------------------------------------------------------------------- label noise


@check("security.label_noise", family="security", title="Suspect training labels",
       requires=("reference",), params=("sample_rows", "seed", "folds", "learner", "top"))
def label_noise(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Share of training rows whose label disagrees with out-of-fold predictions."""
    if ctx.reference is None:
        raise SkipCheck("no training data was given")
    target = ctx.roles.target
    if target is None or target not in ctx.reference.column_names:
        raise SkipCheck(f"the training data has no label column '{target}'")
    n = int_param(spec, "sample_rows", NOISE_ROWS)
    seed = seed_param(ctx, spec)
    folds = int_param(spec, "folds", 5, low=2)
    learner = _choice(spec, "learner", "logistic", ("logistic", "gradient_boosting"))
    top = int_param(spec, "top", TOP_SUSPECTS, low=0)
    if ctx.model is not None:
        feats = [f for f in _inputs(ctx) if f in ctx.reference.column_names]
    else:
        feats = [c for c in ctx.roles.feature_columns(ctx.reference.column_names)
                 if c != target]
    if not feats:
        raise SkipCheck("the training data has none of the model's input columns")
    total = ctx.reference.num_rows
    df = ctx.reference.sample(n, seed=seed, columns=[*feats, target])
    index = _sample_index(total, n, seed)
    keep = df[target].notna().to_numpy()
    df, index = df[keep].reset_index(drop=True), index[keep]
    res = label_issues(df[feats], df[target], folds=folds, learner=learner, seed=seed)
    k, m = int(res["flagged"].sum()), len(df)
    order = np.argsort(-res["margin"][res["flagged"]], kind="stable")
    suspects = index[np.flatnonzero(res["flagged"])[order]][:top]
    per_class = {str(c): {"rows": int(r), "flagged": int(f), "threshold": float(t)}
                 for c, r, f, t in zip(res["classes"], res["rows"], res["flagged_by_class"],
                                       res["thresholds"], strict=True)}
    note = (f"{m} training rows sampled (seed {seed}) of {total}; {folds}-fold out-of-fold "
            f"probabilities of a {learner} model")
    ms = [Measurement(label="share of suspect labels", value=k / m if m else None,
                      ci=wilson_interval(k, m, _confidence(ctx)), n=m, note=note)]
    details = {"sample_rows": m, "training_rows": total, "seed": seed, "folds": folds,
               "learner": learner, "flagged": k, "per_class": per_class,
               "top_suspects": [int(i) for i in suspects],
               "top_suspects_are": "0-based row positions in the training data, most "
                                   "suspect first"}
    msg = f"{k} of {m} sampled training labels are suspect ({k / m:.2%})" if m else \
        "no labelled training rows"
    return CheckOutput(measurements=ms, message=msg, details=details)


def _sample_index(total: int, n: int, seed: int) -> np.ndarray:
    """The row positions :meth:`Dataset.sample` draws (same generator, same order)."""
    if n >= total:
        return np.arange(total)
    from assay.data.dataset import _sample_indices

    return np.asarray(_sample_indices(total, n, np.random.default_rng(seed)))


def label_issues(X: pd.DataFrame, y: pd.Series, *, folds: int = 5, learner: str = "logistic",
                 seed: int = 0) -> dict[str, Any]:
    """Confident-learning screen of labels ``y`` from out-of-fold probabilities.

    Per class ``j`` the threshold ``t_j`` is the mean predicted probability of ``j``
    over the rows labelled ``j``; a row labelled ``i`` is flagged when
    ``p_i < t_i`` and some other class has ``p_j >= t_j``. ``margin`` ranks the
    flagged rows (best other class's probability minus the given label's).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    classes, codes = np.unique(y.astype(str).to_numpy(), return_inverse=True)
    if len(classes) < 2:
        raise SkipCheck("the training labels have a single class")
    counts = np.bincount(codes, minlength=len(classes))
    folds = int(min(folds, counts.min()))
    if folds < 2:
        raise SkipCheck("a class has fewer than two training rows: cannot cross-validate")
    # a column without information (all missing, or one value) is left out: it teaches the
    # learner nothing, and how it would be encoded depends on the file format (an empty CSV
    # column reads as text, the same Parquet column as numbers)
    X = X[[c for c in X.columns if X[c].nunique(dropna=True) > 1]]
    if X.shape[1] == 0:
        raise SkipCheck("no training input varies: nothing to predict the labels from")
    num = [c for c in X.columns if _is_numeric(X[c])]
    cat = [c for c in X.columns if c not in num]
    Xc = X.copy()
    for c in cat:
        Xc[c] = Xc[c].astype(object).where(Xc[c].notna(), "__missing__").astype(str)
    # the encoding learns no labels: fitted once on the sample, outside the folds
    if learner == "logistic":
        pre = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
            ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=5), cat)])
        est: Any = LogisticRegression(max_iter=1000)
    else:
        pre = ColumnTransformer([
            ("num", "passthrough", num),
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                   encoded_missing_value=-1), cat)])
        est = HistGradientBoostingClassifier(
            max_iter=100, random_state=seed,
            categorical_features=list(range(len(num), len(num) + len(cat))) or None)
    Xt = pre.fit_transform(Xc)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    p = cross_val_predict(est, Xt, codes, cv=cv, method="predict_proba")
    rows = np.arange(len(codes))
    thresholds = np.array([p[codes == j, j].mean() for j in range(len(classes))])
    own = p[rows, codes]
    above = p >= thresholds[None, :]
    above[rows, codes] = False
    flagged = (own < thresholds[codes]) & above.any(axis=1)
    others = p.copy()
    others[rows, codes] = -np.inf
    margin = others.max(axis=1) - own
    return {"classes": classes.tolist(), "rows": counts, "thresholds": thresholds,
            "flagged": flagged, "margin": margin, "proba": p, "codes": codes,
            "flagged_by_class": np.bincount(codes[flagged], minlength=len(classes))}


# --------------------------------------------------------------------------- red team

#: Severities of red-team findings, least to most severe.
SEVERITIES = ("low", "medium", "high", "critical")


@check("security.red_team", family="security", title="Red-team findings",
       params=("when_none", "fail_from"))
def red_team(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Open red-team findings at or above the policy's severity whose attack succeeded."""
    when_none = _choice(spec, "when_none", "skip", ("skip", "warn"))
    fail_from = _choice(spec, "fail_from", "high", SEVERITIES)
    findings = getattr(ctx, "red_team", None)
    if not findings:
        reason = ("no red-team exercise recorded"
                  + (" for this model version" if findings is not None else
                     " (certify a registered version, or pass its findings with "
                     "red_team=... / --red-team MODEL@VERSION)"))
        if when_none == "skip":
            raise SkipCheck(reason)
        return CheckOutput(measurements=[Measurement(
            label="open successful findings at or above " + fail_from, value=None,
            note=reason)], message=reason, details={"findings": []})
    level = SEVERITIES.index(fail_from)
    blocking = [f for f in findings
                if f.get("status") == "open" and f.get("outcome") == "succeeded"
                and f.get("severity") in SEVERITIES
                and SEVERITIES.index(f["severity"]) >= level]
    open_ = [f for f in findings if f.get("status") == "open"]
    ms = [Measurement(label=f"open successful findings at or above {fail_from}",
                      value=float(len(blocking)), n=len(findings),
                      note=f"{len(findings)} finding(s) recorded, {len(open_)} open")]
    msg = (f"{len(blocking)} open {fail_from}+ finding(s) whose attack succeeded: "
           + "; ".join(f"#{f.get('id')} {f.get('technique')}" for f in blocking[:5])
           if blocking else f"{len(findings)} red-team finding(s) recorded, none open at "
                            f"{fail_from} severity or above with a successful attack")
    shown = [{k: f.get(k) for k in ("id", "technique", "severity", "outcome", "status",
                                    "recorded_by", "recorded_at", "note", "evidence_digest")}
             for f in findings]
    return CheckOutput(measurements=ms, message=msg,
                       details={"findings": shown, "blocking": [f.get("id") for f in blocking],
                                "fail_from": fail_from})
