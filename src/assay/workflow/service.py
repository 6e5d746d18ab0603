"""The approval workflow: submit, sign off, reject, comment, waive, status, gate.

Every function takes a ``Session`` and (for changes) the acting ``User``,
checks rights and the separation of duties, writes, appends an audit event
and never commits: the caller owns the transaction (``store.transaction()``),
so an action is recorded whole or not at all.

Rules enforced here:

* only a data scientist submits a model version; the submission copies the
  stages, roles, approver counts and evidence of the version's tier from the
  policy's ``workflow`` section;
* stages are acted on in order; acting on a stage that is not the current
  one is a :class:`ConflictError`;
* separation of duties: nobody signs their own submission, the version's
  developer cannot sign an ``independent`` stage (validation), one person
  fills at most one approver slot per stage;
* the deployment stage (and any stage needing ``certification`` evidence)
  can be approved only if the version's latest certification under the
  submission's policy and tier passed, or a valid waiver covers it;
* waivers need a justification, an expiry within the policy's limit and a
  role the policy allows; they can be revoked; conditions of an approval stay
  open until someone independent of the developer records how they were met;
* change control: a new policy version, a changed risk tier, a newer
  certification that no longer passes, or an expired approval or waiver
  sends the version back to certification; a newer version of the model is
  reported as needing certification of its own (and, if the policy says so,
  ends the older versions' approval);
* concurrency: the submission row is locked (``SELECT ... FOR UPDATE`` on
  PostgreSQL; SQLite's write lock is taken before an action reads) and
  carries a row version (``revision``), so of two people acting on the same
  stage at once exactly one wins and the other gets a :class:`ConflictError`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from assay.errors import AssayError, ConflictError, InputError, NotFoundError, PermissionDenied
from assay.workflow import _registry as reg
from assay.workflow.config import TIERS
from assay.workflow.policy import PolicyInfo, load_policy_info
from assay.workflow.tables import (
    APPROVED,
    IN_REVIEW,
    PENDING,
    RECERTIFY,
    REJECTED,
    SKIPPED,
    STAGE_APPROVED,
    STAGE_REJECTED,
    SUPERSEDED,
    Comment,
    Condition,
    Document,
    SignOff,
    StageState,
    Submission,
    Waiver,
)

F = TypeVar("F", bound=Callable[..., Any])

PASSING = ("passed", "passed_with_warnings")
SUBMIT_ROLES = ("data_scientist",)
OPEN_STATES = (IN_REVIEW, APPROVED)


# --------------------------------------------------------------------------- helpers


def _now(now: datetime | None) -> datetime:
    return _aware(now) if now is not None else datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    """Datetimes read back from SQLite are naive; everything stored is UTC."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _iso(dt: datetime | None) -> str | None:
    dt = _aware(dt)
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def _day(dt: datetime | None) -> str:
    dt = _aware(dt)
    return dt.strftime("%Y-%m-%d %H:%M UTC") if dt else "-"


def _clean(text: str | None) -> str:
    return (text or "").strip()


def _subject(model_name: str, version: str) -> str:
    return f"{model_name}@{version}"


def _sha(digest: str | None) -> str:
    """Digests compare as "sha256:<hex>" whether or not the prefix was stored."""
    d = str(digest or "")
    return d if not d or d.startswith("sha256:") else f"sha256:{d}"


def _evidence(**items: str | None) -> dict[str, str]:
    return {k: v for k, v in items.items() if v}


def _flush(session: Session, what: str) -> None:
    """Flush, turning a lost race into a ConflictError (the transaction rolls back)."""
    with _lost_race(what):
        session.flush()


@contextmanager
def _lost_race(what: str) -> Iterator[None]:
    """A concurrent change detected by the database becomes a ConflictError."""
    try:
        yield
    except StaleDataError:
        raise ConflictError(
            f"{what}: someone else changed this submission at the same time; "
            "nothing was recorded, reload and try again"
        ) from None
    except IntegrityError:
        raise ConflictError(
            f"{what}: conflicts with a sign-off recorded at the same time; nothing was recorded"
        ) from None
    except OperationalError as exc:
        if "locked" in str(exc).lower():
            raise ConflictError(
                f"{what}: the database was busy with a concurrent change; "
                "nothing was recorded, try again"
            ) from None
        raise


def _action(what: str) -> Callable[[F], F]:
    """Mark a domain action: a lost race anywhere inside it (also during an
    autoflush) is reported as a ConflictError, never as a database error."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _lost_race(what):
                _serialize(args[0] if args else kwargs["session"])
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return deco


def _serialize(session: Session) -> None:
    """On SQLite, take the database write lock before reading what the action
    decides on (a write matching no row holds it to the end of the transaction),
    so concurrent actions run one after the other and each sees the other's
    result. PostgreSQL locks the rows themselves with ``SELECT ... FOR UPDATE``."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE wf_submissions SET id = id WHERE 1 = 0"))


def _audit(session: Session, actor: Any, action: str, model_name: str, version: str,
           payload: dict[str, Any], evidence: dict[str, str]) -> None:
    from assay.store.audit import append_event

    append_event(session, actor=actor.username, action=action, subject_type="model_version",
                 subject_id=_subject(model_name, version),
                 payload=json.loads(json.dumps(payload, default=str)), evidence=evidence or None)


# --------------------------------------------------------------------------- queries


def latest_submission(session: Session, version_id: int, *, lock: bool = False
                      ) -> Submission | None:
    stmt = (select(Submission).where(Submission.model_version_id == version_id)
            .order_by(Submission.id.desc()).limit(1))
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalars(stmt).first()


def _stages(session: Session, submission_id: int) -> list[StageState]:
    return list(session.scalars(select(StageState).where(StageState.submission_id == submission_id)
                                .order_by(StageState.position)))


def _signoffs(session: Session, submission_id: int, stage: str | None = None) -> list[SignOff]:
    stmt = select(SignOff).where(SignOff.submission_id == submission_id)
    if stage is not None:
        stmt = stmt.where(SignOff.stage == stage)
    return list(session.scalars(stmt.order_by(SignOff.id)))


def _documents(session: Session, submission_id: int, stage: str | None = None) -> list[Document]:
    stmt = select(Document).where(Document.submission_id == submission_id)
    if stage is not None:
        stmt = stmt.where(Document.stage == stage)
    return list(session.scalars(stmt.order_by(Document.id)))


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


def _risk_assessment_digest(session: Session, version: Any) -> str | None:
    return reg.risk_assessment_digest(session, version)


# --------------------------------------------------------------------------- submit


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
    return sub


def _next_pending(session: Session, submission_id: int) -> str | None:
    for st in _stages(session, submission_id):
        if st.status == PENDING:
            return st.stage
    return None


# --------------------------------------------------------------------------- sign-off


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
        elif kind == "risk_assessment":
            digest = _risk_assessment_digest(session, mv)
            if digest:
                ev["risk_assessment"] = digest
            else:
                problems.append("no risk assessment of this version (assay risk assess)")
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
    signed = _signoffs(session, sub.id, stage)
    approvals = [s for s in signed if s.decision == "approve"]
    _separation_of_duties(actor, sub, st, mv, signed)
    as_role = _pick_role(actor, st, approvals, role)

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
    _audit(session, actor, "workflow.approve", model_name, version, payload, ev)
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
    signed = _signoffs(session, sub.id, stage)
    _separation_of_duties(actor, sub, st, mv, signed)
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
    _audit(session, actor, "workflow.reject", model_name, version,
           {"submission": sub.id, "stage": stage, "role": so.role, "reason": reason}, {})
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


# --------------------------------------------------------------------------- waivers


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
    if check_id is None and cert is not None and cert.status in PASSING:
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


# --------------------------------------------------------------------------- change control


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


# --------------------------------------------------------------------------- gate


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
    elif cc.waivers:
        d.waived_until = _iso(min(_aware(w.expires_at) or now for w in cc.waivers))
    if sub.state in (APPROVED, RECERTIFY):
        d.reasons.extend(change_reasons(session, model_name, version, now=now))
        d.approved_until = _iso(sub.expires_at)
    d.conditions = [c.text for c in session.scalars(
        select(Condition).where(Condition.submission_id == sub.id, Condition.status == "open")
        .order_by(Condition.id))]
    d.allowed = sub.state == APPROVED and not d.reasons
    return d


# --------------------------------------------------------------------------- review & status


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


def _usernames(session: Session, ids: Iterable[int]) -> dict[int, str]:
    return {i: reg.username_of(session, i) for i in set(ids)}


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
    for user in reg.active_users(session):
        roles = [r for r in st.roles if r in user.roles]
        if not roles or user.id == sub.submitted_by or user.id in signed_ids:
            continue
        if st.independent and reg.is_developer(user, mv):
            continue
        info.eligible.append({"user": user.username, "roles": roles})
    if actor is not None:
        info.you = actor.username
        signed = [x for x in signs if x.stage == st.stage]
        try:
            _separation_of_duties(actor, sub, st, mv, signed)
            role = _pick_role(actor, st, [x for x in signed if x.decision == "approve"], None)
            info.you_may_sign_as = [role] + [r for r in st.roles
                                             if r in actor.roles and r != role]
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
