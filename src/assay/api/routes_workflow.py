"""Approval workflow: submit, sign off, reject, comment, waive, review, status, gate, queue.

Every route calls :mod:`assay.workflow.service` with the authenticated user as
the actor; the rules (roles per stage, separation of duties, stage order,
certification gate, stale revisions) are enforced there and come back as
403 / 409 errors.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from assay.api.deps import POLICY_NAME, Principal, acting, current_principal, reading
from assay.workflow import service as wf

router = APIRouter(prefix="/api", tags=["workflow"])

NAME = Path(..., min_length=1, max_length=200, description="Model name")
VERSION = Path(..., min_length=1, max_length=100, description="Version string")
STAGE = Path(..., min_length=1, max_length=100, description="Stage id")
TEXT = 5000


class SubmitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: str | None = Field(None, max_length=100, pattern=POLICY_NAME,
                               description="Shipped policy name; default: the version's")


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str | None = Field(None, max_length=40, description="Role to sign as, if several")
    conditions: list[str] = Field(default_factory=list, max_length=50)
    expires: date | None = Field(None, description="Approval valid until (YYYY-MM-DD)")
    comment: str | None = Field(None, max_length=TEXT)
    documents: dict[str, str] | None = Field(
        None, max_length=50, description="Documents as evidence: name -> stored digest")
    expected_revision: int | None = Field(
        None, ge=1, le=2**31 - 1,
        description="Submission revision the decision was made on; 409 if it moved on")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(..., min_length=1, max_length=TEXT)
    role: str | None = Field(None, max_length=40)
    expected_revision: int | None = Field(None, ge=1, le=2**31 - 1)


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(..., min_length=1, max_length=TEXT)
    stage: str | None = Field(None, max_length=100)


class WaiverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    justification: str = Field(..., min_length=1, max_length=TEXT)
    expires: date = Field(..., description="Waiver valid until (YYYY-MM-DD)")
    check_id: str | None = Field(None, max_length=200, description="Waive one failed check only")
    policy: str | None = Field(None, max_length=100, pattern=POLICY_NAME)


class AttestationRef(BaseModel):
    """A signed attestation (DSSE envelope) kept in the evidence store."""

    kind: str = Field(description="certification, stage_decision, gate_decision, "
                                  "monitoring_window")
    digest: str = Field(description="SHA-256 of the envelope in the evidence store")
    keyid: str = Field(description="SHA-256 of the signing key's DER SubjectPublicKeyInfo")
    predicate_type: str
    ref: str | None = None


class Gate(BaseModel):
    """May this model version be deployed now?"""

    allowed: bool
    reasons: list[str] = Field(description="Why not (empty when allowed)")
    evidence: dict[str, str] = Field(description="Digests the decision rests on")
    model: str
    version: str
    submission_id: int | None
    state: str | None
    approved_until: str | None
    conditions: list[str]
    notes: list[str]
    waived_until: str | None = Field(
        None, description="When the certification passes only by waivers: the earliest "
        "expiry among them, after which the gate blocks")
    attestations: list[AttestationRef] = Field(
        default_factory=list, description="Signed attestations the decision rests on: the "
        "certification it used and the submission's stage decisions")
    attestation: AttestationRef | None = Field(
        None, description="This decision, signed by assay's service key and stored")


class Action(BaseModel):
    """The record an action wrote."""

    id: int
    kind: str
    model: str
    version: str
    stage: str | None = None
    actor: str
    at: str | None = None
    revision: int | None = None
    details: dict[str, Any] = {}


def _end_of_day(d: date | None) -> datetime | None:
    return None if d is None else datetime.combine(d, time(23, 59, 59), tzinfo=UTC)


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat()


def _revision(session, model: str, version: str) -> int | None:
    from assay.registry import get_version

    sub = wf.latest_submission(session, get_version(session, model, version).id)
    return sub.revision if sub is not None else None


@router.post("/models/{name}/versions/{version}/submit", response_model=Action, status_code=201,
             summary="Submit a version for approval (data scientist)")
def submit(body: SubmitIn, request: Request, name: str = NAME, version: str = VERSION,
           principal: Principal = Depends(current_principal)) -> dict:
    with acting(request, principal) as (s, actor):
        sub = wf.submit(s, actor, name, version, policy=body.policy)
        return {"id": sub.id, "kind": "submission", "model": name, "version": version,
                "stage": sub.current_stage, "actor": actor.username,
                "at": _iso(sub.submitted_at), "revision": sub.revision,
                "details": {"tier": sub.tier, "policy": sub.policy_name, "state": sub.state}}


@router.post("/models/{name}/versions/{version}/stages/{stage}/approve", response_model=Action,
             status_code=201, summary="Sign off a stage")
def approve(body: ApproveIn, request: Request, name: str = NAME, version: str = VERSION,
            stage: str = STAGE, principal: Principal = Depends(current_principal)) -> dict:
    with acting(request, principal) as (s, actor):
        so = wf.approve(s, actor, name, version, stage=stage, role=body.role,
                        conditions=body.conditions, expires=_end_of_day(body.expires),
                        comment=body.comment, documents=body.documents,
                        expected_revision=body.expected_revision,
                        settings=request.app.state.settings)
        return {"id": so.id, "kind": "approve", "model": name, "version": version,
                "stage": stage, "actor": actor.username, "at": _iso(so.created_at),
                "revision": _revision(s, name, version),
                "details": {"role": so.role, "conditions": body.conditions}}


@router.post("/models/{name}/versions/{version}/stages/{stage}/reject", response_model=Action,
             status_code=201, summary="Reject a stage (closes the submission)")
def reject(body: RejectIn, request: Request, name: str = NAME, version: str = VERSION,
           stage: str = STAGE, principal: Principal = Depends(current_principal)) -> dict:
    with acting(request, principal) as (s, actor):
        so = wf.reject(s, actor, name, version, stage=stage, reason=body.reason, role=body.role,
                       expected_revision=body.expected_revision)
        return {"id": so.id, "kind": "reject", "model": name, "version": version,
                "stage": stage, "actor": actor.username, "at": _iso(so.created_at),
                "revision": _revision(s, name, version),
                "details": {"role": so.role, "reason": so.reason}}


@router.post("/models/{name}/versions/{version}/comments", response_model=Action,
             status_code=201, summary="Comment on the latest submission")
def comment(body: CommentIn, request: Request, name: str = NAME, version: str = VERSION,
            principal: Principal = Depends(current_principal)) -> dict:
    with acting(request, principal) as (s, actor):
        c = wf.comment(s, actor, name, version, body.body, stage=body.stage)
        return {"id": c.id, "kind": "comment", "model": name, "version": version,
                "stage": c.stage, "actor": actor.username, "at": _iso(c.created_at),
                "details": {"body": c.body}}


@router.post("/models/{name}/versions/{version}/waivers", response_model=Action,
             status_code=201, summary="Waive a blocked certification or a failed check")
def waive(body: WaiverIn, request: Request, name: str = NAME, version: str = VERSION,
          principal: Principal = Depends(current_principal)) -> dict:
    with acting(request, principal) as (s, actor):
        w = wf.waive(s, actor, name, version, justification=body.justification,
                     expires=_end_of_day(body.expires), check_id=body.check_id,
                     policy=body.policy)
        return {"id": w.id, "kind": "waiver", "model": name, "version": version,
                "actor": actor.username, "at": _iso(w.granted_at),
                "details": {"scope": w.scope, "check_id": w.check_id,
                            "expires_at": _iso(w.expires_at)}}


@router.get("/models/{name}/versions/{version}/review", response_model=dict[str, Any],
            summary="What the current stage needs and who may sign it")
def review(request: Request, name: str = NAME, version: str = VERSION,
           principal: Principal = Depends(current_principal)) -> dict:
    with acting(request, principal) as (s, actor):
        return wf.review(s, name, version, actor=actor,
                         settings=request.app.state.settings).to_dict()


@router.get("/models/{name}/workflow", response_model=dict[str, Any],
            summary="Every version's stages, sign-offs, comments, conditions, waivers; "
                    "each version's timeline a page at a time")
def status(request: Request, name: str = NAME,
           timeline_offset: int = Query(0, ge=0, le=10**7,
                                        description="Skip this many timeline entries"),
           timeline_limit: int = Query(100, ge=1, le=1000,
                                       description="Timeline entries per version"),
           principal: Principal = Depends(current_principal)) -> dict:
    with reading(request) as s:
        out = wf.status(s, name, settings=request.app.state.settings).to_dict()
    for v in out["versions"]:
        v["timeline_total"] = len(v["timeline"])
        v["timeline_offset"] = timeline_offset
        v["timeline"] = v["timeline"][timeline_offset:timeline_offset + timeline_limit]
    return out


@router.get("/models/{name}/versions/{version}/gate", response_model=Gate,
            summary="Deployment gate: may this version be deployed now?")
def gate(request: Request, name: str = NAME, version: str = VERSION,
         principal: Principal = Depends(current_principal)) -> dict:
    with reading(request) as s:  # the decision is signed and kept as an attestation
        return wf.record_gate(s, name, version, settings=request.app.state.settings).to_dict()


@router.get("/models/{name}/versions/{version}/documents/{document_id}",
            summary="Download a document attached to a stage (as an attachment, sandboxed)",
            responses={200: {"content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}},
                "description": "The document's bytes"}})
def document(request: Request, name: str = NAME, version: str = VERSION,
             document_id: int = Path(..., ge=1, le=2**31 - 1),
             principal: Principal = Depends(current_principal)) -> Response:
    from assay.api.downloads import attachment
    from assay.workflow.documents import document_bytes

    with reading(request) as s:
        file_name, data = document_bytes(s, name, version, document_id,
                                         settings=request.app.state.settings)
    return attachment(data, file_name)


@router.get("/queue", response_model=list[dict[str, Any]],
            summary="Stages waiting for your sign-off, oldest first")
def queue(request: Request, principal: Principal = Depends(current_principal)) -> list[dict]:
    from assay.api.queue import my_queue

    with acting(request, principal) as (s, actor):
        return my_queue(s, actor, settings=request.app.state.settings)
