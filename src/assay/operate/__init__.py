"""Operating models in production: incidents and escalation, releases per environment
and champion–challenger comparisons, program metrics computed from the store.

    from assay.operate import open_incident, escalate_overdue, record, promote, compare

    open_incident(session, actor, "credit", "1.0", title="Income drift", severity="SEV1",
                  kind="drift", alerts=[12])
    escalate_overdue(store)                                          # cron / service job
    record(session, actor, "credit", "2.0", environment="production", mode="shadow")
    compare(session, "credit", "1.0", "2.0", since="2026-03-01")   # DeLong, McNemar
    promote(session, actor, "credit", "2.0", environment="production", to="full")
    program_report(session, since=date(2026, 1, 1), until=date(2026, 3, 31))

docs/incidents.md, docs/releases.md and docs/program.md describe each part.
"""

from assay.operate.compare import Comparison, RuleVerdict, compare, delong, judge_release, mcnemar
from assay.operate.escalation import escalate_overdue
from assay.operate.incidents import (
    acknowledge_incident,
    close_incident,
    get_incident,
    incident_to_dict,
    list_incidents,
    mitigate_incident,
    open_incident,
    record_postmortem,
    record_report,
    resolve_incident,
    show_incident,
    update_incident,
)
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
    "acknowledge_incident",
    "close_incident",
    "compare",
    "delong",
    "escalate_overdue",
    "get_incident",
    "incident_to_dict",
    "judge_release",
    "list_incidents",
    "mcnemar",
    "mitigate_incident",
    "open_incident",
    "period",
    "program_report",
    "promote",
    "record",
    "record_export",
    "record_postmortem",
    "record_report",
    "release_status",
    "require_reader",
    "resolve_incident",
    "rollback",
    "serving",
    "serving_summary",
    "show_incident",
    "update_incident",
]
