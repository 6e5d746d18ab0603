"""Escalating overdue incident steps through the notification channels.

:func:`escalate_overdue` finds every step (acknowledge, mitigate, report)
past its due time and not done, and notifies the next role of the
incident's escalation chain (``incident.overdue``, to the users holding
that role and to the incident's owner, through :func:`assay.notify.notify`).
The n-th step of an incident to fall overdue goes to the n-th role of the
chain (the last role takes any further ones). Each incident and step is
escalated once: the escalation is recorded (``incident_escalations``, one
row per incident and step) in the same transaction as its notification and
its audit event, so running it again sends nothing new.

The service runs it every ``ASSAY_ESCALATION_INTERVAL`` seconds as
:data:`assay.registry.roles.SCHEDULER_ACTOR`; ``assay incident escalate``
runs it from cron as a user.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from assay.notify import notify
from assay.operate.incident_tables import Incident, IncidentEscalation
from assay.operate.incident_views import _version, incident_summary, overdue_steps
from assay.operate.incidents import ESCALATORS
from assay.registry import require_role
from assay.registry.roles import SCHEDULER_ACTOR
from assay.registry.tables import User, _iso
from assay.store.audit import append_event
from assay.store.db import as_utc, utcnow

_WHAT = {"acknowledge": "acknowledged", "mitigate": "mitigated", "report": "reported"}


def escalate_overdue(session_or_store: Any, now: datetime | None = None, *,
                     actor: User | str = SCHEDULER_ACTOR) -> list[dict[str, Any]]:
    """Notify the next role of the chain for every overdue step not yet escalated.

    ``session_or_store``: a session (the caller commits) or a store (one transaction
    here). ``actor``: a user (who must hold one of :data:`ESCALATORS`) or the service.
    Returns one entry per escalation made now."""
    if isinstance(actor, User):
        require_role(actor, *ESCALATORS, action="escalate overdue incidents")
    if isinstance(session_or_store, Session):
        return _escalate(session_or_store, now, actor)
    with session_or_store.transaction() as s:
        s.info["settings"] = session_or_store.settings
        return _escalate(s, now, actor)


def _escalate(session: Session, now: datetime | None, actor: User | str
              ) -> list[dict[str, Any]]:
    now = as_utc(now) if now is not None else utcnow()
    if session.get_bind().dialect.name == "sqlite":
        # take the database's write lock before reading what was escalated, so that two
        # runs at once (cron and the service) wait for each other instead of both sending
        session.execute(update(Incident).where(Incident.id == -1)
                        .values(state=Incident.state))
    candidates = session.scalars(
        select(Incident).where(or_(
            (Incident.state == "open") & (Incident.acknowledge_due < now),
            Incident.state.in_(("open", "acknowledged")) & (Incident.mitigate_due < now),
            Incident.reported_at.is_(None) & (Incident.report_due < now)))
        .order_by(Incident.id).with_for_update()).all()
    out: list[dict[str, Any]] = []
    for inc in candidates:
        steps = overdue_steps(inc, now)
        if not steps:
            continue
        done = {e.step for e in session.scalars(select(IncidentEscalation).where(
            IncidentEscalation.incident_id == inc.id))}
        count = len(done)
        chain = list((inc.rules or {}).get("escalation") or [])
        for step in steps:
            if step in done:
                continue
            role = chain[min(count, len(chain) - 1)] if chain else None
            count += 1
            out.append(_one(session, actor, inc, step, role, now))
    return out


def _one(session: Session, actor: User | str, inc: Incident, step: str, role: str | None,
         now: datetime) -> dict[str, Any]:
    mv = _version(session, inc)
    due = getattr(inc, f"{step}_due")
    owner = session.get(User, inc.owner_id)
    late = now - as_utc(due)
    hours = late.total_seconds() / 3600
    subject = (f"OVERDUE: incident #{inc.id} ({inc.severity}) on {mv.model.name}@{mv.version} "
               f"was not {_WHAT[step]} by {_iso(due)} ({hours:.1f} h late): {inc.title}")
    payload = {**incident_summary(session, inc, now), "overdue_step": step,
               "due": _iso(due), "escalated_to": role,
               "basis": inc.report_basis if step == "report" else ""}
    note = notify(session, actor, "incident.overdue", subject, payload,
                  roles=[role] if role else [],
                  users=[owner.username] if owner is not None and owner.active else [],
                  now=now)
    session.add(IncidentEscalation(incident_id=inc.id, step=step, role=role or "",
                                   due_at=due, notified_at=now, notification=note.id))
    session.flush()
    append_event(session, actor=actor, action="incident.escalate", subject_type="incident",
                 subject_id=inc.id,
                 payload={"model": mv.model.name, "version": mv.version, "step": step,
                          "due": _iso(due), "role": role, "severity": inc.severity,
                          "notification": note.id, "deliveries": len(note.deliveries),
                          "problems": list(note.problems)})
    return {"incident": inc.id, "step": step, "due": _iso(due), "role": role,
            "notification": note.id, "deliveries": len(note.deliveries),
            "problems": list(note.problems)}


__all__ = ["escalate_overdue"]
