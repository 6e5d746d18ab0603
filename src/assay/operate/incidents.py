"""Incidents: open (by hand or from alerts), take in hand, mitigate, resolve, close.

An incident runs through ``open -> acknowledged -> mitigated -> resolved ->
closed``, one step at a time. Its clocks start at the awareness time: the
policy's ``incidents:`` section (:mod:`assay.policy.incidents`) gives, for
its tier and severity, how soon it must be acknowledged, mitigated and
reported; a serious incident (EU AI Act Art. 73) is reported by the earlier
of the policy's deadline and the Article's. :mod:`assay.operate.escalation`
notifies the next role of the escalation chain when a step is overdue.

Closing needs a post-mortem from the policy's ``postmortem_required_from``
severity on, and from ``close_requires_second_person_from`` on two people:
the second, who confirms, may be neither the first nor the model's owner,
the version's registrant or the incident's owner. Every change is an audit
event; a failed call changes nothing. :mod:`assay.operate.incident_views` reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    PermissionDenied,
)
from assay.notify import notify
from assay.operate.incident_tables import (
    INCIDENT_STATES,
    LINK_KINDS,
    Incident,
    IncidentAlert,
    IncidentLink,
    IncidentNote,
    IncidentStep,
)
from assay.operate.incident_views import (
    _choice,
    _name,
    _version,
    get_incident,
    in_zone,
    incident_summary,
    incident_to_dict,
    list_incidents,
    overdue_steps,
    show_incident,
)
from assay.policy import Policy
from assay.policy.incidents import (
    INCIDENT_KINDS,
    SERIOUS_CASES,
    IncidentRules,
    format_duration,
    incident_rules,
)
from assay.registry import get_user, get_version, latest_certification, require_role
from assay.registry.roles import (
    ADMIN,
    BUSINESS_OWNER,
    COMPLIANCE,
    DATA_SCIENTIST,
    RISK_OFFICER,
    SECURITY,
    VALIDATOR,
)
from assay.registry.tables import ModelVersion, User, _iso
from assay.store.audit import append_event
from assay.store.db import as_utc, utcnow

#: May open incidents, take them in hand, mark them mitigated, record playbook steps,
#: links and notes, and write post-mortems: the roles that handle alerts, and security.
HANDLERS: tuple[str, ...] = (DATA_SCIENTIST, VALIDATOR, RISK_OFFICER, COMPLIANCE, SECURITY,
                             BUSINESS_OWNER, ADMIN)
#: May resolve an incident (never the version's registrant, as for alerts).
RESOLVERS: tuple[str, ...] = (VALIDATOR, RISK_OFFICER, COMPLIANCE, SECURITY, ADMIN)
#: May record that an incident was reported to the authority.
REPORTERS: tuple[str, ...] = (COMPLIANCE, RISK_OFFICER, ADMIN)
#: May run the escalation of overdue steps by hand (cron); the service runs it as itself.
ESCALATORS: tuple[str, ...] = (VALIDATOR, RISK_OFFICER, COMPLIANCE, ADMIN)

#: Longest title and free texts.
MAX_TITLE = 300
MAX_TEXT = 20_000
#: What a state is called as the verb that reaches it.
_VERBS = {"acknowledged": "acknowledge", "mitigated": "mark mitigated",
          "resolved": "resolve", "closed": "close"}
_COMMANDS = {"acknowledged": "ack", "mitigated": "mitigate", "resolved": "resolve",
             "closed": "close"}


# --------------------------------------------------------------------------- helpers


def parse_time(value: datetime | str | None, field: str, *, now: datetime,
               default: datetime | None = None) -> tuple[datetime, str]:
    """``(UTC time, the offset it was given in)`` of an awareness or report time.

    A time without a zone is refused (a compliance clock must not guess it), and
    so is a time in the future."""
    if value is None or (isinstance(value, str) and not value.strip()):
        when = default or now
        return as_utc(when), "+00:00"
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InputError(f"{{{field}}}: expected a time such as 2026-03-05T09:30:00+01:00, "
                             f"got {value!r}", fields=[field]) from None
    elif isinstance(value, datetime):
        when = value
    else:
        raise InputError(f"{{{field}}}: expected a time, got {type(value).__name__}",
                         fields=[field])
    if when.tzinfo is None or when.utcoffset() is None:
        raise InputError(f"{{{field}}}: {when.isoformat()} has no time zone; add one "
                         "(e.g. +01:00, or Z for UTC)", fields=[field])
    if when > now:
        raise InputError(f"{{{field}}}: {when.isoformat()} is in the future (now "
                         f"{now.astimezone(when.tzinfo).isoformat(timespec='seconds')})",
                         fields=[field])
    return when.astimezone(UTC), _offset(when.utcoffset())


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _text(field: str, value: Any, *, required: bool = False, limit: int = MAX_TEXT) -> str:
    value = "" if value is None else str(value).strip()
    if required and not value:
        raise InputError(f"{{{field}}}: must not be empty", fields=[field])
    if len(value) > limit:
        raise InputError(f"{{{field}}}: longer than {limit} characters", fields=[field])
    return value


def _policy(session: Session, name: str | Policy) -> Policy:
    if isinstance(name, Policy):
        return name
    from assay.registry.policies import policy_named

    return policy_named(session, name)


@dataclass(frozen=True)
class Plan:
    """What an incident of one version is handled under."""

    policy: Policy
    tier: str | None
    rules: IncidentRules


def plan_for(session: Session, mv: ModelVersion, *, policy: str | Policy | None = None,
             tier: str | None = None) -> Plan:
    """The policy and tier of the version's latest certification (else the model's risk
    tier under the ``default`` policy) and the incident rules they give."""
    cert = latest_certification(session, mv.id)
    if policy is None and cert is not None:
        pol = _certified_policy(session, cert)
    else:
        pol = _policy(session, policy or "default")
    tier = tier or (cert.tier if cert is not None else None) or mv.model.tier
    if tier is not None and tier not in pol.tiers:
        pol.tier(tier)  # PolicyError naming the tiers
    return Plan(pol, tier, incident_rules(pol).for_tier(tier))


def _certified_policy(session: Session, cert: Any) -> Policy:
    """The policy file a certification was recorded under (by its digest), else the
    policy of that name the store knows."""
    from assay.registry.policies import known_policy

    try:
        return known_policy(session, {"name": cert.policy_name, "version": cert.policy_version,
                                      "sha256": cert.policy_digest})
    except (ConflictError, InputError, NotFoundError):
        return _policy(session, cert.policy_name)


def _rules_snapshot(rules: IncidentRules, severity: str) -> dict[str, Any]:
    return {"escalation": list(rules.escalation), "closers": list(rules.closers),
            "postmortem_required": rules.postmortem_required(severity),
            "second_person_required": rules.second_person_required(severity),
            "postmortem_required_from": rules.postmortem_required_from,
            "close_requires_second_person_from": rules.close_requires_second_person_from}


def deadlines_of(rules: IncidentRules, severity: str, aware_at: datetime,
                 serious_case: str | None) -> dict[str, Any]:
    """The due times of acknowledge, mitigate and report, and where the report's is from.

    The report is due by the earlier of the severity's ``report_within`` and, for a
    serious incident, its Art. 73 case's."""
    d = rules.deadlines[severity]
    aware = as_utc(aware_at)
    out: dict[str, Any] = {
        "acknowledge_due": aware + d.acknowledge if d.acknowledge else None,
        "mitigate_due": aware + d.mitigate if d.mitigate else None,
        "report_due": None, "report_basis": ""}
    options = []
    if d.report is not None:
        options.append((aware + d.report, f"policy: {severity} report_within "
                                          f"{format_duration(d.report)}"))
    if serious_case is not None and serious_case in rules.serious:
        case = rules.serious[serious_case]
        options.append((aware + case.report_within,
                        f"{case.clause}: serious incident ({serious_case.replace('_', ' ')}), "
                        f"{format_duration(case.report_within)} after awareness"))
    if options:
        out["report_due"], out["report_basis"] = min(options, key=lambda o: o[0])
    return out


def _audit(session: Session, actor: User | str, action: str, inc: Incident,
           payload: Mapping[str, Any] | None = None,
           evidence: Mapping[str, str] | None = None) -> None:
    mv = _version(session, inc)
    append_event(session, actor=actor, action=action, subject_type="incident",
                 subject_id=inc.id,
                 payload={"model": mv.model.name, "version": mv.version,
                          "severity": inc.severity, "state": inc.state, **(payload or {})},
                 evidence=evidence)


def _not_closed(inc: Incident, what: str) -> None:
    if inc.state == "closed":
        raise ConflictError(f"incident #{inc.id} is closed; it can no longer {what}")


# --------------------------------------------------------------------------- opening


def open_incident(session: Session, actor: User, model: str, version: str, *,
                  title: str, severity: str, kind: str = "other", description: str = "",
                  serious: str | None = None, aware_at: datetime | str | None = None,
                  alerts: Iterable[int] = (), groups: Iterable[str] = (),
                  owner: str | None = None, policy: str | Policy | None = None,
                  tier: str | None = None, now: datetime | None = None) -> Incident:
    """Open an incident on ``model`` ``version`` (by hand, or from monitoring ``alerts``).

    ``serious`` names the Art. 73 case (``general``,
    ``widespread_or_critical_infrastructure``, ``death``) of a serious incident.
    ``aware_at`` (with its zone) defaults to the earliest alert's time, else now.
    Notifies (``incident.opened``) the roles the kind's playbook informs and the owner.
    """
    require_role(actor, *HANDLERS, action="open incidents")
    now = as_utc(now) if now is not None else utcnow()
    mv = get_version(session, model, version)
    title = _text("title", title, required=True, limit=MAX_TITLE)
    if any(ch in title for ch in "\r\n"):
        raise InputError("{title}: expected one line (the subject of the notifications); put "
                         "the rest in the description", fields=["title"])
    description = _text("description", description)
    if kind not in INCIDENT_KINDS:
        raise _choice("kind", kind, INCIDENT_KINDS)
    if serious is not None and serious not in SERIOUS_CASES:
        raise _choice("serious", serious, SERIOUS_CASES)
    plan = plan_for(session, mv, policy=policy, tier=tier)
    rules = plan.rules
    if severity not in rules.severities:
        raise _choice("severity", severity, rules.severities)
    affected = [_text("group", g, required=True, limit=200) for g in groups]
    owner_user = actor
    if owner:
        owner_user = get_user(session, owner)
        if not owner_user.roles & set(HANDLERS):
            raise InputError(f"{{owner}}: user '{owner_user.username}' holds none of the roles "
                             "that handle incidents (" + ", ".join(HANDLERS) + ")",
                             fields=["owner"])
    from assay.monitor.tables import MonitorAlert

    linked: list[MonitorAlert] = []
    for alert_id in dict.fromkeys(int(a) for a in alerts):
        # locked: two incidents opened at once from one alert wait for each other
        a = (session.get(MonitorAlert, alert_id, with_for_update=True)
             if 0 < alert_id < 2**31 else None)
        if a is None:
            raise NotFoundError(f"unknown alert #{alert_id} (see `assay alert list`)")
        if a.model_version_id != mv.id:
            other = session.get(ModelVersion, a.model_version_id)
            raise InputError(f"alert #{alert_id} is of {other.model.name}@{other.version}, "
                             f"not of {model}@{version}")
        holder = session.scalars(
            select(Incident).join(IncidentAlert, IncidentAlert.incident_id == Incident.id)
            .where(IncidentAlert.alert_id == alert_id, Incident.state != "closed")).first()
        if holder is not None:
            raise ConflictError(f"alert #{alert_id} is already in incident #{holder.id} "
                                f"({holder.state}); update that incident instead")
        linked.append(a)
    default_aware = min((as_utc(a.created_at) for a in linked), default=None)
    aware, offset = parse_time(aware_at, "aware_at", now=now, default=default_aware)
    steps = [s.to_dict() for s in rules.playbook(kind)]
    due = deadlines_of(rules, severity, aware, serious)
    inc = Incident(
        model_version_id=mv.id, title=title, description=description, kind=kind,
        severity=severity, serious=serious is not None, serious_case=serious,
        affected_groups=affected, owner_id=owner_user.id, state="open",
        policy_name=plan.policy.name, policy_digest="sha256:" + plan.policy.sha256,
        tier=plan.tier, playbook=steps, rules=_rules_snapshot(rules, severity),
        aware_at=aware, aware_offset=offset, opened_by=actor.id, opened_at=now,
        report_reference="", **due)
    session.add(inc)
    session.flush()
    session.add_all(IncidentAlert(incident_id=inc.id, alert_id=a.id) for a in linked)
    session.flush()
    _audit(session, actor, "incident.open", inc, {
        "title": title, "kind": kind, "serious_case": serious, "owner": owner_user.username,
        "aware_at": _iso(aware), "alerts": [a.id for a in linked], "tier": plan.tier,
        "policy": plan.policy.name, "affected_groups": affected,
        "deadlines": {k: _iso(v) if isinstance(v, datetime) else v for k, v in due.items()}},
        evidence={"policy": "sha256:" + plan.policy.sha256})
    inform = list(dict.fromkeys(r for s in steps for r in s["inform"]))
    notify(session, actor, "incident.opened",
           f"Incident #{inc.id} ({severity}) on {model}@{version}: {title}",
           incident_summary(session, inc, now), roles=inform, users=[owner_user.username],
           now=now)
    return inc


# --------------------------------------------------------------------------- state changes


def _move(session: Session, actor: User, incident_id: int, to: str, *, note: str = "",
          now: datetime | None = None) -> tuple[Incident, datetime]:
    inc = get_incident(session, incident_id, lock=True)
    before = INCIDENT_STATES[INCIDENT_STATES.index(to) - 1]
    if inc.state != before:
        have, want = INCIDENT_STATES.index(inc.state), INCIDENT_STATES.index(to)
        if have >= want:
            raise ConflictError(f"incident #{inc.id} is already {inc.state}")
        step = INCIDENT_STATES[have + 1]
        raise ConflictError(f"incident #{inc.id} is {inc.state}: {_VERBS[step]} it first "
                            f"(`assay incident {_COMMANDS[step]} {inc.id}`), then "
                            f"{_VERBS[to]} it")
    return inc, as_utc(now) if now is not None else utcnow()


def _note(session: Session, actor: User, inc: Incident, note: str, now: datetime) -> str:
    note = _text("note", note)
    if note:
        session.add(IncidentNote(incident_id=inc.id, text=note, created_by=actor.id,
                                 created_at=now))
    return note


def acknowledge(session: Session, actor: User, incident_id: int, *, note: str = "",
                now: datetime | None = None) -> Incident:
    """Take an open incident in hand."""
    require_role(actor, *HANDLERS, action="acknowledge incidents")
    inc, now = _move(session, actor, incident_id, "acknowledged", now=now)
    note = _note(session, actor, inc, note, now)
    inc.state, inc.acknowledged_by, inc.acknowledged_at = "acknowledged", actor.id, now
    session.flush()
    _audit(session, actor, "incident.ack", inc, {"note": note, **_lateness(inc, "acknowledge",
                                                                           now)})
    return inc


def mitigate(session: Session, actor: User, incident_id: int, *, note: str = "",
             now: datetime | None = None) -> Incident:
    """Record that the harm is contained (the model rolled back, a threshold changed...)."""
    require_role(actor, *HANDLERS, action="mark incidents mitigated")
    inc, now = _move(session, actor, incident_id, "mitigated", now=now)
    note = _note(session, actor, inc, note, now)
    inc.state, inc.mitigated_by, inc.mitigated_at = "mitigated", actor.id, now
    session.flush()
    _audit(session, actor, "incident.mitigate", inc, {"note": note,
                                                      **_lateness(inc, "mitigate", now)})
    return inc


def resolve(session: Session, actor: User, incident_id: int, *, note: str = "",
            now: datetime | None = None) -> Incident:
    """Record that the cause is dealt with. The version's registrant may not resolve it
    (separation of duties, as for alerts)."""
    require_role(actor, *RESOLVERS, action="resolve incidents")
    inc, now = _move(session, actor, incident_id, "resolved", now=now)
    mv = _version(session, inc)
    if mv.created_by == actor.id:
        raise PermissionDenied(f"user '{actor.username}' registered {mv.model.name}@"
                               f"{mv.version} and may not resolve its incidents (separation "
                               "of duties)")
    note = _note(session, actor, inc, note, now)
    inc.state, inc.resolved_by, inc.resolved_at = "resolved", actor.id, now
    session.flush()
    _audit(session, actor, "incident.resolve", inc, {"note": note})
    return inc


def close(session: Session, actor: User, incident_id: int, *, note: str = "",
          now: datetime | None = None) -> Incident:
    """Close a resolved incident, as its policy says.

    From ``postmortem_required_from`` on, a post-mortem must be recorded first. From
    ``close_requires_second_person_from`` on, the first call records a request to
    close and a second person confirms it; the confirmer may be neither the one who
    asked nor the model's owner, the version's registrant or the incident's owner.
    """
    # a policy may name any role but the read-only auditor as closers (checked at load):
    # refuse anyone else before saying whether the incident exists
    require_role(actor, *HANDLERS, action="close incidents")
    inc = get_incident(session, incident_id, lock=True)
    rules = inc.rules or {}
    closers = tuple(rules.get("closers") or ())
    require_role(actor, *closers, action=f"close incident #{inc.id}")
    inc, now = _move(session, actor, incident_id, "closed", now=now)
    if rules.get("postmortem_required") and inc.postmortem is None:
        raise ConflictError(f"incident #{inc.id} ({inc.severity}) needs a post-mortem before it "
                            f"is closed (policy: postmortem_required_from "
                            f"{rules.get('postmortem_required_from')}); record one with "
                            f"`assay incident postmortem {inc.id} --file pm.yaml`")
    note = _text("note", note)
    if rules.get("second_person_required"):
        if inc.close_requested_by is None:
            _note(session, actor, inc, note, now)
            inc.close_requested_by, inc.close_requested_at = actor.id, now
            session.flush()
            _audit(session, actor, "incident.close_request", inc, {"note": note})
            return inc
        mv = _version(session, inc)
        involved = {inc.close_requested_by: "asked to close it",
                    mv.model.owner_id: f"owns the model {mv.model.name}",
                    mv.created_by: f"registered {mv.model.name}@{mv.version}",
                    inc.owner_id: "owns the incident"}
        if actor.id in involved:
            raise PermissionDenied(
                f"user '{actor.username}' {involved[actor.id]}; closing a {inc.severity} "
                f"incident needs a second, independent person with one of the roles "
                f"{', '.join(closers)} (separation of duties)")
    _note(session, actor, inc, note, now)
    inc.state, inc.closed_by, inc.closed_at = "closed", actor.id, now
    session.flush()
    _audit(session, actor, "incident.close", inc, {
        "note": note, "requested_by": _name(session, inc.close_requested_by),
        "postmortem": inc.postmortem_digest})
    return inc


def record_report(session: Session, actor: User, incident_id: int, *, reference: str,
                  at: datetime | str | None = None, now: datetime | None = None) -> Incident:
    """Record that the incident was reported to the authority (when, and its reference)."""
    require_role(actor, *REPORTERS, action="record incident reports")
    now = as_utc(now) if now is not None else utcnow()
    inc = get_incident(session, incident_id, lock=True)
    _not_closed(inc, "be reported")
    if inc.reported_at is not None:
        raise ConflictError(f"incident #{inc.id} was already reported on "
                            f"{_iso(inc.reported_at)} ({inc.report_reference})")
    reference = _text("reference", reference, required=True, limit=2000)
    when, _ = parse_time(at, "at", now=now)
    if when < as_utc(inc.aware_at):
        raise InputError(f"{{at}}: {when.isoformat()} is before the awareness time "
                         f"{_iso(inc.aware_at)}", fields=["at"])
    inc.reported_by, inc.reported_at, inc.report_reference = actor.id, when, reference
    session.flush()
    _audit(session, actor, "incident.report", inc, {"reference": reference,
                                                    "reported_at": _iso(when),
                                                    **_lateness(inc, "report", when)})
    return inc


def _lateness(inc: Incident, step: str, at: datetime) -> dict[str, Any]:
    due = getattr(inc, f"{step}_due")
    return {"due": _iso(due), "late": due is not None and as_utc(at) > as_utc(due)}


# --------------------------------------------------------------------------- updates


@dataclass(frozen=True)
class EvidenceFile:
    """A document attached to a playbook step: its name and its bytes or path, or the
    digest of a file already in the evidence store (``POST /api/evidence``)."""

    name: str
    source: bytes | str | Path | None = None
    digest: str | None = None


def update(session: Session, actor: User, incident_id: int, *, step: int | None = None,
           done: bool = False, evidence: Sequence[EvidenceFile] = (),
           link_mitigation: int | None = None, link_waiver: int | None = None,
           link_release: str | None = None, note: str = "", severity: str | None = None,
           now: datetime | None = None) -> Incident:
    """Record a playbook step (done, with evidence), a link, a note or a new severity.

    Everything is checked before anything is written; evidence goes to the
    content-addressed evidence store and is recorded by digest.
    """
    require_role(actor, *HANDLERS, action="update incidents")
    now = as_utc(now) if now is not None else utcnow()
    inc = get_incident(session, incident_id, lock=True)
    _not_closed(inc, "change")
    mv = _version(session, inc)
    if (done or evidence) and step is None:
        raise InputError("{step}: say which playbook step (1 to "
                         f"{len(inc.playbook)}) is done or gets the evidence",
                         fields=["step"])
    if step is not None:
        if not inc.playbook:
            raise InputError(f"incident #{inc.id} has no playbook steps (kind {inc.kind})")
        if not 1 <= int(step) <= len(inc.playbook):
            raise InputError(f"{{step}}: expected 1 to {len(inc.playbook)} (the steps of the "
                             f"{inc.kind} playbook), got {step}", fields=["step"])
        if not done and not evidence:
            raise InputError("{step}: say what happened to it: mark it done or attach evidence",
                             fields=["step"])
        wanted = inc.playbook[int(step) - 1].get("evidence") or []
        held = session.get(IncidentStep, (inc.id, int(step)))
        if done and wanted and not evidence and not (held and held.evidence):
            raise InputError(f"step {step} of incident #{inc.id} needs its evidence attached "
                             f"before it is done ({', '.join(wanted)}): attach a document to "
                             "the step")
    links: list[tuple[str, str, str]] = []
    if link_mitigation is not None:
        links.append(("mitigation", str(_mitigation(session, mv, link_mitigation)), ""))
    if link_waiver is not None:
        links.append(("waiver", str(_waiver(session, mv, link_waiver)), ""))
    if link_release is not None:
        links.append(("release", _text("link_release", link_release, required=True,
                                        limit=200), ""))
    for kind, ref, _ in links:
        if session.scalars(select(IncidentLink).where(
                IncidentLink.incident_id == inc.id, IncidentLink.kind == kind,
                IncidentLink.ref == ref)).first() is not None:
            raise ConflictError(f"incident #{inc.id} is already linked to {kind} {ref}")
    new_severity = None
    if severity is not None and severity != inc.severity:
        plan = plan_for(session, mv, policy=inc.policy_name, tier=inc.tier)
        if severity not in plan.rules.severities:
            raise _choice("severity", severity, plan.rules.severities)
        new_severity = (severity, plan)
    names = [(_text("evidence", e.name, required=True, limit=300), e) for e in evidence]
    if step is not None and names:
        from assay.evidence import has_artifact, normalise_digest
        from assay.registry.policies import settings_of

        for _, e in names:
            if e.digest is not None and not has_artifact(settings_of(session),
                                                         normalise_digest(e.digest)):
                raise NotFoundError(f"evidence {e.digest}: not in the evidence store (upload "
                                    "it first: POST /api/evidence)")
    note = _text("note", note)
    if step is None and not links and not note and new_severity is None:
        raise InputError("nothing to update: give --step with --done or --evidence, a link, "
                         "a --note or a --severity")

    changes: dict[str, Any] = {}
    if step is not None:
        from assay.registry.policies import settings_of

        settings = settings_of(session)
        attached = [{"name": name, "digest": _evidence_digest(settings, e)}
                     for name, e in names]
        row = session.get(IncidentStep, (inc.id, int(step)))
        if row is None:
            row = IncidentStep(incident_id=inc.id, step=int(step), evidence=[], note="")
            session.add(row)
        row.evidence = [*(row.evidence or []), *attached]
        if done and row.done_at is None:
            row.done_by, row.done_at = actor.id, now
        changes["step"] = {"step": int(step), "title": inc.playbook[int(step) - 1]["title"],
                           "done": row.done_at is not None, "evidence": attached}
    for kind, ref, lnote in links:
        session.add(IncidentLink(incident_id=inc.id, kind=kind, ref=ref, note=lnote,
                                 created_by=actor.id, created_at=now))
    if links:
        changes["links"] = [{"kind": k, "ref": r} for k, r, _ in links]
    if new_severity is not None:
        sev, plan = new_severity
        due = deadlines_of(plan.rules, sev, inc.aware_at, inc.serious_case)
        changes["severity"] = {"from": inc.severity, "to": sev,
                               "deadlines": {k: _iso(v) if isinstance(v, datetime) else v
                                             for k, v in due.items()}}
        inc.severity, inc.rules = sev, _rules_snapshot(plan.rules, sev)
        for k, v in due.items():
            setattr(inc, k, v)
    if note:
        _note(session, actor, inc, note, now)
        changes["note"] = note
    session.flush()
    _audit(session, actor, "incident.update", inc, changes,
           evidence={f"step{changes['step']['step']}.{i}": e["digest"]
                     for i, e in enumerate(changes["step"]["evidence"])}
           if "step" in changes and changes["step"]["evidence"] else None)
    return inc


def _evidence_digest(settings: Any, e: EvidenceFile) -> str:
    from assay.evidence import normalise_digest, store_artifact

    if e.digest is not None:
        return normalise_digest(e.digest)
    if e.source is None:
        raise InputError(f"evidence '{e.name}': give its file or its digest")
    return store_artifact(settings, e.source)


def _mitigation(session: Session, mv: ModelVersion, mitigation_id: int) -> int:
    from assay.risk.tables import Mitigation, Risk

    m = session.get(Mitigation, int(mitigation_id)) if 0 < int(mitigation_id) < 2**31 else None
    if m is None:
        raise NotFoundError(f"unknown mitigation #{mitigation_id} (see `assay risk list`)")
    risk = session.get(Risk, m.risk_id)
    if risk is None or risk.model_id != mv.model_id:
        raise InputError(f"mitigation #{mitigation_id} is not of a risk of model "
                         f"'{mv.model.name}'")
    return m.id


def _waiver(session: Session, mv: ModelVersion, waiver_id: int) -> int:
    from assay.workflow.tables import Waiver

    w = session.get(Waiver, int(waiver_id)) if 0 < int(waiver_id) < 2**31 else None
    if w is None:
        raise NotFoundError(f"unknown waiver #{waiver_id} (see `assay status MODEL VERSION`)")
    other = session.get(ModelVersion, w.model_version_id)
    if other is None or other.model_id != mv.model_id:
        raise InputError(f"waiver #{waiver_id} is not of a version of model '{mv.model.name}'")
    return w.id


def record_postmortem(session: Session, actor: User, incident_id: int, document: Any, *,
                      source: str = "postmortem", where: Any = None,
                      now: datetime | None = None) -> Incident:
    """Record (or replace, until it is closed) the incident's post-mortem, validated by
    :func:`assay.operate.postmortem.validate_postmortem`; stored in the evidence store
    too and audited by its digest."""
    import json

    from assay.evidence import store_artifact
    from assay.operate.postmortem import validate_postmortem
    from assay.registry.policies import settings_of

    require_role(actor, *HANDLERS, action="write post-mortems")
    now = as_utc(now) if now is not None else utcnow()
    inc = get_incident(session, incident_id, lock=True)
    _not_closed(inc, "take a post-mortem")
    if inc.state == "open":
        raise ConflictError(f"incident #{inc.id} is open: acknowledge it first "
                            f"(`assay incident ack {inc.id}`), then write its post-mortem")
    pm = validate_postmortem(session, document, source=source, where=where, now=now)
    digest = store_artifact(settings_of(session), json.dumps(
        {"incident": inc.id, **pm}, sort_keys=True, separators=(",", ":")).encode())
    replaced = inc.postmortem_digest
    inc.postmortem, inc.postmortem_by, inc.postmortem_at = pm, actor.id, now
    inc.postmortem_digest = digest
    session.flush()
    _audit(session, actor, "incident.postmortem", inc,
           {"root_cause": pm["root_cause"], "actions": len(pm["actions"]),
            "replaces": replaced}, evidence={"postmortem": digest})
    return inc


#: The names :mod:`assay.operate` exports (``acknowledge`` alone would say nothing there).
acknowledge_incident, mitigate_incident, resolve_incident = acknowledge, mitigate, resolve
close_incident, update_incident = close, update

__all__ = [
    "ESCALATORS",
    "HANDLERS",
    "INCIDENT_KINDS",
    "INCIDENT_STATES",
    "LINK_KINDS",
    "REPORTERS",
    "RESOLVERS",
    "SERIOUS_CASES",
    "EvidenceFile",
    "Plan",
    "acknowledge",
    "acknowledge_incident",
    "close",
    "close_incident",
    "deadlines_of",
    "get_incident",
    "in_zone",
    "incident_summary",
    "incident_to_dict",
    "list_incidents",
    "mitigate",
    "mitigate_incident",
    "open_incident",
    "overdue_steps",
    "parse_time",
    "plan_for",
    "record_postmortem",
    "record_report",
    "resolve",
    "resolve_incident",
    "show_incident",
    "update",
    "update_incident",
]
