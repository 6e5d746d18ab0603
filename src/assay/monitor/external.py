"""Alerts raised by other parts of assay on figures they measure themselves.

An impact KPI whose guardrail is breached, for example, is not a monitoring rule,
but the people who watch the Alerts page and receive monitoring notifications must
see it there. :func:`raise_alert` records the measurement as a
:class:`~assay.monitor.tables.MonitorEvaluation` (``state = fail``) and opens a
:class:`~assay.monitor.tables.MonitorAlert` on it, audited and notified like the
alerts of :mod:`assay.monitor.service`; acknowledging and resolving work the same.
A second breach of the same rule and label while its alert is still open (or was
raised for the same window) adds an evaluation but no second alert.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.monitor.tables import MonitorAlert, MonitorEvaluation, alert_to_dict
from assay.notify import notify
from assay.registry.tables import ModelVersion, User
from assay.store.audit import append_event
from assay.store.db import as_utc, utcnow


def raise_alert(session: Session, actor: User | str, mv: ModelVersion, *, rule: str,
                rule_id: str, metric: str, label: str, period: str, window_start: datetime,
                window_end: datetime, value: float | None, threshold: dict[str, float],
                severity: str, message: str, source: str,
                roles: Iterable[str] = ()) -> MonitorAlert | None:
    """Record a breached measurement of ``rule`` and open an alert unless one is open.

    ``source`` names what measured it (stored as the evaluation's policy name, e.g.
    ``impact``). Returns the new alert, or None when an open alert already covers it.
    """
    now = utcnow()
    ev = MonitorEvaluation(
        model_version_id=mv.id, policy_name=source, tier=mv.model.tier or "",
        period=period, window_start=window_start, window_end=window_end, rule=rule,
        rule_id=rule_id, metric=metric, label=label, value=value, ci_low=None, ci_high=None,
        threshold=dict(threshold), state="fail", n=None, basis=0, note=message[:2000],
        created_at=now)
    session.add(ev)
    session.flush()
    last = session.scalars(select(MonitorAlert).where(
        MonitorAlert.model_version_id == mv.id, MonitorAlert.rule == rule,
        MonitorAlert.label == label).order_by(MonitorAlert.id.desc()).limit(1)).first()
    if last is not None and (last.state != "resolved"
                             or as_utc(last.window_start) == as_utc(window_start)):
        return None
    alert = MonitorAlert(
        model_version_id=mv.id, evaluation_id=ev.id, rule=rule, rule_id=rule_id,
        metric=metric, label=label, period=period, window_start=window_start,
        window_end=window_end, value=value, ci_low=None, ci_high=None,
        threshold=dict(threshold), severity=severity, action="alert", state="open",
        message=message, created_at=now)
    session.add(alert)
    session.flush()
    payload: dict[str, Any] = alert_to_dict(alert, mv)
    append_event(session, actor=actor, action="monitor.alert", subject_type="monitor_alert",
                 subject_id=alert.id, payload=payload)
    notify(session, actor, "monitor.alert", f"{mv.model.name}@{mv.version}: {message}",
           payload, roles=list(roles))
    return alert
