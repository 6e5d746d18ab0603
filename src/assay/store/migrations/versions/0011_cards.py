"""Model cards: narrative revisions, generated cards and notices, reproductions.

Revision ID: 0011_cards
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_cards"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "card_narratives",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("model_version_id", "revision", name="uq_card_narratives_revision"),
    )
    op.create_index("ix_card_narratives_model_version_id", "card_narratives",
                    ["model_version_id"])
    op.create_table(
        "model_cards",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("document_digest", sa.String(80), nullable=False),
        sa.Column("narrative_revision", sa.Integer),
        sa.Column("certification_id", sa.Integer, sa.ForeignKey("certifications.id")),
        sa.Column("generated_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("generated_at", TZ, nullable=False),
    )
    op.create_index("ix_model_cards_model_version_id", "model_cards", ["model_version_id"])
    op.create_table(
        "reproductions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id")),
        sa.Column("certification_id", sa.Integer, sa.ForeignKey("certifications.id")),
        sa.Column("results_digest", sa.String(80), nullable=False),
        sa.Column("reproduced", sa.Boolean, nullable=False),
        sa.Column("compared", sa.Integer, nullable=False),
        sa.Column("mismatches", sa.JSON, nullable=False),
        sa.Column("record_digest", sa.String(80), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_reproductions_model_version_id", "reproductions", ["model_version_id"])
    op.create_index("ix_reproductions_results_digest", "reproductions", ["results_digest"])


def downgrade() -> None:
    op.drop_index("ix_reproductions_results_digest", table_name="reproductions")
    op.drop_index("ix_reproductions_model_version_id", table_name="reproductions")
    op.drop_table("reproductions")
    op.drop_index("ix_model_cards_model_version_id", table_name="model_cards")
    op.drop_table("model_cards")
    op.drop_index("ix_card_narratives_model_version_id", table_name="card_narratives")
    op.drop_table("card_narratives")
