"""Is the new model better? Comparisons of two models, paired on the same rows or not.

Two entry points:

* :func:`compare_results`: two ``results.json`` documents of ``assay certify``. For
  every metric both carry (overall and per group) and every check both measured, the
  difference (new - old) with an interval from the two reported intervals. When the
  two evaluations used **different data** they are independent samples and the
  interval is the normal one, ``d +- z sqrt(se_old^2 + se_new^2)`` with each ``se``
  read back from its interval (width / 2z). When they used the **same data** (same
  sha256) the two estimates are correlated and the reported intervals do not say how
  much, so the interval is the conservative one ``d +- z (se_old + se_new)`` (it holds
  whatever the correlation); an honest paired test needs the rows:
  :func:`compare_paired`. ``paired=True`` refuses documents of different data.
* :func:`compare_paired`: the same rows scored by both models. DeLong's test for the
  difference of the AUCs (:func:`delong`, the fast O(n log n) algorithm of Sun & Xu
  2014 with the structural components of DeLong, DeLong & Clarke-Pearson 1988;
  :func:`delong_direct` is the slow O(mn) definition it is tested against), McNemar's
  test for the accuracies (:func:`mcnemar`: exact binomial below
  :data:`MCNEMAR_EXACT_BELOW` discordant rows, chi-squared with continuity correction
  otherwise) and a seeded **paired bootstrap** for every other count metric (balanced
  accuracy, TPR, FPR, precision, F1, selection rate): each replicate resamples rows and
  both models are scored on the same resampled rows. A count metric of two models on
  the same rows depends only on the counts of the 8 cells (label, old decision, new
  decision), so a replicate is one multinomial draw over those cells: exact in
  distribution for the row bootstrap, O(cells) per replicate (DESIGN section 3). The
  Brier score, a mean of per-row losses, gets the paired t interval of the per-row
  differences.

The release rules (:mod:`assay.operate.compare`, ``promote_if``) use the same
:func:`delong` and :func:`mcnemar` on the rows that both versions scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

from assay.errors import InputError

#: McNemar's test is exact (binomial) below this many discordant rows.
MCNEMAR_EXACT_BELOW = 25
DEFAULT_REPLICATES = 2000
DEFAULT_CONFIDENCE = 0.95
#: Metrics of a paired comparison from the decisions (the paired bootstrap).
COUNT_METRICS = ("balanced_accuracy", "tpr", "fpr", "precision", "f1", "selection_rate")
#: Metrics where lower is better (the rest: higher is better).
LOWER_IS_BETTER = frozenset({"fpr", "fnr", "brier", "log_loss", "ece", "mae", "mse", "rmse"})
#: Metrics with no better direction (a difference is "new higher" or "new lower").
NEUTRAL = frozenset({"selection_rate", "base_rate", "mean_score",
                     "calibration_in_the_large"})


# --------------------------------------------------------------------------- the tests


def _midranks(x: np.ndarray) -> np.ndarray:
    return sps.rankdata(x, method="average")


def _two_classes(y: Any) -> np.ndarray:
    yy = np.asarray(y)
    if yy.dtype.kind == "b":
        return yy
    if yy.dtype.kind not in "iuf" or not np.isin(yy, (0, 1)).all():
        raise InputError("labels: expected 0/1 (1 = the positive label)")
    return yy.astype(bool)


def delong(y: Any, score_a: Any, score_b: Any) -> dict[str, Any]:
    """DeLong's test of AUC(b) - AUC(a) on the same rows (fast algorithm, O(n log n)).

    Returns both AUCs, the difference, its standard error, the covariance
    matrix of the two AUCs, z and the two-sided p-value.
    """
    yb = _two_classes(y)
    scores = np.vstack([np.asarray(score_a, float), np.asarray(score_b, float)])
    if scores.shape[1] != len(yb):
        raise InputError(f"DeLong's test: {scores.shape[1]} scores for {len(yb)} labels")
    pos, neg = scores[:, yb], scores[:, ~yb]
    m, n = pos.shape[1], neg.shape[1]
    if m < 2 or n < 2:
        raise InputError(f"DeLong's test needs at least 2 positive and 2 negative rows, got "
                         f"{m} and {n}")
    k = scores.shape[0]
    tx = np.empty((k, m))
    ty = np.empty((k, n))
    tz = np.empty((k, m + n))
    for r in range(k):
        tx[r] = _midranks(pos[r])
        ty[r] = _midranks(neg[r])
        tz[r] = _midranks(np.concatenate([pos[r], neg[r]]))
    auc = tz[:, :m].sum(axis=1) / m / n - (m + 1.0) / (2.0 * n)
    v10 = (tz[:, :m] - tx) / n  # structural components of the positives
    v01 = 1.0 - (tz[:, m:] - ty) / m  # ... of the negatives
    s = np.cov(v10) / m + np.cov(v01) / n
    return _delong_result(auc, s, m, n)


def _delong_result(auc: np.ndarray, s: np.ndarray, m: int, n: int) -> dict[str, Any]:
    contrast = np.array([-1.0, 1.0])
    var = float(contrast @ s @ contrast)
    diff = float(auc[1] - auc[0])
    se = float(np.sqrt(max(var, 0.0)))
    z = diff / se if se > 0 else (0.0 if diff == 0 else float(np.sign(diff)) * np.inf)
    p = float(2 * sps.norm.sf(abs(z))) if np.isfinite(z) else 0.0
    return {"auc_a": float(auc[0]), "auc_b": float(auc[1]), "difference": diff, "se": se,
            "covariance": s.tolist(), "z": float(z), "p_value": p, "positives": m,
            "negatives": n}


def delong_direct(y: Any, score_a: Any, score_b: Any) -> dict[str, Any]:
    """The same test from the definition (O(m n) memory and time; for tests and small
    data): the kernel ``psi(x, y) = 1 if x > y, 1/2 if x = y, 0 otherwise`` over every
    (positive, negative) pair, the structural components ``V10(x_i) = mean_j psi`` and
    ``V01(y_j) = mean_i psi``, and ``S = S10 / m + S01 / n``."""
    yb = _two_classes(y)
    aucs, v10s, v01s = [], [], []
    for s in (np.asarray(score_a, float), np.asarray(score_b, float)):
        pos, neg = s[yb], s[~yb]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        aucs.append(psi.mean())
        v10s.append(psi.mean(axis=1))
        v01s.append(psi.mean(axis=0))
    m, n = len(v10s[0]), len(v01s[0])
    s = np.cov(np.vstack(v10s)) / m + np.cov(np.vstack(v01s)) / n
    return _delong_result(np.asarray(aucs), s, m, n)


def mcnemar(correct_a: Any, correct_b: Any) -> dict[str, Any]:
    """McNemar's test of "a and b are right equally often" on the same rows.

    ``b01``: rows ``a`` got right and ``b`` wrong; ``b10``: the reverse. Exact
    binomial when ``b01 + b10`` < :data:`MCNEMAR_EXACT_BELOW`, else chi-squared
    with continuity correction; ``method`` says which.
    """
    a = np.asarray(correct_a, bool)
    b = np.asarray(correct_b, bool)
    b01 = int((a & ~b).sum())
    b10 = int((~a & b).sum())
    return mcnemar_counts(b01, b10, len(a))


def mcnemar_counts(b01: int, b10: int, rows: int) -> dict[str, Any]:
    """:func:`mcnemar` from the two discordant counts."""
    disc = b01 + b10
    if disc < MCNEMAR_EXACT_BELOW:
        stat = float(min(b01, b10))
        p = float(min(1.0, 2 * sps.binom.cdf(stat, disc, 0.5))) if disc else 1.0
        method = "exact binomial"
    else:
        stat = (abs(b01 - b10) - 1.0) ** 2 / disc
        p = float(sps.chi2.sf(stat, 1))
        method = "chi-squared with continuity correction"
    return {"a_right_b_wrong": b01, "a_wrong_b_right": b10, "discordant": disc,
            "statistic": stat, "p_value": p, "method": method, "rows": rows}


def _z(confidence: float) -> float:
    if not 0.5 <= confidence < 1:
        raise InputError(f"confidence: expected a number in [0.5, 1), got {confidence}")
    return float(sps.norm.ppf(0.5 + confidence / 2))


def _count_metric(name: str, c: np.ndarray) -> np.ndarray:
    """``name`` from cell counts ``c[..., y, decision]`` (2 x 2, any leading shape)."""
    tn, fp, fn, tp = c[..., 0, 0], c[..., 0, 1], c[..., 1, 0], c[..., 1, 1]
    with np.errstate(all="ignore"):
        if name == "accuracy":
            return (tp + tn) / (tp + tn + fp + fn)
        if name == "selection_rate":
            return (tp + fp) / (tp + tn + fp + fn)
        if name == "tpr":
            return tp / (tp + fn)
        if name == "fpr":
            return fp / (fp + tn)
        if name == "precision":
            return tp / (tp + fp)
        if name == "balanced_accuracy":
            return 0.5 * (tp / (tp + fn) + tn / (tn + fp))
        if name == "f1":
            return 2 * tp / (2 * tp + fp + fn)
    raise InputError(f"unknown count metric {name!r}")


def _joint_cells(y: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """Counts over (label, decision a, decision b): shape (2, 2, 2)."""
    key = y.astype(np.int64) * 4 + pa.astype(np.int64) * 2 + pb.astype(np.int64)
    return np.bincount(key, minlength=8).reshape(2, 2, 2)


def _margins(joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 2 x 2 (label, decision) tables of a and b from the joint cells (..., 2, 2, 2)."""
    return joint.sum(axis=-1), joint.sum(axis=-2)


def paired_bootstrap(y: Any, pred_a: Any, pred_b: Any, metrics: Sequence[str] = COUNT_METRICS,
                     *, n_boot: int = DEFAULT_REPLICATES, seed: int = 0,
                     confidence: float = DEFAULT_CONFIDENCE) -> dict[str, dict[str, Any]]:
    """The paired bootstrap of count metrics of two decisions on the same rows.

    Each replicate is a multinomial draw of ``n`` rows over the 8 (label, decision a,
    decision b) cells, so both models see the same resampled rows. Per metric: both
    values, the difference (b - a), its percentile interval, the bootstrap standard
    error and a two-sided p-value (twice the smaller share of replicates on either side
    of 0, at least 1 / n_boot)."""
    if n_boot < 100:
        raise InputError(f"replicates: the paired bootstrap needs at least 100, got {n_boot}")
    _z(confidence)
    yy = _two_classes(y)
    joint = _joint_cells(yy, np.asarray(pred_a, bool), np.asarray(pred_b, bool))
    n = int(joint.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, joint.ravel() / max(n, 1), size=n_boot).reshape(n_boot, 2, 2, 2)
    ta, tb = _margins(joint)
    ra, rb = _margins(draws)
    alpha = 1 - confidence
    out = {}
    for name in metrics:
        va, vb = float(_count_metric(name, ta)), float(_count_metric(name, tb))
        d = _count_metric(name, rb) - _count_metric(name, ra)
        d = d[np.isfinite(d)]
        entry: dict[str, Any] = {"old": _num(va), "new": _num(vb), "difference": _num(vb - va),
                                 "ci": None, "se": None, "p_value": None,
                                 "method": f"paired bootstrap ({n_boot} replicates, seed "
                                           f"{seed}, same resampled rows for both)"}
        if len(d) >= max(100, n_boot // 2) and np.isfinite(vb - va):
            lo, hi = np.quantile(d, [alpha / 2, 1 - alpha / 2])
            p = 2 * min((d <= 0).mean(), (d >= 0).mean())
            entry.update(ci=[float(lo), float(hi)], se=float(d.std(ddof=1)),
                         p_value=float(min(1.0, max(p, 1.0 / n_boot))))
        out[name] = entry
    return out


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


# --------------------------------------------------------------------------- paired


def _accuracy(y: np.ndarray, pa: np.ndarray, pb: np.ndarray, z: float) -> dict[str, Any]:
    ra, rb = pa == y, pb == y
    mc = mcnemar(ra, rb)
    n = len(y)
    b01, b10 = mc["a_right_b_wrong"], mc["a_wrong_b_right"]
    diff = (b10 - b01) / n
    se = float(np.sqrt(max(b01 + b10 - (b10 - b01) ** 2 / n, 0.0)) / n)
    return {"old": float(ra.mean()), "new": float(rb.mean()), "difference": float(diff),
            "ci": [diff - z * se, diff + z * se], "se": se, "p_value": mc["p_value"],
            "method": f"McNemar ({mc['method']}), Wald interval of a paired difference",
            "test": mc}


def _auc(y: np.ndarray, sa: np.ndarray, sb: np.ndarray, z: float) -> dict[str, Any] | str:
    m = int(y.sum())
    if m < 2 or len(y) - m < 2:
        return ("DeLong's test needs at least 2 positive and 2 negative rows, got "
                f"{m} and {len(y) - m}")
    d = delong(y, sa, sb)
    return {"old": d["auc_a"], "new": d["auc_b"], "difference": d["difference"],
            "ci": [d["difference"] - z * d["se"], d["difference"] + z * d["se"]],
            "se": d["se"], "p_value": d["p_value"], "method": "DeLong (fast, O(n log n))",
            "test": {k: v for k, v in d.items() if k != "covariance"}}


def _brier(y: np.ndarray, sa: np.ndarray, sb: np.ndarray, z: float) -> dict[str, Any]:
    diff = (sb - y) ** 2 - (sa - y) ** 2
    n = len(diff)
    d = float(diff.mean())
    se = float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    p = float(2 * sps.t.sf(abs(d / se), n - 1)) if se > 0 else (1.0 if d == 0 else 0.0)
    return {"old": float(((sa - y) ** 2).mean()), "new": float(((sb - y) ** 2).mean()),
            "difference": d, "ci": [d - z * se, d + z * se] if np.isfinite(se) else None,
            "se": _num(se), "p_value": p,
            "method": "paired t interval of the per-row differences"}


def _one(y: np.ndarray, sa: np.ndarray | None, sb: np.ndarray | None, pa: np.ndarray,
         pb: np.ndarray, *, z: float, confidence: float, n_boot: int, seed: int,
         notes: list[str], where: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"accuracy": _accuracy(y, pa, pb, z)}
    if sa is not None and sb is not None:
        auc = _auc(y, sa, sb, z)
        if isinstance(auc, str):
            notes.append(f"{where}: {auc}")
        else:
            out["roc_auc"] = auc
        if ((sa >= 0) & (sa <= 1)).all() and ((sb >= 0) & (sb <= 1)).all():
            out["brier"] = _brier(y, sa, sb, z)
    out.update(paired_bootstrap(y, pa, pb, n_boot=n_boot, seed=seed, confidence=confidence))
    for name, e in out.items():
        e["better"] = _better(name, e)
    return out


def _better(metric: str, e: Mapping[str, Any], alpha: float = 0.05) -> str:
    """``new``, ``old`` or ``no significant difference`` (two-sided, at ``alpha``)."""
    d, p = e.get("difference"), e.get("p_value")
    if d is None or p is None or p >= alpha or d == 0:
        return "no significant difference"
    if metric in NEUTRAL:
        return "new higher" if d > 0 else "new lower"
    lower = metric in LOWER_IS_BETTER
    return "new" if (d < 0) == lower else "old"


def compare_paired(y: Any, *, score_old: Any = None, score_new: Any = None,
                   pred_old: Any = None, pred_new: Any = None, threshold: float = 0.5,
                   groups: Any = None, grouping: str = "", confidence: float =
                   DEFAULT_CONFIDENCE, n_boot: int = DEFAULT_REPLICATES, seed: int = 0,
                   source: str = "") -> dict[str, Any]:
    """The paired comparison of two models on the same rows (see the module docstring).

    ``y`` is 0/1; each model gives a score (a decision is ``score >= threshold``), a
    decision (0/1), or both. ``groups`` (one label per row) adds the comparison per
    group. The result is plain JSON."""
    z = _z(confidence)
    yy = _two_classes(y)
    n = len(yy)
    if n < 2:
        raise InputError(f"a paired comparison needs rows, got {n}")

    def arr(v: Any, what: str, kind: str) -> np.ndarray | None:
        if v is None:
            return None
        a = np.asarray(v)
        if len(a) != n:
            raise InputError(f"{what}: {len(a)} rows, but the labels have {n}")
        if kind == "score":
            if a.dtype.kind not in "iufb":
                raise InputError(f"{what}: expected numeric scores, got {a.dtype}")
            a = a.astype(float)
            if not np.isfinite(a).all():
                raise InputError(f"{what}: {int((~np.isfinite(a)).sum())} missing or "
                                 "infinite scores")
            return a
        if a.dtype.kind == "b":
            return a
        if a.dtype.kind not in "iuf" or not np.isin(a, (0, 1)).all():
            raise InputError(f"{what}: expected decisions 0/1")
        return a.astype(bool)

    sa, sb = arr(score_old, "old score", "score"), arr(score_new, "new score", "score")
    pa, pb = arr(pred_old, "old prediction", "pred"), arr(pred_new, "new prediction", "pred")
    if pa is None:
        if sa is None:
            raise InputError("the old model has neither a score nor a prediction")
        pa = sa >= threshold
    if pb is None:
        if sb is None:
            raise InputError("the new model has neither a score nor a prediction")
        pb = sb >= threshold
    notes: list[str] = []
    if (sa is None) != (sb is None):
        notes.append("only one model has scores: AUC and Brier are not compared (they need "
                     "the scores of both)")
        sa = sb = None
    kw = {"z": z, "confidence": confidence, "n_boot": n_boot, "seed": seed, "notes": notes}
    overall = _one(yy, sa, sb, pa, pb, where="overall", **kw)  # type: ignore[arg-type]
    per_group: dict[str, dict[str, dict[str, Any]]] = {}
    if groups is not None:
        g = np.asarray(groups).astype(str)
        if len(g) != n:
            raise InputError(f"{grouping or 'group'}: {len(g)} rows, but the labels have {n}")
        for name in np.unique(g):
            m = g == name
            if m.sum() < 2:
                notes.append(f"group {name}: fewer than 2 rows, not compared")
                continue
            per_group[str(name)] = _one(
                yy[m], None if sa is None else sa[m], None if sb is None else sb[m],
                pa[m], pb[m], where=f"group {name}", **kw)  # type: ignore[arg-type]
    return {"kind": "paired", "rows": n, "positives": int(yy.sum()), "source": source,
            "confidence": confidence, "threshold": threshold if pred_old is None
            or pred_new is None else None, "replicates": n_boot, "seed": seed,
            "grouping": grouping or None, "overall": overall, "groups": per_group,
            "notes": notes}


# --------------------------------------------------------------------------- results


def _digest(doc: Mapping[str, Any]) -> str | None:
    ev = ((doc.get("data") or {}).get("evaluation") or {})
    return ev.get("sha256")


def _diff(metric: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None,
          z: float, same_data: bool) -> dict[str, Any] | None:
    if not old or not new:
        return None
    va, vb = _num(old.get("value")), _num(new.get("value"))
    if va is None or vb is None:
        return None
    d = vb - va
    out: dict[str, Any] = {"old": va, "new": vb, "difference": d, "ci": None,
                           "old_ci": old.get("ci"), "new_ci": new.get("ci"), "method": None}
    ca, cb = old.get("ci"), new.get("ci")
    if ca and cb and None not in (*ca, *cb):
        se_a = (float(ca[1]) - float(ca[0])) / (2 * z)
        se_b = (float(cb[1]) - float(cb[0])) / (2 * z)
        if same_data:
            half = z * (se_a + se_b)
            out["method"] = ("same data: conservative interval z (se_old + se_new), valid "
                             "whatever the correlation; for a paired test use "
                             "'assay compare --data'")
        else:
            half = z * float(np.hypot(se_a, se_b))
            out["method"] = "independent samples: z sqrt(se_old^2 + se_new^2)"
        out["ci"] = [d - half, d + half]
        lower = metric in LOWER_IS_BETTER
        if d - half <= 0 <= d + half:
            out["better"] = "no significant difference"
        elif metric in NEUTRAL:
            out["better"] = "new higher" if d > 0 else "new lower"
        elif d - half > 0:
            out["better"] = "old" if lower else "new"
        else:
            out["better"] = "new" if lower else "old"
    return out


def compare_results(old: Mapping[str, Any], new: Mapping[str, Any], *,
                    paired: bool = False, confidence: float = DEFAULT_CONFIDENCE,
                    old_name: str = "old", new_name: str = "new") -> dict[str, Any]:
    """Compare two ``results.json`` documents (see the module docstring).

    ``paired=True`` asks for a comparison on the same rows and refuses documents whose
    evaluation data differ (by sha256), since the difference of two estimates on
    different rows mixes the models' difference with the samples' difference."""
    z = _z(confidence)
    for name, doc in ((old_name, old), (new_name, new)):
        if not isinstance(doc, Mapping) or "metrics" not in doc or "checks" not in doc:
            raise InputError(f"{name}: not a results.json of 'assay certify' (expected "
                             "'metrics' and 'checks')")
    da, db = _digest(old), _digest(new)
    same = da is not None and da == db
    if paired and not same:
        raise InputError(
            f"{new_name}: a paired comparison needs both results on the same evaluation data, "
            f"but {old_name} used data sha256 {str(da)[:12]}... and {new_name} "
            f"{str(db)[:12]}...; on different rows the difference mixes the models with the "
            "samples (compare without --paired for an independent-samples interval)")
    ma, mb = old.get("metrics") or {}, new.get("metrics") or {}
    overall = {}
    for k in (ma.get("overall") or {}):
        r = _diff(k, ma["overall"].get(k), (mb.get("overall") or {}).get(k), z, same)
        if r is not None:
            overall[k] = r
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for attr, gs in (ma.get("groups") or {}).items():
        gb = (mb.get("groups") or {}).get(attr) or {}
        for g, row in (gs or {}).items():
            if g not in gb:
                continue
            rows = {}
            for k, v in (row.get("metrics") or {}).items():
                r = _diff(k, v, (gb[g].get("metrics") or {}).get(k), z, same)
                if r is not None:
                    rows[k] = r
            if rows:
                groups[f"{attr}={g}"] = rows
    checks = {}
    cb_by_id = {c.get("id"): c for c in new.get("checks") or []}
    for c in old.get("checks") or []:
        other = cb_by_id.get(c.get("id"))
        if other is None:
            continue
        r = _diff(c["id"], c, other, z, same) or {"old": _num(c.get("value")),
                                                 "new": _num(other.get("value")),
                                                 "difference": None, "ci": None}
        r.update(old_status=c.get("status"), new_status=other.get("status"))
        checks[c["id"]] = r
    notes = []
    if same:
        notes.append("both results are on the same evaluation data: the intervals are "
                     "conservative; 'assay compare --data FILE ...' gives the paired tests")
    elif da is None or db is None:
        notes.append("a results document carries no data digest: treated as independent "
                     "samples")
    return {"kind": "results", "confidence": confidence, "same_data": same,
            "data": {"old": da, "new": db},
            "models": {"old": (old.get("model") or {}).get("sha256"),
                       "new": (new.get("model") or {}).get("sha256")},
            "overall": overall, "groups": groups, "checks": checks, "notes": notes}


# --------------------------------------------------------------------------- from files


def compare_data(data: Any, *, target: str, positive_label: Any = 1,
                 old_score: str | None = None, new_score: str | None = None,
                 old_prediction: str | None = None, new_prediction: str | None = None,
                 old_model: Any = None, new_model: Any = None,
                 sensitive: Sequence[str] = (), threshold: float = 0.5,
                 confidence: float = DEFAULT_CONFIDENCE, n_boot: int = DEFAULT_REPLICATES,
                 seed: int = 0) -> dict[str, Any]:
    """:func:`compare_paired` on one data set (a path, frame or table): each model is a
    score column, a prediction column (label values; the positive label is a positive
    decision), or a model file (``assay.data.model.load_model``) applied to the rows
    (its probability of ``positive_label`` is the score)."""
    from assay.data.dataset import open_dataset
    from assay.metrics import _cells
    from assay.metrics.frame import SEP

    for side, score, pred, mdl in (("old", old_score, old_prediction, old_model),
                                   ("new", new_score, new_prediction, new_model)):
        if mdl is not None and (score or pred):
            raise InputError(f"--{side}-model: give a model file or columns for the {side} "
                             "model, not both")
        if mdl is None and not (score or pred):
            raise InputError(f"the {side} model: give --{side}-score, --{side}-prediction "
                             f"or --{side}-model")
    ds = open_dataset(data)
    cols = [c for c in (target, old_score, new_score, old_prediction, new_prediction,
                        *sensitive) if c]
    table = ds.to_arrow(list(dict.fromkeys(cols)))
    col = {c: _cells.to_numpy(table.column(c), c) for c in table.column_names}
    y = _cells.binarize(col[target], target, positive_label)
    if not y.any() or y.all():
        raise InputError(f"column '{target}': a comparison needs rows of both labels "
                         f"(positive label {positive_label!r})")
    sides: dict[str, dict[str, Any]] = {}
    for side, score, pred, mdl in (("old", old_score, old_prediction, old_model),
                                   ("new", new_score, new_prediction, new_model)):
        s = p = None
        if mdl is not None:
            from assay.data.model import load_model

            adapter = load_model(mdl) if not hasattr(mdl, "predict") else mdl
            frame = ds.to_pandas() if hasattr(ds, "to_pandas") else ds
            cols_in = adapter.input_columns([c for c in frame.columns
                                             if c not in (target, *sensitive)])
            if adapter.has_proba:
                s = adapter.predict_proba(frame[cols_in], positive_label=positive_label)
            else:
                p = _cells.binarize(adapter.predict(frame[cols_in]), f"{side} model",
                                    positive_label)
        else:
            if score:
                s = col[score]
            if pred:
                p = _cells.binarize(col[pred], pred, positive_label)
        sides[side] = {"score": s, "pred": p}
    groups = None
    if sensitive:
        parts = [np.asarray(col[c]).astype(str) for c in sensitive]
        groups = parts[0]
        for part in parts[1:]:
            groups = np.char.add(np.char.add(groups, SEP), part)
    return compare_paired(y, score_old=sides["old"]["score"], score_new=sides["new"]["score"],
                          pred_old=sides["old"]["pred"], pred_new=sides["new"]["pred"],
                          threshold=threshold, groups=groups, grouping=SEP.join(sensitive),
                          confidence=confidence, n_boot=n_boot, seed=seed,
                          source=_basename(getattr(ds, "name", "") or ""))


def _basename(name: str) -> str:
    """A file's name without its folder (a server's temporary path says nothing)."""
    from pathlib import PurePath

    return PurePath(str(name)).name
