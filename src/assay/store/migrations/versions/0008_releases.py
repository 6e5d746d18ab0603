"""Releases: every release event (shadow, canary, full; promotion, rollback) per
environment, with the gate decision it rested on.

Revision ID: 0008_releases
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_releases"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "release_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False),
        sa.Column("environment", sa.String(40), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("share", sa.Float),
        sa.Column("previous_mode", sa.String(20)),
        sa.Column("replaced_version_id", sa.Integer, sa.ForeignKey("model_versions.id")),
        sa.Column("at", TZ, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("gate_digest", sa.String(80), nullable=False),
        sa.Column("gate", sa.JSON, nullable=False),
        sa.Column("rule", sa.JSON),
    )
    op.create_index("ix_release_events_model_env", "release_events",
                    ["model_id", "environment", "id"])


def downgrade() -> None:
    op.drop_index("ix_release_events_model_env", table_name="release_events")
    op.drop_table("release_events")
