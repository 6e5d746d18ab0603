"""Where every monitored version stands now, in numbers (what ``GET /metrics`` exposes).

:func:`overview` reads, per version with monitoring data: the latest value of
each rule (per feature or group), the alerts not resolved by severity and
state, the deployment gate (:func:`assay.workflow.deployment.gate`), the
windows ingested and the times of the last batch and the last evaluation.
Its cost does not grow with the length of the history: only the latest window
of each rule is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assay.checks.base import Severity
from assay.errors import AssayError
from assay.monitor.tables import (
    MonitorAlert,
    MonitorBatch,
    MonitorEvaluation,
    MonitorReference,
    MonitorWindow,
)
from assay.registry.tables import Model, ModelVersion
from assay.store.db import as_utc

#: Alert states that count as not dealt with.
UNRESOLVED = ("open", "acknowledged")
SEVERITIES: tuple[str, ...] = tuple(str(s) for s in Severity)


@dataclass
class RuleValue:
    """The latest evaluation of one rule on one feature or group."""

    rule: str
    metric: str
    label: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    state: str
    window_start: datetime


@dataclass
class VersionOverview:
    model: str
    version: str
    windows: int
    rows: int
    labeled_rows: int
    last_batch_at: datetime | None
    last_evaluation_at: datetime | None
    gate_open: bool
    rules: list[RuleValue] = field(default_factory=list)
    #: (severity, state) -> number of alerts, for every severity and unresolved state.
    alerts: dict[tuple[str, str], int] = field(default_factory=dict)


def overview(session: Session, *, settings: Any | None = None) -> list[VersionOverview]:
    """Every version with monitoring data, in registration order."""
    versions = session.execute(
        select(ModelVersion.id, Model.name, ModelVersion.version)
        .join(Model, Model.id == ModelVersion.model_id)
        .join(MonitorReference, MonitorReference.model_version_id == ModelVersion.id)
        .order_by(ModelVersion.id)).all()
    if not versions:
        return []
    ids = [v[0] for v in versions]
    windows = {vid: (n, rows or 0, labeled or 0) for vid, n, rows, labeled in session.execute(
        select(MonitorWindow.model_version_id, func.count(), func.sum(MonitorWindow.rows),
               func.sum(MonitorWindow.labeled))
        .where(MonitorWindow.model_version_id.in_(ids))
        .group_by(MonitorWindow.model_version_id))}
    batches = dict(session.execute(
        select(MonitorBatch.model_version_id, func.max(MonitorBatch.created_at))
        .where(MonitorBatch.model_version_id.in_(ids), MonitorBatch.kind == "outputs")
        .group_by(MonitorBatch.model_version_id)).all())
    evaluated = dict(session.execute(
        select(MonitorEvaluation.model_version_id, func.max(MonitorEvaluation.created_at))
        .where(MonitorEvaluation.model_version_id.in_(ids))
        .group_by(MonitorEvaluation.model_version_id)).all())
    alerts: dict[int, dict[tuple[str, str], int]] = {}
    for vid, severity, state, n in session.execute(
            select(MonitorAlert.model_version_id, MonitorAlert.severity, MonitorAlert.state,
                   func.count())
            .where(MonitorAlert.model_version_id.in_(ids), MonitorAlert.state.in_(UNRESOLVED))
            .group_by(MonitorAlert.model_version_id, MonitorAlert.severity,
                      MonitorAlert.state)):
        alerts.setdefault(vid, {})[(severity, state)] = int(n)
    rules = _latest_rules(session, ids)
    out = []
    for vid, model, version in versions:
        n, rows, labeled = windows.get(vid, (0, 0, 0))
        counts = {(sev, st): 0 for sev in SEVERITIES for st in UNRESOLVED}
        counts.update(alerts.get(vid, {}))
        out.append(VersionOverview(
            model=model, version=version, windows=int(n), rows=int(rows),
            labeled_rows=int(labeled), last_batch_at=_utc(batches.get(vid)),
            last_evaluation_at=_utc(evaluated.get(vid)),
            gate_open=_gate_open(session, model, version, settings),
            rules=rules.get(vid, []), alerts=counts))
    return out


def _utc(dt: datetime | None) -> datetime | None:
    return None if dt is None else as_utc(dt)


def _latest_rules(session: Session, ids: list[int]) -> dict[int, list[RuleValue]]:
    """Per version: each rule's evaluation on its latest window, the latest (most labels)
    measurement per feature or group."""
    latest = (select(MonitorEvaluation.model_version_id.label("vid"),
                     MonitorEvaluation.rule.label("rule"),
                     func.max(MonitorEvaluation.window_start).label("ws"))
              .where(MonitorEvaluation.model_version_id.in_(ids))
              .group_by(MonitorEvaluation.model_version_id, MonitorEvaluation.rule)
              .subquery())
    rows = session.scalars(
        select(MonitorEvaluation).join(latest, (MonitorEvaluation.model_version_id ==
                                                latest.c.vid)
                                       & (MonitorEvaluation.rule == latest.c.rule)
                                       & (MonitorEvaluation.window_start == latest.c.ws))
        .order_by(MonitorEvaluation.id))
    picked: dict[tuple[int, str, str], MonitorEvaluation] = {}
    for ev in rows:  # a later evaluation of the same window (more labels) replaces it
        picked[(ev.model_version_id, ev.rule, ev.label)] = ev
    out: dict[int, list[RuleValue]] = {}
    for (vid, _rule, _label), ev in sorted(picked.items()):
        out.setdefault(vid, []).append(RuleValue(
            rule=ev.rule, metric=ev.metric, label=ev.label, value=ev.value,
            ci_low=ev.ci_low, ci_high=ev.ci_high, state=ev.state,
            window_start=as_utc(ev.window_start)))
    return out


def _gate_open(session: Session, model: str, version: str, settings: Any | None) -> bool:
    from assay.workflow.deployment import gate

    try:
        return bool(gate(session, model, version, settings=settings
                         or session.info.get("settings")).allowed)
    except AssayError:  # a gate that cannot decide does not allow
        return False


__all__ = ["SEVERITIES", "UNRESOLVED", "RuleValue", "VersionOverview", "overview"]
