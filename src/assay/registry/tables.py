"""Inventory tables: users and their roles, models, model versions, certifications,
registered policies.

Created by migrations ``0001_core`` and ``0005_registered_policies``. Rows here
are the subjects the rest of the governance plane (risk, workflow, auth)
refers to by foreign key.
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
from sqlalchemy.orm import Mapped, mapped_column, relationship

from assay.store.db import Base

TZ = DateTime(timezone=True)

#: How a model's output is used.
DECISION_TYPES = ("automated", "human_in_the_loop")
#: Where a model is in its life.
DEPLOYMENT_STATUSES = ("proposed", "development", "validation", "approved", "deployed",
                       "suspended", "retired")
#: How much the business depends on a model.
CRITICALITIES = ("low", "medium", "high", "critical")
#: Status of a certification run.
CERTIFICATION_STATUSES = ("passed", "passed_with_warnings", "blocked")
#: Risk tiers.
TIERS = ("high", "medium", "low")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    email: Mapped[str | None] = mapped_column(String(320))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)

    role_rows: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def roles(self) -> set[str]:
        """The roles this user holds."""
        return {r.role for r in self.role_rows}

    def __repr__(self) -> str:
        return f"User({self.username!r}, roles={sorted(self.roles)})"


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(40), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    granted_by: Mapped[str] = mapped_column(String(100), nullable=False)

    user: Mapped[User] = relationship(back_populates="role_rows")


class Model(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    purpose: Mapped[str] = mapped_column(Text, nullable=False, default="")
    intended_use: Mapped[str] = mapped_column(Text, nullable=False, default="")
    out_of_scope_uses: Mapped[str] = mapped_column(Text, nullable=False, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    business_unit: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    stakeholders: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    decision_type: Mapped[str] = mapped_column(String(40), nullable=False)
    deployment_status: Mapped[str] = mapped_column(String(40), nullable=False)
    criticality: Mapped[str] = mapped_column(String(20), nullable=False)
    tier: Mapped[str | None] = mapped_column(String(20))
    next_review_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)

    owner: Mapped[User] = relationship(foreign_keys=[owner_id], lazy="joined")
    creator: Mapped[User] = relationship(foreign_keys=[created_by])
    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", order_by="ModelVersion.id"
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "purpose": self.purpose,
            "intended_use": self.intended_use,
            "out_of_scope_uses": self.out_of_scope_uses,
            "owner": self.owner.username,
            "business_unit": self.business_unit,
            "stakeholders": list(self.stakeholders or []),
            "decision_type": self.decision_type,
            "deployment_status": self.deployment_status,
            "criticality": self.criticality,
            "tier": self.tier,
            "next_review_at": _iso(self.next_review_at),
            "created_at": _iso(self.created_at),
        }


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_versions_model_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), nullable=False, index=True)
    version: Mapped[str] = mapped_column(String(100), nullable=False)
    artifact_digest: Mapped[str | None] = mapped_column(String(80))
    training_data_digest: Mapped[str | None] = mapped_column(String(80))
    training_data_source: Mapped[str] = mapped_column(Text, nullable=False, default="")
    evaluation_data_digest: Mapped[str | None] = mapped_column(String(80))
    evaluation_data_source: Mapped[str] = mapped_column(Text, nullable=False, default="")
    feature_pipeline: Mapped[str] = mapped_column(Text, nullable=False, default="")
    code_revision: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    parent_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)

    model: Mapped[Model] = relationship(back_populates="versions")
    creator: Mapped[User] = relationship(foreign_keys=[created_by], lazy="joined")
    parent: Mapped[ModelVersion | None] = relationship(remote_side=[id])

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.name,
            "version": self.version,
            "artifact_digest": self.artifact_digest,
            "training_data_digest": self.training_data_digest,
            "training_data_source": self.training_data_source,
            "evaluation_data_digest": self.evaluation_data_digest,
            "evaluation_data_source": self.evaluation_data_source,
            "feature_pipeline": self.feature_pipeline,
            "code_revision": self.code_revision,
            "created_by": self.creator.username,
            "parent_version": self.parent.version if self.parent else None,
            "created_at": _iso(self.created_at),
        }


class Certification(Base):
    __tablename__ = "certifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), nullable=False, index=True
    )
    policy_name: Mapped[str] = mapped_column(String(200), nullable=False)
    policy_version: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    policy_digest: Mapped[str] = mapped_column(String(80), nullable=False)
    tier: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    results_digest: Mapped[str] = mapped_column(String(80), nullable=False)
    report_digest: Mapped[str | None] = mapped_column(String(80))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)

    model_version: Mapped[ModelVersion] = relationship()
    creator: Mapped[User] = relationship(foreign_keys=[created_by], lazy="joined")

    @property
    def passed(self) -> bool:
        return self.status in ("passed", "passed_with_warnings")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model_version.model.name,
            "version": self.model_version.version,
            "policy_name": self.policy_name,
            "policy_version": self.policy_version,
            "policy_digest": self.policy_digest,
            "tier": self.tier,
            "status": self.status,
            "results_digest": self.results_digest,
            "report_digest": self.report_digest,
            "created_by": self.creator.username,
            "created_at": _iso(self.created_at),
        }


class RegisteredPolicy(Base):
    """A custom policy file the store knows, kept content-addressed in the evidence store.

    Shipped policies are known without a row; a certification under any other
    policy is recorded only once its file is registered here.
    """

    __tablename__ = "registered_policies"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_registered_policies_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[str] = mapped_column(String(100), nullable=False)
    digest: Mapped[str] = mapped_column(String(80), nullable=False, unique=True)
    source: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    registered_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    registered_at: Mapped[datetime] = mapped_column(TZ, nullable=False)

    registrar: Mapped[User] = relationship(foreign_keys=[registered_by], lazy="joined")

    @property
    def registered_by_name(self) -> str:
        return self.registrar.username

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "source": self.source,
            "registered_by": self.registrar.username,
            "registered_at": _iso(self.registered_at),
        }


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    from assay.store.db import as_utc

    return as_utc(value).isoformat().replace("+00:00", "Z")
