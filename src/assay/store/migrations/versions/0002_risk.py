"""Risk tiering and the risk register: assessments, risks and findings, mitigations.

Revision ID: 0002_risk
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_risk"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "risk_assessments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False),
        sa.Column("policy_name", sa.String(200), nullable=False),
        sa.Column("policy_version", sa.String(100), nullable=False),
        sa.Column("policy_digest", sa.String(80), nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("aggregate", sa.String(20), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("score_tier", sa.String(10), nullable=False),
        sa.Column("questionnaire", sa.JSON),
        sa.Column("impact_level", sa.String(4)),
        sa.Column("tier", sa.String(10), nullable=False),
        sa.Column("decision", sa.JSON, nullable=False),
        sa.Column("input_digest", sa.String(80)),
        sa.Column("record_digest", sa.String(80), nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_risk_assessments_model_id", "risk_assessments", ["model_id"])
    op.create_index("ix_risk_assessments_model_version_id", "risk_assessments",
                    ["model_version_id"])

    op.create_table(
        "risk_register",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id")),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("likelihood", sa.Integer, nullable=False),
        sa.Column("impact", sa.Integer, nullable=False),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("source", sa.String(300)),
        sa.Column("certification_id", sa.Integer, sa.ForeignKey("certifications.id")),
        sa.Column("resolution", sa.Text, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("row_version", sa.Integer, nullable=False),
        sa.CheckConstraint("likelihood BETWEEN 1 AND 5", name="risk_register_likelihood"),
        sa.CheckConstraint("impact BETWEEN 1 AND 5", name="risk_register_impact"),
        sa.CheckConstraint("status IN ('open', 'mitigating', 'accepted', 'closed')",
                           name="risk_register_status"),
    )
    op.create_index("ix_risk_register_model_id", "risk_register", ["model_id"])

    op.create_table(
        "risk_mitigations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("risk_id", sa.Integer, sa.ForeignKey("risk_register.id"), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("due_date", sa.Date),
        sa.Column("success_criteria", sa.Text, nullable=False),
        sa.Column("estimated_cost", sa.Float, nullable=False),
        sa.Column("estimated_days", sa.Float, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("row_version", sa.Integer, nullable=False),
        sa.CheckConstraint("estimated_cost >= 0", name="risk_mitigations_cost"),
        sa.CheckConstraint("estimated_days >= 0", name="risk_mitigations_days"),
        sa.CheckConstraint("status IN ('planned', 'in_progress', 'done', 'cancelled')",
                           name="risk_mitigations_status"),
    )
    op.create_index("ix_risk_mitigations_risk_id", "risk_mitigations", ["risk_id"])


def downgrade() -> None:
    op.drop_index("ix_risk_mitigations_risk_id", table_name="risk_mitigations")
    op.drop_table("risk_mitigations")
    op.drop_index("ix_risk_register_model_id", table_name="risk_register")
    op.drop_table("risk_register")
    op.drop_index("ix_risk_assessments_model_version_id", table_name="risk_assessments")
    op.drop_index("ix_risk_assessments_model_id", table_name="risk_assessments")
    op.drop_table("risk_assessments")
