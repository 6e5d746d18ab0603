"""Drift between a reference profile and a current profile (same bins).

Measures, per feature (see :mod:`assay.metrics.profile` for the bins):

* **PSI** (population stability index) on the coarse bins (categories for
  categorical features): ``sum((q - p) * ln(q / p))`` with ``p`` the
  reference and ``q`` the current fractions; a fraction below
  :data:`PSI_EPSILON` (1e-4) is raised to it so that empty bins stay finite.
  Conventions: < 0.1 stable, 0.1-0.25 moderate shift, >= 0.25 major shift.
* **Jensen-Shannon distance**, base 2 (0 = same, 1 = disjoint), on the same bins.
* **chi-squared test of homogeneity** of the 2 x k table (reference and
  current counts per bin; bins empty in both are dropped), as
  ``scipy.stats.chi2_contingency(correction=False)``.
* **binned KS**: the largest gap between the two cumulative distributions
  at the fine bin edges, with the asymptotic two-sided p-value that
  ``scipy.stats.ks_2samp(method="asymp")`` uses (Kolmogorov's limiting
  distribution above an effective size of :data:`KS_EXACT_N`). Exact when each fine bin
  holds one distinct value (discrete data); otherwise a lower bound of the
  exact statistic.
* **Wasserstein-1 distance** from binned quantiles: the mass of each fine bin
  is placed at the mean of its values, and the distance between the two
  resulting distributions is computed exactly. Moving a bin's mass to its
  mean costs at most its standard deviation, so the error is at most
  ``sum(p_i * sd_i) + sum(q_i * sd_i)`` over both data sets' bins, reported
  as ``wasserstein_bound``; zero when each bin holds one distinct value.
  ``wasserstein_norm`` divides by the reference's standard deviation
  (population, ddof=0).

Effect sizes are judged first and p-values second (at large ``n`` every
trivial shift is "significant"): a feature is *drifted* when an effect
size reaches its threshold (PSI >= 0.25 by default) **and** the test's
p-value is below ``p_value`` (0.05), which guards small samples against noise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from assay.errors import InputError
from assay.metrics.profile import NUMERIC, OTHER, FeatureStats, Profile

PSI_EPSILON = 1e-4
#: Up to this effective sample size ``n*m/(n+m)`` the KS p-value uses the finite-n
#: distribution (``scipy.stats.kstwo``, as ``ks_2samp(method="asymp")``), above it
#: Kolmogorov's limiting distribution (``kstwobign``; relative difference below 1%).
KS_EXACT_N = 20_000

#: Default thresholds of :func:`drift_summary`; ``None`` disables one.
DEFAULT_THRESHOLDS: dict[str, float | None] = {
    "psi": 0.25,            # major shift
    "psi_moderate": 0.1,    # reported as severity "moderate"
    "js": None,             # e.g. 0.1
    "wasserstein_norm": None,  # e.g. 0.1 reference standard deviations
    "p_value": 0.05,
}
MAX_CATEGORIES = 50


def psi(reference: np.ndarray, current: np.ndarray, *, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two count (or fraction) vectors on the same bins."""
    p = _fractions(reference)
    q = _fractions(current)
    p = np.maximum(p, epsilon)
    q = np.maximum(q, epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2, of two count vectors on the same bins."""
    p = _fractions(reference)
    q = _fractions(current)
    return float(jensenshannon(p, q, base=2.0))


def psi_rows(reference: np.ndarray, currents: np.ndarray, *,
             epsilon: float = PSI_EPSILON) -> np.ndarray:
    """:func:`psi` of ``reference`` against each row of ``currents`` (e.g. bootstrap draws)."""
    p = np.maximum(_fractions(reference), epsilon)
    c = np.asarray(currents, dtype=np.float64)
    total = c.sum(axis=1, keepdims=True)
    q = np.divide(c, total, out=np.zeros_like(c), where=total > 0)
    q = np.maximum(q, epsilon)
    return np.sum((q - p) * np.log(q / p), axis=1)


def js_rows(reference: np.ndarray, currents: np.ndarray) -> np.ndarray:
    """:func:`js_distance` of ``reference`` against each row of ``currents``."""
    p = _fractions(reference)
    c = np.asarray(currents, dtype=np.float64)
    total = c.sum(axis=1, keepdims=True)
    q = np.divide(c, total, out=np.zeros_like(c), where=total > 0)
    return np.asarray(jensenshannon(np.broadcast_to(p, q.shape), q, base=2.0, axis=1),
                      dtype=np.float64)


def chi2_homogeneity(reference: np.ndarray, current: np.ndarray) -> tuple[float, float, int]:
    """Chi-squared test that both count vectors come from one distribution.

    Returns ``(statistic, p_value, dof)``; bins empty in both are dropped. With
    fewer than two non-empty bins the test is undefined: ``(0.0, 1.0, 0)``.
    """
    table = np.vstack([np.asarray(reference, np.float64), np.asarray(current, np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, 0
    res = sps.chi2_contingency(table, correction=False)
    return float(res.statistic), float(res.pvalue), int(res.dof)


def ks_binned(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """KS statistic from counts on shared ordered bins, and its asymptotic p-value."""
    r = np.asarray(reference, np.float64)
    c = np.asarray(current, np.float64)
    n, m = r.sum(), c.sum()
    if n == 0 or m == 0:
        return float("nan"), float("nan")
    d = float(np.max(np.abs(np.cumsum(r) / n - np.cumsum(c) / m)))
    big, small = max(n, m), min(n, m)
    en = big * small / (big + small)
    # the finite-n distribution costs up to a second at large n; the limit is within 1%
    p = sps.kstwo.sf(d, np.round(en)) if en <= KS_EXACT_N else sps.kstwobign.sf(d * np.sqrt(en))
    return d, float(np.clip(p, 0.0, 1.0))


def wasserstein_binned(reference: FeatureStats, current: FeatureStats) -> tuple[float, float]:
    """Wasserstein-1 distance from fine-bin masses at their means, and its error bound."""
    assert reference.fine is not None and current.fine is not None
    if reference.count == 0 or current.count == 0:
        return float("nan"), float("nan")
    values, weights, bound = [], [], 0.0
    for s in (reference, current):
        assert s.fine is not None and s.fine_sum is not None and s.fine_sq is not None
        nz = s.fine > 0
        n = s.fine[nz].astype(np.float64)
        mean = s.fine_sum[nz] / n
        var = np.clip(s.fine_sq[nz] / n - mean * mean, 0.0, None)
        # collapsing a bin's mass to its mean moves it by E|x - mean| <= sd
        sd = np.sqrt(var)
        sd[sd <= 1e-6 * np.maximum(np.abs(mean), 1.0)] = 0.0  # rounding noise on one value
        values.append(mean)
        weights.append(n)
        bound += float(np.sum(n / s.count * sd))
    w = float(sps.wasserstein_distance(values[0], values[1], weights[0], weights[1]))
    return w, bound


def _fractions(counts: np.ndarray) -> np.ndarray:
    a = np.asarray(counts, dtype=np.float64)
    total = a.sum()
    return a / total if total > 0 else np.zeros_like(a)


def category_bins(reference: FeatureStats, current: FeatureStats,
                  max_categories: int = MAX_CATEGORIES) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Reference categories (most frequent first), then ``"__other__"``, with counts."""
    ranked = sorted(((k, c) for k, c in reference.categories.items() if k != OTHER),
                    key=lambda kv: (-kv[1], kv[0]))
    keep = [k for k, _ in ranked[:max_categories]]
    index = {k: i for i, k in enumerate(keep)}
    ref = np.zeros(len(keep) + 1, dtype=np.int64)
    cur = np.zeros(len(keep) + 1, dtype=np.int64)
    for counts, out in ((reference.categories, ref), (current.categories, cur)):
        for k, c in counts.items():
            out[index.get(k, len(keep))] += c
    return [*keep, OTHER], ref, cur


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def compare_feature(reference: FeatureStats, current: FeatureStats, *,
                    thresholds: Mapping[str, float | None] | None = None,
                    max_categories: int = MAX_CATEGORIES) -> dict[str, Any]:
    """Every drift measure of one feature, JSON-ready (see :func:`drift_summary`)."""
    th = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    if reference.kind != current.kind:
        raise InputError(f"column {reference.name!r}: {reference.kind} in the reference but "
                         f"{current.kind} in the current data")
    out: dict[str, Any] = {"kind": reference.kind}
    if reference.kind == NUMERIC:
        assert reference.coarse is not None and current.coarse is not None
        ref_c, cur_c = reference.coarse, current.coarse
        edges = reference.bins.edges
        labels: list[Any] = [_interval(edges, i) for i in range(edges.size + 1)]
        ks, ks_p = ks_binned(reference.fine, current.fine)  # type: ignore[arg-type]
        w, bound = wasserstein_binned(reference, current)
        std = reference.std
        out.update(ks=_num(ks), ks_p=_num(ks_p), wasserstein=_num(w),
                   wasserstein_bound=_num(bound),
                   wasserstein_norm=_num(w / std) if std and std > 0 else None,
                   reference_mean=_num(reference.mean), current_mean=_num(current.mean),
                   reference_std=_num(std), current_std=_num(current.std))
    else:
        labels, ref_c, cur_c = category_bins(reference, current, max_categories)
        out.update(ks=None, ks_p=None, wasserstein=None, wasserstein_bound=None,
                   wasserstein_norm=None)
    if ref_c.sum() == 0 or cur_c.sum() == 0:
        out.update(psi=None, js=None, chi2=None, chi2_p=None, drifted=False, severity="unknown",
                   note="no non-missing values in one of the data sets")
    else:
        p_val = psi(ref_c, cur_c)
        js = js_distance(ref_c, cur_c)
        chi2, chi2_p, _ = chi2_homogeneity(ref_c, cur_c)
        out.update(psi=p_val, js=js, chi2=chi2, chi2_p=chi2_p)
        effect = p_val >= th["psi"] if th.get("psi") is not None else False
        if th.get("js") is not None:
            effect = effect or js >= th["js"]
        wn = out["wasserstein_norm"]
        if th.get("wasserstein_norm") is not None and wn is not None:
            effect = effect or wn >= th["wasserstein_norm"]
        test_p = out["ks_p"] if reference.kind == NUMERIC and out["ks_p"] is not None else chi2_p
        significant = th.get("p_value") is None or test_p < th["p_value"]
        out["drifted"] = bool(effect and significant)
        moderate = th.get("psi_moderate")
        out["severity"] = ("major" if th.get("psi") is not None and p_val >= th["psi"] else
                           "moderate" if moderate is not None and p_val >= moderate else "none")
    out["null_share"] = {"reference": _num(reference.null_share),
                         "current": _num(current.null_share)}
    out["reference"] = {"bins": labels, "fractions": _fractions(ref_c).tolist(),
                        "count": int(reference.count)}
    out["current"] = {"fractions": _fractions(cur_c).tolist(), "count": int(current.count)}
    return out


def _interval(edges: np.ndarray, i: int) -> str:
    lo = "-inf" if i == 0 else f"{edges[i - 1]:.6g}"
    hi = "inf" if i == edges.size else f"{edges[i]:.6g}"
    return f"[{lo}, {hi})"


def drift_summary(reference_profile: Profile, current_profile: Profile | None = None, *,
                  thresholds: Mapping[str, float | None] | None = None,
                  features: Iterable[str] | None = None,
                  max_categories: int = MAX_CATEGORIES) -> dict[str, Any]:
    """Drift of every feature and the share of drifted features, JSON-ready.

    The drift between a certification's reference and evaluation data, on
    the profiles its drift checks share, is
    :func:`assay.checks.drift.context_drift` (``context_drift(ctx)``).

    ``{"features": {name: {"kind", "psi", "js", "chi2_p", "ks", "ks_p",
    "wasserstein_norm", "drifted", "severity", "reference": {"bins",
    "fractions"}, "current": {"fractions"}, ...}}, "drifted_share",
    "n_reference", "n_current", "thresholds", "method"}``.
    """
    if current_profile is None:
        hint = (" (for a certification context, assay.checks.drift.context_drift(ctx) "
                "gives its drift summary)" if hasattr(reference_profile, "evaluation") else "")
        raise InputError(f"drift_summary: expected a reference and a current profile{hint}")
    th = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    unknown = sorted(set(th) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise InputError(f"drift thresholds: unknown name(s) {', '.join(unknown)}; expected "
                         f"some of {', '.join(DEFAULT_THRESHOLDS)}")
    names = list(features) if features is not None else list(reference_profile.features)
    out: dict[str, Any] = {}
    for name in names:
        if name not in reference_profile.features:
            raise InputError(f"column {name!r}: not in the reference profile")
        if name not in current_profile.features:
            raise InputError(f"column {name!r}: not in the current profile")
        out[name] = compare_feature(reference_profile.features[name],
                                    current_profile.features[name], thresholds=th,
                                    max_categories=max_categories)
    drifted = [n for n, f in out.items() if f["drifted"]]
    return {
        "features": out,
        "drifted": drifted,
        "drifted_share": len(drifted) / len(out) if out else 0.0,
        "n_reference": int(reference_profile.rows),
        "n_current": int(current_profile.rows),
        "thresholds": th,
        "method": {
            "psi_epsilon": PSI_EPSILON,
            "js_base": 2,
            "chi2": "homogeneity test of the 2 x k table of counts, no continuity correction",
            "ks": "binned on the reference's fine quantile bins, asymptotic p-value",
            "wasserstein_norm": "Wasserstein-1 from binned quantiles / reference std (ddof=0)",
            "drifted": "an effect size reaches its threshold and the p-value is below p_value",
        },
    }
