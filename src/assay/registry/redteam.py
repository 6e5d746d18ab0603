"""The red-team record: findings people enter for a model version, and their resolution.

A finding says which technique was tried (evasion, extraction, poisoning,
prompt injection...), how severe the weakness is (``low`` to ``critical``),
whether the attack ``succeeded``, ``partially`` succeeded or ``failed``, and
the evidence: a file kept in the evidence store by digest, a note, or both.

Who may do what (separation of duties):

* record a finding: a validator, risk officer, security officer or admin,
  never the version's own developer (who registered it): the people who
  attack a model are independent of the people who built it;
* resolve a finding (the weakness was fixed, or the risk accepted, with a
  reason): the same roles, never the version's developer;
* read findings: every role (the developer must see what to fix; the
  auditor reads everything).

Every change is an audit event in the same transaction; a refused call
changes nothing. The ``security.red_team`` check judges
:func:`findings_for` of the version being certified.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.checks.security import SEVERITIES
from assay.errors import InputError, NotFoundError, PermissionDenied, choice_error
from assay.registry.models import get_version
from assay.registry.policies import settings_of
from assay.registry.redteam_tables import RedTeamFinding
from assay.registry.roles import ADMIN, RISK_OFFICER, ROLES, SECURITY, VALIDATOR
from assay.registry.tables import ModelVersion, User
from assay.registry.users import require_role
from assay.store.audit import append_event
from assay.store.db import as_utc, utcnow

#: May record and resolve findings (never on a version they developed).
RED_TEAMERS: tuple[str, ...] = (VALIDATOR, RISK_OFFICER, SECURITY, ADMIN)
#: May read findings: everyone holding a role.
RED_TEAM_READERS: tuple[str, ...] = ROLES
#: Whether the attack worked.
OUTCOMES: tuple[str, ...] = ("succeeded", "partial", "failed")
#: A finding's state.
STATUSES: tuple[str, ...] = ("open", "resolved", "accepted")
MAX_TECHNIQUE = 200
MAX_TEXT = 20_000


def _developer(actor: User, mv: ModelVersion) -> bool:
    return mv.created_by == actor.id


def _independent(actor: User, mv: ModelVersion, what: str) -> None:
    if _developer(actor, mv):
        raise PermissionDenied(
            f"user '{actor.username}' registered {mv.model.name}@{mv.version} and may not "
            f"{what}: red-team findings come from someone independent of the model's "
            "developer")


def _text(field: str, value: Any, *, limit: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InputError(f"{{{field}}}: expected text, got {type(value).__name__}",
                         fields=[field])
    value = value.strip()
    if required and not value:
        raise InputError(f"{{{field}}}: expected a non-empty text", fields=[field])
    if len(value) > limit:
        raise InputError(f"{{{field}}}: expected at most {limit} characters, got {len(value)}",
                         fields=[field])
    return value


def _audit(session: Session, actor: User, action: str, f: RedTeamFinding,
           payload: dict[str, Any], evidence: dict[str, str] | None = None) -> None:
    append_event(session, actor=actor, action=action, subject_type="red_team_finding",
                 subject_id=f.id,
                 payload={"model": f.version.model.name, "version": f.version.version,
                          **payload}, evidence=evidence)


def record_finding(session: Session, actor: User, model: str, version: str, *,
                   technique: str, severity: str, outcome: str, note: str = "",
                   evidence: str | os.PathLike[str] | bytes | None = None,
                   evidence_name: str | None = None, evidence_digest: str | None = None,
                   settings: Any = None, now: datetime | None = None) -> RedTeamFinding:
    """Record a red-team finding on ``model`` ``version``; returns it (status ``open``).

    ``evidence`` is a file (path) or its bytes, stored in the evidence store by
    digest, or ``evidence_digest`` names a file already there (uploaded over the
    API); ``note`` is free text. At least one of evidence and note is required.
    """
    require_role(actor, *RED_TEAMERS, action="record red-team findings")
    mv = get_version(session, model, version)
    _independent(actor, mv, "record red-team findings on it")
    technique = _text("technique", technique, limit=MAX_TECHNIQUE, required=True)
    if any(ch in technique for ch in "\r\n"):
        raise InputError("{technique}: expected one line", fields=["technique"])
    if severity not in SEVERITIES:
        raise _choice("severity", severity, SEVERITIES)
    if outcome not in OUTCOMES:
        raise _choice("outcome", outcome, OUTCOMES)
    note = _text("note", note, limit=MAX_TEXT)
    digest = name = None
    if evidence is not None:
        from assay.evidence import store_artifact

        if not isinstance(evidence, bytes | bytearray):
            p = Path(evidence)
            if not p.is_file():
                raise InputError(f"{{evidence}}: {p}: file not found", fields=["evidence"])
            name = evidence_name or p.name
        else:
            name = evidence_name or "evidence"
        digest = store_artifact(settings_of(session, settings), evidence)
        name = _text("evidence", name, limit=300)
    elif evidence_digest is not None:
        from assay.evidence import has_artifact, normalise_digest

        digest = normalise_digest(evidence_digest)
        if not has_artifact(settings_of(session, settings), digest):
            raise InputError(f"{{evidence}}: {digest} is not in the evidence store (upload "
                             "the file first)", fields=["evidence"])
        name = _text("evidence", evidence_name or "evidence", limit=300)
    if not note and digest is None:
        raise InputError("a finding needs its evidence: give {evidence} (a file) or {note}",
                         fields=["evidence", "note"])
    f = RedTeamFinding(model_version_id=mv.id, technique=technique, severity=severity,
                       outcome=outcome, note=note, evidence_digest=digest,
                       evidence_name=name, status="open", recorded_by=actor.id,
                       recorded_at=as_utc(now) if now is not None else utcnow(),
                       resolution="")
    session.add(f)
    session.flush()
    session.refresh(f)
    _audit(session, actor, "red_team.record", f,
           {"technique": technique, "severity": severity, "outcome": outcome,
            "note": note, "evidence_name": name},
           evidence={"evidence": digest} if digest else None)
    return f


def _choice(field: str, given: Any, choices: tuple[str, ...]) -> InputError:
    err = choice_error("{" + field + "}", given, choices)
    return InputError(err.template, fields=[field])


def get_finding(session: Session, finding_id: int) -> RedTeamFinding:
    f = (session.get(RedTeamFinding, int(finding_id))
         if isinstance(finding_id, int) and 0 < finding_id < 2**31 else None)
    if f is None:
        raise NotFoundError(f"unknown red-team finding #{finding_id} "
                            "(see `assay redteam list MODEL VERSION`)")
    return f


def resolve_finding(session: Session, actor: User, finding_id: int, *, resolution: str,
                    status: str = "resolved", now: datetime | None = None) -> RedTeamFinding:
    """Close an open finding as ``resolved`` (fixed) or ``accepted`` (risk accepted)."""
    require_role(actor, *RED_TEAMERS, action="resolve red-team findings")
    f = get_finding(session, finding_id)
    _independent(actor, f.version, "resolve its red-team findings")
    if status not in ("resolved", "accepted"):
        raise _choice("status", status, ("resolved", "accepted"))
    resolution = _text("resolution", resolution, limit=MAX_TEXT, required=True)
    if f.status != "open":
        from assay.errors import ConflictError

        raise ConflictError(f"red-team finding #{f.id} is already {f.status}")
    f.status = status
    f.resolved_by = actor.id
    f.resolved_at = as_utc(now) if now is not None else utcnow()
    f.resolution = resolution
    session.flush()
    session.refresh(f)
    _audit(session, actor, "red_team.resolve", f, {"status": status,
                                                    "resolution": resolution})
    return f


def findings_for(session: Session, model: str, version: str) -> list[dict[str, Any]]:
    """Every finding of the version, oldest first, as dicts (what certify's ``red_team``
    takes). No role check: the caller is a face that has checked it, or certification."""
    mv = get_version(session, model, version)
    rows = session.scalars(select(RedTeamFinding)
                           .where(RedTeamFinding.model_version_id == mv.id)
                           .order_by(RedTeamFinding.id))
    return [r.to_dict() for r in rows]


def list_findings(session: Session, actor: User, model: str, version: str) -> list[dict[str, Any]]:
    """:func:`findings_for`, for someone holding a role."""
    require_role(actor, *RED_TEAM_READERS, action="read red-team findings")
    return findings_for(session, model, version)
