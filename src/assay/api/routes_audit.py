"""The audit trail: list with filters, verify the hash chain, export it."""

from __future__ import annotations

import io
import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from assay.api.deps import Principal, current_principal, reading, require_roles
from assay.registry.roles import AUDIT_READERS

router = APIRouter(prefix="/api/audit", tags=["audit"])

#: Roles that may read (list, filter) and export the whole trail: one rule, also used
#: by the web pages and the CLI.
EXPORTERS = AUDIT_READERS


class Event(BaseModel):
    seq: int
    created_at: str
    actor: str
    action: str
    subject_type: str
    subject_id: str
    payload: dict[str, Any]
    evidence: dict[str, str]
    prev_hash: str
    hash: str


class Verification(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str
    head_seq: int
    head_hash: str


def event_out(ev) -> dict[str, Any]:
    return {"seq": ev.seq, "created_at": ev.created_at, "actor": ev.actor, "action": ev.action,
            "subject_type": ev.subject_type, "subject_id": ev.subject_id,
            "payload": ev.payload or {}, "evidence": ev.evidence or {},
            "prev_hash": ev.prev_hash, "hash": ev.hash}


def query_events(session, *, actor: str | None, action: str | None, subject_type: str | None,
                 subject_id: str | None, before: int | None, limit: int) -> list[dict[str, Any]]:
    """Events newest first, ``before`` a sequence number for paging."""
    from sqlalchemy import or_, select

    from assay.store.audit import AuditEvent

    q = select(AuditEvent)
    if actor:
        q = q.where(AuditEvent.actor == actor)
    if action:
        q = q.where(AuditEvent.action.startswith(action[:-1], autoescape=True)
                    if action.endswith("*") else AuditEvent.action == action)
    if subject_type:
        q = q.where(AuditEvent.subject_type == subject_type)
    if subject_id:  # a model name also matches its versions ("name@version")
        q = q.where(or_(AuditEvent.subject_id == subject_id,
                        AuditEvent.subject_id.startswith(subject_id + "@", autoescape=True)))
    if before:
        q = q.where(AuditEvent.seq < before)
    q = q.order_by(AuditEvent.seq.desc()).limit(limit)
    return [event_out(ev) for ev in session.scalars(q)]


@router.get("", response_model=list[Event],
            summary="Audit events, newest first (auditor, compliance, risk officer, admin)")
def events(request: Request,
           actor: str | None = Query(None, max_length=100),
           action: str | None = Query(None, max_length=100,
                                      description="Exact action, or a prefix ending in *"),
           subject_type: str | None = Query(None, max_length=60),
           subject_id: str | None = Query(None, max_length=300),
           before: int | None = Query(None, ge=1, le=2**62, description="Only events before "
                                      "this sequence number (paging)"),
           limit: int = Query(100, ge=1, le=1000),
           principal: Principal = Depends(current_principal)) -> list[dict]:
    require_roles(principal, *AUDIT_READERS)
    with reading(request) as s:
        return query_events(s, actor=actor, action=action, subject_type=subject_type,
                            subject_id=subject_id, before=before, limit=limit)


@router.get("/verify", response_model=Verification,
            summary="Recompute the hash chain; name the first altered, removed or reordered "
                    "event (anyone: the answer holds counts and hashes, not events)")
def verify(request: Request, principal: Principal = Depends(current_principal)) -> dict:
    from assay.store.audit import verify_chain

    with reading(request) as s:
        return verify_chain(s).to_dict()


@router.get("/export", summary="The whole trail as JSON Lines, verified as it is written "
                               "(auditor, compliance, risk officer, admin)",
            responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                             "description": "One canonical event per line"}})
def export(request: Request, principal: Principal = Depends(current_principal)) -> Response:
    from assay.store.audit import export_jsonl, verify_chain

    require_roles(principal, *AUDIT_READERS)
    buf = io.StringIO()
    with reading(request) as s:
        written = export_jsonl(s, buf)
        result = verify_chain(s).to_dict()
    result["exported"] = written
    return Response(buf.getvalue(), media_type="application/x-ndjson",
                    headers={"Content-Disposition": 'attachment; filename="assay-audit.jsonl"',
                             "X-Assay-Chain": json.dumps(result, sort_keys=True)})
