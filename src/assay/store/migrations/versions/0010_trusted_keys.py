"""Attestations: trusted public keys and the signed envelopes assay keeps.

Revision ID: 0010_trusted_keys
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_trusted_keys"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "trusted_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("keyid", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("algorithm", sa.String(20), nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ),
        sa.Column("revoked_by", sa.String(100)),
        sa.UniqueConstraint("keyid", name="uq_trusted_keys_keyid"),
        sa.UniqueConstraint("name", name="uq_trusted_keys_name"),
    )
    op.create_table(
        "attestations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("predicate_type", sa.String(200), nullable=False),
        sa.Column("subject_type", sa.String(40), nullable=False),
        sa.Column("subject_id", sa.String(200), nullable=False),
        sa.Column("subject_digest", sa.String(80), nullable=False),
        sa.Column("envelope_digest", sa.String(80), nullable=False),
        sa.Column("keyid", sa.String(64), nullable=False),
        sa.Column("ref", sa.String(100)),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_attestations_subject_id", "attestations", ["subject_id"])


def downgrade() -> None:
    op.drop_index("ix_attestations_subject_id", table_name="attestations")
    op.drop_table("attestations")
    op.drop_table("trusted_keys")
