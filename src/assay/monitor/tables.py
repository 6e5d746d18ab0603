"""Monitoring tables: reference statistics, batches, windows, rows kept for late labels,
evaluations and alerts. Created by migration ``0006_monitor``.

A window row holds the *mergeable statistics* of one UTC day of one model
version (feature profiles on the training data's bins, the outputs and,
once labels arrive, the labelled contingency tables and score histograms),
compressed; weekly and monthly windows are merges of days. Rows are kept
only for joining late labels (row id, day, prediction, score, group cell)
and only as long as the policy's ``retention_days``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from assay.registry.tables import TZ, _iso
from assay.store.db import Base

#: States of an alert.
ALERT_STATES = ("open", "acknowledged", "resolved")


class MonitorReference(Base):
    """The training data's profile of a version: the bins every window is counted on."""

    __tablename__ = "monitor_references"

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  primary_key=True)
    data_digest: Mapped[str] = mapped_column(String(80), nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False, default="")
    features: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    state: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)


class MonitorBatch(Base):
    """One batch of production rows (``kind='outputs'``) or of late labels (``'labels'``)."""

    __tablename__ = "monitor_batches"
    __table_args__ = (UniqueConstraint("model_version_id", "kind", "digest",
                                       name="uq_monitor_batches_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    digest: Mapped[str] = mapped_column(String(80), nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False, default="")
    rows: Mapped[int] = mapped_column(Integer, nullable=False)
    accepted: Mapped[int] = mapped_column(Integer, nullable=False)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)


class MonitorWindow(Base):
    """The statistics of one UTC day of one version (the unit windows are merged from)."""

    __tablename__ = "monitor_windows"
    __table_args__ = (UniqueConstraint("model_version_id", "start",
                                       name="uq_monitor_windows_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False, index=True)
    start: Mapped[datetime] = mapped_column(TZ, nullable=False)
    end: Mapped[datetime] = mapped_column(TZ, nullable=False)
    rows: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    labeled: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    state: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(TZ, nullable=False)


class MonitorRow(Base):
    """A production row kept until its label arrives (or the retention ends)."""

    __tablename__ = "monitor_rows"
    __table_args__ = (Index("ix_monitor_rows_window", "model_version_id", "day"),)

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  primary_key=True)
    row_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    day: Mapped[datetime] = mapped_column(TZ, nullable=False)
    prediction: Mapped[int] = mapped_column(Integer, nullable=False)
    score: Mapped[float | None] = mapped_column(Float)
    cell: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)
    label: Mapped[int | None] = mapped_column(Integer)
    batch_id: Mapped[int] = mapped_column(ForeignKey("monitor_batches.id"), nullable=False)


class MonitorEvaluation(Base):
    """One measurement of one rule on one window (daily, weekly or monthly)."""

    __tablename__ = "monitor_evaluations"
    __table_args__ = (Index("ix_monitor_evaluations_window", "model_version_id", "period",
                            "window_start", "rule"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False)
    policy_name: Mapped[str] = mapped_column(String(200), nullable=False)
    tier: Mapped[str] = mapped_column(String(20), nullable=False)
    period: Mapped[str] = mapped_column(String(10), nullable=False)
    window_start: Mapped[datetime] = mapped_column(TZ, nullable=False)
    window_end: Mapped[datetime] = mapped_column(TZ, nullable=False)
    rule: Mapped[str] = mapped_column(String(200), nullable=False)
    rule_id: Mapped[str] = mapped_column(String(100), nullable=False)
    metric: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    label: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    value: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[dict[str, float]] = mapped_column(JSON, nullable=False, default=dict)
    state: Mapped[str] = mapped_column(String(10), nullable=False)
    n: Mapped[int | None] = mapped_column(Integer)
    basis: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": {"period": self.period, "start": _iso(self.window_start),
                       "end": _iso(self.window_end)},
            "rule": self.rule, "rule_id": self.rule_id, "metric": self.metric,
            "label": self.label, "value": self.value,
            "ci": None if self.ci_low is None else [self.ci_low, self.ci_high],
            "threshold": dict(self.threshold or {}), "state": self.state, "n": self.n,
            "labeled_rows": self.basis, "note": self.note,
        }


class MonitorAlert(Base):
    """A breached rule: what, where, how far, and who took it in hand."""

    __tablename__ = "monitor_alerts"
    __table_args__ = (Index("ix_monitor_alerts_rule", "model_version_id", "rule", "label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"),
                                                  nullable=False)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("monitor_evaluations.id"),
                                               nullable=False)
    rule: Mapped[str] = mapped_column(String(200), nullable=False)
    rule_id: Mapped[str] = mapped_column(String(100), nullable=False)
    metric: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    label: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    period: Mapped[str] = mapped_column(String(10), nullable=False)
    window_start: Mapped[datetime] = mapped_column(TZ, nullable=False)
    window_end: Mapped[datetime] = mapped_column(TZ, nullable=False)
    value: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[dict[str, float]] = mapped_column(JSON, nullable=False, default=dict)
    severity: Mapped[str] = mapped_column(String(10), nullable=False)
    action: Mapped[str] = mapped_column(String(20), nullable=False, default="alert")
    state: Mapped[str] = mapped_column(String(20), nullable=False, default="open", index=True)
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(TZ)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(TZ)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")


def alert_to_dict(a: MonitorAlert, mv: Any = None) -> dict[str, Any]:
    """An alert as JSON (``mv``: its ModelVersion, for the model and version names)."""
    return {
        "id": a.id, "model": mv.model.name if mv else None,
        "version": mv.version if mv else None, "rule": a.rule, "rule_id": a.rule_id,
        "metric": a.metric, "label": a.label,
        "window": {"period": a.period, "start": _iso(a.window_start),
                   "end": _iso(a.window_end)},
        "value": a.value, "ci": None if a.ci_low is None else [a.ci_low, a.ci_high],
        "threshold": dict(a.threshold or {}), "severity": a.severity, "action": a.action,
        "state": a.state, "message": a.message, "created_at": _iso(a.created_at),
        "acknowledged_at": _iso(a.acknowledged_at), "resolved_at": _iso(a.resolved_at),
        "note": a.note,
    }
