"""Impact: the assessment record (theory of impact, KPIs, register, feedback), causal
estimates and the impact report."""

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
from assay.impact.kpis import add_kpi, evaluate, list_kpis, observe, series

__all__ = [
    "EDITORS", "abtest", "add_feedback", "add_kpi", "add_register_entry",
    "assessment_history", "current_assessment", "did", "evaluate",
    "link_register_entry", "list_feedback", "list_kpis", "list_register", "observe",
    "parse_theory", "rdd", "read_table", "read_theory", "save_assessment", "series",
]
