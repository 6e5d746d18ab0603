"""Red-team findings recorded against model versions.

Revision ID: 0014_red_team
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_red_team"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "red_team_findings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False),
        sa.Column("technique", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("evidence_digest", sa.String(80)),
        sa.Column("evidence_name", sa.String(300)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("recorded_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.Column("resolved_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("resolved_at", TZ),
        sa.Column("resolution", sa.Text, nullable=False),
    )
    op.create_index("ix_red_team_findings_model_version_id", "red_team_findings",
                    ["model_version_id"])


def downgrade() -> None:
    op.drop_index("ix_red_team_findings_model_version_id", "red_team_findings")
    op.drop_table("red_team_findings")
