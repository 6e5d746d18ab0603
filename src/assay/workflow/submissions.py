"""Opening the workflow for a model version, and finding the open submission and
the stage an action is taken on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.errors import ConflictError, InputError
from assay.workflow import _registry as reg
from assay.workflow._common import (
    OPEN_STATES,
    SUBMIT_ROLES,
    _action,
    _audit,
    _evidence,
    _flush,
    _now,
    _stages,
    _subject,
    latest_submission,
)
from assay.workflow.config import TIERS
from assay.workflow.deployment import change_reasons
from assay.workflow.notices import notify_awaiting
from assay.workflow.policy import PolicyInfo, load_policy_info
from assay.workflow.tables import (
    APPROVED,
    IN_REVIEW,
    PENDING,
    SKIPPED,
    STAGE_APPROVED,
    STAGE_REJECTED,
    SUPERSEDED,
    StageState,
    Submission,
)


def _resolve_policy(session: Session, version: Any, model: Any, policy: str | None,
                    previous: Submission | None = None) -> tuple[PolicyInfo, str, str]:
    """(policy, source, tier) for a new submission: the policy given, else the one of
    the version's previous submission, else of its latest certification, else
    ``default``."""
    Cert = reg.Certification
    latest_any = session.scalars(
        select(Cert).where(Cert.model_version_id == version.id)
        .order_by(Cert.created_at.desc(), Cert.id.desc()).limit(1)).first()
    source = policy or (previous.policy_source if previous is not None else None) or (
        latest_any.policy_name if latest_any is not None else "default")
    info = load_policy_info(source)
    tier = getattr(model, "tier", None)
    if not tier and latest_any is not None:
        tier = latest_any.tier
    if not tier:
        raise ConflictError(
            f"model '{model.name}' has no risk tier yet: run 'assay risk assess' "
            "(or certify the version under a tier) before submitting")
    if tier not in TIERS:
        raise ConflictError(f"model '{model.name}' has tier '{tier}'; expected one of "
                            + ", ".join(TIERS))
    return info, source, str(tier)


@_action("submit")
def submit(session: Session, actor: Any, model_name: str, version: str, *,
           policy: str | None = None, now: datetime | None = None) -> Submission:
    """Open the approval workflow for one model version (by a data scientist)."""
    now = _now(now)
    reg.require_role(actor, *SUBMIT_ROLES)
    model = reg.get_model(session, model_name)
    mv = reg.get_version(session, model_name, version)
    # Lock the version row: two submissions of one version at once cannot both open.
    session.execute(select(reg.ModelVersion.id).where(reg.ModelVersion.id == mv.id)
                    .with_for_update())
    previous = latest_submission(session, mv.id, lock=True)
    if previous is not None and previous.state == IN_REVIEW:
        raise ConflictError(
            f"{_subject(model_name, version)} is already in review (submission "
            f"#{previous.id}, stage {previous.current_stage}); reject or finish it first")
    if previous is not None and previous.state == APPROVED:
        reasons = change_reasons(session, model_name, version, now=now)
        if not reasons:
            raise ConflictError(
                f"{_subject(model_name, version)} is already approved (submission "
                f"#{previous.id}) and nothing requires recertification")
    info, source, tier = _resolve_policy(session, mv, model, policy, previous)
    wf = info.workflow
    superseded: list[int] = []
    if previous is not None and previous.state in OPEN_STATES:
        previous.state = SUPERSEDED
        previous.closed_at = now
        previous.closed_reason = "resubmitted"
        previous.updated_at = now
        superseded.append(previous.id)

    # An open review of an older version of the same model is superseded.
    for other in reg.versions_of(session, model.id):
        if other.id >= mv.id:
            continue
        sub = latest_submission(session, other.id, lock=True)
        if sub is not None and sub.state == IN_REVIEW:
            sub.state = SUPERSEDED
            sub.closed_at = now
            sub.closed_reason = f"version {version} submitted"
            sub.updated_at = now
            superseded.append(sub.id)

    sub = Submission(model_version_id=mv.id, policy_name=info.name,
                     policy_version=info.version, policy_digest=info.digest,
                     policy_source=source, tier=tier, state=IN_REVIEW, current_stage=None,
                     deployment_stage=wf.deployment_stage, submitted_by=actor.id,
                     submitted_at=now, updated_at=now)
    session.add(sub)
    _flush(session, "submit")
    for pos, stage in enumerate(wf.stages):
        so = stage.for_tier(tier)
        session.add(StageState(
            submission_id=sub.id, position=pos, stage=stage.id, title=stage.label,
            status=SKIPPED if so.skip else PENDING, roles=list(so.roles),
            approvers=so.required_approvers, evidence=[str(e) for e in stage.evidence],
            independent=stage.independent))
    _flush(session, "submit")
    sub.current_stage = _next_pending(session, sub.id)
    moved = _advance_model_status(session, mv, "validation",
                                  only_from=("proposed", "development"))
    _flush(session, "submit")
    _audit(session, actor, "workflow.submit", model_name, version,
           {"submission": sub.id, "policy": info.name, "policy_version": info.version,
            "tier": tier, "stages": [s.id for s in wf.stages], "first_stage": sub.current_stage,
            "superseded": superseded, "deployment_status": moved},
           _evidence(artifact=getattr(mv, "artifact_digest", None), policy=info.digest))
    notify_awaiting(session, actor, sub, model_name, version)
    return sub


def _next_pending(session: Session, submission_id: int) -> str | None:
    for st in _stages(session, submission_id):
        if st.status == PENDING:
            return st.stage
    return None




def _open_submission(session: Session, mv: Any, model_name: str, version: str,
                     expected_revision: int | None) -> Submission:
    sub = latest_submission(session, mv.id, lock=True)
    if sub is None:
        raise ConflictError(f"{_subject(model_name, version)} has not been submitted "
                            "(assay submit MODEL VERSION)")
    if expected_revision is not None and sub.revision != expected_revision:
        raise ConflictError(
            f"submission #{sub.id} changed since you read it (revision {expected_revision}, "
            f"now {sub.revision}); reload and try again")
    if sub.state not in OPEN_STATES:
        why = f": {sub.closed_reason}" if sub.closed_reason else ""
        raise ConflictError(f"submission #{sub.id} of {_subject(model_name, version)} is "
                            f"{sub.state.replace('_', ' ')}{why}; submit it again")
    return sub


def _stage_for_action(session: Session, sub: Submission, stage: str) -> StageState:
    stages = _stages(session, sub.id)
    by_id = {s.stage: s for s in stages}
    if stage not in by_id:
        raise InputError(f"unknown stage '{stage}'; expected one of "
                         + ", ".join(s.stage for s in stages))
    st = by_id[stage]
    if st.status == SKIPPED:
        raise ConflictError(f"stage '{stage}' is not required for tier {sub.tier}")
    if st.status == STAGE_APPROVED:
        raise ConflictError(f"stage '{stage}' is already approved")
    if st.status == STAGE_REJECTED:
        raise ConflictError(f"stage '{stage}' was rejected")
    if stage != sub.current_stage:
        raise ConflictError(f"stage '{stage}' cannot be acted on before stage "
                            f"'{sub.current_stage}' is approved (stages are signed in order)")
    return st



def _advance_model_status(session: Session, mv: Any, to: str, *, only_from: tuple[str, ...]
                          ) -> dict[str, str] | None:
    """Move the model's inventory deployment status forward (never backward);
    returns ``{"from", "to"}`` for the audit payload when it changed."""
    model = session.get(reg.Model, mv.model_id)
    if model is None or model.deployment_status not in only_from:
        return None
    before = model.deployment_status
    model.deployment_status = to
    return {"from": before, "to": to}
