"""Registered policies: custom policy files a certification may be recorded under.

Revision ID: 0005_registered_policies
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_registered_policies"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registered_policies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("registered_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_registered_policies_name"),
        sa.UniqueConstraint("digest", name="uq_registered_policies_digest"),
    )


def downgrade() -> None:
    op.drop_table("registered_policies")
