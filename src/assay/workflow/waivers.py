"""Waivers of a blocked (or missing) certification or of one failed check, and
their revocation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from assay.errors import AssayError, ConflictError, InputError, NotFoundError, PermissionDenied
from assay.workflow import _registry as reg
from assay.workflow._common import (
    PASSING,
    _action,
    _audit,
    _aware,
    _clean,
    _day,
    _evidence,
    _flush,
    _iso,
    _now,
    _subject,
    latest_submission,
)
from assay.workflow.deployment import (
    _check_ids,
    _failed_checks,
    latest_certification,
    monitoring_reasons,
    waiver_digest,
)
from assay.workflow.policy import load_policy_info
from assay.workflow.submissions import _resolve_policy
from assay.workflow.tables import (
    Comment,
    Waiver,
)


@_action("waive")
def waive(session: Session, actor: Any, model_name: str, version: str, *, justification: str,
          expires: datetime | None, check_id: str | None = None, policy: str | None = None,
          now: datetime | None = None) -> Waiver:
    """Grant a waiver for a blocked (or missing) certification, or for one failed check."""
    now = _now(now)
    justification = _clean(justification)
    if not justification:
        raise InputError("a waiver needs a justification (--justification)")
    if expires is None:
        raise InputError("a waiver needs an expiry date (--expires YYYY-MM-DD)")
    expires = _aware(expires)
    if expires <= now:
        raise InputError(f"waiver expiry {_iso(expires)} is not in the future")
    if check_id is not None and not check_id.strip():
        raise InputError("--check needs a check id such as fairness.demographic_parity_ratio")
    model = reg.get_model(session, model_name)
    mv = reg.get_version(session, model_name, version)
    sub = latest_submission(session, mv.id, lock=True)
    if policy is None and sub is not None:
        info, source, tier = load_policy_info(sub.policy_source), sub.policy_source, sub.tier
    else:
        info, source, tier = _resolve_policy(session, mv, model, policy)
    allowed = info.workflow.waivers.roles_for(tier)
    if not allowed or not (set(allowed) & set(actor.roles)):
        raise PermissionDenied(
            f"{actor.username} cannot grant waivers for tier {tier}: policy '{info.name}' allows "
            + (", ".join(allowed) or "nobody"))
    max_days = info.workflow.waivers.max_days
    if expires > now + timedelta(days=max_days):
        raise InputError(f"waiver expiry {_iso(expires)} is more than {max_days} days away "
                         f"(policy '{info.name}' workflow.waivers.max_days)")
    if (sub is not None and sub.submitted_by == actor.id) or reg.is_developer(actor, mv):
        raise ConflictError(f"separation of duties: {actor.username} developed or submitted "
                            "this version and cannot waive its certification")
    cert = latest_certification(session, mv.id, info.name, tier)
    if check_id is None and cert is not None and cert.status in PASSING \
            and not monitoring_reasons(session, mv, info.name, tier, now):
        raise ConflictError(f"certification #{cert.id} of {_subject(model_name, version)} "
                            f"{cert.status}; there is nothing to waive")
    if check_id is not None and cert is not None:
        known = _check_ids(cert, reg.settings_of(session))
        if known is not None and check_id.strip() not in known:
            failed = _failed_checks(cert, reg.settings_of(session)) or []
            raise InputError(
                f"--check {check_id}: certification #{cert.id} has no such check; failed "
                "checks: " + (", ".join(failed) or "none"))
    w = Waiver(model_version_id=mv.id, scope="check" if check_id else "certification",
               check_id=check_id.strip() if check_id else None,
               certification_id=None if check_id or cert is None else cert.id,
               policy_name=info.name, tier=tier, justification=justification,
               granted_by=actor.id, granted_at=now, expires_at=expires)
    session.add(w)
    if sub is not None:
        sub.updated_at = now
    _flush(session, "waive")
    ev = _evidence(policy=info.digest, waiver=waiver_digest(w),
                   certification=cert.results_digest if cert is not None else None)
    _audit(session, actor, "workflow.waive", model_name, version,
           {"waiver": w.id, "scope": w.scope, "check": w.check_id,
            "certification": w.certification_id, "policy": info.name, "tier": tier,
            "justification": justification, "expires_at": _iso(expires),
            "policy_source": source}, ev)
    return w


@_action("revoke waiver")
def revoke_waiver(session: Session, actor: Any, model_name: str, version: str,
                  waiver_id: int, *, reason: str, now: datetime | None = None) -> Waiver:
    """End a waiver now (its expiry becomes the moment of revocation). Allowed to
    the roles that may grant waivers for the tier, and to whoever granted it."""
    now = _now(now)
    reason = _clean(reason)
    if not reason:
        raise InputError("a revocation needs a reason (--reason)")
    mv = reg.get_version(session, model_name, version)
    w = session.get(Waiver, waiver_id, with_for_update=True)
    if w is None or w.model_version_id != mv.id:
        raise NotFoundError(f"{_subject(model_name, version)} has no waiver #{waiver_id} "
                            "(see assay status)")
    if _aware(w.expires_at) <= now:
        raise ConflictError(f"waiver #{w.id} already ended on {_day(w.expires_at)}")
    sub = latest_submission(session, mv.id, lock=True)
    try:
        allowed = (load_policy_info(sub.policy_source).workflow.waivers.roles_for(w.tier)
                   if sub is not None else [])
    except AssayError:
        allowed = []
    if w.granted_by != actor.id and not (set(allowed) & set(actor.roles)):
        raise PermissionDenied(f"{actor.username} cannot revoke waiver #{w.id}: needs one of "
                               + (", ".join(allowed) or "(no role)") + " or to have granted it")
    before = _iso(w.expires_at)
    w.expires_at = now
    if sub is not None:
        session.add(Comment(submission_id=sub.id, stage=None, user_id=actor.id,
                            body=f"waiver #{w.id} revoked: {reason}", created_at=now))
        sub.updated_at = now
    _flush(session, "revoke waiver")
    _audit(session, actor, "workflow.waiver_revoke", model_name, version,
           {"waiver": w.id, "reason": reason, "expires_at_before": before},
           {"waiver": waiver_digest(w)})
    return w
