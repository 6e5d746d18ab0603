"""The MLflow mirror: which MLflow registry version an inventory version is, with the
lineage read from MLflow when it was last synced.

Created by migration ``0014_mlflow``. Written only by
:mod:`assay.integrations.mlflow_sync`, which appends an audit event in the same
transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from assay.registry.tables import TZ, ModelVersion, _iso
from assay.store.db import Base


class MlflowVersion(Base):
    """One inventory version mirrored from an MLflow registry version."""

    __tablename__ = "mlflow_versions"
    __table_args__ = (UniqueConstraint("model_version_id",
                                       name="uq_mlflow_versions_model_version_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False)
    tracking_uri: Mapped[str] = mapped_column(Text, nullable=False)
    mlflow_name: Mapped[str] = mapped_column(String(500), nullable=False)
    mlflow_version: Mapped[str] = mapped_column(String(40), nullable=False)
    run_id: Mapped[str | None] = mapped_column(String(100))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, nullable=False)
    metadata_digest: Mapped[str] = mapped_column(String(80), nullable=False)
    synced_at: Mapped[datetime] = mapped_column(TZ, nullable=False)

    model_version: Mapped[ModelVersion] = relationship(lazy="joined")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model_version.model.name, "version": self.model_version.version,
                "tracking_uri": self.tracking_uri, "mlflow_name": self.mlflow_name,
                "mlflow_version": self.mlflow_version, "run_id": self.run_id,
                "metadata": dict(self.metadata_), "metadata_digest": self.metadata_digest,
                "synced_at": _iso(self.synced_at)}
