"""Causal and quasi-experimental estimates of a model's impact on a KPI.

* :func:`abtest`: an A/B or canary test. The difference in means (a proportion when the
  outcome is 0/1) between the treatment and control arms with a Welch normal interval,
  a sample-ratio-mismatch chi-squared test against the planned split, the minimum
  detectable effect at 80% power, and CUPED variance reduction when a pre-period
  covariate is given (theta = cov(Y, X) / var(X), pooled over both arms).
* :func:`did`: difference-in-differences by two-way fixed effects (unit and time) with
  standard errors clustered by unit; an event study (treated x period, the last
  pre-period as reference) with a joint Wald test of the pre-period coefficients (the
  pre-trend test); repeated cross-sections (each unit seen once) absorb the treated
  group instead of the unit. The fixed effects are removed by alternating projections
  (exact at convergence, for unbalanced panels too); by Frisch-Waugh-Lovell the
  estimate and the clustered sandwich equal those of the regression with all dummies,
  with the small-sample factor G/(G-1) (N-1)/(N-K), K counting the dummies.
* :func:`rdd`: a sharp regression discontinuity at the model's decision threshold,
  local-linear on each side with a triangular kernel; the bandwidth is the
  Imbens-Kalyanaraman (2012) MSE-optimal bandwidth unless one is given; HC0
  heteroskedasticity-robust standard error.

Each result is a plain dict with ``estimate``, ``se``, ``ci: [lo, hi]``, ``p_value``,
``n``, the method and the ``assumptions`` it rests on; bad input raises a one-line
:class:`~assay.errors.InputError` naming the file and column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from assay.errors import InputError, did_you_mean

DID_ASSUMPTIONS = [
    "parallel trends: without treatment, treated and control units would have moved "
    "alike (the pre-trend test can reject this, never prove it)",
    "no anticipation: outcomes before the start of treatment do not react to it",
    "no spill-over between treated and control units (SUTVA)",
    "one common start of treatment; with staggered starts and changing effects, TWFE "
    "weights can be negative",
]
RDD_ASSUMPTIONS = [
    "continuity: without the decision, the expected outcome is continuous at the threshold",
    "no manipulation of the running variable around the threshold (look at the density)",
    "sharp design: everybody on one side of the threshold got the decision",
    "the estimate is local: it holds for people near the threshold",
]
AB_ASSUMPTIONS = [
    "randomised assignment to the arms (a sample-ratio mismatch suggests it failed)",
    "no interference between units of different arms",
    "CUPED: the covariate was measured before assignment",
]


# --------------------------------------------------------------------------- input


def read_table(path: str | Path) -> Any:
    """A data file (CSV or Parquet) as a pandas DataFrame; a clear error if unreadable."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        return pd.read_csv(p)
    except Exception as exc:  # pandas' parsers raise many kinds
        raise InputError(f"{p.name}: cannot read the data: {str(exc).splitlines()[0]}") from None


def _column(df: Any, name: str, source: str, *, numeric: bool = True) -> np.ndarray:
    if name not in df.columns:
        raise InputError(f"{source}: no column '{name}'{did_you_mean(name, df.columns)} "
                         f"(columns: {', '.join(map(str, df.columns))})")
    col = df[name]
    if col.isna().any():
        row = int(np.flatnonzero(col.isna().to_numpy())[0]) + 1
        raise InputError(f"{source}: column '{name}' has a missing value at data row {row}")
    if not numeric:
        return col.to_numpy()
    try:
        values = col.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{source}: column '{name}': expected numbers, got "
                         f"{col.iloc[0]!r}") from None
    if not np.isfinite(values).all():
        raise InputError(f"{source}: column '{name}' holds a non-finite value")
    return values


def _binary(df: Any, name: str, source: str) -> np.ndarray:
    v = _column(df, name, source)
    bad = ~np.isin(v, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{source}: column '{name}' must be 0/1, got {v[i]:g} at data "
                         f"row {i + 1}")
    return v


def _ci(est: float, se: float, q: float) -> list[float]:
    return [est - q * se, est + q * se]


# --------------------------------------------------------------------------- A/B


def abtest(df: Any, *, outcome: str, arm: str, control: str | None = None,
           covariate: str | None = None, expected_share: float = 0.5, alpha: float = 0.05,
           power: float = 0.8, source: str = "data") -> dict[str, Any]:
    """An A/B (or canary) test on ``outcome`` between the two values of ``arm``.

    ``control`` names the control arm (default: the first value in sorted order);
    ``expected_share`` is the planned share of the treatment arm (the SRM test).
    """
    y = _column(df, outcome, source)
    arms = _column(df, arm, source, numeric=False).astype(str)
    values = sorted(set(arms))
    if len(values) != 2:
        raise InputError(f"{source}: column '{arm}' must hold exactly two arms, got "
                         f"{len(values)} ({', '.join(values[:5])})")
    control = values[0] if control is None else str(control)
    if control not in values:
        raise InputError(f"--control: '{control}' is not an arm of '{arm}' "
                         f"(arms: {', '.join(values)})")
    treat = values[1] if control == values[0] else values[0]
    if not 0 < expected_share < 1:
        raise InputError(f"--share: expected 0 < share < 1, got {expected_share}")
    t = arms == treat
    n1, n0 = int(t.sum()), int((~t).sum())
    if min(n1, n0) < 2:
        raise InputError(f"{source}: each arm needs at least 2 rows (treatment {n1}, "
                         f"control {n0})")
    z = stats.norm.ppf(1 - alpha / 2)

    def diff(v: np.ndarray) -> tuple[float, float]:
        a, b = v[t], v[~t]
        return float(a.mean() - b.mean()), float(math.sqrt(a.var(ddof=1) / n1
                                                           + b.var(ddof=1) / n0))

    est, se = diff(y)
    out: dict[str, Any] = {
        "method": "difference in means, Welch standard error, normal interval",
        "outcome": outcome, "treatment": treat, "control": control,
        "n": {"treatment": n1, "control": n0},
        "means": {"treatment": float(y[t].mean()), "control": float(y[~t].mean())},
        "binary_outcome": bool(np.isin(y, (0.0, 1.0)).all()),
        "estimate": est, "se": se, "ci": _ci(est, se, z),
        "p_value": float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else None,
        "confidence": 1 - alpha,
    }
    expected = np.array([expected_share, 1 - expected_share]) * (n1 + n0)
    chi2, p = stats.chisquare([n1, n0], expected)
    out["srm"] = {"expected_share": expected_share, "observed_share": n1 / (n1 + n0),
                  "chi2": float(chi2), "p_value": float(p), "mismatch": bool(p < 0.001)}
    zp = stats.norm.ppf(power)
    out["power"] = {"power": power, "alpha": alpha, "mde": float((z + zp) * se),
                    "power_at_estimate": float(stats.norm.cdf(abs(est) / se - z))
                    if se > 0 else None}
    if covariate:
        x = _column(df, covariate, source)
        vx = float(np.var(x, ddof=1))
        if vx == 0:
            raise InputError(f"{source}: column '{covariate}' is constant: CUPED needs a "
                             "pre-period covariate that varies")
        theta = float(np.cov(y, x, ddof=1)[0, 1] / vx)
        adjusted = y - theta * (x - x.mean())
        est_c, se_c = diff(adjusted)
        out["cuped"] = {"covariate": covariate, "theta": theta, "estimate": est_c,
                        "se": se_c, "ci": _ci(est_c, se_c, z),
                        "p_value": float(2 * stats.norm.sf(abs(est_c) / se_c))
                        if se_c > 0 else None,
                        "variance_reduction": float(1 - (se_c / se) ** 2) if se > 0 else 0.0,
                        "mde": float((z + zp) * se_c)}
    out["assumptions"] = AB_ASSUMPTIONS
    if out["srm"]["mismatch"]:
        out["warnings"] = [f"sample-ratio mismatch: {n1} / {n0} rows against a planned "
                           f"share of {expected_share:g} (p = {p:.2g}): the assignment or "
                           "the logging is suspect; do not trust the estimate"]
    return out


# --------------------------------------------------------------------------- TWFE


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, codes = np.unique(values, return_inverse=True)
    return uniq, codes.ravel()


def _demean(m: np.ndarray, a: np.ndarray, b: np.ndarray, *, tol: float = 1e-13,
            max_iter: int = 100_000) -> np.ndarray:
    """Residuals of the columns of ``m`` on two sets of fixed effects (alternating
    projections; exact for a balanced panel after one sweep)."""
    out = np.array(m, dtype=np.float64, copy=True)
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    ca, cb = np.bincount(a, minlength=na), np.bincount(b, minlength=nb)
    scale = max(1.0, float(np.abs(out).max()))
    for _ in range(max_iter):
        before = out.copy()
        for codes, counts, k in ((a, ca, na), (b, cb, nb)):
            for j in range(out.shape[1]):
                means = np.bincount(codes, weights=out[:, j], minlength=k) / counts
                out[:, j] -= means[codes]
        if np.abs(out - before).max() <= tol * scale:
            return out
    raise InputError("the fixed effects did not converge: the panel is too sparse "
                     "(check that units are observed in several periods)")


def _twfe(y: np.ndarray, x: np.ndarray, a: np.ndarray, b: np.ndarray, cluster: np.ndarray,
          k_absorbed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """OLS of y on x with fixed effects a and b, clustered covariance; returns
    (beta, cov, number of clusters)."""
    m = _demean(np.column_stack([y, x]), a, b)
    yt, xt = m[:, 0], m[:, 1:]
    xtx = xt.T @ xt
    if np.linalg.matrix_rank(xtx) < xt.shape[1]:
        raise InputError("the treatment is collinear with the fixed effects: every treated "
                         "unit must have pre- and post-periods and there must be controls")
    bread = np.linalg.inv(xtx)
    beta = bread @ (xt.T @ yt)
    u = yt - xt @ beta
    _, g = _codes(cluster)
    n_g = int(g.max()) + 1
    scores = np.zeros((n_g, xt.shape[1]))
    np.add.at(scores, g, xt * u[:, None])
    meat = scores.T @ scores
    n, k = len(y), xt.shape[1] + k_absorbed
    if n_g < 2 or n <= k:
        raise InputError(f"too few clusters or rows for clustered standard errors "
                         f"({n_g} clusters, {n} rows, {k} parameters)")
    cov = bread @ meat @ bread * (n_g / (n_g - 1)) * ((n - 1) / (n - k))
    return beta, cov, n_g


def did(df: Any, *, outcome: str, unit: str, time: str, treated: str, post: str,
        cluster: str | None = None, alpha: float = 0.05, source: str = "data"
        ) -> dict[str, Any]:
    """Difference-in-differences (see the module docstring).

    ``treated`` and ``post`` are 0/1 columns: the unit is in the treated group; the row
    is in the post-treatment period. ``cluster`` defaults to ``unit``.
    """
    y = _column(df, outcome, source)
    units = _column(df, unit, source, numeric=False)
    times = _column(df, time, source, numeric=False)
    tr = _binary(df, treated, source)
    po = _binary(df, post, source)
    clusters = _column(df, cluster or unit, source, numeric=False)
    if not (po == 0).any():
        raise InputError(f"{source}: column '{post}' is 1 on every row: there is no "
                         "pre-period to compare with")
    if not (po == 1).any():
        raise InputError(f"{source}: column '{post}' is 0 on every row: there is no "
                         "post-period")
    if not (tr == 1).any() or not (tr == 0).any():
        raise InputError(f"{source}: column '{treated}' must mark both treated (1) and "
                         "control (0) units")
    time_vals, tcode = _codes(times)
    post_times = set(time_vals[np.unique(tcode[po == 1])].tolist())
    pre_times = set(time_vals[np.unique(tcode[po == 0])].tolist())
    if post_times & pre_times:
        t = sorted(post_times & pre_times)[0]
        raise InputError(f"{source}: column '{post}' must be the same for every row of one "
                         f"period; period {t!r} has both 0 and 1")
    unit_vals, ucode = _codes(units)
    panel = len(unit_vals) < len(y) and np.bincount(ucode).max() > 1
    if panel:
        per_unit = np.zeros(len(unit_vals))
        np.maximum.at(per_unit, ucode, tr)
        low = np.full(len(unit_vals), 1.0)
        np.minimum.at(low, ucode, tr)
        if (per_unit != low).any():
            bad = unit_vals[int(np.flatnonzero(per_unit != low)[0])]
            raise InputError(f"{source}: column '{treated}' must be constant within a unit; "
                             f"unit {bad!r} has both 0 and 1")
        first = ucode
    else:
        first = tr.astype(np.int64)  # repeated cross-sections: group fixed effects
    k_a = int(first.max()) + 1
    k_b = len(time_vals)
    d = tr * po
    beta, cov, n_g = _twfe(y, d[:, None], first, tcode, clusters, k_a + k_b - 1)
    est, se = float(beta[0]), float(math.sqrt(cov[0, 0]))
    q = stats.t.ppf(1 - alpha / 2, n_g - 1)
    out: dict[str, Any] = {
        "method": "difference-in-differences, two-way fixed effects (unit and period"
                  if panel else "difference-in-differences, group and period fixed effects "
                                "(repeated cross-sections",
        "estimate": est, "se": se, "ci": _ci(est, se, q),
        "p_value": float(2 * stats.t.sf(abs(est) / se, n_g - 1)),
        "confidence": 1 - alpha, "n": len(y), "clusters": n_g,
        "design": "panel" if panel else "repeated cross-sections",
        "cluster": cluster or unit, "interval": f"t with {n_g - 1} degrees of freedom",
    }
    out["method"] += "), standard errors clustered by " + (cluster or unit)
    out["event_study"] = _event_study(y, tr, tcode, time_vals, sorted(pre_times),
                                      first, clusters, k_a + k_b - 1, q)
    out["assumptions"] = DID_ASSUMPTIONS
    return out


def _event_study(y: np.ndarray, tr: np.ndarray, tcode: np.ndarray, time_vals: np.ndarray,
                 pre: Sequence[Any], first: np.ndarray, clusters: np.ndarray, k_abs: int,
                 q: float) -> dict[str, Any]:
    ref = pre[-1]
    ref_code = int(np.flatnonzero(time_vals == ref)[0])
    others = [c for c in range(len(time_vals)) if c != ref_code]
    x = np.column_stack([tr * (tcode == c) for c in others])
    beta, cov, _ = _twfe(y, x, first, tcode, clusters, k_abs)
    pre_set = set(pre)
    coefs = []
    for j, c in enumerate(others):
        se = float(math.sqrt(cov[j, j]))
        coefs.append({"period": _plain(time_vals[c]), "pre": _plain(time_vals[c]) in pre_set,
                      "estimate": float(beta[j]), "se": se,
                      "ci": _ci(float(beta[j]), se, q)})
    coefs.insert(ref_code, {"period": _plain(ref), "pre": True, "estimate": 0.0, "se": 0.0,
                            "ci": [0.0, 0.0], "reference": True})
    idx = [j for j, c in enumerate(others) if _plain(time_vals[c]) in pre_set]
    test: dict[str, Any]
    if idx:
        b, v = beta[idx], cov[np.ix_(idx, idx)]
        wald = float(b @ np.linalg.solve(v, b))
        test = {"wald": wald, "df": len(idx), "p_value": float(stats.chi2.sf(wald, len(idx))),
                "method": "joint Wald test (chi-squared) that the pre-period coefficients "
                          "are zero, clustered covariance"}
    else:
        test = {"wald": None, "df": 0, "p_value": None,
                "method": "not possible: a single pre-period (the reference)"}
    return {"reference": _plain(ref), "coefficients": coefs, "pre_trend": test}


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def event_study_svg(result: dict[str, Any]) -> str:
    """The event-study coefficients with their intervals, as an inline SVG chart."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    coefs = result["event_study"]["coefficients"]
    xs = list(range(len(coefs)))
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    try:
        ax.axhline(0, color="#888", lw=0.8)
        est = [c["estimate"] for c in coefs]
        lo = [c["estimate"] - c["ci"][0] for c in coefs]
        hi = [c["ci"][1] - c["estimate"] for c in coefs]
        colors = ["#4a6fa5" if c["pre"] else "#c0392b" for c in coefs]
        ax.errorbar(xs, est, yerr=[lo, hi], fmt="none", ecolor="#999", capsize=3)
        ax.scatter(xs, est, c=colors, zorder=3)
        ax.set_xticks(xs, [str(c["period"]) for c in coefs], rotation=45, fontsize=7)
        ax.set_ylabel("effect vs reference period")
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    finally:
        plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.find("<svg"):]


# --------------------------------------------------------------------------- RDD


def _local_linear(x: np.ndarray, y: np.ndarray, h: float) -> tuple[float, float, int]:
    """Intercept at 0 of the triangular-kernel weighted linear fit on |x| < h, and its
    HC0 variance."""
    w = np.clip(1 - np.abs(x) / h, 0, None)
    keep = w > 0
    x, y, w = x[keep], y[keep], w[keep]
    if len(x) < 3:
        raise InputError(f"fewer than 3 observations within the bandwidth {h:.4g} on one side "
                         "of the threshold")
    X = np.column_stack([np.ones_like(x), x])
    xw = X * w[:, None]
    bread = np.linalg.inv(X.T @ xw)
    beta = bread @ (xw.T @ y)
    u = y - X @ beta
    meat = (xw * u[:, None] ** 2).T @ xw
    v = bread @ meat @ bread
    return float(beta[0]), float(v[0, 0]), int(keep.sum())


def ik_bandwidth(x: np.ndarray, y: np.ndarray, cutoff: float = 0.0) -> float:
    """The Imbens-Kalyanaraman (2012) MSE-optimal bandwidth for a local-linear sharp RD
    with a triangular kernel (their algorithm, steps 1-3, with regularisation)."""
    x = np.asarray(x, dtype=np.float64) - cutoff
    y = np.asarray(y, dtype=np.float64)
    n = len(x)
    right = x >= 0
    h1 = 1.84 * float(np.std(x, ddof=1)) * n ** (-1 / 5)
    in1 = np.abs(x) < h1
    nl, nr = int((in1 & ~right).sum()), int((in1 & right).sum())
    if nl < 2 or nr < 2:
        raise InputError("too few observations near the threshold to choose a bandwidth")
    f0 = (nl + nr) / (2 * n * h1)
    var_l = float(np.var(y[in1 & ~right], ddof=1))
    var_r = float(np.var(y[in1 & right], ddof=1))
    # step 2: third derivative from a global cubic with a jump
    X = np.column_stack([np.ones(n), right.astype(float), x, x ** 2, x ** 3])
    g = np.linalg.lstsq(X, y, rcond=None)[0]
    m3 = 6 * g[4]
    n_l, n_r = int((~right).sum()), int(right.sum())
    m3sq = max(m3 ** 2, 1e-12)
    h2_l = 3.56 * (var_l / (f0 * m3sq)) ** (1 / 7) * n_l ** (-1 / 7)
    h2_r = 3.56 * (var_r / (f0 * m3sq)) ** (1 / 7) * n_r ** (-1 / 7)

    def curvature(side: np.ndarray, h2: float) -> tuple[float, int]:
        sel = side & (np.abs(x) < h2)
        xs = x[sel]
        if len(xs) < 4:
            raise InputError("too few observations near the threshold to choose a bandwidth")
        Z = np.column_stack([np.ones(len(xs)), xs, xs ** 2])
        c = np.linalg.lstsq(Z, y[sel], rcond=None)[0]
        return 2 * float(c[2]), len(xs)

    m2_l, n2_l = curvature(~right, h2_l)
    m2_r, n2_r = curvature(right, h2_r)
    r_l = 720 * var_l / (n2_l * h2_l ** 4)
    r_r = 720 * var_r / (n2_r * h2_r ** 4)
    ck = 3.4375
    return float(ck * ((var_l + var_r) / (f0 * ((m2_r - m2_l) ** 2 + r_l + r_r))) ** (1 / 5)
                 * n ** (-1 / 5))


def rdd(df: Any, *, outcome: str, running: str, cutoff: float = 0.0,
        bandwidth: float | None = None, alpha: float = 0.05, source: str = "data"
        ) -> dict[str, Any]:
    """Sharp regression discontinuity of ``outcome`` at ``running == cutoff``."""
    y = _column(df, outcome, source)
    x = _column(df, running, source) - float(cutoff)
    right = x >= 0
    if right.sum() < 5 or (~right).sum() < 5:
        raise InputError(f"{source}: column '{running}' needs at least 5 rows on each side of "
                         f"the threshold {cutoff:g} (below {int((~right).sum())}, above "
                         f"{int(right.sum())})")
    if bandwidth is not None and not (bandwidth > 0 and math.isfinite(bandwidth)):
        raise InputError(f"--bandwidth: expected a positive number, got {bandwidth}")
    h = float(bandwidth) if bandwidth is not None else ik_bandwidth(x, y)
    a_r, v_r, n_r = _local_linear(x[right], y[right], h)
    a_l, v_l, n_l = _local_linear(x[~right], y[~right], h)
    est, se = a_r - a_l, math.sqrt(v_r + v_l)
    z = stats.norm.ppf(1 - alpha / 2)
    return {
        "method": "sharp RD, local-linear, triangular kernel, "
                  + ("given bandwidth" if bandwidth is not None else
                     "Imbens-Kalyanaraman MSE-optimal bandwidth") + ", HC0 standard error",
        "estimate": est, "se": se, "ci": _ci(est, se, z),
        "p_value": float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else None,
        "confidence": 1 - alpha, "cutoff": float(cutoff), "bandwidth": h,
        "n": len(y), "n_effective": {"below": n_l, "above": n_r},
        "limits": {"below": a_l, "above": a_r}, "assumptions": RDD_ASSUMPTIONS,
    }
