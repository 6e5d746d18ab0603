"""Recorded impact analyses (value curve, frontier, scenarios, sensitivity) of a model
version: the result and chart digests in the evidence store, inputs and parameters.

Revision ID: 0013_impact_analyses
Revises: 0012_impact
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_impact_analyses"
down_revision = "0012_impact"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "impact_analyses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("result_digest", sa.String(80), nullable=False),
        sa.Column("chart_digest", sa.String(80)),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_impact_analyses_version", "impact_analyses",
                    ["model_version_id", "kind", "id"])


def downgrade() -> None:
    op.drop_index("ix_impact_analyses_version", table_name="impact_analyses")
    op.drop_table("impact_analyses")
