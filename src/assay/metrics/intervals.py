"""Confidence intervals of simple proportions (shares of rows, of attacks, of flags)."""

from __future__ import annotations

import math


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of the proportion ``k / n`` (None when ``n`` is 0).

    Matches ``statsmodels.stats.proportion.proportion_confint(k, n, alpha,
    method="wilson")``; unlike the normal approximation it stays inside [0, 1]
    and is not degenerate at ``k = 0`` or ``k = n``.
    """
    if n <= 0:
        return None
    from scipy.stats import norm

    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)
