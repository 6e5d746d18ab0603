"""Impact record tables: the assessment (versioned), KPIs and their observations, the
impact register and stakeholder feedback, per model version.

Created by migration ``0012_impact``. Every write goes through
:mod:`assay.impact.assessment` or :mod:`assay.impact.kpis`, which append an audit event
in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from assay.registry.tables import TZ
from assay.store.db import Base

#: Which way is better for a KPI.
DIRECTIONS = ("increase", "decrease")
#: Where a KPI's values come from.
KPI_SOURCES = ("observations", "monitoring", "feedback")
#: How often a KPI is read (the window of computed KPIs).
CADENCES = ("daily", "weekly", "monthly")
#: Kinds and states of an impact register entry.
IMPACT_KINDS = ("positive", "negative")
REGISTER_STATUSES = ("anticipated", "monitoring", "materialised", "mitigated", "closed")
#: How stakeholder feedback arrived.
FEEDBACK_CHANNELS = ("complaint", "survey", "appeal", "email", "phone", "web", "other")


class ImpactAssessment(Base):
    """One saved version of the theory of impact of a model version (never updated)."""

    __tablename__ = "impact_assessments"
    __table_args__ = (UniqueConstraint("model_version_id", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False)
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    theory: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    source: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    #: SHA-256 of the canonical JSON of ``theory``
    digest: Mapped[str] = mapped_column(String(80), nullable=False)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)


class ImpactKpi(Base):
    """A key performance indicator of a model version's impact."""

    __tablename__ = "impact_kpis"
    __table_args__ = (UniqueConstraint("model_version_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    unit: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    direction: Mapped[str] = mapped_column(String(10), nullable=False)
    baseline: Mapped[float | None] = mapped_column(Float)
    target: Mapped[float | None] = mapped_column(Float)
    guardrail: Mapped[float | None] = mapped_column(Float)
    owner: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    cadence: Mapped[str] = mapped_column(String(10), nullable=False)
    source: Mapped[str] = mapped_column(String(20), nullable=False)
    #: what is computed: a monitoring metric, or a feedback category ("" = all)
    metric: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    #: the group column a computed KPI is split by ("" = overall)
    by: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)


class ImpactObservation(Base):
    """One typed value of a KPI at a time, overall or for one group."""

    __tablename__ = "impact_observations"
    __table_args__ = (Index("ix_impact_observations_kpi", "kpi_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kpi_id: Mapped[int] = mapped_column(ForeignKey("impact_kpis.id"), nullable=False)
    at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    group: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    source: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(TZ, nullable=False)


class ImpactRegisterEntry(Base):
    """An anticipated (or observed) impact, with links to risks, KPIs and incidents."""

    __tablename__ = "impact_register"
    __table_args__ = (Index("ix_impact_register_version", "model_version_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False)
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    stakeholders: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    groups: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    likelihood: Mapped[int] = mapped_column(Integer, nullable=False)
    severity: Mapped[int] = mapped_column(Integer, nullable=False)
    measurement: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    #: {"risks": [...], "kpis": [...], "incidents": [...]}
    links: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(TZ, nullable=False)


class ImpactFeedback(Base):
    """Feedback or a complaint from an affected person."""

    __tablename__ = "impact_feedback"
    __table_args__ = (Index("ix_impact_feedback_version", "model_version_id", "received_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False)
    channel: Mapped[str] = mapped_column(String(20), nullable=False)
    category: Mapped[str] = mapped_column(String(100), nullable=False)
    group: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    received_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    register_id: Mapped[int | None] = mapped_column(ForeignKey("impact_register.id"))
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(TZ, nullable=False)


#: The kinds of recorded causal estimates (``assay impact abtest|did|rdd --record``).
CAUSAL_KINDS = ("abtest", "did", "rdd")
#: The kinds of recorded impact analyses (the numbers of docs/impact.md, the causal
#: estimates of docs/impact-assessment.md, ``assay compare`` and ``assay mitigate``).
ANALYSIS_KINDS = ("value", "frontier", "scenarios", "sensitivity", *CAUSAL_KINDS,
                  "comparison", "mitigation")


class ImpactAnalysis(Base):
    """One recorded run of the impact numbers (value curve, frontier, scenarios,
    sensitivity) for a model version: its result (JSON) and chart (SVG) are kept in the
    evidence store by digest; created by migration ``0013_impact_analyses``."""

    __tablename__ = "impact_analyses"
    __table_args__ = (Index("ix_impact_analyses_version", "model_version_id", "kind", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    #: input name (data, scenarios, model ...) -> sha256 digest of its bytes
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    result_digest: Mapped[str] = mapped_column(String(80), nullable=False)
    chart_digest: Mapped[str | None] = mapped_column(String(80))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
