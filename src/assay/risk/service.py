"""Risk domain functions: assess a model version, keep the risk register, rank the backlog.

Every function takes a ``Session`` and the acting user, checks the user's
rights, writes, appends an audit event in the same transaction and never
commits: the caller (CLI command, REST route) owns the transaction, so an
operation is written whole or not at all.

Who may do what:

* assess a model version (which sets its tier): risk officer, admin;
* add a risk or finding: any role except the read-only auditor;
* update a risk or plan a mitigation: the risk's owner, a risk officer or an
  admin; accepting a risk needs a risk officer or a business owner;
* open findings from a certification: risk officer, validator, admin;
* read the register and the backlog: anyone.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from assay.errors import ConflictError, InputError, NotFoundError
from assay.risk.backlog import BacklogInput, BacklogItem, rank
from assay.risk.config import CATEGORIES
from assay.risk.policy import RiskPolicy, load_risk_policy
from assay.risk.questionnaire import Questionnaire, load_questionnaire, score_answers
from assay.risk.scoring import decide_tier, parse_categories
from assay.risk.tables import (
    MITIGATION_STATUSES,
    OPEN_STATUSES,
    RISK_STATUSES,
    SEVERITIES,
    UNFINISHED_MITIGATION,
    Mitigation,
    Risk,
    RiskAssessment,
)

ASSESSORS = ("risk_officer", "admin")  # as for registry.set_model_tier
WRITERS = ("data_scientist", "validator", "risk_officer", "compliance", "security",
           "business_owner", "admin")
RISK_MANAGERS = ("risk_officer", "admin")
ACCEPTORS = ("risk_officer", "business_owner")
FINDING_OPENERS = ("risk_officer", "validator", "admin")

#: Family of a failed check -> risk category of the finding it opens.
FAMILY_CATEGORY = {
    "integrity": "data_quality",
    "data_quality": "data_quality",
    "drift": "data_quality",
    "performance": "model_performance",
    "calibration": "model_performance",
    "robustness": "model_performance",
    "fairness": "fairness_bias",
    "privacy": "privacy",
    "security": "security",
}
#: Impact given to a finding from a failed blocking check, by the model's tier.
TIER_IMPACT = {"high": 5, "medium": 4, "low": 3}

# status -> statuses it may move to
TRANSITIONS = {
    "open": {"mitigating", "accepted", "closed"},
    "mitigating": {"open", "accepted", "closed"},
    "accepted": {"open", "closed"},
    "closed": {"open"},
}


def _now() -> datetime:
    return datetime.now(UTC)


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


def utc_iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z`` (SQLite gives back naive datetimes, meant as UTC)."""
    if value is None:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def _digest(obj: Any) -> str:
    return "sha256:" + hashlib.sha256(_canonical(obj)).hexdigest()


def severity_for(score: int) -> str:
    """Default severity of a risk from likelihood x impact (see docs/risk.md)."""
    if score >= 20:
        return "critical"
    if score >= 12:
        return "high"
    if score >= 6:
        return "medium"
    return "low"


def _registry() -> Any:
    import assay.registry as registry

    return registry


def _audit(session: Session, actor: Any, action: str, subject_type: str, subject_id: Any,
           payload: dict[str, Any], evidence: dict[str, str] | None = None) -> None:
    from assay.store.audit import append_event

    append_event(session, actor=actor.username, action=action, subject_type=subject_type,
                 subject_id=str(subject_id), payload=payload, evidence=evidence)


def _require(actor: Any, roles: tuple[str, ...], doing: str) -> None:
    _registry().require_role(actor, *roles, action=doing)


def _flush(session: Session, what: str) -> None:
    try:
        session.flush()
    except StaleDataError:
        raise ConflictError(f"{what} was changed by someone else at the same time; "
                            "reload it and try again") from None


def _int_1_5(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not value.is_integer()) or not 1 <= value <= 5:
        raise InputError(f"{name}: expected a whole number from 1 to 5, got {value!r}")
    return int(value)


def _user_id(session: Session, username: str | None, fallback: Any) -> int:
    """The id of the owner named ``username`` (default: ``fallback``, the actor).

    An owner must be an active user with a role that may act: the auditor
    role is read-only, so an auditor alone cannot own a risk or a mitigation.
    """
    if username is None:
        return int(fallback.id)
    owner = _registry().get_user(session, username)
    if not set(owner.roles) - {"auditor"}:
        raise InputError(f"user '{owner.username}' cannot own a risk or a mitigation: "
                         "they hold no role that may act (auditors are read-only)")
    return int(owner.id)


def _name(session: Session, kind: str, row_id: int | None) -> str | None:
    """User name, model name or version string of a row id, cached for the session
    (these names never change), so listing thousands of risks stays a few queries."""
    if row_id is None:
        return None
    cache = session.info.setdefault("_assay_risk_names", {})
    key = (kind, row_id)
    if key not in cache:
        from assay.registry.tables import Model, ModelVersion, User

        table, attr = {"user": (User, "username"), "model": (Model, "name"),
                       "version": (ModelVersion, "version")}[kind]
        value = session.scalar(select(getattr(table, attr)).where(table.id == row_id))
        cache[key] = value if value is not None else f"{kind}#{row_id}"
    return cache[key]


def _username(session: Session, user_id: int | None) -> str | None:
    return _name(session, "user", user_id)


# ---------------------------------------------------------------- assessment

def assessment_record(a: RiskAssessment, model_name: str, version: str) -> dict[str, Any]:
    """The canonical content of an assessment; its SHA-256 is ``record_digest``."""
    return {
        "model": model_name,
        "version": version,
        "policy": {"name": a.policy_name, "version": a.policy_version, "digest": a.policy_digest},
        "categories": a.categories,
        "aggregate": a.aggregate,
        "score": a.score,
        "score_tier": a.score_tier,
        "questionnaire": a.questionnaire,
        "impact_level": a.impact_level,
        "tier": a.tier,
        "decision": a.decision,
        "input_digest": a.input_digest,
        "notes": a.notes,
        "created_at": utc_iso(a.created_at),
    }


def _lock_model(session: Session, model: Any) -> Any:
    """Hold the model's row until the transaction ends and re-read it.

    A no-op UPDATE takes the row lock on PostgreSQL and the write lock on
    SQLite, so two assessments of the same model run one after the other: the
    model's tier is always the tier of its latest assessment.
    """
    from assay.registry.tables import Model

    session.execute(update(Model).where(Model.id == model.id).values(tier=Model.tier)
                    .execution_options(synchronize_session=False))
    session.refresh(model)
    return model


def _keep_evidence(settings: Any, input_bytes: bytes | None, rp: RiskPolicy,
                   impact: Any) -> str | None:
    """Store the assessment file, the policy file and the questionnaire file as evidence,
    so that every digest the audit event names can be opened by an auditor."""
    from pathlib import Path

    from assay.evidence import store_bytes

    for path, digest in ((rp.path, rp.digest),
                         (getattr(impact, "source", None), getattr(impact, "digest", None))):
        if path and digest and Path(path).is_file():
            data = Path(path).read_bytes()
            if "sha256:" + hashlib.sha256(data).hexdigest() == digest:  # unchanged since read
                store_bytes(settings, data)
    return store_bytes(settings, input_bytes) if input_bytes is not None else None


def assess(
    session: Session,
    actor: Any,
    model_name: str,
    version: str,
    *,
    categories: Mapping[str, Any],
    answers: Mapping[str, Any] | None = None,
    policy: Any = "default",
    questionnaire: str | Questionnaire | None = None,
    notes: str = "",
    input_bytes: bytes | None = None,
    settings: Any = None,
    source: str = "assessment",
    answers_source: str | None = None,
    now: datetime | None = None,
) -> RiskAssessment:
    """Assess one model version, set the model's tier and next review date, and audit it.

    ``categories`` is the ``categories`` mapping of an assessment file and
    ``answers`` the impact questionnaire answers. The tier follows the
    policy's ``risk`` section (``docs/risk.md``). ``input_bytes`` (the
    assessment file as given) is kept as evidence when ``settings`` is given.
    ``source`` and ``answers_source`` name the inputs in error messages.
    """
    _require(actor, ASSESSORS, "assess model risk")
    reg = _registry()
    model = _lock_model(session, reg.get_model(session, model_name))
    mv = reg.get_version(session, model_name, version)
    rp: RiskPolicy = load_risk_policy(policy)
    scores = parse_categories(categories, rp.risk, source=source)
    impact = None
    if answers is not None:
        q = questionnaire if isinstance(questionnaire, Questionnaire) else load_questionnaire(
            questionnaire or rp.risk.questionnaire)
        impact = score_answers(q, answers, source=answers_source or source)
    elif rp.risk.require_questionnaire:
        raise InputError(f"{source}: impact questionnaire answers are required by policy "
                         f"{rp.name} (risk.require_questionnaire); give them with "
                         "--questionnaire-answers or 'questionnaire_answers' in the file")
    decision = decide_tier(scores, rp.risk, impact.level if impact else None)
    when = now or _now()
    input_digest = None
    settings = settings or session.info.get("settings")
    if settings is not None:
        input_digest = _keep_evidence(settings, input_bytes, rp, impact)
    row = RiskAssessment(
        model_id=model.id, model_version_id=mv.id, policy_name=rp.name,
        policy_version=rp.version, policy_digest=rp.digest,
        categories=[s.to_dict() for s in scores], aggregate=decision.aggregate,
        score=decision.score, score_tier=decision.score_tier,
        questionnaire=impact.to_dict() if impact else None,
        impact_level=impact.level if impact else None, tier=decision.tier,
        decision=decision.to_dict(), input_digest=input_digest, notes=notes or "",
        created_by=actor.id, created_at=when, record_digest="",
    )
    row.record_digest = _digest(assessment_record(row, model.name, mv.version))
    session.add(row)
    previous_tier = model.tier
    interval = rp.risk.tier(decision.tier).review_interval_days
    model.tier = decision.tier
    model.next_review_at = when + timedelta(days=interval)
    _flush(session, f"model '{model.name}'")
    evidence = {"assessment": row.record_digest, "policy": rp.digest}
    if input_digest:
        evidence["assessment_input"] = input_digest
    if impact:
        evidence["questionnaire"] = impact.digest
    _audit(session, actor, "risk.assess", "model_version", f"{model.name}@{mv.version}", {
        "model": model.name, "version": mv.version, "assessment_id": row.id,
        "tier": decision.tier, "previous_tier": previous_tier, "score": decision.score,
        "score_tier": decision.score_tier, "impact_level": row.impact_level,
        "policy": {"name": rp.name, "version": rp.version},
        "next_review_at": utc_iso(model.next_review_at),
        "categories": {s.category: {"likelihood": s.likelihood, "impact": s.impact,
                                    "residual": s.residual} for s in scores},
    }, evidence)
    return row


def latest_assessment(session: Session, model_name: str,
                      version: str | None = None) -> RiskAssessment | None:
    """The newest assessment of a model (of one version when ``version`` is given)."""
    reg = _registry()
    model = reg.get_model(session, model_name)
    stmt = select(RiskAssessment).where(RiskAssessment.model_id == model.id)
    if version is not None:
        mv = reg.get_version(session, model_name, version)
        stmt = stmt.where(RiskAssessment.model_version_id == mv.id)
    stmt = stmt.order_by(RiskAssessment.created_at.desc(), RiskAssessment.id.desc()).limit(1)
    return session.scalars(stmt).first()


def list_assessments(session: Session, model_name: str) -> list[RiskAssessment]:
    model = _registry().get_model(session, model_name)
    return list(session.scalars(
        select(RiskAssessment).where(RiskAssessment.model_id == model.id)
        .order_by(RiskAssessment.created_at, RiskAssessment.id)))


# ---------------------------------------------------------------- register

def get_risk(session: Session, risk_id: int) -> Risk:
    row = session.get(Risk, risk_id)
    if row is None:
        raise NotFoundError(f"risk {risk_id} not found")
    return row


def risk_dict(session: Session, r: Risk) -> dict[str, Any]:
    """A risk and its mitigations as plain data (for JSON output and the API)."""
    return {
        "id": r.id,
        "model": _name(session, "model", r.model_id),
        "version": _name(session, "version", r.model_version_id),
        "kind": r.kind,
        "title": r.title,
        "description": r.description,
        "category": r.category,
        "severity": r.severity,
        "likelihood": r.likelihood,
        "impact": r.impact,
        "score": r.score,
        "owner": _username(session, r.owner_id),
        "status": r.status,
        "source": r.source,
        "certification_id": r.certification_id,
        "resolution": r.resolution,
        "created_by": _username(session, r.created_by),
        "created_at": utc_iso(r.created_at),
        "updated_at": utc_iso(r.updated_at),
        "row_version": r.row_version,
        "mitigations": [mitigation_dict(session, m) for m in r.mitigations],
    }


def mitigation_dict(session: Session, m: Mitigation) -> dict[str, Any]:
    return {
        "id": m.id,
        "risk_id": m.risk_id,
        "title": m.title,
        "owner": _username(session, m.owner_id),
        "due_date": m.due_date.isoformat() if m.due_date else None,
        "success_criteria": m.success_criteria,
        "estimated_cost": m.estimated_cost,
        "estimated_days": m.estimated_days,
        "status": m.status,
        "row_version": m.row_version,
    }


def _check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise InputError(f"unknown risk category '{category}'; expected one of "
                         + ", ".join(CATEGORIES))
    return category


def _check_severity(severity: str | None, score: int) -> str:
    if severity is None:
        return severity_for(score)
    if severity not in SEVERITIES:
        raise InputError(f"unknown severity '{severity}'; expected one of " + ", ".join(SEVERITIES))
    return severity


def add_risk(
    session: Session,
    actor: Any,
    model_name: str,
    *,
    title: str,
    category: str,
    likelihood: int,
    impact: int,
    owner: str | None = None,
    description: str = "",
    severity: str | None = None,
    version: str | None = None,
    kind: str = "risk",
    source: str | None = None,
    certification_id: int | None = None,
    now: datetime | None = None,
) -> Risk:
    """Add a risk (or a finding) about a model to the register; the owner defaults to the actor."""
    _require(actor, WRITERS, "add to the risk register")
    reg = _registry()
    model = reg.get_model(session, model_name)
    mv = reg.get_version(session, model_name, version) if version is not None else None
    if not isinstance(title, str) or not title.strip():
        raise InputError("a risk needs a non-empty title")
    if kind not in ("risk", "finding"):
        raise InputError(f"unknown kind '{kind}'; expected risk or finding")
    lik = _int_1_5(likelihood, "likelihood")
    imp = _int_1_5(impact, "impact")
    when = now or _now()
    row = Risk(
        model_id=model.id, model_version_id=mv.id if mv else None, title=title.strip(),
        description=description or "", category=_check_category(category), kind=kind,
        severity=_check_severity(severity, lik * imp), likelihood=lik, impact=imp,
        owner_id=_user_id(session, owner, actor), status="open", source=source,
        certification_id=certification_id, resolution="", created_by=actor.id,
        created_at=when, updated_at=when,
    )
    session.add(row)
    _flush(session, "the risk register")
    _audit(session, actor, "risk.register", "risk", row.id, {
        "model": model.name, "version": mv.version if mv else None, "kind": kind,
        "title": row.title, "category": row.category, "severity": row.severity,
        "likelihood": lik, "impact": imp, "owner": _username(session, row.owner_id),
        "source": source, "certification_id": certification_id,
    })
    return row


def _may_manage(actor: Any, risk: Risk, doing: str) -> None:
    roles = set(getattr(actor, "roles", set()) or set())
    if actor.id == risk.owner_id and roles - {"auditor"}:
        return
    _require(actor, RISK_MANAGERS, f"{doing} (only its owner, a risk officer or an admin)")


def update_risk(
    session: Session,
    actor: Any,
    risk_id: int,
    *,
    expected_version: int | None = None,
    status: str | None = None,
    likelihood: int | None = None,
    impact: int | None = None,
    severity: str | None = None,
    owner: str | None = None,
    title: str | None = None,
    description: str | None = None,
    resolution: str | None = None,
    now: datetime | None = None,
) -> Risk:
    """Change a risk. ``expected_version`` (the ``row_version`` the caller saw) guards
    against overwriting someone else's change; accepting or closing needs a resolution."""
    risk = get_risk(session, risk_id)
    _may_manage(actor, risk, f"change risk {risk_id}")
    if expected_version is not None and expected_version != risk.row_version:
        raise ConflictError(f"risk {risk_id} is at version {risk.row_version}, not "
                            f"{expected_version}: someone changed it; reload it and try again")
    changes: dict[str, Any] = {}

    def change(field: str, value: Any) -> None:
        old = getattr(risk, field)
        if value != old:
            changes[field] = {"from": old, "to": value}
            setattr(risk, field, value)

    if title is not None:
        if not title.strip():
            raise InputError("a risk needs a non-empty title")
        change("title", title.strip())
    if description is not None:
        change("description", description)
    if likelihood is not None:
        change("likelihood", _int_1_5(likelihood, "likelihood"))
    if impact is not None:
        change("impact", _int_1_5(impact, "impact"))
    if severity is not None:
        change("severity", _check_severity(severity, risk.score))
    elif likelihood is not None or impact is not None:
        change("severity", severity_for(risk.likelihood * risk.impact))
    if owner is not None:
        new_owner = _user_id(session, owner, actor)
        if new_owner != risk.owner_id:
            changes["owner"] = {"from": _username(session, risk.owner_id), "to": owner}
            risk.owner_id = new_owner
    if resolution is not None:
        change("resolution", resolution.strip())
    if status is not None and status != risk.status:
        if status not in RISK_STATUSES:
            raise InputError(f"unknown status '{status}'; expected one of "
                             + ", ".join(RISK_STATUSES))
        if status not in TRANSITIONS[risk.status]:
            raise ConflictError(f"risk {risk_id} is {risk.status}: it cannot move to {status} "
                                "(allowed: " + ", ".join(sorted(TRANSITIONS[risk.status])) + ")")
        if status == "accepted":
            _require(actor, ACCEPTORS, f"accept risk {risk_id}")
        if status in ("accepted", "closed") and not (risk.resolution or "").strip():
            raise InputError(f"risk {risk_id}: moving to {status} needs a resolution "
                             "(why it is accepted, or how it was resolved)")
        if status == "closed":
            pending = [m.id for m in risk.mitigations if m.status in UNFINISHED_MITIGATION]
            if pending:
                raise ConflictError(f"risk {risk_id} has unfinished mitigation(s) "
                                    + ", ".join(map(str, pending))
                                    + ": mark them done or cancelled before closing it")
        change("status", status)
    if not changes:
        raise InputError(f"risk {risk_id}: nothing to change")
    risk.updated_at = now or _now()
    _flush(session, f"risk {risk_id}")
    _audit(session, actor, "risk.update", "risk", risk.id,
           {"changes": changes, "row_version": risk.row_version})
    return risk


def _money(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(
            float(value)) or math.isinf(float(value)) or value < 0:
        raise InputError(f"{name}: expected a number >= 0, got {value!r}")
    return float(value)


def add_mitigation(
    session: Session,
    actor: Any,
    risk_id: int,
    *,
    title: str,
    success_criteria: str,
    owner: str | None = None,
    due_date: date | None = None,
    estimated_cost: float = 0.0,
    estimated_days: float = 0.0,
    now: datetime | None = None,
) -> Mitigation:
    """Plan a mitigation of a risk; an open risk becomes ``mitigating``."""
    risk = get_risk(session, risk_id)
    _may_manage(actor, risk, f"plan mitigations of risk {risk_id}")
    if risk.status not in OPEN_STATUSES:
        raise ConflictError(f"risk {risk_id} is {risk.status}: re-open it before planning "
                            "a mitigation")
    if not isinstance(title, str) or not title.strip():
        raise InputError("a mitigation needs a non-empty title")
    if not isinstance(success_criteria, str) or not success_criteria.strip():
        raise InputError("a mitigation needs success criteria (how you will know it worked)")
    when = now or _now()
    row = Mitigation(
        risk_id=risk.id, title=title.strip(), owner_id=_user_id(session, owner, actor),
        due_date=due_date, success_criteria=success_criteria.strip(),
        estimated_cost=_money(estimated_cost, "estimated cost"),
        estimated_days=_money(estimated_days, "estimated days"), status="planned",
        created_by=actor.id, created_at=when, updated_at=when,
    )
    session.add(row)
    moved = risk.status == "open"
    if moved:
        risk.status = "mitigating"
        risk.updated_at = when
    _flush(session, f"risk {risk_id}")
    _audit(session, actor, "risk.mitigate", "risk", risk.id, {
        "mitigation_id": row.id, "title": row.title, "owner": _username(session, row.owner_id),
        "due_date": due_date.isoformat() if due_date else None,
        "success_criteria": row.success_criteria, "estimated_cost": row.estimated_cost,
        "estimated_days": row.estimated_days,
        "risk_status": {"from": "open", "to": "mitigating"} if moved else None,
    })
    return row


def update_mitigation(
    session: Session,
    actor: Any,
    mitigation_id: int,
    *,
    status: str | None = None,
    due_date: date | None = None,
    estimated_cost: float | None = None,
    estimated_days: float | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Mitigation:
    """Change a mitigation's status, due date or estimates."""
    m = session.get(Mitigation, mitigation_id)
    if m is None:
        raise NotFoundError(f"mitigation {mitigation_id} not found")
    risk = get_risk(session, m.risk_id)
    if actor.id != m.owner_id:
        _may_manage(actor, risk, f"change mitigation {mitigation_id}")
    if expected_version is not None and expected_version != m.row_version:
        raise ConflictError(f"mitigation {mitigation_id} is at version {m.row_version}, not "
                            f"{expected_version}: someone changed it; reload it and try again")
    changes: dict[str, Any] = {}
    if status is not None and status != m.status:
        if status not in MITIGATION_STATUSES:
            raise InputError(f"unknown mitigation status '{status}'; expected one of "
                             + ", ".join(MITIGATION_STATUSES))
        changes["status"] = {"from": m.status, "to": status}
        m.status = status
    if due_date is not None and due_date != m.due_date:
        changes["due_date"] = {"from": m.due_date.isoformat() if m.due_date else None,
                               "to": due_date.isoformat()}
        m.due_date = due_date
    if estimated_cost is not None:
        v = _money(estimated_cost, "estimated cost")
        if v != m.estimated_cost:
            changes["estimated_cost"] = {"from": m.estimated_cost, "to": v}
            m.estimated_cost = v
    if estimated_days is not None:
        v = _money(estimated_days, "estimated days")
        if v != m.estimated_days:
            changes["estimated_days"] = {"from": m.estimated_days, "to": v}
            m.estimated_days = v
    if not changes:
        raise InputError(f"mitigation {mitigation_id}: nothing to change")
    m.updated_at = now or _now()
    _flush(session, f"mitigation {mitigation_id}")
    _audit(session, actor, "risk.mitigation_update", "risk", risk.id,
           {"mitigation_id": m.id, "changes": changes, "row_version": m.row_version})
    return m


def list_risks(
    session: Session,
    *,
    model_name: str | None = None,
    status: str | list[str] | None = None,
    category: str | None = None,
) -> list[Risk]:
    """Risks in the register, oldest first, optionally filtered."""
    stmt = select(Risk)
    if model_name is not None:
        model = _registry().get_model(session, model_name)
        stmt = stmt.where(Risk.model_id == model.id)
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        for s in statuses:
            if s not in RISK_STATUSES:
                raise InputError(f"unknown status '{s}'; expected one of "
                                 + ", ".join(RISK_STATUSES))
        stmt = stmt.where(Risk.status.in_(statuses))
    if category is not None:
        stmt = stmt.where(Risk.category == _check_category(category))
    stmt = stmt.options(selectinload(Risk.mitigations))  # one query for all mitigations
    return list(session.scalars(stmt.order_by(Risk.created_at, Risk.id)))


def backlog(session: Session, *, policy: Any = "default", model_name: str | None = None,
            today: date | None = None) -> list[BacklogItem]:
    """Open risks ranked by priority (formula in ``assay.risk.backlog`` and docs/risk.md).

    Each item also says how many unfinished mitigations are past their due
    date (``overdue``), as of ``today`` (default: the current UTC date).
    """
    config = load_risk_policy(policy).risk.backlog
    today = today or _now().date()
    items = []
    for r in list_risks(session, model_name=model_name, status=list(OPEN_STATUSES)):
        unfinished = [m for m in r.mitigations if m.status in UNFINISHED_MITIGATION]
        dues = [m.due_date for m in unfinished if m.due_date is not None]
        d = risk_dict(session, r)
        items.append(BacklogInput(
            risk_id=r.id, title=r.title, likelihood=r.likelihood, impact=r.impact,
            mitigation_costs=tuple(m.estimated_cost for m in unfinished),
            mitigation_days=tuple(m.estimated_days for m in unfinished),
            next_due=min(dues) if dues else None, created_order=r.created_at,
            extra={"model": d["model"], "category": r.category, "severity": r.severity,
                   "status": r.status, "owner": d["owner"],
                   "mitigations": len(unfinished),
                   "overdue": sum(1 for due in dues if due < today)},
        ))
    return rank(items, config)


def heatmap(session: Session, *, model_name: str | None = None) -> list[list[list[int]]]:
    """Open risks on the likelihood x impact grid: ``grid[l - 1][i - 1]`` lists the ids."""
    grid: list[list[list[int]]] = [[[] for _ in range(5)] for _ in range(5)]
    for r in list_risks(session, model_name=model_name, status=list(OPEN_STATUSES)):
        grid[r.likelihood - 1][r.impact - 1].append(r.id)
    return grid


# ---------------------------------------------------------------- from a certification

def register_from_certification(
    session: Session,
    actor: Any,
    model_name: str,
    version: str,
    *,
    settings: Any = None,
    results: Mapping[str, Any] | None = None,
    owner: str | None = None,
    now: datetime | None = None,
) -> list[Risk]:
    """Open one finding per failed (or errored) blocking check of the version's latest
    certification.

    The results are read from the certification's evidence (``settings``
    locates it) unless ``results`` is given. A check that already has an
    open finding from the same certification is not registered twice.
    """
    _require(actor, FINDING_OPENERS, "open findings from a certification")
    reg = _registry()
    # serialised per model, so two people running it at once cannot open a finding twice
    model = _lock_model(session, reg.get_model(session, model_name))
    mv = reg.get_version(session, model_name, version)
    cert = reg.latest_certification(session, mv.id)
    if cert is None:
        raise NotFoundError(f"model '{model_name}' version '{version}' has no recorded "
                            "certification (assay certify ... --record)")
    if results is None:
        from assay.evidence import open_artifact

        settings = settings or session.info.get("settings")
        if settings is None:
            from assay.config import load_settings

            settings = load_settings()
        try:
            results = json.loads(open_artifact(settings, cert.results_digest))
        except (ValueError, UnicodeDecodeError):
            raise InputError(f"certification {cert.id}: results {cert.results_digest} are not "
                             "valid JSON") from None
    checks = results.get("checks") if isinstance(results, Mapping) else None
    if not isinstance(checks, list):
        raise InputError(f"certification {cert.id}: results have no 'checks' list")
    tier = (results.get("policy") or {}).get("tier") or cert.tier or model.tier or "medium"
    existing = {r.source for r in session.scalars(
        select(Risk).where(Risk.certification_id == cert.id,
                           Risk.status.in_(OPEN_STATUSES)))}
    if owner is None:
        owner_id = getattr(model, "owner_id", None)
        owner = _username(session, owner_id) if isinstance(owner_id, int) else None
        if owner is None and isinstance(getattr(model, "owner", None), str):
            owner = model.owner
    opened = []
    for c in checks:
        if not isinstance(c, Mapping):
            continue
        status = c.get("status")
        if status not in ("fail", "error") or c.get("severity", "block") != "block":
            continue
        source = f"check:{c.get('id')}"
        if source in existing:
            continue
        family = str(c.get("family") or str(c.get("id", "")).split(".")[0])
        message = str(c.get("message") or "")
        what = "failed" if status == "fail" else "could not run (error)"
        desc = (f"Blocking check {c.get('id')} {what} in certification {cert.id} "
                f"(policy {cert.policy_name} {cert.policy_version}, tier {tier}). {message}")
        verb = "Failed" if status == "fail" else "Errored"
        opened.append(add_risk(
            session, actor, model.name, version=mv.version, kind="finding",
            title=f"{verb} check {c.get('id')}: {c.get('title') or ''}".rstrip(": "),
            description=desc.strip(), category=FAMILY_CATEGORY.get(family, "model_performance"),
            likelihood=5, impact=TIER_IMPACT.get(str(tier), 4), owner=owner,
            source=source, certification_id=cert.id, now=now,
        ))
        existing.add(source)
    return opened
