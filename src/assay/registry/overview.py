"""The inventory overview: one row per model with its tier, versions, certification,
approval and review dates; and the check that every record has its audit event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from assay.registry.models import _choice
from assay.registry.tables import (
    DEPLOYMENT_STATUSES,
    TIERS,
    Certification,
    Model,
    ModelVersion,
    User,
)
from assay.store.db import as_utc, utcnow

__all__ = ["InventoryRow", "approval_states", "inventory", "unaudited_records"]


_TIER_ORDER = {"high": 0, "medium": 1, "low": 2, None: 3}


@dataclass(frozen=True)
class InventoryRow:
    """One model in the inventory view."""

    name: str
    tier: str | None
    deployment_status: str
    criticality: str
    decision_type: str
    owner: str
    business_unit: str
    latest_version: str | None
    versions: int
    certification: str | None
    next_review_at: datetime | None
    overdue: bool
    days_overdue: int
    approval: str | None = None
    approved_version: str | None = None
    """The newest version whose approval for deployment is in force (approved and
    not expired), which may be older than ``latest_version``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "tier": self.tier, "deployment_status": self.deployment_status,
            "criticality": self.criticality, "decision_type": self.decision_type,
            "owner": self.owner, "business_unit": self.business_unit,
            "latest_version": self.latest_version, "versions": self.versions,
            "certification": self.certification,
            "next_review_at": (as_utc(self.next_review_at).isoformat().replace("+00:00", "Z")
                               if self.next_review_at else None),
            "overdue": self.overdue, "days_overdue": self.days_overdue,
            "approval": self.approval,
            "approved_version": self.approved_version,
        }


def approval_states(session: Session, version_ids: list[int], *,
                    now: datetime | None = None) -> dict[int, str]:
    """Version id -> state of its newest approval submission (``approved``,
    ``expired``, ``in_review: STAGE``, ``rejected``...); versions never
    submitted are absent."""
    return _approval_states(session, version_ids, as_utc(now or utcnow()))


def _approval_states(session: Session, version_ids: list[int] | Select, now: datetime
                     ) -> dict[int, str]:
    """State of the newest approval submission of each version, when the workflow is installed.

    ``approved`` becomes ``expired`` once the approval's expiry has passed;
    ``in_review`` names the stage under review.
    """
    if isinstance(version_ids, list) and not version_ids:
        return {}
    try:
        from assay.workflow.tables import Submission
    except ImportError:  # the workflow package is optional for the inventory
        return {}
    out: dict[int, str] = {}
    for vid, state, stage, expires in session.execute(
            select(Submission.model_version_id, Submission.state, Submission.current_stage,
                   Submission.expires_at)
            .where(Submission.model_version_id.in_(version_ids)).order_by(Submission.id)):
        if state == "approved" and expires is not None and as_utc(expires) < now:
            state = "expired"
        elif state == "in_review" and stage:
            state = f"in_review: {stage}"
        out[vid] = state  # ordered by id: the newest submission wins
    return out


def _approved_versions(session: Session, listed: Select, now: datetime) -> dict[int, str]:
    """Per model, the newest version whose newest submission is approved and not expired."""
    try:
        from assay.workflow.tables import Submission
    except ImportError:  # the workflow package is optional for the inventory
        return {}
    newest: dict[int, tuple[int, str, str, datetime | None]] = {}
    for model_id, vid, version, state, expires in session.execute(
            select(ModelVersion.model_id, ModelVersion.id, ModelVersion.version,
                   Submission.state, Submission.expires_at)
            .join(Submission, Submission.model_version_id == ModelVersion.id)
            .where(ModelVersion.model_id.in_(listed)).order_by(Submission.id)):
        newest[vid] = (model_id, version, state, expires)  # the newest submission wins
    out: dict[int, tuple[int, str]] = {}
    for vid, (model_id, version, state, expires) in newest.items():
        if state != "approved" or (expires is not None and as_utc(expires) < now):
            continue
        if model_id not in out or vid > out[model_id][0]:
            out[model_id] = (vid, version)
    return {model_id: version for model_id, (_, version) in out.items()}


def inventory(session: Session, *, now: datetime | None = None, tier: str | None = None,
              status: str | None = None, overdue_only: bool = False) -> list[InventoryRow]:
    """Every model with its tier, status, latest version, its certification and approval
    state, the newest version approved for deployment, and review dates.

    Ordered by tier (high first, unassessed last), then overdue first, then
    by next review date and name. A review is overdue when its date has passed
    and the model is not retired.
    """
    now = as_utc(now or utcnow())
    # Plain column queries: the inventory lists every model, so loading whole
    # records (with their owners' and creators' roles) would cost far more.
    filters = []
    if tier:
        filters.append(Model.tier == _choice("tier", tier, TIERS))
    if status:
        filters.append(Model.deployment_status == _choice("status", status,
                                                          DEPLOYMENT_STATUSES))
    models = session.execute(
        select(Model.id, Model.name, Model.tier, Model.deployment_status, Model.criticality,
               Model.decision_type, User.username, Model.business_unit, Model.next_review_at)
        .join(User, Model.owner_id == User.id).where(*filters).order_by(Model.name)).all()
    # The versions, certifications and submissions of the listed models are
    # selected by subqueries, not by lists of ids bound one parameter each.
    listed = select(Model.id).where(*filters)
    latest: dict[int, tuple[int, str]] = {}
    counts: dict[int, int] = {}
    certs: dict[int, str] = {}
    approvals: dict[int, str] = {}
    approved_versions: dict[int, str] = {}
    if models:
        for model_id, vid, version in session.execute(
                select(ModelVersion.model_id, ModelVersion.id, ModelVersion.version)
                .where(ModelVersion.model_id.in_(listed)).order_by(ModelVersion.id)):
            latest[model_id] = (vid, version)  # ordered by id: the last one wins
            counts[model_id] = counts.get(model_id, 0) + 1
        newest = (select(func.max(ModelVersion.id)).where(ModelVersion.model_id.in_(listed))
                  .group_by(ModelVersion.model_id))
        for vid, cstatus in session.execute(
                select(Certification.model_version_id, Certification.status)
                .where(Certification.model_version_id.in_(newest))
                .order_by(Certification.created_at, Certification.id)):
            certs[vid] = cstatus  # ordered oldest first: the newest wins
        approvals = _approval_states(session, newest, now)
        approved_versions = _approved_versions(session, listed, now)
    rows: list[InventoryRow] = []
    for model in models:
        mv = latest.get(model.id)
        due = as_utc(model.next_review_at) if model.next_review_at else None
        overdue = bool(due and due < now and model.deployment_status != "retired")
        days = (now - due).days if overdue and due else 0
        rows.append(InventoryRow(
            name=model.name, tier=model.tier, deployment_status=model.deployment_status,
            criticality=model.criticality, decision_type=model.decision_type,
            owner=model.username, business_unit=model.business_unit,
            latest_version=mv[1] if mv else None, versions=counts.get(model.id, 0),
            certification=certs.get(mv[0]) if mv else None, next_review_at=due,
            overdue=overdue, days_overdue=days,
            approval=approvals.get(mv[0]) if mv else None,
            approved_version=approved_versions.get(model.id)))
    if overdue_only:
        rows = [r for r in rows if r.overdue]
    far = datetime.max.replace(tzinfo=now.tzinfo)
    rows.sort(key=lambda r: (_TIER_ORDER.get(r.tier, 3), not r.overdue,
                             r.next_review_at or far, r.name))
    return rows


# --------------------------------------------------------------------------- coverage

def unaudited_records(session: Session) -> list[str]:
    """Inventory records that have no audit event recording their creation.

    Every user, model, version and certification is created together with
    its event, so a record without one was written around assay (directly
    in the database). Returns one line per such record, empty when all are
    accounted for.
    """
    from assay.store.audit import AuditEvent

    def subjects(action: str) -> set[str]:
        return set(session.scalars(select(AuditEvent.subject_id)
                                   .where(AuditEvent.action == action)))

    problems: list[str] = []
    users = subjects("user.add")
    for (name,) in session.execute(select(User.username).order_by(User.id)):
        if name not in users:
            problems.append(f"user '{name}' has no user.add event")
    models = subjects("model.register")
    for (name,) in session.execute(select(Model.name).order_by(Model.id)):
        if name not in models:
            problems.append(f"model '{name}' has no model.register event")
    versions = subjects("model.version_add")
    for model_name, version in session.execute(
            select(Model.name, ModelVersion.version).join(Model)
            .order_by(ModelVersion.id)):
        if f"{model_name}@{version}" not in versions:
            problems.append(f"model version '{model_name}@{version}' has no "
                            "model.version_add event")
    recorded: set[int] = set()
    for payload in session.scalars(select(AuditEvent.payload)
                                   .where(AuditEvent.action == "certification.record")):
        if isinstance(payload, dict) and isinstance(payload.get("certification_id"), int):
            recorded.add(payload["certification_id"])
    for (cid,) in session.execute(select(Certification.id).order_by(Certification.id)):
        if cid not in recorded:
            problems.append(f"certification #{cid} has no certification.record event")
    return problems
