"""Read-only views: what the current stage of a submission needs and who may
sign it (``review``), and every version's timeline (``status``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.errors import ConflictError, NotFoundError, PermissionDenied
from assay.workflow import _registry as reg
from assay.workflow._common import (
    OPEN_STATES,
    _aware,
    _day,
    _documents,
    _iso,
    _now,
    _signoffs,
    _stages,
    _subject,
    _usernames,
    latest_submission,
)
from assay.workflow.deployment import (
    GateDecision,
    change_reasons,
    gate,
)
from assay.workflow.duties import (
    _enough_people,
    _one_role,
    _pick_role,
    _required_signers,
    _separation_of_duties,
)
from assay.workflow.signoffs import _evidence_problems
from assay.workflow.tables import (
    APPROVED,
    RECERTIFY,
    REJECTED,
    SUPERSEDED,
    Comment,
    Condition,
    Document,
    SignOff,
    StageState,
    Submission,
    Waiver,
)


@dataclass
class StageView:
    stage: str
    title: str
    status: str
    roles: list[str]
    approvers: int
    evidence: list[str]
    independent: bool
    signed: list[dict[str, Any]]
    completed_at: str | None


@dataclass
class ReviewInfo:
    """What the current stage of a submission needs and who may sign it."""

    model: str
    version: str
    submission_id: int
    state: str
    tier: str
    policy: str
    revision: int
    stage: StageView | None
    missing_roles: list[str]
    approvals_needed: int
    evidence: list[dict[str, Any]]
    eligible: list[dict[str, Any]]
    you: str | None = None
    you_may_sign_as: list[str] = field(default_factory=list)
    why_not_you: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)





def _stage_view(st: StageState, signs: Sequence[SignOff], names: Mapping[int, str],
                conds: Mapping[int, list[str]]) -> StageView:
    return StageView(
        stage=st.stage, title=st.title, status=st.status, roles=list(st.roles),
        approvers=st.approvers, evidence=list(st.evidence), independent=st.independent,
        signed=[{"user": names.get(s.user_id, str(s.user_id)), "role": s.role,
                 "decision": s.decision, "at": _iso(s.created_at), "reason": s.reason,
                 "expires_at": _iso(s.expires_at), "conditions": conds.get(s.id, [])}
                for s in signs if s.stage == st.stage and s.submission_id == st.submission_id],
        completed_at=_iso(st.completed_at))


def review(session: Session, model_name: str, version: str, *, actor: Any | None = None,
           now: datetime | None = None, settings: Any | None = None) -> ReviewInfo:
    """The current stage of the latest submission: what it needs, who may sign it."""
    now = _now(now)
    mv = reg.get_version(session, model_name, version)
    sub = latest_submission(session, mv.id)
    if sub is None:
        raise NotFoundError(f"{_subject(model_name, version)} has not been submitted "
                            "(assay submit MODEL VERSION)")
    signs = _signoffs(session, sub.id)
    names = _usernames(session, [s.user_id for s in signs])
    st = next((s for s in _stages(session, sub.id) if s.stage == sub.current_stage), None)
    info = ReviewInfo(model=model_name, version=version, submission_id=sub.id, state=sub.state,
                      tier=sub.tier, policy=sub.policy_name, revision=sub.revision, stage=None,
                      missing_roles=[], approvals_needed=0, evidence=[], eligible=[])
    if st is None or sub.state not in OPEN_STATES:
        return info
    info.stage = _stage_view(st, signs, names, {})
    approvals = [s for s in signs if s.stage == st.stage and s.decision == "approve"]
    filled = {s.role for s in approvals}
    info.missing_roles = [r for r in st.roles if r not in filled]
    info.approvals_needed = max(st.approvers - len({a.user_id for a in approvals}), 0)
    for kind in st.evidence:
        problems, ev = _evidence_problems(session, sub, st.stage, [kind], mv, now, settings)
        info.evidence.append({"kind": kind, "ok": not problems,
                              "detail": "; ".join(problems) or ", ".join(
                                  f"{k}={v}" for k, v in ev.items())})
    signed_ids = {s.user_id for s in signs if s.stage == st.stage}
    stages = _stages(session, sub.id)
    required = _required_signers(sub)
    for user in reg.active_users(session):
        roles = [r for r in st.roles if r in user.roles]
        if not roles or user.id == sub.submitted_by or user.id in signed_ids:
            continue
        if st.independent and reg.is_developer(user, mv):
            continue
        try:
            earlier = _one_role(user, st, signs, None)
            _enough_people(user, sub, st, stages, signs, required)
        except ConflictError:
            continue
        roles = [r for r in roles if earlier in (None, r)]
        if roles:
            info.eligible.append({"user": user.username, "roles": roles})
    if actor is not None:
        info.you = actor.username
        signed = [x for x in signs if x.stage == st.stage]
        try:
            _separation_of_duties(actor, sub, st, mv, signed)
            earlier = _one_role(actor, st, signs, None)
            role = _pick_role(actor, st, [x for x in signed if x.decision == "approve"], earlier)
            _enough_people(actor, sub, st, stages, signs, required)
            info.you_may_sign_as = [role] + [r for r in st.roles if earlier is None
                                             and r in actor.roles and r != role]
        except (ConflictError, PermissionDenied) as exc:
            info.why_not_you = str(exc)
    return info


_OUTCOMES = ("approved_for_deployment", REJECTED, SUPERSEDED, RECERTIFY)


@dataclass
class VersionStatus:
    version: str
    submission_id: int | None
    state: str | None
    tier: str | None
    policy: str | None
    submitted_by: str | None
    submitted_at: str | None
    current_stage: str | None
    approved_until: str | None
    stages: list[StageView]
    timeline: list[dict[str, Any]]
    waivers: list[dict[str, Any]]
    gate: GateDecision
    changes: list[str]
    conditions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ModelStatus:
    model: str
    tier: str | None
    versions: list[VersionStatus]
    #: Model-level change control: a newer version that is not approved yet.
    changes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def status(session: Session, model_name: str, *, now: datetime | None = None,
           settings: Any | None = None) -> ModelStatus:
    """Every version's stages, sign-offs, comments, conditions and waivers, in time
    order, with the current gate decision and any change that needs recertification."""
    now = _now(now)
    model = reg.get_model(session, model_name)
    out = ModelStatus(model=model.name, tier=getattr(model, "tier", None), versions=[])
    for mv in reg.versions_of(session, model.id):
        sub = latest_submission(session, mv.id)
        waivers = list(session.scalars(select(Waiver).where(Waiver.model_version_id == mv.id)
                                       .order_by(Waiver.id)))
        subs = list(session.scalars(select(Submission).where(Submission.model_version_id == mv.id)
                                    .order_by(Submission.id)))
        events: list[tuple[datetime, int, int, dict[str, Any]]] = []
        user_ids: set[int] = {w.granted_by for w in waivers}
        all_signs: list[SignOff] = []
        all_comments: list[Comment] = []
        all_docs: list[Document] = []
        all_conds: list[Condition] = []
        for s in subs:
            user_ids.add(s.submitted_by)
            all_signs += _signoffs(session, s.id)
            all_comments += list(session.scalars(select(Comment)
                                                 .where(Comment.submission_id == s.id)))
            all_docs += _documents(session, s.id)
            all_conds += list(session.scalars(select(Condition)
                                              .where(Condition.submission_id == s.id)))
        user_ids |= {x.user_id for x in all_signs} | {c.user_id for c in all_comments}
        user_ids |= {d.added_by for d in all_docs}
        names = _usernames(session, user_ids)
        conds_by_sign: dict[int, list[str]] = {}
        for c in all_conds:
            conds_by_sign.setdefault(c.signoff_id, []).append(f"#{c.id} {c.text}")

        def add(at: datetime | None, kind: str, **kw: Any) -> None:
            when = _aware(at) or now
            # at equal times: submitted first, then sign-offs etc., then the outcome
            rank = 0 if kind == "submitted" else 2 if kind in _OUTCOMES else 1
            events.append((when, rank, len(events),  # noqa: B023
                           {"at": _iso(when), "event": kind, **kw}))

        for s in subs:
            add(s.submitted_at, "submitted", submission=s.id, user=names[s.submitted_by],
                text=f"policy {s.policy_name} {s.policy_version}, tier {s.tier}")
            if s.approved_at:
                add(s.approved_at, "approved_for_deployment", submission=s.id,
                    text=f"until {_day(s.expires_at)}")
            if s.state in (REJECTED, SUPERSEDED, RECERTIFY) and s.closed_at:
                add(s.closed_at, s.state, submission=s.id, text=s.closed_reason or "")
        for x in all_signs:
            text = x.reason if x.decision == "reject" else "; ".join(
                f"condition {c}" for c in conds_by_sign.get(x.id, []))
            if x.expires_at:
                text = (text + "; " if text else "") + f"expires {_day(x.expires_at)}"
            add(x.created_at, "approve" if x.decision == "approve" else "reject",
                submission=x.submission_id, stage=x.stage, user=names[x.user_id], role=x.role,
                text=text or "")
        for c in all_comments:
            add(c.created_at, "comment", submission=c.submission_id, stage=c.stage,
                user=names[c.user_id], text=c.body)
        for d in all_docs:
            add(d.added_at, "document", submission=d.submission_id, stage=d.stage,
                user=names[d.added_by], text=f"{d.name} {d.digest}", document=d.id,
                name=d.name)
        for w in waivers:
            what = f"check {w.check_id}" if w.check_id else "certification"
            state = "expired" if _aware(w.expires_at) <= now else "valid"
            add(w.granted_at, "waiver", user=names[w.granted_by],
                text=f"#{w.id} {what} until {_day(w.expires_at)} ({state}): {w.justification}")
        events.sort(key=lambda e: (e[0], e[1], e[2]))
        stages: list[StageView] = []
        if sub is not None:
            stages = [_stage_view(st, all_signs, names, conds_by_sign)
                      for st in _stages(session, sub.id)]
        out.versions.append(VersionStatus(
            version=mv.version, submission_id=sub.id if sub else None,
            state=sub.state if sub else None, tier=sub.tier if sub else None,
            policy=sub.policy_name if sub else None,
            submitted_by=names.get(sub.submitted_by) if sub else None,
            submitted_at=_iso(sub.submitted_at) if sub else None,
            current_stage=sub.current_stage if sub else None,
            approved_until=_iso(sub.expires_at) if sub else None,
            stages=stages, timeline=[e[3] for e in events],
            waivers=[{"id": w.id, "scope": w.scope, "check": w.check_id,
                      "certification": w.certification_id, "justification": w.justification,
                      "granted_by": names[w.granted_by], "granted_at": _iso(w.granted_at),
                      "expires_at": _iso(w.expires_at),
                      "valid": _aware(w.expires_at) > now} for w in waivers],
            gate=gate(session, model_name, mv.version, now=now, settings=settings),
            changes=change_reasons(session, model_name, mv.version, now=now),
            conditions=[{"id": c.id, "submission": c.submission_id, "stage": c.stage,
                         "text": c.text, "status": c.status} for c in all_conds]))
    approved = [v.version for v in out.versions if v.state == APPROVED]
    if out.versions and approved and out.versions[-1].state != APPROVED:
        newest = out.versions[-1]
        out.changes.append(
            f"version {newest.version} registered after approved version {approved[-1]}: "
            f"it needs certification and approval ({(newest.state or 'not submitted')})"
            .replace("_", " "))
    return out
