"""Monitoring: reference profiles, batches, daily windows, rows kept for late labels,
evaluations, alerts.

Revision ID: 0006_monitor
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_monitor"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitor_references",
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  primary_key=True),
        sa.Column("data_digest", sa.String(80), nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "monitor_batches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("model_version_id", "kind", "digest",
                            name="uq_monitor_batches_digest"),
    )
    op.create_table(
        "monitor_windows",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False, index=True),
        sa.Column("start", TZ, nullable=False),
        sa.Column("end", TZ, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False, server_default="0"),
        sa.Column("labeled", sa.Integer, nullable=False, server_default="0"),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("model_version_id", "start", name="uq_monitor_windows_start"),
    )
    op.create_table(
        "monitor_rows",
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  primary_key=True),
        sa.Column("row_id", sa.String(200), primary_key=True),
        sa.Column("day", TZ, nullable=False),
        sa.Column("prediction", sa.Integer, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("cell", sa.JSON, nullable=False),
        sa.Column("label", sa.Integer),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("monitor_batches.id"), nullable=False),
    )
    op.create_index("ix_monitor_rows_window", "monitor_rows", ["model_version_id", "day"])
    op.create_table(
        "monitor_evaluations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False),
        sa.Column("policy_name", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("window_start", TZ, nullable=False),
        sa.Column("window_end", TZ, nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("rule_id", sa.String(100), nullable=False),
        sa.Column("metric", sa.String(100), nullable=False, server_default=""),
        sa.Column("label", sa.String(300), nullable=False, server_default=""),
        sa.Column("value", sa.Float),
        sa.Column("ci_low", sa.Float),
        sa.Column("ci_high", sa.Float),
        sa.Column("threshold", sa.JSON, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("n", sa.Integer),
        sa.Column("basis", sa.Integer, nullable=False, server_default="0"),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_monitor_evaluations_window", "monitor_evaluations",
                    ["model_version_id", "period", "window_start", "rule"])
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False),
        sa.Column("evaluation_id", sa.Integer, sa.ForeignKey("monitor_evaluations.id"),
                  nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("rule_id", sa.String(100), nullable=False),
        sa.Column("metric", sa.String(100), nullable=False, server_default=""),
        sa.Column("label", sa.String(300), nullable=False, server_default=""),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("window_start", TZ, nullable=False),
        sa.Column("window_end", TZ, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("ci_low", sa.Float),
        sa.Column("ci_high", sa.Float),
        sa.Column("threshold", sa.JSON, nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("action", sa.String(20), nullable=False, server_default="alert"),
        sa.Column("state", sa.String(20), nullable=False, server_default="open", index=True),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("acknowledged_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("acknowledged_at", TZ),
        sa.Column("resolved_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("resolved_at", TZ),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_monitor_alerts_rule", "monitor_alerts",
                    ["model_version_id", "rule", "label"])


def downgrade() -> None:
    op.drop_index("ix_monitor_alerts_rule", table_name="monitor_alerts")
    op.drop_table("monitor_alerts")
    op.drop_index("ix_monitor_evaluations_window", table_name="monitor_evaluations")
    op.drop_table("monitor_evaluations")
    op.drop_index("ix_monitor_rows_window", table_name="monitor_rows")
    op.drop_table("monitor_rows")
    op.drop_table("monitor_windows")
    op.drop_table("monitor_batches")
    op.drop_table("monitor_references")
