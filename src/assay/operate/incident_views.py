"""Reading incidents: one with everything about it, the list with overdue steps.

:func:`incident_to_dict` gives the deadlines with their overdue marks (in UTC
and in the zone the awareness time was given in), the playbook's steps with
their completion and evidence, the alerts, links, notes and the post-mortem;
:mod:`assay.operate.incidents` changes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.errors import InputError, NotFoundError, choice_error
from assay.operate.incident_tables import (
    INCIDENT_STATES,
    Incident,
    IncidentAlert,
    IncidentEscalation,
    IncidentLink,
    IncidentNote,
    IncidentStep,
)
from assay.policy.incidents import STEPS
from assay.registry.tables import ModelVersion, User, _iso
from assay.store.db import as_utc, utcnow


def _choice(field: str, given: object, choices: Iterable[object]) -> InputError:
    """``{field}: expected one of ..., got ...; did you mean ...?`` naming the field as each
    face names it (``--state`` on the command line)."""
    return InputError(choice_error("{" + field + "}", given, choices).message, fields=[field])


def in_zone(value: datetime | None, offset: str) -> str | None:
    """``value`` shown at the UTC offset the awareness time was given in."""
    if value is None:
        return None
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = offset[1:].split(":")
    tz = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
    return as_utc(value).astimezone(tz).isoformat(timespec="minutes")


def get_incident(session: Session, incident_id: int, *, lock: bool = False) -> Incident:
    """The incident ``incident_id``; NotFoundError names it."""
    try:
        key = int(incident_id)
    except (TypeError, ValueError):
        raise InputError(f"incident id: expected a number, got {incident_id!r}") from None
    inc = session.get(Incident, key, with_for_update=lock) if 0 < key < 2**31 else None
    if inc is None:
        raise NotFoundError(f"unknown incident #{incident_id} (see `assay incident list`)")
    return inc


def _version(session: Session, inc: Incident) -> ModelVersion:
    mv = session.get(ModelVersion, inc.model_version_id)
    assert mv is not None
    return mv


def _name(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    u = session.get(User, user_id)
    return u.username if u else None


def overdue_steps(inc: Incident, now: datetime) -> list[str]:
    """The steps of ``inc`` past their due time and not done, in order: acknowledging
    while it is open, mitigating until it is mitigated, reporting until it is reported
    (whatever its state: a serious incident stays to be reported once closed)."""
    pending = {"acknowledge": inc.state == "open",
               "mitigate": inc.state in ("open", "acknowledged"),
               "report": inc.reported_at is None}
    out = []
    for step in STEPS:
        due = getattr(inc, f"{step}_due")
        if due is not None and pending[step] and as_utc(due) < as_utc(now):
            out.append(step)
    return out


def incident_summary(session: Session, inc: Incident, now: datetime | None = None
                     ) -> dict[str, Any]:
    """The incident as lists show it (and notifications carry it)."""
    now = as_utc(now) if now is not None else utcnow()
    mv = _version(session, inc)
    return {"id": inc.id, "model": mv.model.name, "version": mv.version, "title": inc.title,
            "kind": inc.kind, "severity": inc.severity, "serious": inc.serious,
            "serious_case": inc.serious_case, "state": inc.state,
            "owner": _name(session, inc.owner_id), "aware_at": _iso(inc.aware_at),
            "aware_zone": inc.aware_offset, "opened_at": _iso(inc.opened_at),
            "overdue": overdue_steps(inc, now)}


def incident_to_dict(session: Session, inc: Incident, now: datetime | None = None
                     ) -> dict[str, Any]:
    """Everything about one incident: deadlines with overdue marks (in UTC and in the
    zone of the awareness time), playbook steps with their completion, alerts, links,
    notes, the post-mortem and who did what."""
    now = as_utc(now) if now is not None else utcnow()
    out = incident_summary(session, inc, now)
    escalated = {e.step: e for e in session.scalars(select(IncidentEscalation).where(
        IncidentEscalation.incident_id == inc.id))}
    deadlines = []
    for step in STEPS:
        due = getattr(inc, f"{step}_due")
        done_at, done_by = {
            "acknowledge": (inc.acknowledged_at, inc.acknowledged_by),
            "mitigate": (inc.mitigated_at, inc.mitigated_by),
            "report": (inc.reported_at, inc.reported_by)}[step]
        e = escalated.get(step)
        deadlines.append({
            "step": step, "due": _iso(due), "due_local": in_zone(due, inc.aware_offset),
            "done_at": _iso(done_at), "done_by": _name(session, done_by),
            "overdue": step in out["overdue"],
            "late": bool(due is not None and done_at is not None
                         and as_utc(done_at) > as_utc(due)),
            "escalated_to": e.role if e else None,
            "escalated_at": _iso(e.notified_at) if e else None,
            "basis": inc.report_basis if step == "report" else ""})
    done = {s.step: s for s in session.scalars(select(IncidentStep).where(
        IncidentStep.incident_id == inc.id))}
    steps = []
    for i, s in enumerate(inc.playbook or [], start=1):
        row = done.get(i)
        steps.append({"step": i, "title": s["title"], "inform": s.get("inform", []),
                      "evidence_required": s.get("evidence", []),
                      "done": bool(row and row.done_at), "done_at": _iso(row.done_at)
                      if row else None, "done_by": _name(session, row.done_by) if row else None,
                      "evidence": list(row.evidence or []) if row else []})
    from assay.monitor.tables import MonitorAlert

    alerts = [{"id": a.id, "rule": a.rule, "label": a.label, "severity": a.severity,
               "state": a.state, "message": a.message}
              for a in session.scalars(select(MonitorAlert).join(
                  IncidentAlert, IncidentAlert.alert_id == MonitorAlert.id)
                  .where(IncidentAlert.incident_id == inc.id).order_by(MonitorAlert.id))]
    links = [{"kind": link.kind, "ref": link.ref, "note": link.note,
              "by": _name(session, link.created_by), "at": _iso(link.created_at)}
             for link in session.scalars(select(IncidentLink).where(
                 IncidentLink.incident_id == inc.id).order_by(IncidentLink.id))]
    notes = [{"text": n.text, "by": _name(session, n.created_by), "at": _iso(n.created_at)}
             for n in session.scalars(select(IncidentNote).where(
                 IncidentNote.incident_id == inc.id).order_by(IncidentNote.id))]
    rules = inc.rules or {}
    out.update({
        "description": inc.description, "affected_groups": list(inc.affected_groups or []),
        "policy": inc.policy_name, "policy_digest": inc.policy_digest, "tier": inc.tier,
        "opened_by": _name(session, inc.opened_by),
        "acknowledged_at": _iso(inc.acknowledged_at),
        "acknowledged_by": _name(session, inc.acknowledged_by),
        "mitigated_at": _iso(inc.mitigated_at), "mitigated_by": _name(session, inc.mitigated_by),
        "resolved_at": _iso(inc.resolved_at), "resolved_by": _name(session, inc.resolved_by),
        "reported_at": _iso(inc.reported_at), "reported_by": _name(session, inc.reported_by),
        "report_reference": inc.report_reference,
        "close_requested_by": _name(session, inc.close_requested_by),
        "close_requested_at": _iso(inc.close_requested_at),
        "closed_at": _iso(inc.closed_at), "closed_by": _name(session, inc.closed_by),
        "deadlines": deadlines, "playbook": steps, "alerts": alerts, "links": links,
        "notes": notes, "postmortem": inc.postmortem,
        "postmortem_by": _name(session, inc.postmortem_by),
        "postmortem_at": _iso(inc.postmortem_at), "postmortem_digest": inc.postmortem_digest,
        "escalation": list(rules.get("escalation") or []),
        "closers": list(rules.get("closers") or []),
        "postmortem_required": bool(rules.get("postmortem_required")),
        "second_person_required": bool(rules.get("second_person_required")),
    })
    return out


def list_incidents(session: Session, *, state: str | Iterable[str] | None = None,
                   model: str | None = None, overdue: bool = False,
                   now: datetime | None = None) -> list[dict[str, Any]]:
    """Incidents, newest first, as :func:`incident_summary` gives them."""
    now = as_utc(now) if now is not None else utcnow()
    stmt = select(Incident).order_by(Incident.id.desc())
    if state is not None:
        states = [state] if isinstance(state, str) else list(state)
        for s in states:
            if s not in INCIDENT_STATES:
                raise _choice("state", s, INCIDENT_STATES)
        stmt = stmt.where(Incident.state.in_(states))
    if model is not None:
        from assay.registry import get_model

        m = get_model(session, model)
        stmt = stmt.join(ModelVersion, ModelVersion.id == Incident.model_version_id).where(
            ModelVersion.model_id == m.id)
    out = [incident_summary(session, inc, now) for inc in session.scalars(stmt)]
    return [i for i in out if i["overdue"]] if overdue else out


def show_incident(session: Session, incident_id: int, *, now: datetime | None = None
                  ) -> dict[str, Any]:
    return incident_to_dict(session, get_incident(session, incident_id), now)


__all__ = ["get_incident", "in_zone", "incident_summary", "incident_to_dict", "list_incidents",
           "overdue_steps", "show_incident"]
