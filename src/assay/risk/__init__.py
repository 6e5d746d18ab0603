"""Risk tiering, the impact questionnaire, the risk register and the ranked backlog.

Pure parts (no database): :mod:`assay.risk.config` (the policy's ``risk``
section), :mod:`assay.risk.scoring` (inherent and residual risk, the tier
rule), :mod:`assay.risk.questionnaire` (impact levels I to IV) and
:mod:`assay.risk.backlog` (priority formula). Domain functions over the
store live in :mod:`assay.risk.service`. Formulas: ``docs/risk.md``.
"""

from __future__ import annotations

from typing import Any

from assay.risk.config import CATEGORIES, TIERS, RiskConfig, parse_risk
from assay.risk.policy import RiskPolicy, load_risk_policy, tier_requirements
from assay.risk.questionnaire import Questionnaire, load_questionnaire, score_answers
from assay.risk.scoring import decide_tier, parse_categories

_SERVICE = ("assess", "latest_assessment", "list_assessments", "add_risk", "update_risk",
            "get_risk", "list_risks", "risk_dict", "add_mitigation", "update_mitigation",
            "mitigation_dict", "backlog", "heatmap", "severity_for",
            "register_from_certification")

__all__ = [
    "CATEGORIES",
    "TIERS",
    "Questionnaire",
    "RiskConfig",
    "RiskPolicy",
    "decide_tier",
    "load_questionnaire",
    "load_risk_policy",
    "parse_categories",
    "parse_risk",
    "score_answers",
    "tier_requirements",
    *_SERVICE,
]


def __getattr__(name: str) -> Any:
    if name in _SERVICE:  # the store-backed functions load the registry lazily
        from assay.risk import service

        return getattr(service, name)
    raise AttributeError(f"module 'assay.risk' has no attribute {name!r}")
