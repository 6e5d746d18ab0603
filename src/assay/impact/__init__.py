"""Impact: what a model's decisions are worth, and what fairness costs.

The numbers (value curves, the value-fairness frontier, scenarios and
sensitivity) are computed from the same sufficient statistics as
certification; see docs/impact.md.
"""

from __future__ import annotations

from assay.impact.frontier import FrontierResult, value_fairness_frontier
from assay.impact.value import (
    ScoreStats,
    ValueModel,
    ValueResult,
    parse_value_model,
    score_stats,
    value_curve,
)

__all__ = [
    "FrontierResult",
    "ScoreStats",
    "ValueModel",
    "ValueResult",
    "parse_value_model",
    "score_stats",
    "value_curve",
    "value_fairness_frontier",
]
