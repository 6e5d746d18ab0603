"""Sensitivity: which features drive a disparity, and which value assumptions matter.

**Features.** For a feature, the rows of the *target* group get the feature's
distribution in the *reference* group, and are scored again through the model:
numbers by quantile mapping (a row at the q-th quantile of its group takes the
reference group's q-th quantile, so ranks within the group are kept), other
columns by drawing from the reference group's values (seeded). The gap in the
chosen rate (selection rate or true-positive rate at the decision threshold)
between the groups is measured again; the *remaining share* is the new gap over
the old. A share near 0 says the feature explains the gap; near 1, that it does
not. Intervals: multinomial bootstrap over the (group, label, decision before,
decision after) cells of the two groups' rows, so each replicate re-samples rows
with their paired decisions (the swap itself is held fixed).

**Value assumptions (tornado).** Each outcome's value is moved, one at a time, by
``± spread`` of its size (a constant at 0 by ``± spread`` times the largest
constant; a per-row column is scaled by ``1 ± spread``); the value per decision
is reported at the baseline threshold and at the threshold that is best under
the moved assumption, and outcomes are ranked by the swing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from assay.errors import InputError, did_you_mean
from assay.impact.value import (
    OUTCOMES,
    ScoreStats,
    ValueModel,
    best_index,
    curves_from_sums,
    outcome_sums,
)

RATES = ("selection_rate", "true_positive_rate")


def _rate(d: np.ndarray, y: np.ndarray, rate: str) -> float:
    if rate == "true_positive_rate":
        d = d[y == 1]
    return float(d.mean()) if len(d) else float("nan")


def _swap(values: Any, target: np.ndarray, reference: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    import pandas as pd

    col = pd.Series(values)
    out = col.to_numpy(copy=True)
    ref = col[reference].dropna().to_numpy()
    if len(ref) == 0:
        raise InputError("the reference group has no values to take")
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        t = col[target]
        ok = t.notna().to_numpy()
        ranks = t[ok].rank(method="average").to_numpy()
        q = (ranks - 0.5) / ok.sum()
        mapped = np.quantile(ref.astype(np.float64), q)
        idx = np.flatnonzero(target)[ok]
        out = out.astype(np.float64)
        if col.dtype.kind in "iu":
            mapped = np.round(mapped)
        out[idx] = mapped
        if col.dtype.kind in "iu" and not np.isnan(out).any():
            out = out.astype(col.dtype)
    else:
        out[target] = rng.choice(ref, size=int(target.sum()), replace=True)
    return out


def feature_sensitivity(sd: Any, *, group: str, reference: str,
                        features: Sequence[str] | None = None,
                        threshold: float, rate: str = "selection_rate",
                        n_boot: int = 1000, seed: int = 0,
                        confidence: float = 0.95) -> dict[str, Any]:
    """The share of the ``group`` - ``reference`` gap left after giving ``group``
    the reference distribution of each feature (``sd``: a
    :class:`~assay.impact.scenarios.ScoredData`)."""
    from assay.impact.value import check_replicates

    check_replicates(n_boot, seed)
    if rate not in RATES:
        raise InputError(f"{{rate}}: expected {' or '.join(RATES)}, got {rate!r}",
                         fields=["rate"])
    if sd.group is None:
        raise InputError("{sensitive}: sensitivity needs the sensitive column(s)",
                         fields=["sensitive"])
    groups = sorted(set(sd.group.tolist()))
    for name, opt in ((group, "group"), (reference, "reference")):
        if name not in groups:
            raise InputError(f"{{{opt}}}: unknown group {name!r}{did_you_mean(name, groups)}"
                             f" (groups: {', '.join(groups)})", fields=[opt])
    if group == reference:
        raise InputError("{group}: the group and the reference group are the same",
                         fields=["group"])
    feats = list(features) if features else list(sd.features)
    for f in feats:
        if f not in sd.features:
            raise InputError(f"{{features}}: unknown feature {f!r}"
                             f"{did_you_mean(f, sd.features)} (the model's inputs: "
                             f"{', '.join(sd.features[:20])})", fields=["features"])
    t_mask = sd.group == group
    r_mask = sd.group == reference
    y = sd.y
    base = sd.scores() >= threshold
    gap = _rate(base[t_mask], y[t_mask], rate) - _rate(base[r_mask], y[r_mask], rate)
    rng = np.random.default_rng(seed)
    rows = []
    for f in feats:
        frame = sd.frame.loc[t_mask].copy()
        frame[f] = _swap(sd.frame[f], t_mask, r_mask, rng)[t_mask]
        after_t = sd.scores(frame) >= threshold
        new_gap = _rate(after_t, y[t_mask], rate) - _rate(base[r_mask], y[r_mask], rate)
        share = new_gap / gap if gap else float("nan")
        row: dict[str, Any] = {"feature": f, "gap_after": new_gap, "remaining_share": share}
        if n_boot and gap:
            row["remaining_share_ci"] = _share_ci(
                y[t_mask], base[t_mask], after_t, y[r_mask], base[r_mask], rate,
                n_boot, rng, confidence)
        rows.append(row)
    rows.sort(key=lambda r: (np.nan_to_num(r["remaining_share"], nan=np.inf)))
    return {"group": group, "reference": reference, "rate": rate, "threshold": threshold,
            "gap": gap, "features": rows,
            "settings": {"numbers": "quantile mapping onto the reference group",
                         "categories": "drawn from the reference group (seeded)",
                         "replicates": n_boot, "seed": seed, "confidence": confidence}}


def _share_ci(yt: np.ndarray, before: np.ndarray, after: np.ndarray, yr: np.ndarray,
              dr: np.ndarray, rate: str, n_boot: int, rng: np.random.Generator,
              confidence: float) -> list[float] | None:
    # cells: target (y, before, after) = 8, reference (y, d) = 4
    tc = np.bincount(yt * 4 + before * 2 + after, minlength=8)
    rc = np.bincount(yr * 2 + dr, minlength=4)
    counts = np.concatenate([tc, rc]).astype(np.float64)
    n = int(counts.sum())
    draws = rng.multinomial(n, counts / n, size=n_boot).astype(np.float64)
    t, r = draws[:, :8].reshape(-1, 2, 2, 2), draws[:, 8:].reshape(-1, 2, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        if rate == "true_positive_rate":
            t, r = t[:, 1:], r[:, 1:]
        nt, nr = t.sum(axis=(1, 2, 3)), r.sum(axis=(1, 2))
        rb = r[..., 1].sum(1) / nr
        gap0 = t[:, :, 1, :].sum(axis=(1, 2)) / nt - rb
        gap1 = t[:, :, :, 1].sum(axis=(1, 2)) / nt - rb
        share = gap1 / gap0
    share = share[np.isfinite(share)]
    if not len(share):
        return None
    a = (1 - confidence) / 2
    lo, hi = np.quantile(share, [a, 1 - a])
    return [float(lo), float(hi)]


def value_tornado(stats: ScoreStats, model: ValueModel, *, spread: float = 0.5,
                  threshold: float | None = None) -> dict[str, Any]:
    """One-way sensitivity of the value per decision to each outcome's value."""
    if not 0 < spread <= 10:
        raise InputError(f"{{spread}}: expected a number above 0, got {spread:g}",
                         fields=["spread"])
    sums = outcome_sums(stats, model)
    n = stats.counts.sum()
    base_curve = curves_from_sums(sums).sum(axis=0)
    jb = (best_index(base_curve) if threshold is None
          else int(np.searchsorted(stats.scores, threshold, "left")))
    base = float(base_curve[jb] / n)
    consts = [abs(v) for o in OUTCOMES if not isinstance(v := model.get(o), str)]
    scale = max([*consts, 0.0]) or 1.0
    rows = []
    for o in OUTCOMES:
        v = model.get(o)
        if isinstance(v, str):
            moves = {"low": (f"{v} x {1 - spread:g}", 1 - spread, None),
                     "high": (f"{v} x {1 + spread:g}", 1 + spread, None)}
        else:
            step = spread * (abs(v) or scale)
            moves = {"low": (f"{v - step:g}", None, v - step),
                     "high": (f"{v + step:g}", None, v + step)}
        row: dict[str, Any] = {"outcome": o, "assumption": v}
        for side, (label, factor, const) in moves.items():
            s2 = dict(sums)
            if factor is not None:
                s2[o] = sums[o] * factor
            else:
                lab = 1 if o in ("tp", "fn") else 0
                s2[o] = const * stats.counts[:, lab, :]
            curve = curves_from_sums(s2).sum(axis=0)
            jj = best_index(curve)
            row[side] = {"assumption": label,
                         "value_per_decision_at_baseline_threshold": float(curve[jb] / n),
                         "best_value_per_decision": float(curve[jj] / n),
                         "best_threshold": (float(stats.scores[jj])
                                            if jj < len(stats.scores) else None)}
        row["swing"] = abs(row["high"]["value_per_decision_at_baseline_threshold"]
                           - row["low"]["value_per_decision_at_baseline_threshold"])
        rows.append(row)
    rows.sort(key=lambda r: -r["swing"])
    return {"baseline_value_per_decision": base,
            "baseline_threshold": float(stats.scores[jb]) if jb < len(stats.scores) else None,
            "spread": spread, "rows": rows,
            "settings": {"range": f"each constant +/- {spread:g} x its size (0: x the "
                                  f"largest constant, {scale:g}); each column x (1 +/- "
                                  f"{spread:g})"}}
