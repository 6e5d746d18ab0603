"""Operating models in production: program metrics computed from the store, releases
per environment and champion–challenger comparisons.

    from assay.operate import program_report, record, promote, rollback, compare

    program_report(session, since=date(2026, 1, 1), until=date(2026, 3, 31))
    record(session, actor, "credit", "2.0", environment="production", mode="shadow")
    compare(session, "credit", "1.0", "2.0", since="2026-03-01")   # DeLong, McNemar
    promote(session, actor, "credit", "2.0", environment="production", to="full")

docs/program.md defines every program metric; docs/releases.md describes the
release modes, the state machine, the release rule and the statistics.
"""

from assay.operate.compare import Comparison, RuleVerdict, compare, delong, judge_release, mcnemar
from assay.operate.program import (
    PROGRAM_READERS,
    Period,
    ProgramReport,
    period,
    program_report,
    record_export,
    require_reader,
)
from assay.operate.releases import promote, record, rollback, serving, serving_summary
from assay.operate.releases import status as release_status

__all__ = [
    "PROGRAM_READERS",
    "Comparison",
    "Period",
    "ProgramReport",
    "RuleVerdict",
    "compare",
    "delong",
    "judge_release",
    "mcnemar",
    "period",
    "program_report",
    "promote",
    "record",
    "record_export",
    "release_status",
    "require_reader",
    "rollback",
    "serving",
    "serving_summary",
]
