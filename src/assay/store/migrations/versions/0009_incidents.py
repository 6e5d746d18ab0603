"""Incidents: incidents, the alerts they came from, links, playbook steps, escalations, notes.

Revision ID: 0009_incidents
Revises: 0001_core

``incident_alerts.alert_id`` names a monitoring alert (``0006_monitor``, another branch):
it is checked by the domain when an incident is opened, not by a foreign key, so the two
branches apply in any order.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_incidents"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _user(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Integer, sa.ForeignKey("users.id"), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
                  nullable=False, index=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("serious", sa.Boolean, nullable=False),
        sa.Column("serious_case", sa.String(60)),
        sa.Column("affected_groups", sa.JSON, nullable=False),
        _user("owner_id", nullable=False),
        sa.Column("state", sa.String(20), nullable=False, index=True),
        sa.Column("policy_name", sa.String(200), nullable=False),
        sa.Column("policy_digest", sa.String(80), nullable=False),
        sa.Column("tier", sa.String(20)),
        sa.Column("playbook", sa.JSON, nullable=False),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.Column("aware_at", TZ, nullable=False),
        sa.Column("aware_offset", sa.String(10), nullable=False),
        sa.Column("acknowledge_due", TZ),
        sa.Column("mitigate_due", TZ),
        sa.Column("report_due", TZ),
        sa.Column("report_basis", sa.String(200), nullable=False),
        _user("opened_by", nullable=False),
        sa.Column("opened_at", TZ, nullable=False),
        _user("acknowledged_by"),
        sa.Column("acknowledged_at", TZ),
        _user("mitigated_by"),
        sa.Column("mitigated_at", TZ),
        _user("resolved_by"),
        sa.Column("resolved_at", TZ),
        _user("reported_by"),
        sa.Column("reported_at", TZ),
        sa.Column("report_reference", sa.Text, nullable=False),
        _user("close_requested_by"),
        sa.Column("close_requested_at", TZ),
        _user("closed_by"),
        sa.Column("closed_at", TZ),
        sa.Column("postmortem", sa.JSON),
        _user("postmortem_by"),
        sa.Column("postmortem_at", TZ),
        sa.Column("postmortem_digest", sa.String(80)),
    )
    op.create_table(
        "incident_alerts",
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("alert_id", sa.Integer, primary_key=True, index=True),
    )
    op.create_table(
        "incident_links",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False,
                  index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("ref", sa.String(200), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        _user("created_by", nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("incident_id", "kind", "ref", name="uq_incident_links_ref"),
    )
    op.create_table(
        "incident_steps",
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("evidence", sa.JSON, nullable=False),
        _user("done_by"),
        sa.Column("done_at", TZ),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_table(
        "incident_escalations",
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("step", sa.String(20), primary_key=True),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("notified_at", TZ, nullable=False),
        sa.Column("notification", sa.String(32), nullable=False),
    )
    op.create_table(
        "incident_notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False,
                  index=True),
        sa.Column("text", sa.Text, nullable=False),
        _user("created_by", nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )


def downgrade() -> None:
    for table in ("incident_notes", "incident_escalations", "incident_steps", "incident_links",
                  "incident_alerts", "incidents"):
        op.drop_table(table)
