"""Tables of the approval workflow (created by migration ``0003_workflow``).

A *submission* puts one model version through the stages of its tier. At
submission time the stages, the roles that must sign each one, the number of
distinct approvers and the evidence each needs are copied from the policy
into ``wf_stages``, so the record shows what the version was judged against
even if the policy changes later. ``wf_submissions.revision`` is a row
version: every action on a submission bumps it, so two people acting on the
same submission at once cannot both win.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from assay.store.db import Base

# Submission states.
IN_REVIEW = "in_review"
APPROVED = "approved"
REJECTED = "rejected"
SUPERSEDED = "superseded"
RECERTIFY = "recertification_required"

# Stage states.
PENDING = "pending"
STAGE_APPROVED = "approved"
STAGE_REJECTED = "rejected"
SKIPPED = "skipped"


class Submission(Base):
    __tablename__ = "wf_submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), index=True, nullable=False
    )
    policy_name: Mapped[str] = mapped_column(String(200), nullable=False)
    policy_version: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    policy_digest: Mapped[str] = mapped_column(String(80), nullable=False)
    # What to load the policy from again (shipped name or path) for change control.
    policy_source: Mapped[str] = mapped_column(String(1000), nullable=False)
    tier: Mapped[str] = mapped_column(String(20), nullable=False)
    state: Mapped[str] = mapped_column(String(40), nullable=False, default=IN_REVIEW)
    current_stage: Mapped[str | None] = mapped_column(String(100))
    deployment_stage: Mapped[str] = mapped_column(String(100), nullable=False)
    submitted_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_reason: Mapped[str | None] = mapped_column(Text)
    # The certification the deployment approval rested on (set when it is granted).
    certification_id: Mapped[int | None] = mapped_column(ForeignKey("certifications.id"))
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__: dict[str, Any] = {"version_id_col": revision}  # noqa: RUF012


class StageState(Base):
    __tablename__ = "wf_stages"
    __table_args__ = (UniqueConstraint("submission_id", "stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("wf_submissions.id"), index=True, nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    stage: Mapped[str] = mapped_column(String(100), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    status: Mapped[str] = mapped_column(String(20), nullable=False, default=PENDING)
    roles: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    approvers: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    evidence: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    independent: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SignOff(Base):
    """One person's decision on one stage: approve (with conditions) or reject."""

    __tablename__ = "wf_signoffs"
    __table_args__ = (UniqueConstraint("submission_id", "stage", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("wf_submissions.id"), index=True, nullable=False
    )
    stage: Mapped[str] = mapped_column(String(100), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    role: Mapped[str] = mapped_column(String(40), nullable=False)
    decision: Mapped[str] = mapped_column(String(20), nullable=False)  # approve | reject
    reason: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    evidence: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Condition(Base):
    """A condition attached to an approval ("re-run fairness checks quarterly")."""

    __tablename__ = "wf_conditions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("wf_submissions.id"), index=True, nullable=False
    )
    signoff_id: Mapped[int] = mapped_column(ForeignKey("wf_signoffs.id"), nullable=False)
    stage: Mapped[str] = mapped_column(String(100), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Comment(Base):
    __tablename__ = "wf_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("wf_submissions.id"), index=True, nullable=False
    )
    stage: Mapped[str | None] = mapped_column(String(100))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Document(Base):
    """A document attached to a stage as evidence (stored content-addressed)."""

    __tablename__ = "wf_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("wf_submissions.id"), index=True, nullable=False
    )
    stage: Mapped[str] = mapped_column(String(100), nullable=False)
    name: Mapped[str] = mapped_column(String(300), nullable=False)
    digest: Mapped[str] = mapped_column(String(80), nullable=False)
    added_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Waiver(Base):
    """Permission to deploy despite a blocked (or missing) certification or a failed check."""

    __tablename__ = "wf_waivers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), index=True, nullable=False
    )
    scope: Mapped[str] = mapped_column(String(20), nullable=False)  # certification | check
    check_id: Mapped[str | None] = mapped_column(String(200))
    certification_id: Mapped[int | None] = mapped_column(ForeignKey("certifications.id"))
    policy_name: Mapped[str] = mapped_column(String(200), nullable=False)
    tier: Mapped[str] = mapped_column(String(20), nullable=False)
    justification: Mapped[str] = mapped_column(Text, nullable=False)
    granted_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
