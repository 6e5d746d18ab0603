"""Releases: record, promote, roll back, who serves where, champion–challenger.

Every route calls :mod:`assay.operate` with the authenticated user as the
actor; roles, separation of duties, the deployment gate, the release rule and
the order of steps are enforced there and come back as 403 / 409 / 400.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from assay.api.deps import Principal, acting, current_principal, reading

router = APIRouter(prefix="/api", tags=["releases"])

NAME = Path(..., min_length=1, max_length=200, description="Model name")
VERSION = Path(..., min_length=1, max_length=100, description="Version string")
ENVIRONMENT = Field("production", min_length=1, max_length=40,
                    pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$",
                    description="Environment (the policy tier's release environments)")
AT = Field(None, description="When it happened (UTC; default now; not in the future)")
NOTE = Field("", max_length=5000, description="Why: ticket, change or incident number")


class RecordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: str = ENVIRONMENT
    mode: Literal["shadow", "canary", "full"]
    share: float | None = Field(None, gt=0, lt=1, description="A canary's traffic share")
    at: datetime | None = AT
    note: str = NOTE


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: str = ENVIRONMENT
    to: Literal["canary", "full"] = "full"
    share: float | None = Field(None, gt=0, lt=1, description="The canary's new share")
    at: datetime | None = AT
    note: str = NOTE


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: str = ENVIRONMENT
    to: str = Field(..., min_length=1, max_length=100,
                    description="The version to serve full again")
    at: datetime | None = AT
    note: str = NOTE


class ReleaseEventOut(BaseModel):
    """One release step and the gate decision (and release rule) it rested on."""

    id: int
    environment: str
    action: Literal["record", "promote", "rollback"]
    version: str
    mode: Literal["shadow", "canary", "full"]
    share: float | None
    previous_mode: str | None
    at: str | None
    recorded_at: str | None
    actor: str | None
    note: str
    gate_digest: str = Field(description="SHA-256 of the gate decision's canonical JSON")
    gate: dict[str, Any]
    rule: dict[str, Any] | None = Field(
        None, description="The release rule's verdict, with its figures (promotions to full)")


class Slot(BaseModel):
    version: str
    share: float | None
    since: str | None
    event: int


class EnvironmentOut(BaseModel):
    environment: str
    full: Slot | None
    canary: Slot | None
    shadow: list[Slot]
    previous: list[str] = Field(description="Versions that served full before, newest first")
    last_event_at: str | None


class ReleaseStatusOut(BaseModel):
    """Who serves where, and the release history (newest first)."""

    model: str
    environments: list[EnvironmentOut]
    history: list[ReleaseEventOut]


class MetricOut(BaseModel):
    metric: str
    group: str | None
    champion: float | None
    challenger: float | None
    difference: float | None = Field(description="challenger - champion")
    ci: list[float] | None
    method: str
    p_value: float | None
    se: float | None


class ComparisonOut(BaseModel):
    """Champion against challenger over one period."""

    model: str
    champion: str
    challenger: str
    since: str
    until: str
    confidence: float
    rows: dict[str, int]
    paired: bool
    metrics: list[MetricOut]
    groups: list[MetricOut]
    tests: dict[str, Any] = Field(description="DeLong and McNemar, when rows are paired")
    notes: list[str]


@router.post("/models/{name}/versions/{version}/releases", response_model=ReleaseEventOut,
             status_code=201, summary="Record that a version started serving (gate consulted)")
def record_release(body: RecordIn, request: Request, name: str = NAME, version: str = VERSION,
                   principal: Principal = Depends(current_principal)) -> dict:
    from assay.operate import record

    with acting(request, principal) as (s, actor):
        s.info["settings"] = request.app.state.settings  # the gate reads evidence there
        return record(s, actor, name, version, environment=body.environment, mode=body.mode,
                      share=body.share, at=body.at, note=body.note)


@router.post("/models/{name}/versions/{version}/releases/promote",
             response_model=ReleaseEventOut, status_code=201,
             summary="Promote a version (shadow -> canary -> full); the release rule judges "
                     "a promotion to full")
def promote_release(body: PromoteIn, request: Request, name: str = NAME,
                    version: str = VERSION,
                    principal: Principal = Depends(current_principal)) -> dict:
    from assay.operate import promote

    with acting(request, principal) as (s, actor):
        s.info["settings"] = request.app.state.settings  # the gate reads evidence there
        return promote(s, actor, name, version, environment=body.environment, to=body.to,
                       share=body.share, at=body.at, note=body.note)


@router.post("/models/{name}/releases/rollback", response_model=ReleaseEventOut,
             status_code=201,
             summary="Serve an earlier full version again (its approval must be valid)")
def rollback_release(body: RollbackIn, request: Request, name: str = NAME,
                     principal: Principal = Depends(current_principal)) -> dict:
    from assay.operate import rollback

    with acting(request, principal) as (s, actor):
        s.info["settings"] = request.app.state.settings  # the gate reads evidence there
        return rollback(s, actor, name, environment=body.environment, to=body.to,
                        at=body.at, note=body.note)


@router.get("/models/{name}/releases", response_model=ReleaseStatusOut,
            summary="Who serves where, per environment, and the release history")
def release_status(request: Request, name: str = NAME,
                   principal: Principal = Depends(current_principal)) -> dict:
    from assay.operate import release_status as status

    with reading(request) as s:
        return status(s, name)


@router.get("/models/{name}/compare", response_model=ComparisonOut,
            summary="Champion against challenger on their monitoring data")
def compare_versions(
    request: Request, name: str = NAME,
    champion: str = Query(..., min_length=1, max_length=100, description="Incumbent version"),
    challenger: str = Query(..., min_length=1, max_length=100,
                            description="Version that would replace it"),
    since: date | None = Query(None, description="First day (default: 30 days before until)"),
    until: date | None = Query(None, description="Last day, inclusive (default: today)"),
    principal: Principal = Depends(current_principal),
) -> dict:
    from assay.operate import compare

    with reading(request) as s:
        return compare(s, name, champion, challenger, since=since, until=until).to_dict()
