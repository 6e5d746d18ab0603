"""Operating the model-risk program: program metrics computed from the store (and, later,
incidents and releases)."""

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

__all__ = ["PROGRAM_READERS", "Period", "ProgramReport", "period", "program_report",
           "record_export", "require_reader"]
__all__ += ["acknowledge_incident", "close_incident", "escalate_overdue", "get_incident",
            "incident_to_dict", "list_incidents", "mitigate_incident", "open_incident",
            "record_postmortem", "record_report", "resolve_incident", "show_incident",
            "update_incident"]
