"""The MLflow mirror: inventory versions imported from an MLflow model registry, with
the run, source, code and data lineage read from MLflow.

Revision ID: 0014_mlflow
Revises: 0013_impact_analyses
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_mlflow"
down_revision = "0013_impact_analyses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlflow_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False),
        sa.Column("tracking_uri", sa.Text, nullable=False),
        sa.Column("mlflow_name", sa.String(500), nullable=False),
        sa.Column("mlflow_version", sa.String(40), nullable=False),
        sa.Column("run_id", sa.String(100)),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("metadata_digest", sa.String(80), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("model_version_id", name="uq_mlflow_versions_model_version_id"),
    )


def downgrade() -> None:
    op.drop_table("mlflow_versions")
