"""Incidents over HTTP: open, list, show, take in hand, mitigate, resolve, close, playbook
steps and links, reports to the authority, post-mortems, escalation.

Every route calls :mod:`assay.operate` with the authenticated user as the actor, in
one transaction; the roles come from :mod:`assay.operate.incidents` (checked here
first, and again by the domain, which also holds the separation of duties and the
policy's closing rules). Evidence for a playbook step is uploaded first
(``POST /api/evidence``) and named here by its digest.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from assay.api.deps import (
    POLICY_NAME,
    Principal,
    acting,
    current_principal,
    reading,
    require_roles,
)
from assay.operate.incidents import ESCALATORS, HANDLERS, REPORTERS, RESOLVERS

router = APIRouter(prefix="/api", tags=["incidents"])

INCIDENT_ID = Path(..., ge=1, le=2**31 - 1, description="Incident id")
TEXT = 20_000
State = Literal["open", "acknowledged", "mitigated", "resolved", "closed"]
Kind = Literal["drift", "performance", "fairness", "security", "privacy", "outage", "other"]
SeriousCase = Literal["general", "widespread_or_critical_infrastructure", "death"]
AWARE = ("A time with its zone (2026-03-05T09:30:00+01:00); not in the future")


# --------------------------------------------------------------------------- models


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenIn(_In):
    model: str = Field(..., min_length=1, max_length=200)
    version: str = Field(..., min_length=1, max_length=100)
    title: str = Field(..., min_length=1, max_length=300)
    severity: str = Field(..., min_length=1, max_length=20,
                          description="A severity level of the policy (e.g. SEV1)")
    kind: Kind = "other"
    description: str = Field("", max_length=TEXT)
    serious: SeriousCase | None = Field(None, description="The EU AI Act Art. 73 case of a "
                                                          "serious incident")
    aware_at: str | None = Field(None, max_length=64, description=AWARE + "; default: the "
                                 "alerts' time, else now")
    alerts: list[int] = Field(default_factory=list, max_length=100,
                              description="Ids of the monitoring alerts it comes from")
    groups: list[str] = Field(default_factory=list, max_length=100,
                              description="Affected groups")
    owner: str | None = Field(None, min_length=1, max_length=100)
    policy: str | None = Field(None, max_length=100, pattern=POLICY_NAME)
    tier: str | None = Field(None, min_length=1, max_length=50)


class NoteIn(_In):
    note: str = Field("", max_length=TEXT)


class EvidenceIn(_In):
    name: str = Field(..., min_length=1, max_length=300)
    digest: str = Field(..., min_length=64, max_length=80,
                        description="sha256:... of a file uploaded with POST /api/evidence")


class UpdateIn(_In):
    step: int | None = Field(None, ge=1, le=1000, description="Playbook step number")
    done: bool = False
    evidence: list[EvidenceIn] = Field(default_factory=list, max_length=50)
    link_mitigation: int | None = Field(None, ge=1, le=2**31 - 1)
    link_waiver: int | None = Field(None, ge=1, le=2**31 - 1)
    link_release: str | None = Field(None, min_length=1, max_length=200)
    note: str = Field("", max_length=TEXT)
    severity: str | None = Field(None, min_length=1, max_length=20)


class ReportIn(_In):
    reference: str = Field(..., min_length=1, max_length=2000)
    at: str | None = Field(None, max_length=64, description=AWARE + "; default: now")


class TimelineIn(_In):
    at: str = Field(..., max_length=64)
    what: str = Field(..., max_length=TEXT)


class ActionIn(_In):
    action: str = Field(..., max_length=TEXT)
    owner: str = Field(..., max_length=100)
    due: str = Field(..., max_length=20, description="YYYY-MM-DD")


class PostmortemIn(_In):
    summary: str = Field("", max_length=TEXT)
    timeline: list[TimelineIn] = Field(default_factory=list, max_length=500)
    root_cause: str = Field("", max_length=TEXT, description="Required (not empty)")
    contributing_factors: list[str] = Field(default_factory=list, max_length=200)
    went_well: list[str] = Field(default_factory=list, max_length=200)
    actions: list[ActionIn] = Field(default_factory=list, max_length=200)


class SummaryOut(BaseModel):
    id: int
    model: str
    version: str
    title: str
    kind: str
    severity: str
    serious: bool
    serious_case: str | None
    state: str
    owner: str | None
    aware_at: str | None
    aware_zone: str = Field(description="The UTC offset the awareness time was given in")
    opened_at: str | None
    overdue: list[str] = Field(description="Steps past their due time: acknowledge, mitigate, "
                                           "report")


class DeadlineOut(BaseModel):
    step: str
    due: str | None
    due_local: str | None = Field(description="The due time in the awareness time's zone")
    done_at: str | None
    done_by: str | None
    overdue: bool
    late: bool
    escalated_to: str | None
    escalated_at: str | None
    basis: str = Field(description="Where the report's deadline comes from")


class EvidenceOut(BaseModel):
    name: str
    digest: str


class StepOut(BaseModel):
    step: int
    title: str
    inform: list[str]
    evidence_required: list[str]
    done: bool
    done_at: str | None
    done_by: str | None
    evidence: list[EvidenceOut]


class AlertRef(BaseModel):
    id: int
    rule: str
    label: str
    severity: str
    state: str
    message: str


class LinkOut(BaseModel):
    kind: str
    ref: str
    note: str
    by: str | None
    at: str | None


class NoteOut(BaseModel):
    text: str
    by: str | None
    at: str | None


class TimelineOut(BaseModel):
    at: str
    what: str


class ActionOut(BaseModel):
    action: str
    owner: str
    due: str


class PostmortemOut(BaseModel):
    summary: str
    timeline: list[TimelineOut]
    root_cause: str
    contributing_factors: list[str]
    went_well: list[str]
    actions: list[ActionOut]


class IncidentOut(SummaryOut):
    description: str
    affected_groups: list[str]
    policy: str
    policy_digest: str
    tier: str | None
    opened_by: str | None
    acknowledged_at: str | None
    acknowledged_by: str | None
    mitigated_at: str | None
    mitigated_by: str | None
    resolved_at: str | None
    resolved_by: str | None
    reported_at: str | None
    reported_by: str | None
    report_reference: str
    close_requested_by: str | None
    close_requested_at: str | None
    closed_at: str | None
    closed_by: str | None
    deadlines: list[DeadlineOut]
    playbook: list[StepOut]
    alerts: list[AlertRef]
    links: list[LinkOut]
    notes: list[NoteOut]
    postmortem: PostmortemOut | None
    postmortem_by: str | None
    postmortem_at: str | None
    postmortem_digest: str | None
    escalation: list[str]
    closers: list[str]
    postmortem_required: bool
    second_person_required: bool


class EscalationOut(BaseModel):
    incident: int
    step: str
    due: str | None
    role: str | None
    notification: str
    deliveries: int
    problems: list[str]


# --------------------------------------------------------------------------- routes


def _out(s: Any, inc: Any) -> dict:
    from assay.operate import incident_to_dict

    return incident_to_dict(s, inc)


@router.get("/incidents", response_model=list[SummaryOut], summary="Incidents, newest first")
def list_incidents(request: Request, state: State | None = Query(None),
                   model: str | None = Query(None, min_length=1, max_length=200),
                   overdue: bool = Query(False, description="Only those with an overdue step"),
                   principal: Principal = Depends(current_principal)) -> list[dict]:
    from assay.operate import list_incidents as domain_list

    with reading(request) as s:
        return domain_list(s, state=state, model=model, overdue=overdue)


@router.post("/incidents", response_model=IncidentOut, status_code=201,
             summary="Open an incident by hand or from monitoring alerts")
def open_incident(body: OpenIn, request: Request,
                  principal: Principal = Depends(current_principal)) -> dict:
    """Deadlines come from the policy's ``incidents`` section for the version's tier and the
    severity, counted from ``aware_at``; the roles the playbook informs are notified."""
    from assay.operate import open_incident as domain_open

    require_roles(principal, *HANDLERS)
    with acting(request, principal) as (s, actor):
        s.info["settings"] = request.app.state.settings
        inc = domain_open(s, actor, body.model, body.version, title=body.title,
                          severity=body.severity, kind=body.kind, description=body.description,
                          serious=body.serious, aware_at=body.aware_at, alerts=body.alerts,
                          groups=body.groups, owner=body.owner, policy=body.policy,
                          tier=body.tier)
        return _out(s, inc)


@router.post("/incidents/escalate", response_model=list[EscalationOut],
             summary="Escalate every overdue step not yet escalated (once each)")
def escalate(request: Request, principal: Principal = Depends(current_principal)) -> list:
    """The service does this by itself every ``ASSAY_ESCALATION_INTERVAL`` seconds."""
    from assay.operate import escalate_overdue

    require_roles(principal, *ESCALATORS)
    with acting(request, principal) as (s, actor):
        return escalate_overdue(s, actor=actor)


@router.get("/incidents/{incident_id}", response_model=IncidentOut, summary="One incident")
def get_incident(request: Request, incident_id: int = INCIDENT_ID,
                 principal: Principal = Depends(current_principal)) -> dict:
    from assay.operate import show_incident

    with reading(request) as s:
        return show_incident(s, incident_id)


def _transition(name: str, roles: tuple[str, ...] | None, summary: str) -> None:
    @router.post(f"/incidents/{{incident_id}}/{name}", response_model=IncidentOut,
                 summary=summary, name=f"incident_{name}")
    def route(request: Request, body: NoteIn | None = None, incident_id: int = INCIDENT_ID,
              principal: Principal = Depends(current_principal)) -> dict:
        import assay.operate as op

        fn = {"ack": op.acknowledge_incident, "mitigate": op.mitigate_incident,
              "resolve": op.resolve_incident, "close": op.close_incident}[name]
        if roles is not None:
            require_roles(principal, *roles)
        with acting(request, principal) as (s, actor):
            return _out(s, fn(s, actor, incident_id, note=(body or NoteIn()).note))


_transition("ack", HANDLERS, "Acknowledge an open incident (take it in hand)")
_transition("mitigate", HANDLERS, "Record that the harm is contained")
_transition("resolve", RESOLVERS, "Record that the cause is dealt with (never by the "
                                  "version's registrant)")
# who may close is the policy's (``closers``), checked by the domain with the second person
_transition("close", None, "Close a resolved incident (a post-mortem and a second, "
                           "independent person where the policy asks)")


@router.post("/incidents/{incident_id}/update", response_model=IncidentOut,
             summary="Record a playbook step, evidence, a link, a note or a new severity")
def update(body: UpdateIn, request: Request, incident_id: int = INCIDENT_ID,
           principal: Principal = Depends(current_principal)) -> dict:
    from assay.operate import update_incident
    from assay.operate.incidents import EvidenceFile

    require_roles(principal, *HANDLERS)
    with acting(request, principal) as (s, actor):
        s.info["settings"] = request.app.state.settings
        inc = update_incident(
            s, actor, incident_id, step=body.step, done=body.done,
            evidence=[EvidenceFile(e.name, digest=e.digest) for e in body.evidence],
            link_mitigation=body.link_mitigation, link_waiver=body.link_waiver,
            link_release=body.link_release, note=body.note, severity=body.severity)
        return _out(s, inc)


@router.post("/incidents/{incident_id}/report", response_model=IncidentOut,
             summary="Record that the incident was reported to the authority")
def report(body: ReportIn, request: Request, incident_id: int = INCIDENT_ID,
           principal: Principal = Depends(current_principal)) -> dict:
    from assay.operate import record_report

    require_roles(principal, *REPORTERS)
    with acting(request, principal) as (s, actor):
        return _out(s, record_report(s, actor, incident_id, reference=body.reference,
                                     at=body.at))


@router.post("/incidents/{incident_id}/postmortem", response_model=IncidentOut,
             summary="Record the incident's post-mortem (root cause required)")
def postmortem(body: PostmortemIn, request: Request, incident_id: int = INCIDENT_ID,
               principal: Principal = Depends(current_principal)) -> dict:
    from assay.operate import record_postmortem

    require_roles(principal, *HANDLERS)
    with acting(request, principal) as (s, actor):
        s.info["settings"] = request.app.state.settings
        doc = body.model_dump(exclude_unset=True)
        return _out(s, record_postmortem(s, actor, incident_id, doc, source="body"))
