"""Model cards: the narrative people write, the cards generated from the store, and
the reproductions of certifications.

Created by migration ``0011_cards``. A narrative is never edited in place: each
change is a new revision. A generated card and a reproduction are evidence
(content-addressed bytes) with a row saying what they rest on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from assay.registry.tables import User, _iso
from assay.store.db import Base

TZ = DateTime(timezone=True)


class CardNarrative(Base):
    """One revision of the fields of a model card that people fill in."""

    __tablename__ = "card_narratives"
    __table_args__ = (UniqueConstraint("model_version_id", "revision",
                                       name="uq_card_narratives_revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False, index=True)
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    digest: Mapped[str] = mapped_column(String(80), nullable=False)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)

    author: Mapped[User] = relationship(foreign_keys=[created_by], lazy="joined")

    def to_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "fields": dict(self.fields), "digest": self.digest,
                "created_by": self.author.username, "created_at": _iso(self.created_at)}


class ModelCardRecord(Base):
    """A card generated from the store and kept as evidence."""

    __tablename__ = "model_cards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # card | notice
    format: Mapped[str] = mapped_column(String(10), nullable=False)
    digest: Mapped[str] = mapped_column(String(80), nullable=False)
    document_digest: Mapped[str] = mapped_column(String(80), nullable=False)
    narrative_revision: Mapped[int | None] = mapped_column(Integer)
    certification_id: Mapped[int | None] = mapped_column(ForeignKey("certifications.id"))
    generated_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    generated_at: Mapped[datetime] = mapped_column(TZ, nullable=False)

    generator: Mapped[User] = relationship(foreign_keys=[generated_by], lazy="joined")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "format": self.format, "digest": self.digest,
                "document_digest": self.document_digest,
                "narrative_revision": self.narrative_revision,
                "certification_id": self.certification_id,
                "generated_by": self.generator.username,
                "generated_at": _iso(self.generated_at)}


class Reproduction(Base):
    """A re-run of a certification from its recorded inputs, compared number by number."""

    __tablename__ = "reproductions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"),
                                                         index=True)
    certification_id: Mapped[int | None] = mapped_column(ForeignKey("certifications.id"))
    results_digest: Mapped[str] = mapped_column(String(80), nullable=False, index=True)
    reproduced: Mapped[bool] = mapped_column(Boolean, nullable=False)
    compared: Mapped[int] = mapped_column(Integer, nullable=False)
    mismatches: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    record_digest: Mapped[str] = mapped_column(String(80), nullable=False)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)

    creator: Mapped[User] = relationship(foreign_keys=[created_by], lazy="joined")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "results_digest": self.results_digest,
                "certification_id": self.certification_id, "reproduced": self.reproduced,
                "compared": self.compared, "mismatches": list(self.mismatches),
                "record_digest": self.record_digest, "created_by": self.creator.username,
                "created_at": _iso(self.created_at)}
