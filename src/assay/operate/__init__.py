"""Operating models in production: releases per environment, champion–challenger.

    from assay.operate import record, promote, rollback, release_status, compare

    record(session, actor, "credit", "2.0", environment="production", mode="shadow")
    compare(session, "credit", "1.0", "2.0", since="2026-03-01")   # DeLong, McNemar
    promote(session, actor, "credit", "2.0", environment="production", to="full")

docs/releases.md describes the modes, the state machine, the release rule and
the statistics.
"""

from assay.operate.compare import Comparison, RuleVerdict, compare, delong, judge_release, mcnemar
from assay.operate.releases import promote, record, rollback, serving, serving_summary
from assay.operate.releases import status as release_status

__all__ = [
    "Comparison",
    "RuleVerdict",
    "compare",
    "delong",
    "judge_release",
    "mcnemar",
    "promote",
    "record",
    "release_status",
    "rollback",
    "serving",
    "serving_summary",
]
