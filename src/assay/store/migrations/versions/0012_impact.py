"""Impact record: assessments (versioned theory of impact), KPIs and observations, the
impact register and stakeholder feedback.

Revision ID: 0012_impact
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_impact"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _version() -> sa.Column:
    return sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                     nullable=False)


def upgrade() -> None:
    op.create_table(
        "impact_assessments",
        sa.Column("id", sa.Integer, primary_key=True),
        _version(),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("theory", sa.JSON, nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("model_version_id", "revision",
                            name="uq_impact_assessments_model_version_id"),
    )
    op.create_table(
        "impact_kpis",
        sa.Column("id", sa.Integer, primary_key=True),
        _version(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("unit", sa.String(40), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("baseline", sa.Float),
        sa.Column("target", sa.Float),
        sa.Column("guardrail", sa.Float),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("cadence", sa.String(10), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("metric", sa.String(100), nullable=False),
        sa.Column("by", sa.String(100), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("model_version_id", "name", name="uq_impact_kpis_model_version_id"),
    )
    op.create_table(
        "impact_observations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kpi_id", sa.Integer, sa.ForeignKey("impact_kpis.id"), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("group", sa.String(200), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("recorded_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
    )
    op.create_index("ix_impact_observations_kpi", "impact_observations", ["kpi_id", "at"])
    op.create_table(
        "impact_register",
        sa.Column("id", sa.Integer, primary_key=True),
        _version(),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("stakeholders", sa.JSON, nullable=False),
        sa.Column("groups", sa.JSON, nullable=False),
        sa.Column("likelihood", sa.Integer, nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("measurement", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("links", sa.JSON, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_impact_register_version", "impact_register", ["model_version_id"])
    op.create_table(
        "impact_feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        _version(),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("group", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("register_id", sa.Integer, sa.ForeignKey("impact_register.id")),
        sa.Column("recorded_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
    )
    op.create_index("ix_impact_feedback_version", "impact_feedback",
                    ["model_version_id", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_impact_feedback_version", table_name="impact_feedback")
    op.drop_table("impact_feedback")
    op.drop_index("ix_impact_register_version", table_name="impact_register")
    op.drop_table("impact_register")
    op.drop_index("ix_impact_observations_kpi", table_name="impact_observations")
    op.drop_table("impact_observations")
    op.drop_table("impact_kpis")
    op.drop_table("impact_assessments")
