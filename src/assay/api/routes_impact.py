"""The impact record: the assessment (theory of impact, versioned), KPIs and their
observations, the impact register and stakeholder feedback of a model version.

Reading needs a signed-in user; writing needs one of :data:`assay.impact.EDITORS`
(business owner, data scientist, risk officer, admin), enforced in :mod:`assay.impact`
and answered 403; every write is audited there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from assay.api.deps import Principal, acting, current_principal, reading

router = APIRouter(prefix="/api", tags=["impact"])

NAME = Path(..., min_length=1, max_length=200, description="Model name")
VERSION = Path(..., min_length=1, max_length=100, description="Version string")
KPI = Path(..., min_length=1, max_length=100, description="KPI name")
BASE = "/models/{name}/versions/{version}/impact"
TEXT = Field("", max_length=5000)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssessmentIn(_In):
    """The theory of impact as YAML text (validated with line numbers) or as an object."""

    yaml: str | None = Field(None, max_length=200_000, description="Theory of impact (YAML)")
    theory: dict[str, Any] | None = Field(None, description="Theory of impact (object)")

    @model_validator(mode="after")
    def _one(self) -> AssessmentIn:
        if (self.yaml is None) == (self.theory is None):
            raise ValueError("give exactly one of 'yaml' or 'theory'")
        return self


class KpiIn(_In):
    name: str = Field(..., min_length=1, max_length=100)
    direction: Literal["increase", "decrease"]
    unit: str = Field("", max_length=40)
    baseline: float | None = None
    target: float | None = None
    guardrail: float | None = None
    owner: str = Field("", max_length=100)
    cadence: Literal["daily", "weekly", "monthly"] = "monthly"
    source: Literal["observations", "monitoring", "feedback"] = "observations"
    metric: str = Field("", max_length=100)
    by: str = Field("", max_length=100)
    description: str = TEXT


class ObservationIn(_In):
    value: float
    at: datetime | None = None
    group: str = Field("", max_length=200)
    source: str = Field("", max_length=300)
    note: str = TEXT


class RegisterIn(_In):
    title: str = Field(..., min_length=1, max_length=300)
    kind: Literal["positive", "negative"]
    likelihood: int = Field(..., ge=1, le=5)
    severity: int = Field(..., ge=1, le=5)
    stakeholders: list[str] = Field(default_factory=list, max_length=50)
    groups: list[str] = Field(default_factory=list, max_length=50)
    measurement: str = TEXT
    status: Literal["anticipated", "monitoring", "materialised", "mitigated",
                    "closed"] = "anticipated"


class LinksIn(_In):
    risks: list[str] = Field(default_factory=list, max_length=50)
    kpis: list[str] = Field(default_factory=list, max_length=50)
    incidents: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        default_factory=list, max_length=50,
        description="Ids of incidents of this model version")
    status: Literal["anticipated", "monitoring", "materialised", "mitigated",
                    "closed"] | None = None


class FeedbackIn(_In):
    channel: Literal["complaint", "survey", "appeal", "email", "phone", "web", "other"]
    category: str = Field(..., min_length=1, max_length=100)
    text: str = TEXT
    group: str = Field("", max_length=200)
    received_at: datetime | None = None
    register_id: int | None = Field(None, ge=1)


@router.get(BASE, summary="The impact record: assessment, KPIs, register, feedback")
def get_record(request: Request, name: str = NAME, version: str = VERSION,
               principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.impact.report import gather

    with reading(request) as s:
        s.info["settings"] = request.app.state.settings  # recorded analyses are evidence
        return gather(s, name, version)


@router.get(BASE + "/assessment", summary="The current assessment and its revisions")
def get_assessment(request: Request, name: str = NAME, version: str = VERSION,
                   principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.impact import assessment_history, current_assessment

    with reading(request) as s:
        return {"current": current_assessment(s, name, version),
                "revisions": assessment_history(s, name, version)}


@router.put(BASE + "/assessment", status_code=201,
            summary="Save a new revision of the theory of impact")
def put_assessment(body: AssessmentIn, request: Request, name: str = NAME,
                   version: str = VERSION,
                   principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.impact import save_assessment

    with acting(request, principal) as (s, actor):
        theory = body.yaml if body.yaml is not None else body.theory
        return save_assessment(s, actor, name, version, theory or {}, source="api")


@router.get(BASE + "/kpis", summary="KPIs with their values over time")
def get_kpis(request: Request, name: str = NAME, version: str = VERSION,
             principal: Principal = Depends(current_principal)) -> list[dict[str, Any]]:
    from assay.impact import list_kpis

    with reading(request) as s:
        return list_kpis(s, name, version)


@router.post(BASE + "/kpis", status_code=201, summary="Define a KPI")
def post_kpi(body: KpiIn, request: Request, name: str = NAME, version: str = VERSION,
             principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.impact import add_kpi

    with acting(request, principal) as (s, actor):
        return add_kpi(s, actor, name, version, **body.model_dump())


@router.post(BASE + "/kpis/{kpi}/observations", status_code=201,
             summary="Record a KPI value (a guardrail breach raises a monitoring alert)")
def post_observation(body: ObservationIn, request: Request, name: str = NAME,
                     version: str = VERSION, kpi: str = KPI,
                     principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.impact import observe

    with acting(request, principal) as (s, actor):
        return observe(s, actor, name, version, kpi, body.value, at=body.at, group=body.group,
                       source=body.source, note=body.note)


@router.post(BASE + "/kpis/evaluate",
             summary="Check the computed KPIs' latest windows against their guardrails "
                     "(a breach raises a monitoring alert)")
def evaluate_kpis(request: Request, name: str = NAME, version: str = VERSION,
                  principal: Principal = Depends(current_principal)) -> list[dict[str, Any]]:
    from assay.impact import evaluate

    with acting(request, principal) as (s, actor):
        return evaluate(s, actor, name, version)


@router.get(BASE + "/register", summary="The impact register")
def get_register(request: Request, name: str = NAME, version: str = VERSION,
                 principal: Principal = Depends(current_principal)) -> list[dict[str, Any]]:
    from assay.impact import list_register

    with reading(request) as s:
        return list_register(s, name, version)


@router.post(BASE + "/register", status_code=201, summary="Add an impact register entry")
def post_register(body: RegisterIn, request: Request, name: str = NAME,
                  version: str = VERSION,
                  principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.impact import add_register_entry

    with acting(request, principal) as (s, actor):
        return add_register_entry(s, actor, name, version, **body.model_dump())


@router.post(BASE + "/register/{entry}/links", summary="Link an entry to risks, KPIs, "
             "incidents (and set its status)")
def post_links(body: LinksIn, request: Request, name: str = NAME, version: str = VERSION,
               entry: int = Path(..., ge=1, le=2**31 - 1),
               principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.impact import link_register_entry

    with acting(request, principal) as (s, actor):
        return link_register_entry(s, actor, name, version, entry, **body.model_dump())


@router.get(BASE + "/feedback", summary="Stakeholder feedback, oldest first")
def get_feedback(request: Request, name: str = NAME, version: str = VERSION,
                 principal: Principal = Depends(current_principal)) -> list[dict[str, Any]]:
    from assay.impact import list_feedback

    with reading(request) as s:
        return list_feedback(s, name, version)


@router.post(BASE + "/feedback", status_code=201, summary="Record stakeholder feedback")
def post_feedback(body: FeedbackIn, request: Request, name: str = NAME,
                  version: str = VERSION,
                  principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.impact import add_feedback

    with acting(request, principal) as (s, actor):
        return add_feedback(s, actor, name, version, **body.model_dump())
