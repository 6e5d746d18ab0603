"""Release tables: every release event of a model version in an environment.

Created by migration ``0008_releases``. The table is a log: who serves where
is replayed from it (:func:`assay.operate.releases.status`), so the record of
what happened and the answer to "what serves now" cannot disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assay.registry.tables import TZ
from assay.store.db import Base

#: How a version serves in an environment.
MODES = ("shadow", "canary", "full")
#: What a release event does.
ACTIONS = ("record", "promote", "rollback")


class ReleaseEvent(Base):
    """One release step: a version starts serving, is promoted, or is rolled back to."""

    __tablename__ = "release_events"
    __table_args__ = (Index("ix_release_events_model_env", "model_id", "environment", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), nullable=False)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False)
    environment: Mapped[str] = mapped_column(String(40), nullable=False)
    action: Mapped[str] = mapped_column(String(20), nullable=False)
    mode: Mapped[str] = mapped_column(String(20), nullable=False)
    share: Mapped[float | None] = mapped_column(Float)
    previous_mode: Mapped[str | None] = mapped_column(String(20))
    #: the version that served ``full`` before this event took its place
    replaced_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    #: SHA-256 of the canonical JSON of the gate decision the step rested on
    gate_digest: Mapped[str] = mapped_column(String(80), nullable=False)
    gate: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    #: the release rule's verdict with its figures (promotions to full)
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
