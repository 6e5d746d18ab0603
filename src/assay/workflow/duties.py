"""Separation of duties: who may sign which stage of a submission, in which role,
and the recount of those rules from the stored sign-offs that the gate relies on.

* nobody signs their own submission; the version's developer cannot sign an
  ``independent`` stage; one person fills one approver slot per stage;
* one person signs a submission in one role only, whatever roles they hold;
* a tier may require a number of different people across the submission
  (``workflow.distinct_signers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from assay.errors import AssayError, ConflictError, PermissionDenied
from assay.workflow import _registry as reg
from assay.workflow._common import (
    _signoffs,
    _stages,
    _usernames,
)
from assay.workflow.policy import load_policy_info
from assay.workflow.tables import (
    SKIPPED,
    SignOff,
    StageState,
    Submission,
)


def _separation_of_duties(actor: Any, sub: Submission, st: StageState, mv: Any,
                          signed: Sequence[SignOff]) -> None:
    if actor.id == sub.submitted_by:
        raise ConflictError(f"separation of duties: {actor.username} submitted this version "
                            "and cannot sign off their own submission")
    if st.independent and reg.is_developer(actor, mv):
        raise ConflictError(f"separation of duties: {actor.username} developed this version "
                            f"and cannot sign the independent stage '{st.stage}'")
    if any(s.user_id == actor.id for s in signed):
        raise ConflictError(f"separation of duties: {actor.username} has already signed stage "
                            f"'{st.stage}'; one person fills one approver slot")


def _one_role(actor: Any, st: StageState, signs: Sequence[SignOff], role: str | None
              ) -> str | None:
    """One person signs a submission in one role: someone who approved an earlier
    stage as ROLE may sign later stages only as ROLE. Returns the role to sign as."""
    earlier = next((s for s in signs if s.user_id == actor.id and s.decision == "approve"),
                   None)
    if earlier is None or not any(r in actor.roles for r in st.roles):
        return role  # nothing signed yet, or _pick_role says who may sign
    if earlier.role in st.roles and role in (None, earlier.role):
        return earlier.role
    wanted = role or " or ".join(r for r in st.roles if r in actor.roles)
    raise ConflictError(
        f"separation of duties: {actor.username} signed this submission as {earlier.role} "
        f"(stage '{earlier.stage}') and cannot sign stage '{st.stage}' as {wanted}; "
        "one person signs a submission in one role only")


def _counted_stages(sub: Submission, stages: Sequence[StageState]) -> list[StageState]:
    """The stages whose approvals count towards deployment: every stage that is not
    skipped, up to and including the deployment stage."""
    out: list[StageState] = []
    for st in sorted(stages, key=lambda x: x.position):
        if st.status != SKIPPED:
            out.append(st)
        if st.stage == sub.deployment_stage:
            break
    return out


def _required_signers(sub: Submission) -> int:
    """Different people the submission's policy requires for its tier (1 if the policy
    cannot be read: the gate then blocks on that anyway)."""
    try:
        return load_policy_info(sub.policy_source).workflow.signers_for(sub.tier)
    except AssayError:
        return 1


def _enough_people(actor: Any, sub: Submission, st: StageState, stages: Sequence[StageState],
                   signs: Sequence[SignOff], required: int) -> None:
    """Refuse a second signature by someone who already signed when the remaining
    approver slots could then no longer bring the submission to ``required``
    different people (the tier's ``distinct_signers``)."""
    counted = _counted_stages(sub, stages)
    if required <= 1 or st.stage not in {c.stage for c in counted}:
        return
    approvals = [s for s in signs if s.decision == "approve"
                 and s.stage in {c.stage for c in counted}]
    people = {s.user_id for s in approvals}
    if actor.id not in people:
        return
    open_slots = sum(max(c.approvers - len({s.user_id for s in approvals if s.stage == c.stage}),
                         0) for c in counted)
    if len(people) + open_slots - 1 < required:
        raise ConflictError(
            f"separation of duties: tier {sub.tier} needs {required} different people to sign "
            f"this submission up to stage '{sub.deployment_stage}'; {actor.username} has "
            f"already signed it, so stage '{st.stage}' must be signed by someone who has not")


def signature_problems(session: Session, sub: Submission, mv: Any) -> list[str]:
    """Recompute, from the stored sign-offs alone, whether the approval of a
    submission respects the rules: every stage up to the deployment stage has its
    roles and number of different approvers; nobody signed their own submission,
    an independent stage they developed, or in two roles; the tier's number of
    different people is reached. Empty when it does."""
    stages = _stages(session, sub.id)
    approvals = [s for s in _signoffs(session, sub.id) if s.decision == "approve"]
    names = _usernames(session, [s.user_id for s in approvals])
    problems: list[str] = []
    counted = _counted_stages(sub, stages)
    for st in counted:
        mine = [s for s in approvals if s.stage == st.stage]
        people = {s.user_id for s in mine}
        missing = [r for r in st.roles if r not in {s.role for s in mine}]
        if len(people) < st.approvers or missing:
            problems.append(
                f"stage '{st.stage}' has {len(people)} of {st.approvers} required different "
                "approver(s)" + (" (no sign-off as " + ", ".join(missing) + ")" if missing
                                 else ""))
        if sub.submitted_by in people:
            problems.append(f"separation of duties: {names[sub.submitted_by]} submitted this "
                            f"version and signed stage '{st.stage}'")
        if st.independent:
            for uid in sorted(people):
                user = session.get(reg.User, uid)
                if user is not None and reg.is_developer(user, mv):
                    problems.append(f"separation of duties: {names[uid]} developed this "
                                    f"version and signed the independent stage '{st.stage}'")
    roles: dict[int, set[str]] = {}
    for s in approvals:
        roles.setdefault(s.user_id, set()).add(s.role)
    for uid, held in sorted(roles.items()):
        if len(held) > 1:
            problems.append(f"separation of duties: {names[uid]} signed this submission in "
                            f"{len(held)} roles ({', '.join(sorted(held))}); one person signs "
                            "in one role only")
    required = _required_signers(sub)
    counted_ids = {c.stage for c in counted}
    people = {s.user_id for s in approvals if s.stage in counted_ids}
    if len(people) < required:
        problems.append(f"tier {sub.tier} needs {required} different people to sign up to "
                        f"stage '{sub.deployment_stage}'; {len(people)} did")
    return problems


def _pick_role(actor: Any, st: StageState, approvals: Sequence[SignOff], role: str | None
               ) -> str:
    held = [r for r in st.roles if r in actor.roles]
    if not held:
        raise PermissionDenied(
            f"{actor.username} cannot sign stage '{st.stage}': it needs "
            + " and ".join(st.roles) + " (user has "
            + (", ".join(sorted(actor.roles)) or "no roles") + ")")
    if role is not None and role not in held:
        raise PermissionDenied(f"{actor.username} cannot sign stage '{st.stage}' as '{role}'; "
                               "may sign as " + ", ".join(held))
    filled = {s.role for s in approvals}
    unfilled = [r for r in st.roles if r not in filled]
    spare = st.approvers - len(approvals) - len(unfilled)
    candidates = [role] if role else [r for r in held if r in unfilled] or held
    for r in candidates:
        if r in unfilled or spare > 0:
            return r
    raise ConflictError(
        f"stage '{st.stage}' still needs sign-off by " + ", ".join(unfilled)
        + f"; {actor.username} can only sign as " + ", ".join(held) + ", which is already signed")
