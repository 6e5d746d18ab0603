"""Operating the model-risk program: program metrics computed from the store (and, later,
incidents and releases)."""

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
