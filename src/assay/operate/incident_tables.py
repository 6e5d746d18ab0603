"""Incident tables: incidents, the alerts they came from, their links, playbook steps,
escalations and notes. Created by migration ``0009_incidents``.

An incident keeps what it was opened under: the policy (name and digest),
the tier, the playbook's steps and the deadlines computed from the awareness
time, so a later change of the policy does not move its clocks (a change of
severity computes them again, and says so in the audit trail).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from assay.registry.tables import TZ
from assay.store.db import Base

#: States of an incident, in the order it passes them.
INCIDENT_STATES = ("open", "acknowledged", "mitigated", "resolved", "closed")
#: What an incident may be linked to.
LINK_KINDS = ("mitigation", "waiver", "release")


class Incident(Base):
    """Something that went wrong with a model in production, and how it is handled."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False, index=True)
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    severity: Mapped[str] = mapped_column(String(20), nullable=False)
    #: a serious incident in the sense of EU AI Act Art. 73, and which case
    serious: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    serious_case: Mapped[str | None] = mapped_column(String(60))
    affected_groups: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False, default="open", index=True)
    policy_name: Mapped[str] = mapped_column(String(200), nullable=False)
    policy_digest: Mapped[str] = mapped_column(String(80), nullable=False)
    tier: Mapped[str | None] = mapped_column(String(20))
    #: the playbook's steps as they were when the incident was opened
    playbook: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    #: the rules it is handled under, from the policy and tier: escalation chain, roles
    #: that may close, whether a post-mortem and a second person are needed to close
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    #: when the organisation became aware of it (the clocks start here), and the UTC
    #: offset it was given in (``+02:00``), to show the deadlines in that zone too
    aware_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    aware_offset: Mapped[str] = mapped_column(String(10), nullable=False, default="+00:00")
    acknowledge_due: Mapped[datetime | None] = mapped_column(TZ)
    mitigate_due: Mapped[datetime | None] = mapped_column(TZ)
    report_due: Mapped[datetime | None] = mapped_column(TZ)
    #: where the reporting deadline comes from ("policy SEV1" or an Art. 73 clause)
    report_basis: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    opened_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    opened_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(TZ)
    mitigated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    mitigated_at: Mapped[datetime | None] = mapped_column(TZ)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(TZ)
    reported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reported_at: Mapped[datetime | None] = mapped_column(TZ)
    report_reference: Mapped[str] = mapped_column(Text, nullable=False, default="")
    #: the first of two people when closing needs a second one
    close_requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    close_requested_at: Mapped[datetime | None] = mapped_column(TZ)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(TZ)
    #: the post-mortem record (timeline, root cause, contributing factors, what went
    #: well, actions with owners and due dates), as validated
    postmortem: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    postmortem_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    postmortem_at: Mapped[datetime | None] = mapped_column(TZ)
    postmortem_digest: Mapped[str | None] = mapped_column(String(80))


class IncidentAlert(Base):
    """A monitoring alert an incident was opened from (checked when the incident is opened;
    no foreign key, as the monitoring tables come from another migration branch)."""

    __tablename__ = "incident_alerts"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    alert_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)


class IncidentLink(Base):
    """A risk-register mitigation, a waiver or a release (rollback) the incident points at."""

    __tablename__ = "incident_links"
    __table_args__ = (UniqueConstraint("incident_id", "kind", "ref",
                                       name="uq_incident_links_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), nullable=False,
                                             index=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    #: the mitigation's or waiver's id; a release's reference as given
    ref: Mapped[str] = mapped_column(String(200), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)


class IncidentStep(Base):
    """A playbook step done, with the evidence attached (documents by digest)."""

    __tablename__ = "incident_steps"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: [{"name": "drift.csv", "digest": "sha256:..."}]
    evidence: Mapped[list[dict[str, str]]] = mapped_column(JSON, nullable=False, default=list)
    done_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    done_at: Mapped[datetime | None] = mapped_column(TZ)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")


class IncidentEscalation(Base):
    """An overdue step that was escalated: at most one row per incident and step."""

    __tablename__ = "incident_escalations"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    step: Mapped[str] = mapped_column(String(20), primary_key=True)
    role: Mapped[str] = mapped_column(String(40), nullable=False)
    due_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    notified_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    notification: Mapped[str] = mapped_column(String(32), nullable=False, default="")


class IncidentNote(Base):
    """A line in the incident's own log (``assay incident update --note``)."""

    __tablename__ = "incident_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), nullable=False,
                                             index=True)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
