"""Impact: what a model's decisions are worth and for whom, what fairness costs, and
the evidence of what the model does once it is used.

The numbers (value curves, the value-fairness frontier, scenarios and
sensitivity) are computed from the same sufficient statistics as
certification (docs/impact.md); the assessment record (theory of impact,
KPIs, register, stakeholder feedback), the causal estimates (A/B, DiD, RDD)
and the impact report are in docs/impact-assessment.md.
"""

from __future__ import annotations

from assay.impact.analyses import latest_analysis, list_analyses, record_analysis
from assay.impact.assessment import (
    EDITORS,
    add_feedback,
    add_register_entry,
    assessment_history,
    current_assessment,
    link_register_entry,
    list_feedback,
    list_register,
    parse_theory,
    read_theory,
    save_assessment,
)
from assay.impact.causal import abtest, did, rdd, read_table
from assay.impact.frontier import FrontierResult, value_fairness_frontier
from assay.impact.kpis import add_kpi, evaluate, list_kpis, observe, series
from assay.impact.value import (
    ScoreStats,
    ValueModel,
    ValueResult,
    parse_value_model,
    score_stats,
    value_curve,
)

__all__ = [
    "EDITORS",
    "FrontierResult",
    "ScoreStats",
    "ValueModel",
    "ValueResult",
    "abtest",
    "add_feedback",
    "add_kpi",
    "add_register_entry",
    "assessment_history",
    "current_assessment",
    "did",
    "evaluate",
    "latest_analysis",
    "link_register_entry",
    "list_analyses",
    "list_feedback",
    "list_kpis",
    "list_register",
    "observe",
    "parse_theory",
    "parse_value_model",
    "rdd",
    "read_table",
    "read_theory",
    "record_analysis",
    "save_assessment",
    "score_stats",
    "series",
    "value_curve",
    "value_fairness_frontier",
]
