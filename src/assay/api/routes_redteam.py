"""The red-team record over HTTP: record, list and resolve findings of a model version.

Roles come from :mod:`assay.registry.redteam` (checked here first, and again by
the domain, which also refuses the version's own developer). Evidence files are
uploaded first (``POST /api/evidence``) and named here by their digest.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from assay.api.deps import Principal, acting, current_principal, require_roles
from assay.registry.redteam import RED_TEAM_READERS, RED_TEAMERS

router = APIRouter(prefix="/api", tags=["red team"])

NAME = Path(..., min_length=1, max_length=200, description="Model name")
VERSION = Path(..., min_length=1, max_length=100, description="Version string")
FINDING_ID = Path(..., ge=1, le=2**31 - 1, description="Finding id")
TEXT = 20_000


class FindingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    technique: str = Field(..., min_length=1, max_length=200,
                           description="What was tried (evasion, extraction, poisoning, ...)")
    severity: Literal["low", "medium", "high", "critical"]
    outcome: Literal["succeeded", "partial", "failed"]
    note: str = Field("", max_length=TEXT)
    evidence_digest: str | None = Field(None, min_length=64, max_length=80,
                                        description="sha256:... of a file uploaded with "
                                                    "POST /api/evidence")
    evidence_name: str | None = Field(None, min_length=1, max_length=300)


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: str = Field(..., min_length=1, max_length=TEXT)
    status: Literal["resolved", "accepted"] = "resolved"


class FindingOut(BaseModel):
    id: int
    model: str
    version: str
    technique: str
    severity: str
    outcome: str
    note: str
    evidence_digest: str | None
    evidence_name: str | None
    status: str
    recorded_by: str
    recorded_at: str | None
    resolved_by: str | None
    resolved_at: str | None
    resolution: str


@router.get("/models/{name}/versions/{version}/red-team", response_model=list[FindingOut],
            summary="The version's red-team findings, oldest first")
def list_findings(request: Request, name: str = NAME, version: str = VERSION,
                  principal: Principal = Depends(current_principal)) -> list[dict]:
    from assay.registry.redteam import list_findings as domain_list

    require_roles(principal, *RED_TEAM_READERS)
    with acting(request, principal) as (s, actor):
        return domain_list(s, actor, name, version)


@router.post("/models/{name}/versions/{version}/red-team", response_model=FindingOut,
             status_code=201, summary="Record a red-team finding (never by the developer)")
def record(body: FindingIn, request: Request, name: str = NAME, version: str = VERSION,
           principal: Principal = Depends(current_principal)) -> dict:
    from assay.registry.redteam import record_finding

    require_roles(principal, *RED_TEAMERS)
    with acting(request, principal) as (s, actor):
        s.info["settings"] = request.app.state.settings
        return record_finding(s, actor, name, version, technique=body.technique,
                              severity=body.severity, outcome=body.outcome, note=body.note,
                              evidence_digest=body.evidence_digest,
                              evidence_name=body.evidence_name).to_dict()


@router.post("/red-team/{finding_id}/resolve", response_model=FindingOut,
             summary="Resolve an open finding (fixed, or risk accepted)")
def resolve(body: ResolveIn, request: Request, finding_id: int = FINDING_ID,
            principal: Principal = Depends(current_principal)) -> dict:
    from assay.registry.redteam import resolve_finding

    require_roles(principal, *RED_TEAMERS)
    with acting(request, principal) as (s, actor):
        return resolve_finding(s, actor, finding_id, resolution=body.resolution,
                               status=body.status).to_dict()
