"""Red-team findings recorded against a model version.

Created by migration ``0014_red_team``. A finding is never edited in place:
it is recorded once, and resolving it sets its status, who resolved it, when
and why (both steps are audit events).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from assay.registry.tables import ModelVersion, User, _iso
from assay.store.db import Base

TZ = DateTime(timezone=True)


class RedTeamFinding(Base):
    """One finding of a red-team exercise: what was tried, how bad, whether it worked."""

    __tablename__ = "red_team_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False, index=True)
    technique: Mapped[str] = mapped_column(String(200), nullable=False)
    severity: Mapped[str] = mapped_column(String(20), nullable=False)
    outcome: Mapped[str] = mapped_column(String(20), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    evidence_digest: Mapped[str | None] = mapped_column(String(80))
    evidence_name: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="open")
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(TZ)
    resolution: Mapped[str] = mapped_column(Text, nullable=False, default="")

    version: Mapped[ModelVersion] = relationship(lazy="joined")
    recorder: Mapped[User] = relationship(foreign_keys=[recorded_by], lazy="joined")
    resolver: Mapped[User | None] = relationship(foreign_keys=[resolved_by], lazy="joined")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "model": self.version.model.name, "version": self.version.version,
            "technique": self.technique, "severity": self.severity, "outcome": self.outcome,
            "note": self.note, "evidence_digest": self.evidence_digest,
            "evidence_name": self.evidence_name, "status": self.status,
            "recorded_by": self.recorder.username, "recorded_at": _iso(self.recorded_at),
            "resolved_by": self.resolver.username if self.resolver else None,
            "resolved_at": _iso(self.resolved_at) if self.resolved_at else None,
            "resolution": self.resolution,
        }
