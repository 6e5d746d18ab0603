"""May a version be deployed: the certification gate (latest certification
passed, or valid waivers cover it), change control (policy, tier, newer
certification, expiry, newer versions), ``recheck`` and the deployment gate."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.errors import AssayError, PermissionDenied
from assay.workflow import _registry as reg
from assay.workflow._common import (
    PASSING,
    _action,
    _audit,
    _aware,
    _day,
    _evidence,
    _flush,
    _iso,
    _now,
    _sha,
    _signoffs,
    latest_submission,
)
from assay.workflow.duties import signature_problems
from assay.workflow.policy import PolicyInfo, load_policy_info
from assay.workflow.tables import (
    APPROVED,
    IN_REVIEW,
    RECERTIFY,
    REJECTED,
    SUPERSEDED,
    Condition,
    Submission,
    Waiver,
)


def latest_certification(session: Session, version_id: int, policy_name: str, tier: str
                         ) -> Any | None:
    """The newest certification of a version under one policy and tier."""
    Cert = reg.Certification
    stmt = (select(Cert).where(Cert.model_version_id == version_id,
                               Cert.policy_name == policy_name, Cert.tier == tier)
            .order_by(Cert.created_at.desc(), Cert.id.desc()).limit(1))
    return session.scalars(stmt).first()


def _valid_waivers(session: Session, version_id: int, policy_name: str, tier: str,
                   now: datetime) -> list[Waiver]:
    rows = session.scalars(select(Waiver).where(Waiver.model_version_id == version_id,
                                                Waiver.policy_name == policy_name,
                                                Waiver.tier == tier).order_by(Waiver.id))
    return [w for w in rows if _aware(w.expires_at) > now]


def _check_ids(cert: Any, settings: Any) -> set[str] | None:
    """Ids of every check a certification ran (None if its results are unreadable)."""
    results = _results(cert, settings)
    if results is None:
        return None
    ids: set[str] = set()
    for c in results["checks"]:
        ids |= {str(c[k]) for k in ("id", "name") if c.get(k)}
    return ids


def _failed_checks(cert: Any, settings: Any | None) -> list[str] | None:
    """Ids of the checks that blocked a certification (None if results are unreadable)."""
    results = _results(cert, settings)
    if results is None:
        return None
    return [str(c.get("id")) for c in results["checks"] if c.get("status") in ("fail", "error")]


def _results(cert: Any, settings: Any) -> dict[str, Any] | None:
    """The parsed results.json of a certification, from the evidence store."""
    digest = getattr(cert, "results_digest", None)
    if not digest:
        return None
    from assay.evidence import open_artifact

    try:
        results = json.loads(open_artifact(settings, digest))
    except (AssayError, OSError, ValueError):
        return None
    if not isinstance(results, dict) or not isinstance(results.get("checks"), list):
        return None
    results["checks"] = [c for c in results["checks"] if isinstance(c, dict)]
    return results


def waiver_digest(w: Waiver) -> str:
    """SHA-256 of a waiver's canonical JSON: what the gate and the audit trail cite."""
    body = {"id": w.id, "model_version_id": w.model_version_id, "scope": w.scope,
            "check_id": w.check_id, "certification_id": w.certification_id,
            "policy_name": w.policy_name, "tier": w.tier, "justification": w.justification,
            "granted_by": w.granted_by, "granted_at": _iso(w.granted_at),
            "expires_at": _iso(w.expires_at)}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


@dataclass
class CertificationCheck:
    """Whether a version's certification (or a waiver) allows approval."""

    ok: bool
    reason: str
    certification: Any | None = None
    waivers: list[Waiver] = field(default_factory=list)

    def evidence(self) -> dict[str, str]:
        ev: dict[str, str] = {}
        if self.certification is not None:
            ev["certification"] = self.certification.results_digest
            if getattr(self.certification, "report_digest", None):
                ev["report"] = self.certification.report_digest
            ev["certified_policy"] = _sha(self.certification.policy_digest)
        for w in self.waivers:
            ev[f"waiver:{w.id}"] = waiver_digest(w)
        return ev


def check_certification(session: Session, version_id: int, policy_name: str, tier: str, *,
                        policy_digest: str | None = None, now: datetime | None = None,
                        settings: Any | None = None) -> CertificationCheck:
    """The certification gate: latest certification passed, or a waiver covers it.

    With ``policy_digest``, a certification made under another version of the
    policy does not count: the version must be recertified.
    """
    now = _now(now)
    cert = latest_certification(session, version_id, policy_name, tier)
    if cert is not None and policy_digest and _sha(cert.policy_digest) != _sha(policy_digest):
        return CertificationCheck(
            False, f"certification #{cert.id} was made under another version of policy "
            f"'{policy_name}' ({_sha(cert.policy_digest)[:19]}, submitted under "
            f"{_sha(policy_digest)[:19]}): recertify", cert)
    if cert is not None and cert.status in PASSING:
        return CertificationCheck(True, f"certification #{cert.id} {cert.status}", cert)
    waivers = _valid_waivers(session, version_id, policy_name, tier, now)
    cert_id = cert.id if cert is not None else None
    whole = [w for w in waivers if w.scope == "certification" and w.certification_id == cert_id]
    if whole:
        what = f"certification #{cert_id} {cert.status}" if cert else "no certification"
        return CertificationCheck(True, f"{what}, waived by waiver #{whole[0].id}", cert,
                                  whole[:1])
    if cert is None:
        return CertificationCheck(
            False, f"no certification under policy '{policy_name}' tier {tier} "
            "(run assay certify, or get a waiver)")
    failed = _failed_checks(cert, reg.settings_of(session, settings))
    if failed:
        by_check = {w.check_id: w for w in waivers if w.scope == "check"}
        missing = [c for c in failed if c not in by_check]
        if not missing:
            used = [by_check[c] for c in failed]
            return CertificationCheck(
                True, f"certification #{cert.id} blocked; failed checks waived: "
                + ", ".join(failed), cert, used)
        return CertificationCheck(
            False, f"certification #{cert.id} is {cert.status}: failed checks without a valid "
            "waiver: " + ", ".join(missing), cert)
    return CertificationCheck(
        False, f"certification #{cert.id} is {cert.status} and no valid waiver covers it", cert)





def unsigned_certification(session: Session, sub: Submission, cc: CertificationCheck
                           ) -> str | None:
    """Why the certification ``cc`` rests on does not do when the submission's policy
    requires signed certifications for its tier (None when it does)."""
    if cc.certification is None:
        return None
    info = load_policy_info(sub.policy_source)
    if not info.workflow.signed_certification_required(sub.tier):
        return None
    from assay.evidence.tables import Attestation

    cid = cc.certification.id
    if session.scalar(select(Attestation.id).where(
            Attestation.kind == "certification",
            Attestation.ref == f"certification:{cid}")) is not None:
        return None
    return (f"certification #{cid} is not signed: policy '{sub.policy_name}' requires a "
            f"signed certification for tier {sub.tier} (record it with --attestation "
            "results.intoto.json, signed by a trusted key)")


def _drift_reasons(session: Session, sub: Submission, mv: Any, cert: Any | None = None
                   ) -> list[str]:
    """What changed since the submission: the policy file, or the model's risk tier."""
    reasons: list[str] = []
    try:
        info: PolicyInfo | None = load_policy_info(sub.policy_source)
    except AssayError as exc:
        reasons.append(f"policy '{sub.policy_name}' cannot be loaded to check it: {exc}")
        info = None
    if info is not None:
        certified = _sha(cert.policy_digest if cert is not None else sub.policy_digest)
        if info.digest != certified or info.digest != _sha(sub.policy_digest):
            reasons.append(
                f"policy '{sub.policy_name}' changed (submitted under {certified[:19]}, "
                f"now {info.digest[:19]}, version {info.version or '?'}): recertify")
    model = session.get(reg.Model, mv.model_id)
    tier_now = getattr(model, "tier", None)
    if tier_now and tier_now != sub.tier:
        reasons.append(f"risk tier changed from {sub.tier} to {tier_now} since submission: "
                       f"recertify under tier {tier_now}")
    return reasons


def change_reasons(session: Session, model_name: str, version: str, *,
                   now: datetime | None = None) -> list[str]:
    """Why an approved version must go back to certification (empty if nothing changed).

    Evaluated on every status and gate query: a policy whose digest differs
    from the one the version was certified (and submitted) under, a newer
    certification that no longer passes, an expired approval, a recorded
    recheck.
    """
    now = _now(now)
    mv = reg.get_version(session, model_name, version)
    sub = latest_submission(session, mv.id)
    if sub is None or sub.state not in (APPROVED, RECERTIFY):
        return []
    if sub.state == RECERTIFY:
        return [sub.closed_reason or "recertification required"]
    cert = (session.get(reg.Certification, sub.certification_id)
            if sub.certification_id is not None else None)
    reasons = _drift_reasons(session, sub, mv, cert)
    reasons.extend(monitoring_reasons(session, mv, sub.policy_name, sub.tier, now))
    latest = latest_certification(session, mv.id, sub.policy_name, sub.tier)
    if latest is not None and cert is not None and latest.id != cert.id \
            and latest.status not in PASSING:
        reasons.append(f"a newer certification #{latest.id} is {latest.status}: recertify")
    if sub.expires_at is not None and _aware(sub.expires_at) <= now:
        reasons.append(f"approval expired on {_day(sub.expires_at)}: review again")
    newer = newer_versions(session, model_name, version)
    if newer:
        try:
            revoke = load_policy_info(sub.policy_source).workflow.new_version_revokes_approval
        except AssayError:
            revoke = False  # the unreadable policy is already a reason above
        if revoke:
            reasons.append(f"newer version(s) {', '.join(newer)} registered: policy "
                           f"'{sub.policy_name}' ends the approval of older versions")
    return reasons


def monitoring_reasons(session: Session, mv: Any, policy_name: str, tier: str,
                       now: datetime) -> list[str]:
    """Why monitoring puts the version back under change control: each unresolved
    ``action: recertify`` alert raised since its latest certification and not covered by
    a certification waiver granted after it (a new certification or such a waiver
    reopens the gate)."""
    from assay.monitor import open_recertify_alerts

    alerts = open_recertify_alerts(session, mv.id)
    if not alerts:
        return []
    granted = [_aware(w.granted_at) for w in _valid_waivers(session, mv.id, policy_name, tier,
                                                             now) if w.scope == "certification"]
    last = max(granted, default=None)
    return [f"monitoring alert #{a.id}: rule {a.rule}"
            + (f" ({a.label})" if a.label else "")
            + f" on the window from {_aware(a.window_start):%Y-%m-%d} requires re-certification "
            "(action: recertify): certify again, or grant a waiver"
            for a in alerts if last is None or _aware(a.created_at) > last]


def newer_versions(session: Session, model_name: str, version: str) -> list[str]:
    """Versions of the same model registered after this one."""
    mv = reg.get_version(session, model_name, version)
    return [v.version for v in reg.versions_of(session, mv.model_id) if v.id > mv.id]


@_action("recheck")
def recheck(session: Session, actor: Any, model_name: str, version: str, *,
            now: datetime | None = None) -> list[str]:
    """Evaluate change control and record the result: an approved version whose
    policy, certification or approval changed goes back to certification."""
    now = _now(now)
    if not (set(actor.roles) - {"auditor"}):
        raise PermissionDenied(f"{actor.username} is read-only (auditor)")
    mv = reg.get_version(session, model_name, version)
    sub = latest_submission(session, mv.id, lock=True)
    reasons = change_reasons(session, model_name, version, now=now)
    if sub is None or sub.state != APPROVED or not reasons:
        return reasons
    sub.state = RECERTIFY
    sub.closed_at = now
    sub.closed_reason = "; ".join(reasons)
    sub.updated_at = now
    _flush(session, "recheck")
    _audit(session, actor, "workflow.recheck", model_name, version,
           {"submission": sub.id, "reasons": reasons}, _evidence(policy=sub.policy_digest))
    return reasons




@dataclass
class GateDecision:
    """May this model version be deployed now? ``reasons`` say why not."""

    allowed: bool
    reasons: list[str]
    evidence: dict[str, str]
    model: str = ""
    version: str = ""
    submission_id: int | None = None
    state: str | None = None
    approved_until: str | None = None
    conditions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    waived_until: str | None = None
    """When the certification passes only by waivers: the earliest expiry among
    them. After it the gate blocks (unless the version is recertified or a new
    waiver is granted), even if the approval itself runs longer."""
    attestations: list[dict[str, Any]] = field(default_factory=list)
    """The signed attestations the decision rests on (the certification used, the
    submission's stage decisions): kind, envelope digest, keyid, predicate type."""
    attestation: dict[str, Any] | None = None
    """The signed statement of this decision, when it was recorded (:func:`record_gate`)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate(session: Session, model_name: str, version: str, *, now: datetime | None = None,
         settings: Any | None = None) -> GateDecision:
    """The deployment gate: allowed only when the deployment stage is approved,
    the approval has not expired, nothing requires recertification, and the
    latest certification passed (or a valid waiver covers it)."""
    now = _now(now)
    mv = reg.get_version(session, model_name, version)
    sub = latest_submission(session, mv.id)
    d = GateDecision(False, [], _evidence(artifact=getattr(mv, "artifact_digest", None)),
                     model=model_name, version=version)
    newer = newer_versions(session, model_name, version)
    if newer:
        d.notes.append("newer version(s) " + ", ".join(newer)
                       + " registered: each needs its own certification and approval")
    if sub is None:
        d.reasons.append("not submitted for approval (assay submit)")
        return d
    d.submission_id, d.state = sub.id, sub.state
    d.evidence["policy"] = sub.policy_digest
    if sub.state == IN_REVIEW:
        d.reasons.append(f"in review: stage '{sub.current_stage}' awaits sign-off")
    elif sub.state in (REJECTED, SUPERSEDED):
        d.reasons.append(f"submission #{sub.id} {sub.state}: {sub.closed_reason or ''}".strip())
    cc = check_certification(session, mv.id, sub.policy_name, sub.tier,
                             policy_digest=sub.policy_digest, now=now,
                             settings=settings)
    d.evidence.update(cc.evidence())
    if not cc.ok:
        d.reasons.append(cc.reason)
    unsigned = unsigned_certification(session, sub, cc)
    if unsigned:
        d.reasons.append(unsigned)
    elif cc.waivers:
        d.waived_until = _iso(min(_aware(w.expires_at) or now for w in cc.waivers))
    if sub.state in (APPROVED, RECERTIFY):
        d.reasons.extend(change_reasons(session, model_name, version, now=now))
        d.approved_until = _iso(sub.expires_at)
    if sub.state == APPROVED:
        d.reasons.extend(signature_problems(session, sub, mv))
    d.conditions = [c.text for c in session.scalars(
        select(Condition).where(Condition.submission_id == sub.id, Condition.status == "open")
        .order_by(Condition.id))]
    d.allowed = sub.state == APPROVED and not d.reasons
    from assay.workflow.attestations import rests_on  # imports the evidence store's tables

    d.attestations = rests_on(
        session, model_name, version,
        certification_id=cc.certification.id if cc.certification is not None else None,
        signoff_ids=[so.id for so in _signoffs(session, sub.id)])
    return d


def record_gate(session: Session, model_name: str, version: str, *,
                now: datetime | None = None, settings: Any | None = None) -> GateDecision:
    """The deployment gate's decision (:func:`gate`), signed by assay's service key and
    stored as a ``gate-decision/v1`` attestation (``decision.attestation``)."""
    from assay.workflow.attestations import record_gate as sign_gate

    now = _now(now)
    d = gate(session, model_name, version, now=now, settings=settings)
    mv = reg.get_version(session, model_name, version)
    d.attestation = sign_gate(session, d, artifact_digest=mv.artifact_digest,
                              decided_at=_iso(now), settings=settings)
    return d


def update_model(session: Session, actor: Any, name: str, **fields: Any) -> Any:
    """Change a model's inventory fields (:func:`assay.registry.update_model`), with the
    deployment gate's word on ``deployment_status: deployed``: refused unless the gate
    allows one of the model's versions."""
    return reg.update_model(session, actor, name, gate=gate, **fields)
