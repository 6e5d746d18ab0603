"""Tables of risk tiering and the risk register (created by migration ``0002_risk``).

* ``risk_assessments``: one row per assessment of a model version, with the
  category scores, the questionnaire answers and level, the policy it was
  judged under and the resulting tier. Assessments are never edited: a new
  assessment supersedes the previous one.
* ``risk_register``: risks and findings about a model (optionally one
  version), with their owner and status, and what raised them (a failed
  check of a certification, a review, an incident).
* ``risk_mitigations``: planned actions against one risk, with owner, due
  date, success criteria, estimated cost and duration.

``row_version`` on the register and mitigation rows is an optimistic lock:
SQLAlchemy adds ``WHERE row_version = :seen`` to every UPDATE, so two people
updating the same risk at once cannot silently overwrite each other.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from assay.store.db import Base

#: Status of a risk in the register.
RISK_STATUSES = ("open", "mitigating", "accepted", "closed")
OPEN_STATUSES = ("open", "mitigating")
#: Severity of a risk, lowest first.
SEVERITIES = ("low", "medium", "high", "critical")
#: Status of a mitigation.
MITIGATION_STATUSES = ("planned", "in_progress", "done", "cancelled")
UNFINISHED_MITIGATION = ("planned", "in_progress")

TZ = DateTime(timezone=True)


class RiskAssessment(Base):
    __tablename__ = "risk_assessments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True, nullable=False)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), index=True, nullable=False
    )
    policy_name: Mapped[str] = mapped_column(String(200), nullable=False)
    policy_version: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    policy_digest: Mapped[str] = mapped_column(String(80), nullable=False)
    categories: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    aggregate: Mapped[str] = mapped_column(String(20), nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)
    score_tier: Mapped[str] = mapped_column(String(10), nullable=False)
    questionnaire: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    impact_level: Mapped[str | None] = mapped_column(String(4))
    tier: Mapped[str] = mapped_column(String(10), nullable=False)
    decision: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    input_digest: Mapped[str | None] = mapped_column(String(80))
    # SHA-256 of the canonical JSON of this assessment (see service.assessment_record)
    record_digest: Mapped[str] = mapped_column(String(80), nullable=False)
    notes: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)


class Risk(Base):
    __tablename__ = "risk_register"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True, nullable=False)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    category: Mapped[str] = mapped_column(String(40), nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False, default="risk")  # risk|finding
    severity: Mapped[str] = mapped_column(String(10), nullable=False)
    likelihood: Mapped[int] = mapped_column(Integer, nullable=False)
    impact: Mapped[int] = mapped_column(Integer, nullable=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="open")
    source: Mapped[str | None] = mapped_column(String(300))
    certification_id: Mapped[int | None] = mapped_column(ForeignKey("certifications.id"))
    resolution: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)

    mitigations: Mapped[list[Mitigation]] = relationship(
        back_populates="risk", order_by="Mitigation.id"
    )

    __mapper_args__ = {"version_id_col": row_version}  # noqa: RUF012

    @property
    def score(self) -> int:
        return self.likelihood * self.impact


class Mitigation(Base):
    __tablename__ = "risk_mitigations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    risk_id: Mapped[int] = mapped_column(ForeignKey("risk_register.id"), index=True,
                                         nullable=False)
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    due_date: Mapped[date | None] = mapped_column(Date)
    success_criteria: Mapped[str] = mapped_column(Text, nullable=False)
    estimated_cost: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    estimated_days: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="planned")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)

    risk: Mapped[Risk] = relationship(back_populates="mitigations")

    __mapper_args__ = {"version_id_col": row_version}  # noqa: RUF012
