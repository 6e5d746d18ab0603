"""Approval workflow: submissions, stages, sign-offs, conditions, comments, documents, waivers.

Revision ID: 0003_workflow
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_workflow"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "wf_submissions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False),
        sa.Column("policy_name", sa.String(200), nullable=False),
        sa.Column("policy_version", sa.String(100), nullable=False),
        sa.Column("policy_digest", sa.String(80), nullable=False),
        sa.Column("policy_source", sa.String(1000), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("state", sa.String(40), nullable=False),
        sa.Column("current_stage", sa.String(100)),
        sa.Column("deployment_stage", sa.String(100), nullable=False),
        sa.Column("submitted_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("submitted_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("approved_at", TZ),
        sa.Column("expires_at", TZ),
        sa.Column("closed_at", TZ),
        sa.Column("closed_reason", sa.Text),
        sa.Column("certification_id", sa.Integer, sa.ForeignKey("certifications.id")),
        sa.Column("revision", sa.Integer, nullable=False),
    )
    op.create_index("ix_wf_submissions_model_version_id", "wf_submissions", ["model_version_id"])

    op.create_table(
        "wf_stages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("wf_submissions.id"),
                  nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("approvers", sa.Integer, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("independent", sa.Boolean, nullable=False),
        sa.Column("completed_at", TZ),
        sa.UniqueConstraint("submission_id", "stage", name="uq_wf_stages_submission_id"),
    )
    op.create_index("ix_wf_stages_submission_id", "wf_stages", ["submission_id"])

    op.create_table(
        "wf_signoffs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("wf_submissions.id"),
                  nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("expires_at", TZ),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("submission_id", "stage", "user_id",
                            name="uq_wf_signoffs_submission_id"),
    )
    op.create_index("ix_wf_signoffs_submission_id", "wf_signoffs", ["submission_id"])

    op.create_table(
        "wf_conditions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("wf_submissions.id"),
                  nullable=False),
        sa.Column("signoff_id", sa.Integer, sa.ForeignKey("wf_signoffs.id"), nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_wf_conditions_submission_id", "wf_conditions", ["submission_id"])

    op.create_table(
        "wf_comments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("wf_submissions.id"),
                  nullable=False),
        sa.Column("stage", sa.String(100)),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_wf_comments_submission_id", "wf_comments", ["submission_id"])

    op.create_table(
        "wf_documents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("wf_submissions.id"),
                  nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("added_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("added_at", TZ, nullable=False),
    )
    op.create_index("ix_wf_documents_submission_id", "wf_documents", ["submission_id"])

    op.create_table(
        "wf_waivers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("check_id", sa.String(200)),
        sa.Column("certification_id", sa.Integer, sa.ForeignKey("certifications.id")),
        sa.Column("policy_name", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("justification", sa.Text, nullable=False),
        sa.Column("granted_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("granted_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )
    op.create_index("ix_wf_waivers_model_version_id", "wf_waivers", ["model_version_id"])


def downgrade() -> None:
    for table in ("wf_waivers", "wf_documents", "wf_comments", "wf_conditions",
                  "wf_signoffs", "wf_stages", "wf_submissions"):
        op.drop_table(table)
