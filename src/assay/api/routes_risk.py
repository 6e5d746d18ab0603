"""Risk: assessments (tiering), the risk register, mitigations and the ranked backlog.

Routes call :mod:`assay.risk.service` with the authenticated user as the
actor; roles and state transitions are checked there.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from assay.api.deps import POLICY_NAME, Principal, acting, current_principal, reading

router = APIRouter(prefix="/api", tags=["risk"])

NAME = Path(..., min_length=1, max_length=200, description="Model name")
VERSION = Path(..., min_length=1, max_length=100, description="Version string")
ID = Path(..., ge=1, le=2**31 - 1, description="Risk id")
MITIGATION_ID = Path(..., ge=1, le=2**31 - 1, description="Mitigation id")
TEXT = 5000


class CategoryIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    likelihood: int = Field(..., ge=1, le=5)
    impact: int = Field(..., ge=1, le=5)
    rationale: str = Field("", max_length=TEXT)
    controls: list[Any] = Field(default_factory=list, max_length=50)


class AssessmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    categories: dict[str, CategoryIn] = Field(
        ..., min_length=1, description="Likelihood and impact (1-5) per risk category")
    answers: dict[str, Any] | None = Field(None, description="Impact questionnaire answers")
    policy: str = Field("default", min_length=1, max_length=100, pattern=POLICY_NAME)
    questionnaire: str | None = Field(None, max_length=100, pattern=POLICY_NAME)
    notes: str = Field("", max_length=TEXT)


class RiskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., min_length=1, max_length=200)
    version: str | None = Field(None, max_length=100)
    title: str = Field(..., min_length=1, max_length=500)
    category: str = Field(..., min_length=1, max_length=100)
    likelihood: int = Field(..., ge=1, le=5)
    impact: int = Field(..., ge=1, le=5)
    owner: str | None = Field(None, max_length=100)
    description: str = Field("", max_length=TEXT)
    severity: str | None = Field(None, max_length=20)


class RiskPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_version: int | None = Field(None, ge=1, le=2**31 - 1)
    status: str | None = Field(None, max_length=40)
    likelihood: int | None = Field(None, ge=1, le=5)
    impact: int | None = Field(None, ge=1, le=5)
    severity: str | None = Field(None, max_length=20)
    owner: str | None = Field(None, max_length=100)
    title: str | None = Field(None, max_length=500)
    description: str | None = Field(None, max_length=TEXT)
    resolution: str | None = Field(None, max_length=TEXT)


class MitigationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(..., min_length=1, max_length=500)
    success_criteria: str = Field(..., min_length=1, max_length=TEXT)
    owner: str | None = Field(None, max_length=100)
    due_date: date | None = None
    estimated_cost: float = Field(0.0, ge=0, le=1e15)
    estimated_days: float = Field(0.0, ge=0, le=1e5)


class MitigationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str | None = Field(None, max_length=40)
    due_date: date | None = None
    estimated_cost: float | None = Field(None, ge=0, le=1e15)
    estimated_days: float | None = Field(None, ge=0, le=1e5)
    expected_version: int | None = Field(None, ge=1, le=2**31 - 1)


def assessment_out(a, model: str, version: str | None = None) -> dict[str, Any]:
    from assay.risk.service import assessment_record

    rec = assessment_record(a, model, version or "")
    return {"id": a.id, **rec, "record_digest": a.record_digest}


def _version_of(session, version_id: int) -> str:
    from assay.registry.tables import ModelVersion

    mv = session.get(ModelVersion, version_id)
    return mv.version if mv else ""


@router.post("/models/{name}/versions/{version}/risk-assessments",
             response_model=dict[str, Any], status_code=201,
             summary="Assess a version's risk; sets the model's tier and next review")
def assess(body: AssessmentIn, request: Request, name: str = NAME, version: str = VERSION,
           principal: Principal = Depends(current_principal)) -> dict:
    from assay.risk import service as risk

    categories = {k: v.model_dump() for k, v in body.categories.items()}
    with acting(request, principal) as (s, actor):
        a = risk.assess(s, actor, name, version, categories=categories, answers=body.answers,
                        policy=body.policy, questionnaire=body.questionnaire, notes=body.notes,
                        settings=request.app.state.settings, source="request body")
        return assessment_out(a, name, version)


@router.get("/models/{name}/risk-assessments", response_model=list[dict[str, Any]],
            summary="Every risk assessment of a model, oldest first")
def assessments(request: Request, name: str = NAME,
                principal: Principal = Depends(current_principal)) -> list[dict]:
    from assay.risk import service as risk

    with reading(request) as s:
        return [assessment_out(a, name, _version_of(s, a.model_version_id))
                for a in risk.list_assessments(s, name)]


@router.get("/risks", response_model=list[dict[str, Any]], summary="The risk register")
def risks(request: Request, model: str | None = Query(None, max_length=200),
          status: list[str] | None = Query(None, max_length=10),
          category: str | None = Query(None, max_length=100),
          principal: Principal = Depends(current_principal)) -> list[dict]:
    from assay.risk import service as risk

    with reading(request) as s:
        rows = risk.list_risks(s, model_name=model, status=status or None, category=category)
        return [risk.risk_dict(s, r) for r in rows]


@router.post("/risks", response_model=dict[str, Any], status_code=201,
             summary="Add a risk to the register")
def add_risk(body: RiskIn, request: Request,
             principal: Principal = Depends(current_principal)) -> dict:
    from assay.risk import service as risk

    with acting(request, principal) as (s, actor):
        r = risk.add_risk(s, actor, body.model, title=body.title, category=body.category,
                          likelihood=body.likelihood, impact=body.impact, owner=body.owner,
                          description=body.description, severity=body.severity,
                          version=body.version)
        return risk.risk_dict(s, r)


@router.get("/risks/{risk_id}", response_model=dict[str, Any], summary="One risk")
def get_risk(request: Request, risk_id: int = ID,
             principal: Principal = Depends(current_principal)) -> dict:
    from assay.risk import service as risk

    with reading(request) as s:
        return risk.risk_dict(s, risk.get_risk(s, risk_id))


@router.patch("/risks/{risk_id}", response_model=dict[str, Any],
              summary="Change a risk (status, scores, owner, resolution)")
def update_risk(body: RiskPatch, request: Request, risk_id: int = ID,
                principal: Principal = Depends(current_principal)) -> dict:
    from assay.risk import service as risk

    with acting(request, principal) as (s, actor):
        r = risk.update_risk(s, actor, risk_id, **body.model_dump(exclude_none=True))
        return risk.risk_dict(s, r)


@router.post("/risks/{risk_id}/mitigations", response_model=dict[str, Any], status_code=201,
             summary="Plan a mitigation of a risk")
def add_mitigation(body: MitigationIn, request: Request, risk_id: int = ID,
                   principal: Principal = Depends(current_principal)) -> dict:
    from assay.risk import service as risk

    with acting(request, principal) as (s, actor):
        m = risk.add_mitigation(s, actor, risk_id, **body.model_dump())
        return risk.mitigation_dict(s, m)


@router.patch("/mitigations/{mitigation_id}", response_model=dict[str, Any],
              summary="Change a mitigation (status, due date, estimates)")
def update_mitigation(body: MitigationPatch, request: Request,
                      mitigation_id: int = MITIGATION_ID,
                      principal: Principal = Depends(current_principal)) -> dict:
    from assay.risk import service as risk

    with acting(request, principal) as (s, actor):
        m = risk.update_mitigation(s, actor, mitigation_id, **body.model_dump(exclude_none=True))
        return risk.mitigation_dict(s, m)


@router.get("/risk-backlog", response_model=list[dict[str, Any]],
            summary="Open risks ranked by mitigation priority (formula in docs/risk.md)")
def backlog(request: Request, model: str | None = Query(None, max_length=200),
            policy: str = Query("default", min_length=1, max_length=100, pattern=POLICY_NAME),
            principal: Principal = Depends(current_principal)) -> list[dict]:
    from assay.risk import service as risk

    with reading(request) as s:
        return [i.to_dict() for i in risk.backlog(s, policy=policy, model_name=model)]
