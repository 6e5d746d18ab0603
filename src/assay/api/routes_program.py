"""Program metrics (docs/program.md): the report as JSON, and its CSV export (audited).

Auditors, compliance, risk officers and admins only (:data:`PROGRAM_READERS`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel

from assay.api.deps import Principal, acting, current_principal, reading, require_roles
from assay.errors import InputError
from assay.operate import PROGRAM_READERS, period, program_report, record_export

router = APIRouter(prefix="/api", tags=["program"])

SINCE = Query(None, max_length=40, description="First day, YYYY-MM-DD (UTC); default 90 "
                                               "days before until")
UNTIL = Query(None, max_length=40, description="Last day, YYYY-MM-DD (UTC); default today")


class Durations(BaseModel):
    count: int
    median: float | None
    p90: float | None
    unit: str


class WeekDurations(Durations):
    week: str


class TimeToApprove(BaseModel):
    overall: Durations
    by_tier: dict[str, Durations]
    by_stage: dict[str, Durations]
    by_week: list[WeekDurations]


class WeekRate(BaseModel):
    week: str
    approved: int
    rejected: int
    rate: float | None


class ReasonCount(BaseModel):
    reason: str
    count: int


class StageCount(BaseModel):
    stage: str
    count: int


class Approvals(BaseModel):
    approved: int
    rejected: int
    rate: float | None
    by_week: list[WeekRate]
    rejections_by_reason: list[ReasonCount]
    rejections_by_stage: list[StageCount]


class SeverityResponses(BaseModel):
    raised: int
    unacknowledged: int
    unresolved: int
    acknowledge: Durations
    resolve: Durations


class Responses(BaseModel):
    sources: list[str]
    by_severity: dict[str, SeverityResponses]


class OverdueItem(BaseModel):
    model: str
    tier: str | None
    kind: str
    version: str | None = None
    due: str | None
    days_overdue: int | None


class Overdue(BaseModel):
    count: int
    items: list[OverdueItem]


class BurnDownPoint(BaseModel):
    at: str
    open_score: int
    open_entries: int


class TierCoverage(BaseModel):
    models: int
    covered: int
    share: float | None


class Coverage(TierCoverage):
    by_tier: dict[str, TierCoverage]


class ProgramOut(BaseModel):
    since: str
    until: str
    as_of: str
    time_to_approve: TimeToApprove
    approvals: Approvals
    responses: Responses
    overdue_reviews: Overdue
    burn_down: list[BurnDownPoint]
    coverage: Coverage
    definitions: dict[str, str]


def _checked(since: str | None, until: str | None) -> None:
    """Bad dates are a 422 naming the query parameter, before anything is read."""
    try:
        period(since, until)
    except InputError as exc:
        field = next(iter(exc.fields), "since")
        raise RequestValidationError([{"loc": ("query", field), "type": "value_error",
                                       "msg": exc.render({"since": "since",
                                                          "until": "until"})}]) from None


@router.get("/program", response_model=ProgramOut,
            summary="Program metrics over a period (auditor, compliance, risk officer, "
                    "admin)")
def program(request: Request, since: str | None = SINCE, until: str | None = UNTIL,
            principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    require_roles(principal, *PROGRAM_READERS)
    _checked(since, until)
    with reading(request) as s:
        return program_report(s, since=since, until=until).to_dict()


@router.get("/program.csv", summary="Program metrics as CSV, one row per figure; recorded "
                                    "in the audit trail (auditor, compliance, risk officer, "
                                    "admin)",
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "section, group, measure, value"}})
def program_csv(request: Request, since: str | None = SINCE, until: str | None = UNTIL,
                principal: Principal = Depends(current_principal)) -> Response:
    from assay.operate.render import to_csv

    require_roles(principal, *PROGRAM_READERS)
    _checked(since, until)
    with acting(request, principal) as (s, actor):
        report = program_report(s, since=since, until=until, actor=actor)
        text = to_csv(report.to_dict())
        record_export(s, actor, report, "csv",
                      digest="sha256:" + hashlib.sha256(text.encode()).hexdigest())
    name = f"assay-program-{report.since.isoformat()}-{report.until.isoformat()}.csv"
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
