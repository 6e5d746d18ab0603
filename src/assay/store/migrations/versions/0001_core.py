"""Core tables: users and roles, models, model versions, certifications, audit trail.

Revision ID: 0001_core
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

_PG_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION assay_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("email", sa.String(320)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("role", sa.String(40), primary_key=True),
        sa.Column("granted_at", TZ, nullable=False),
        sa.Column("granted_by", sa.String(100), nullable=False),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("purpose", sa.Text, nullable=False, server_default=""),
        sa.Column("intended_use", sa.Text, nullable=False, server_default=""),
        sa.Column("out_of_scope_uses", sa.Text, nullable=False, server_default=""),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("business_unit", sa.String(200), nullable=False, server_default=""),
        sa.Column("stakeholders", sa.JSON, nullable=False),
        sa.Column("decision_type", sa.String(40), nullable=False),
        sa.Column("deployment_status", sa.String(40), nullable=False),
        sa.Column("criticality", sa.String(20), nullable=False),
        sa.Column("tier", sa.String(20)),
        sa.Column("next_review_at", TZ),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.UniqueConstraint("name", name="uq_models_name"),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("artifact_digest", sa.String(80)),
        sa.Column("training_data_digest", sa.String(80)),
        sa.Column("training_data_source", sa.Text, nullable=False, server_default=""),
        sa.Column("evaluation_data_digest", sa.String(80)),
        sa.Column("evaluation_data_source", sa.Text, nullable=False, server_default=""),
        sa.Column("feature_pipeline", sa.Text, nullable=False, server_default=""),
        sa.Column("code_revision", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("parent_version_id", sa.Integer, sa.ForeignKey("model_versions.id")),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_id"),
    )
    op.create_index("ix_model_versions_model_id", "model_versions", ["model_id"])
    op.create_table(
        "certifications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False),
        sa.Column("policy_name", sa.String(200), nullable=False),
        sa.Column("policy_version", sa.String(100), nullable=False, server_default=""),
        sa.Column("policy_digest", sa.String(80), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("results_digest", sa.String(80), nullable=False),
        sa.Column("report_digest", sa.String(80)),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_certifications_model_version_id", "certifications",
                    ["model_version_id"])
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("subject_type", sa.String(60), nullable=False),
        sa.Column("subject_id", sa.String(300), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("hash", name="uq_audit_events_hash"),
    )
    op.create_index("ix_audit_events_actor", "audit_events", ["actor"])
    op.create_index("ix_audit_events_action", "audit_events", ["action"])
    op.create_index("ix_audit_events_subject", "audit_events", ["subject_type", "subject_id"])

    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_APPEND_ONLY)
        op.execute("CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE "
                   "ON audit_events FOR EACH ROW EXECUTE FUNCTION assay_audit_append_only()")
        op.execute("CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE "
                   "ON audit_events FOR EACH STATEMENT "
                   "EXECUTE FUNCTION assay_audit_append_only()")
    elif dialect == "sqlite":
        for op_name in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_events_no_{op_name.lower()} BEFORE {op_name} "
                       "ON audit_events BEGIN SELECT RAISE(ABORT, "
                       f"'audit_events is append-only: {op_name} refused'); END")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS assay_audit_append_only()")
    for name in ("audit_events", "certifications", "model_versions", "models", "user_roles",
                 "users"):
        op.drop_table(name)
