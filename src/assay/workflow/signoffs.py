"""Sign-offs: approve or reject a stage, comments and documents, conditions of an
approval and how they are met."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from assay.errors import ConflictError, InputError, NotFoundError, PermissionDenied
from assay.workflow import _registry as reg
from assay.workflow._common import (
    _action,
    _audit,
    _aware,
    _clean,
    _documents,
    _flush,
    _iso,
    _now,
    _signoffs,
    _stages,
    _subject,
    latest_submission,
)
from assay.workflow.attestations import attest_signoff
from assay.workflow.deployment import (
    _drift_reasons,
    check_certification,
    latest_certification,
    unsigned_certification,
)
from assay.workflow.duties import (
    _enough_people,
    _one_role,
    _pick_role,
    _required_signers,
    _separation_of_duties,
)
from assay.workflow.notices import notify_awaiting
from assay.workflow.policy import load_policy_info
from assay.workflow.submissions import (
    _advance_model_status,
    _next_pending,
    _open_submission,
    _stage_for_action,
)
from assay.workflow.tables import (
    APPROVED,
    REJECTED,
    STAGE_APPROVED,
    STAGE_REJECTED,
    Comment,
    Condition,
    Document,
    SignOff,
    Submission,
)


def _risk_assessment_digest(session: Session, version: Any) -> str | None:
    return reg.risk_assessment_digest(session, version)



def _evidence_problems(session: Session, sub: Submission, stage: str, kinds: Iterable[str],
                       mv: Any, now: datetime, settings: Any | None
                       ) -> tuple[list[str], dict[str, str]]:
    """What the evidence kinds of a stage lack, and the digests of what is there."""
    problems: list[str] = []
    ev: dict[str, str] = {}
    for kind in kinds:
        if kind == "certification":
            cc = check_certification(session, mv.id, sub.policy_name, sub.tier,
                                     policy_digest=sub.policy_digest, now=now,
                                     settings=settings)
            if cc.ok:
                ev.update(cc.evidence())
            else:
                problems.append(cc.reason)
            unsigned = unsigned_certification(session, sub, cc)
            if unsigned:
                problems.append(unsigned)
        elif kind == "risk_assessment":
            digest = _risk_assessment_digest(session, mv)
            if digest:
                ev["risk_assessment"] = digest
            else:
                problems.append("no risk assessment of this version (assay risk assess)")
        elif kind in ("model_card", "reproduction"):
            problem, found = reg.card_evidence(session, mv, kind)
            if problem:
                problems.append(problem)
            else:
                ev.update(found)
        elif kind == "impact_assessment":
            digest = reg.impact_assessment_digest(session, mv)
            if digest:
                ev["impact_assessment"] = digest
            else:
                problems.append("no impact assessment of this version "
                                "(assay impact assess MODEL VERSION --file theory.yaml)")
        elif kind == "documents":
            docs = _documents(session, sub.id, stage)
            if docs:
                ev.update({f"document:{d.name}": d.digest for d in docs})
            else:
                problems.append(f"no document attached to stage '{stage}' "
                                "(approve or comment with --attach FILE)")
    return problems, ev


def _add_documents(session: Session, actor: Any, sub: Submission, stage: str,
                   documents: Mapping[str, str] | None, now: datetime) -> dict[str, str]:
    from assay.evidence import has_artifact, normalise_digest

    out: dict[str, str] = {}
    settings = reg.settings_of(session) if documents else None
    for name, given in (documents or {}).items():
        if not str(name).strip() or len(str(name)) > 300:
            raise InputError(f"document name {name!r}: expected 1 to 300 characters")
        try:
            digest = normalise_digest(str(given))
        except InputError:
            raise InputError(f"document '{name}': expected a digest 'sha256:<hex>', "
                             f"got {given!r}") from None
        if not has_artifact(settings, digest):
            raise InputError(f"document '{name}': {digest} is not in the evidence store "
                             "(store the file first, e.g. --attach FILE)")
        session.add(Document(submission_id=sub.id, stage=stage, name=str(name),
                             digest=str(digest), added_by=actor.id, added_at=now))
        out[f"document:{name}"] = str(digest)
    return out


@_action("approve")
def approve(session: Session, actor: Any, model_name: str, version: str, *, stage: str,
            role: str | None = None, conditions: Iterable[str] = (),
            expires: datetime | None = None, comment: str | None = None,
            documents: Mapping[str, str] | None = None, expected_revision: int | None = None,
            now: datetime | None = None, settings: Any | None = None) -> SignOff:
    """Sign off one stage. Completes the stage once every required role and the
    required number of distinct approvers have signed; completing the deployment
    stage approves the version for deployment."""
    now = _now(now)
    conditions = [c.strip() for c in conditions]
    if any(not c for c in conditions):
        raise InputError("a condition must not be empty")
    expires = _aware(expires)
    if expires is not None and expires <= now:
        raise InputError(f"approval expiry {_iso(expires)} is not in the future")
    mv = reg.get_version(session, model_name, version)
    sub = _open_submission(session, mv, model_name, version, expected_revision)
    st = _stage_for_action(session, sub, stage)
    all_signs = _signoffs(session, sub.id)
    signed = [s for s in all_signs if s.stage == stage]
    approvals = [s for s in signed if s.decision == "approve"]
    _separation_of_duties(actor, sub, st, mv, signed)
    as_role = _pick_role(actor, st, approvals, _one_role(actor, st, all_signs, role))
    _enough_people(actor, sub, st, _stages(session, sub.id), all_signs, _required_signers(sub))

    if stage == sub.deployment_stage:
        drift = _drift_reasons(session, sub, mv)
        if drift:
            raise ConflictError(f"stage '{stage}' cannot be approved: " + "; ".join(drift)
                                + "; submit the version again")
    doc_ev = _add_documents(session, actor, sub, stage, documents, now)
    _flush(session, "approve")
    problems, ev = _evidence_problems(session, sub, stage, st.evidence, mv, now, settings)
    if problems:
        raise ConflictError(f"stage '{stage}' cannot be approved: " + "; ".join(problems))
    ev.update(doc_ev)
    ev.setdefault("artifact", getattr(mv, "artifact_digest", None) or "")
    ev = {k: v for k, v in ev.items() if v}

    so = SignOff(submission_id=sub.id, stage=stage, user_id=actor.id, role=as_role,
                 decision="approve", expires_at=expires, evidence=ev, created_at=now)
    session.add(so)
    _flush(session, "approve")
    for cond in conditions:
        session.add(Condition(submission_id=sub.id, signoff_id=so.id, stage=stage, text=cond,
                              status="open", created_at=now))
    if _clean(comment):
        session.add(Comment(submission_id=sub.id, stage=stage, user_id=actor.id,
                            body=_clean(comment), created_at=now))

    approvals = [*approvals, so]
    done = (len({a.user_id for a in approvals}) >= st.approvers
            and set(st.roles) <= {a.role for a in approvals})
    payload: dict[str, Any] = {"submission": sub.id, "stage": stage, "role": as_role,
                               "conditions": conditions, "expires_at": _iso(expires),
                               "stage_complete": done}
    if done:
        st.status = STAGE_APPROVED
        st.completed_at = now
        _flush(session, "approve")
        sub.current_stage = _next_pending(session, sub.id)
        if stage == sub.deployment_stage:
            _grant_deployment(session, sub, mv, now)
            payload["approved_until"] = _iso(sub.expires_at)
            moved = _advance_model_status(session, mv, "approved",
                                          only_from=("proposed", "development", "validation"))
            if moved:
                payload["deployment_status"] = moved
    sub.updated_at = now  # bumps the row version: a concurrent action on this row loses
    _flush(session, "approve")
    attested = attest_signoff(session, so, sub, mv, actor, model_name, version,
                              conditions=conditions, stage_complete=done, settings=settings)
    if attested is not None:
        ev = {**ev, "attestation": attested.envelope_digest}
    _audit(session, actor, "workflow.approve", model_name, version, payload, ev)
    if done:
        notify_awaiting(session, actor, sub, model_name, version)
    return so


def _grant_deployment(session: Session, sub: Submission, mv: Any, now: datetime) -> None:
    info = load_policy_info(sub.policy_source)
    limit = now + timedelta(days=info.workflow.valid_days(sub.tier))
    explicit = [_aware(s.expires_at) for s in _signoffs(session, sub.id)
                if s.decision == "approve" and s.expires_at is not None]
    sub.state = APPROVED
    sub.approved_at = now
    sub.expires_at = min([limit, *explicit])
    cert = latest_certification(session, mv.id, sub.policy_name, sub.tier)
    sub.certification_id = cert.id if cert is not None else None



@_action("reject")
def reject(session: Session, actor: Any, model_name: str, version: str, *, stage: str,
           reason: str, role: str | None = None, expected_revision: int | None = None,
           now: datetime | None = None) -> SignOff:
    """Reject the current stage; this closes the submission (resubmit after fixing)."""
    now = _now(now)
    reason = _clean(reason)
    if not reason:
        raise InputError("a rejection needs a reason (--reason)")
    mv = reg.get_version(session, model_name, version)
    sub = _open_submission(session, mv, model_name, version, expected_revision)
    st = _stage_for_action(session, sub, stage)
    all_signs = _signoffs(session, sub.id)
    signed = [s for s in all_signs if s.stage == stage]
    _separation_of_duties(actor, sub, st, mv, signed)
    role = _one_role(actor, st, all_signs, role)
    held = [r for r in st.roles if r in actor.roles]
    if not held or (role is not None and role not in held):
        raise PermissionDenied(f"{actor.username} cannot reject stage '{stage}': it is signed by "
                               + " and ".join(st.roles))
    so = SignOff(submission_id=sub.id, stage=stage, user_id=actor.id, role=role or held[0],
                 decision="reject", reason=reason, evidence={}, created_at=now)
    session.add(so)
    st.status = STAGE_REJECTED
    st.completed_at = now
    sub.state = REJECTED
    sub.closed_at = now
    sub.closed_reason = f"stage {stage} rejected by {actor.username}: {reason}"
    sub.updated_at = now
    _flush(session, "reject")
    attested = attest_signoff(session, so, sub, mv, actor, model_name, version,
                              stage_complete=False)
    _audit(session, actor, "workflow.reject", model_name, version,
           {"submission": sub.id, "stage": stage, "role": so.role, "reason": reason},
           {"attestation": attested.envelope_digest} if attested is not None else {})
    return so


@_action("comment")
def comment(session: Session, actor: Any, model_name: str, version: str, body: str, *,
            stage: str | None = None, documents: Mapping[str, str] | None = None,
            now: datetime | None = None) -> Comment:
    """Attach a comment (and optionally documents) to a stage of the latest submission."""
    now = _now(now)
    body = _clean(body)
    if not body:
        raise InputError("a comment must not be empty")
    if not (set(actor.roles) - {"auditor"}):
        raise PermissionDenied(f"{actor.username} is read-only (auditor) and cannot comment")
    mv = reg.get_version(session, model_name, version)
    sub = latest_submission(session, mv.id, lock=True)
    if sub is None:
        raise ConflictError(f"{_subject(model_name, version)} has not been submitted")
    if stage is not None:
        known = [s.stage for s in _stages(session, sub.id)]
        if stage not in known:
            raise InputError(f"unknown stage '{stage}'; expected one of " + ", ".join(known))
    if documents and stage is None:
        raise InputError("documents attach to a stage: give --stage")
    c = Comment(submission_id=sub.id, stage=stage, user_id=actor.id, body=body, created_at=now)
    session.add(c)
    ev = _add_documents(session, actor, sub, stage or "", documents, now)
    sub.updated_at = now
    _flush(session, "comment")
    _audit(session, actor, "workflow.comment", model_name, version,
           {"submission": sub.id, "stage": stage, "comment": body}, ev)
    return c


CONDITION_ROLES = ("validator", "risk_officer", "compliance")


@_action("condition")
def meet_condition(session: Session, actor: Any, model_name: str, version: str,
                   condition_id: int, *, note: str, now: datetime | None = None) -> Condition:
    """Record that a condition of an approval is met (a validator, risk officer or
    compliance, or whoever set it; never the version's developer or submitter)."""
    now = _now(now)
    note = _clean(note)
    if not note:
        raise InputError("say how the condition was met (--note)")
    mv = reg.get_version(session, model_name, version)
    cond = session.get(Condition, condition_id, with_for_update=True)
    sub = session.get(Submission, cond.submission_id) if cond is not None else None
    if cond is None or sub is None or sub.model_version_id != mv.id:
        raise NotFoundError(f"{_subject(model_name, version)} has no condition #{condition_id}"
                            " (see assay status)")
    if cond.status != "open":
        raise ConflictError(f"condition #{cond.id} is already {cond.status}")
    setter = session.get(SignOff, cond.signoff_id)
    if actor.id == sub.submitted_by or reg.is_developer(actor, mv):
        raise ConflictError(f"separation of duties: {actor.username} developed or submitted "
                            "this version and cannot declare its conditions met")
    if not (set(CONDITION_ROLES) & set(actor.roles)) and (
            setter is None or setter.user_id != actor.id):
        raise PermissionDenied(f"{actor.username} cannot close conditions: needs one of "
                               + ", ".join(CONDITION_ROLES) + " or to have set the condition")
    cond.status = "met"
    session.add(Comment(submission_id=sub.id, stage=cond.stage, user_id=actor.id,
                        body=f"condition #{cond.id} met: {note}", created_at=now))
    sub.updated_at = now
    _flush(session, "condition")
    _audit(session, actor, "workflow.condition_met", model_name, version,
           {"submission": sub.id, "condition": cond.id, "stage": cond.stage,
            "text": cond.text, "note": note}, {})
    return cond
