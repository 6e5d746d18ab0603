"""Incidents on SQLite and PostgreSQL (the ``db`` fixture): deadlines from the policy with a
non-UTC awareness time, escalation once per overdue step to a real webhook receiver and SMTP
server, post-mortems, separation of duties on closing, and bad input that changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from _receivers import smtp_server, webhook_receiver
from assay import registry as reg
from assay.errors import ConflictError, InputError, NotFoundError, PermissionDenied, PolicyError
from assay.notify import add_channel, dispatch_due
from assay.notify.tables import NotifyDelivery
from assay.operate import (
    acknowledge_incident,
    close_incident,
    escalate_overdue,
    list_incidents,
    mitigate_incident,
    open_incident,
    record_postmortem,
    record_report,
    resolve_incident,
    show_incident,
    update_incident,
)
from assay.operate.incident_tables import (
    Incident,
    IncidentAlert,
    IncidentEscalation,
    IncidentLink,
    IncidentNote,
    IncidentStep,
)
from assay.operate.incidents import EvidenceFile
from assay.store import Store
from assay.store.audit import AuditEvent, verify_chain

SECRET = "incident-hook-secret-0123456789"
#: 09:30 in Paris (UTC+01:00 in November) is 08:30 UTC.
AWARE = "2026-11-27T09:30:00+01:00"
AWARE_UTC = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    """A UTC time as the store's records give it."""
    return t.isoformat().replace("+00:00", "Z")

PM = """\
timeline:
  - at: 2026-11-27T09:30:00+01:00
    what: Drift alert on income raised by monitoring
  - at: 2026-11-27T11:00:00+01:00
    what: Model rolled back to 0.9
root_cause: The bureau feed changed the unit of income to thousands
contributing_factors: [No unit check on the bureau feed]
went_well: [The alert fired within the day]
actions:
  - action: Add a unit check to the bureau feed
    owner: victor
    due: 2026-12-15
"""


@pytest.fixture
def model(db: Store, people: dict) -> str:
    with db.transaction() as s:
        dana = reg.get_user(s, "dana")
        reg.register_model(s, dana, "pd", owner="bo", decision_type="automated",
                           criticality="high", purpose="probability of default")
        reg.add_version(s, dana, "pd", "1")
    return "pd"


def _open(db: Store, who: str = "victor", **kw):
    kw.setdefault("title", "Income drift after the bureau change")
    kw.setdefault("severity", "SEV1")
    kw.setdefault("kind", "drift")
    kw.setdefault("aware_at", AWARE)
    kw.setdefault("now", NOW)
    with db.transaction() as s:
        s.info["settings"] = db.settings
        return open_incident(s, reg.get_user(s, who), "pd", "1", **kw).id


def _act(db: Store, fn, who: str, *args, **kw):
    with db.transaction() as s:
        s.info["settings"] = db.settings
        return fn(s, reg.get_user(s, who), *args, **kw)


def _show(db: Store, iid: int, now: datetime = NOW) -> dict:
    with db.transaction() as s:
        return show_incident(s, iid, now=now)


def _snapshot(db: Store) -> dict:
    """Every incident row and the audit trail's length: what a refused call must not move."""
    with db.transaction() as s:
        out = {"audit": s.scalar(select(func.count()).select_from(AuditEvent)),
               "deliveries": s.scalar(select(func.count()).select_from(NotifyDelivery))}
        for table in (Incident, IncidentAlert, IncidentLink, IncidentStep, IncidentNote,
                      IncidentEscalation):
            out[table.__tablename__] = [
                {c.name: getattr(r, c.key) for c in table.__table__.columns}
                for r in s.scalars(select(table))]
        return out


def test_incident_tables_match_the_migration(db: Store) -> None:
    from _schema import schema_diffs
    from assay.store.db import Base

    ours = {t for t in Base.metadata.tables if t.startswith("incident")}
    assert ours == {"incidents", "incident_alerts", "incident_links", "incident_steps",
                    "incident_escalations", "incident_notes"}
    assert schema_diffs(db.engine, ours) == []


def test_deadlines_come_from_the_policy_and_the_awareness_time_in_its_zone(
        db: Store, model: str) -> None:
    iid = _open(db, severity="SEV1", serious="death")
    inc = _show(db, iid)
    due = {d["step"]: d for d in inc["deadlines"]}
    assert inc["aware_at"] == iso(AWARE_UTC) and inc["aware_zone"] == "+01:00"
    # default policy, SEV1: acknowledge within 1h, mitigate within 1d, report within 2d;
    # the death case of Art. 73(4) gives 10 days, so the policy's 2 days come first
    assert due["acknowledge"]["due"] == iso(AWARE_UTC + timedelta(hours=1))
    assert due["acknowledge"]["due_local"] == "2026-11-27T10:30+01:00"
    assert due["mitigate"]["due"] == iso(AWARE_UTC + timedelta(days=1))
    assert due["report"]["due"] == iso(AWARE_UTC + timedelta(days=2))
    assert due["report"]["basis"] == "policy: SEV1 report_within 2d"

    # a SEV3 has no reporting deadline of its own: Art. 73(2)'s 15 days apply
    iid3 = _open(db, severity="SEV3", serious="general", title="Complaints about refusals")
    d3 = {d["step"]: d for d in _show(db, iid3)["deadlines"]}
    assert d3["acknowledge"]["due"] == iso(AWARE_UTC + timedelta(days=1))
    assert d3["report"]["due"] == iso(AWARE_UTC + timedelta(days=15))
    assert d3["report"]["basis"].startswith("EU AI Act Art. 73(2): serious incident (general)")
    # widespread infringement or critical infrastructure: 2 days (Art. 73(3))
    iidw = _open(db, severity="SEV4", serious="widespread_or_critical_infrastructure")
    dw = {d["step"]: d for d in _show(db, iidw)["deadlines"]}
    assert dw["report"]["due"] == iso(AWARE_UTC + timedelta(days=2))
    assert "Art. 73(3)" in dw["report"]["basis"]
    # not serious and SEV4: nothing to report
    iid4 = _open(db, severity="SEV4")
    assert {d["step"]: d["due"] for d in _show(db, iid4)["deadlines"]}["report"] is None

    # the tier's override: credit-lending's high tier acknowledges a SEV1 within 30 minutes,
    # and a time given in New York (UTC-05:00) starts the same clock
    iidc = _open(db, policy="credit-lending", tier="high",
                 aware_at="2026-11-27T03:30:00-05:00")
    dc = _show(db, iidc)
    assert dc["tier"] == "high" and dc["aware_zone"] == "-05:00"
    assert dc["deadlines"][0]["due"] == iso(AWARE_UTC + timedelta(minutes=30))
    assert dc["deadlines"][0]["due_local"] == "2026-11-27T04:00-05:00"


def test_overdue_steps_are_marked_and_listed(db: Store, model: str) -> None:
    iid = _open(db)
    later = AWARE_UTC + timedelta(hours=2)
    assert _show(db, iid, later)["overdue"] == ["acknowledge"]
    with db.transaction() as s:
        assert [i["id"] for i in list_incidents(s, overdue=True, now=later)] == [iid]
        assert list_incidents(s, overdue=True, now=NOW) == []
    _act(db, acknowledge_incident, "victor", iid, now=later)
    shown = _show(db, iid, later)
    assert shown["overdue"] == []
    ack = shown["deadlines"][0]
    assert ack["late"] is True and ack["done_by"] == "victor"


def test_escalation_notifies_the_next_role_once_per_overdue_step(db: Store, model: str
                                                                   ) -> None:
    with db.transaction() as s:
        ada = reg.get_user(s, "ada")
        reg.add_user(s, ada, "vera", email="vera@bank.test", roles=["validator"])
        reg.add_user(s, ada, "rhea", email="rhea@bank.test", roles=["risk_officer"])
        reg.add_user(s, ada, "cleo", email="cleo@bank.test", roles=["compliance"])
    with smtp_server() as box, webhook_receiver(SECRET) as hook:
        with db.transaction() as s:
            ada = reg.get_user(s, "ada")
            add_channel(s, ada, "ops", kind="webhook", config={"url": hook.url}, secret=SECRET,
                        events=["incident.overdue"], backoff_seconds=0)
            add_channel(s, ada, "mail", kind="email", events=["incident.*"], backoff_seconds=0,
                        config={"host": "127.0.0.1", "port": box.port,
                                "sender": "assay@bank.test"})
        iid = _open(db, owner="vera")
        dispatch_due(db)  # incident.opened: the playbook informs validators, and the owner
        assert box.to("vera@bank.test") and not hook.accepted
        box.messages.clear()

        # nothing is overdue before the hour is out
        assert escalate_overdue(db, AWARE_UTC + timedelta(minutes=59)) == []
        t1 = AWARE_UTC + timedelta(hours=2)
        first = escalate_overdue(db, t1)
        assert [(e["incident"], e["step"], e["role"]) for e in first] == [
            (iid, "acknowledge", "validator")]
        assert escalate_overdue(db, t1) == []
        assert escalate_overdue(db, t1 + timedelta(hours=3)) == []  # still the same step
        dispatch_due(db)
        assert len(hook.accepted) == 1
        body = hook.accepted[0]
        assert body["event"] == "incident.overdue"
        payload = body["payload"]
        assert payload["overdue_step"] == "acknowledge" and payload["escalated_to"] == "validator"
        assert payload["id"] == iid
        assert next(m["Subject"] for m in box.to("vera@bank.test")).startswith(
            f"[assay] OVERDUE: incident #{iid} (SEV1) on pd@1 was not acknowledged")

        # two days later: mitigation and reporting are overdue too; each goes one role up
        t2 = AWARE_UTC + timedelta(days=2, hours=1)
        second = escalate_overdue(db, t2)
        assert [(e["step"], e["role"]) for e in second] == [("mitigate", "risk_officer"),
                                                           ("report", "compliance")]
        assert escalate_overdue(db, t2) == []
        dispatch_due(db)
        assert len(hook.accepted) == 3
        assert box.to("rhea@bank.test") and box.to("cleo@bank.test")
        steps = {d["step"]: d for d in _show(db, iid, t2)["deadlines"]}
        assert steps["mitigate"]["escalated_to"] == "risk_officer"
        assert steps["report"]["escalated_to"] == "compliance"
    with db.transaction() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "incident.escalate")
                           .order_by(AuditEvent.seq)).all()
        assert [(e.payload["step"], e.actor) for e in events] == [
            ("acknowledge", "assay-scheduler"), ("mitigate", "assay-scheduler"),
            ("report", "assay-scheduler")]
        assert verify_chain(s).ok


def test_escalation_by_hand_needs_a_role(db: Store, model: str) -> None:
    _open(db)
    with db.transaction() as s, pytest.raises(PermissionDenied, match="escalate"):
        escalate_overdue(s, AWARE_UTC + timedelta(hours=2), actor=reg.get_user(s, "audrey"))
    with db.transaction() as s:
        made = escalate_overdue(s, AWARE_UTC + timedelta(hours=2),
                                actor=reg.get_user(s, "victor"))
    assert [e["step"] for e in made] == ["acknowledge"]


def test_the_lifecycle_with_playbook_links_postmortem_and_two_people_to_close(
        db: Store, model: str, tmp_path) -> None:
    iid = _open(db, owner="cora")
    t = NOW + timedelta(hours=3)
    _act(db, acknowledge_incident, "victor", iid, note="on it", now=t)
    evidence = tmp_path / "status.csv"
    evidence.write_text("day,psi\n2026-11-26,0.31\n")
    _act(db, update_incident, "victor", iid, step=1, done=True,
         evidence=[EvidenceFile("status.csv", evidence)], now=t)
    _act(db, update_incident, "victor", iid, link_release="rel-42", note="rolled back to 0.9",
         now=t)
    _act(db, mitigate_incident, "victor", iid, now=t)
    _act(db, resolve_incident, "rita", iid, now=t)
    # SEV1 needs a post-mortem before closing
    with pytest.raises(ConflictError, match=f"incident #{iid} \\(SEV1\\) needs a post-mortem"):
        _act(db, close_incident, "rita", iid, now=t)
    from assay.operate.postmortem import parse_postmortem_yaml

    doc, where = parse_postmortem_yaml(PM, source="pm.yaml")
    _act(db, record_postmortem, "victor", iid, doc, source="pm.yaml", where=where, now=t)
    # the first closer only asks; the incident stays resolved
    _act(db, close_incident, "rita", iid, now=t)
    assert _show(db, iid)["state"] == "resolved"
    for who, why in (("rita", "asked to close it"), ("cora", "owns the incident")):
        with pytest.raises(PermissionDenied, match=why):
            _act(db, close_incident, who, iid, now=t)
    with pytest.raises(PermissionDenied, match="needs one of risk_officer, compliance, admin"):
        _act(db, close_incident, "dana", iid, now=t)
    _act(db, close_incident, "ada", iid, note="reviewed", now=t)
    shown = _show(db, iid)
    assert shown["state"] == "closed" and shown["closed_by"] == "ada"
    assert shown["close_requested_by"] == "rita"
    assert shown["playbook"][0]["done"] and shown["playbook"][0]["evidence"][0]["name"] == \
        "status.csv"
    assert shown["playbook"][0]["evidence"][0]["digest"].startswith("sha256:")
    assert not shown["playbook"][1]["done"]
    assert shown["links"] == [{"kind": "release", "ref": "rel-42", "note": "", "by": "victor",
                               "at": shown["links"][0]["at"]}]
    assert shown["postmortem"]["root_cause"].startswith("The bureau feed")
    assert shown["postmortem"]["actions"][0] == {"action": "Add a unit check to the bureau "
                                                 "feed", "owner": "victor", "due": "2026-12-15"}
    assert [n["text"] for n in shown["notes"]] == ["on it", "rolled back to 0.9", "reviewed"]
    with db.transaction() as s:
        actions = list(s.scalars(select(AuditEvent.action).where(
            AuditEvent.subject_type == "incident").order_by(AuditEvent.seq)))
        assert actions == ["incident.open", "incident.ack", "incident.update", "incident.update",
                           "incident.mitigate", "incident.resolve", "incident.postmortem",
                           "incident.close_request", "incident.close"]
        assert verify_chain(s).ok
    # closed: nothing changes any more
    with pytest.raises(ConflictError, match="is closed"):
        _act(db, update_incident, "victor", iid, note="late note", now=t)


def test_a_lower_severity_closes_with_one_person_and_no_postmortem(db: Store, model: str
                                                                     ) -> None:
    iid = _open(db, severity="SEV3")
    for fn, who in ((acknowledge_incident, "victor"), (mitigate_incident, "victor"),
                    (resolve_incident, "victor"), (close_incident, "cora")):
        _act(db, fn, who, iid, now=NOW)
    assert _show(db, iid)["state"] == "closed"


def test_opening_from_alerts_links_them_and_an_alert_is_in_one_open_incident(
        db: Store, model: str) -> None:
    from assay.monitor.tables import MonitorAlert, MonitorEvaluation

    raised = datetime(2026, 11, 26, 23, 0, tzinfo=UTC)
    with db.transaction() as s:
        mv = reg.get_version(s, "pd", "1")
        ev = MonitorEvaluation(model_version_id=mv.id, policy_name="p", tier="high",
                               period="daily", window_start=raised, window_end=raised,
                               rule="drift.feature", rule_id="drift.feature", metric="psi",
                               label="income", value=0.4, threshold={"max": 0.1}, state="fail",
                               basis=0, note="", created_at=raised)
        s.add(ev)
        s.flush()
        alert = MonitorAlert(model_version_id=mv.id, evaluation_id=ev.id, rule="drift.feature",
                             rule_id="drift.feature", metric="psi", label="income",
                             period="daily", window_start=raised, window_end=raised, value=0.4,
                             threshold={"max": 0.1}, severity="block", state="open",
                             message="psi 0.4", created_at=raised)
        s.add(alert)
        s.flush()
        alert_id = alert.id
    iid = _open(db, alerts=[alert_id], aware_at=None)
    shown = _show(db, iid)
    assert [a["id"] for a in shown["alerts"]] == [alert_id]
    assert shown["aware_at"] == iso(raised)  # the alert's time starts the clocks
    before = _snapshot(db)
    with pytest.raises(ConflictError, match=f"alert #{alert_id} is already in incident #{iid} "
                                            r"\(open\)"):
        _open(db, alerts=[alert_id])
    with pytest.raises(NotFoundError, match="unknown alert #999"):
        _open(db, alerts=[999])
    assert _snapshot(db) == before


def test_links_to_a_mitigation_and_a_waiver_of_the_same_model(db: Store, model: str) -> None:
    from assay.risk.tables import Mitigation, Risk
    from assay.workflow.tables import Waiver

    with db.transaction() as s:
        mv = reg.get_version(s, "pd", "1")
        rita = reg.get_user(s, "rita")
        now = NOW
        risk = Risk(model_id=mv.model_id, model_version_id=mv.id, title="drift",
                    owner_id=rita.id, **_risk_defaults(Risk, now))
        s.add(risk)
        s.flush()
        m = Mitigation(risk_id=risk.id, title="retrain monthly", owner_id=rita.id,
                       success_criteria="psi < 0.1", created_by=rita.id, created_at=now,
                       updated_at=now, status="planned")
        w = Waiver(model_version_id=mv.id, scope="certification", policy_name="default",
                   tier="high", justification="interim", granted_by=rita.id, granted_at=now,
                   expires_at=now + timedelta(days=30))
        s.add_all([m, w])
        s.flush()
        mid, wid = m.id, w.id
    iid = _open(db)
    _act(db, update_incident, "victor", iid, link_mitigation=mid, link_waiver=wid, now=NOW)
    assert [(lk["kind"], lk["ref"]) for lk in _show(db, iid)["links"]] == [
        ("mitigation", str(mid)), ("waiver", str(wid))]
    before = _snapshot(db)
    with pytest.raises(ConflictError, match=f"already linked to mitigation {mid}"):
        _act(db, update_incident, "victor", iid, link_mitigation=mid, now=NOW)
    with pytest.raises(NotFoundError, match="unknown waiver #4242"):
        _act(db, update_incident, "victor", iid, link_waiver=4242, now=NOW)
    assert _snapshot(db) == before


def _risk_defaults(risk_cls, now: datetime) -> dict:
    """The required columns of a register entry that the test does not care about."""
    out = {}
    for c in risk_cls.__table__.columns:
        if c.nullable or c.primary_key or c.default is not None or c.name in (
                "model_id", "model_version_id", "title", "owner_id"):
            continue
        py = c.type.python_type
        out[c.key] = (now if py is datetime else 3 if py is int else 0.0 if py is float
                      else "open" if c.name in ("status", "state") else "x")
    return out


@pytest.mark.parametrize("call, error, message", [
    (lambda db, iid: _act(db, acknowledge_incident, "victor", 4242), NotFoundError,
     r"^unknown incident #4242 \(see `assay incident list`\)$"),
    (lambda db, iid: _act(db, resolve_incident, "rita", iid), ConflictError,
     r"^incident #\d+ is open: acknowledge it first \(`assay incident ack \d+`\), then "
     r"resolve it$"),
    (lambda db, iid: _act(db, close_incident, "rita", iid), ConflictError,
     r"^incident #\d+ is open: acknowledge it first"),
    (lambda db, iid: _act(db, mitigate_incident, "victor", iid), ConflictError,
     r"is open: acknowledge it first .* then mark mitigated it$"),
    (lambda db, iid: _open(db, aware_at="2027-01-01T00:00:00+01:00"), InputError,
     r"^aware_at: 2027-01-01T00:00:00\+01:00 is in the future \(now "),
    (lambda db, iid: _open(db, aware_at="2026-11-27T09:30:00"), InputError,
     r"^aware_at: 2026-11-27T09:30:00 has no time zone"),
    (lambda db, iid: _open(db, severity="SEV9"), InputError,
     r"^severity: expected one of 'SEV1', 'SEV2', 'SEV3', 'SEV4', got 'SEV9'"),
    (lambda db, iid: _open(db, kind="drfit"), InputError,
     r"^kind: expected one of .*, got 'drfit'; did you mean 'drift'\?$"),
    (lambda db, iid: _open(db, title="  "), InputError, r"^title: must not be empty$"),
    (lambda db, iid: _open(db, title="Drift\nBcc: x@evil.test"), InputError,
     r"^title: expected one line"),
    (lambda db, iid: _open(db, who="audrey"), PermissionDenied, r"may not open incidents"),
    (lambda db, iid: _act(db, update_incident, "victor", iid, step=7, done=True),
     InputError, r"^step: expected 1 to 2 \(the steps of the drift playbook\), got 7$"),
    (lambda db, iid: _act(db, update_incident, "victor", iid, step=1, done=True),
     InputError, r"^step 1 of incident #\d+ needs its evidence attached before it is done "
                 r"\(monitoring status export\): attach a document to the step$"),
    (lambda db, iid: _act(db, record_report, "cora", iid, reference="AI-1",
                          at="2030-01-01T00:00:00Z"), InputError, r"^at: .* is in the future"),
])
def test_bad_input_is_one_line_and_changes_nothing(db: Store, model: str, call, error,
                                                   message) -> None:
    iid = _open(db)
    before = _snapshot(db)
    with pytest.raises(error) as err:
        call(db, iid)
    assert "\n" not in str(err.value)
    import re

    assert re.search(message, str(err.value)), str(err.value)
    assert _snapshot(db) == before


def test_a_postmortem_without_root_cause_is_refused_with_its_line(db: Store, model: str
                                                                    ) -> None:
    from assay.operate.postmortem import parse_postmortem_yaml

    iid = _open(db)
    _act(db, acknowledge_incident, "victor", iid, now=NOW)
    before = _snapshot(db)
    for text, message in (
            (PM.replace("root_cause: The bureau feed changed the unit of income to "
                        "thousands\n", ""), r"^pm\.yaml:1: root_cause: required"),
            (PM.replace("The bureau feed changed the unit of income to thousands", "''"),
             r"^pm\.yaml:6: root_cause: required"),
            (PM.replace("owner: victor", "owner: nobody"),
             r"^pm\.yaml:11: actions\[0\]\.owner: unknown or deactivated user 'nobody'"),
            (PM.replace("2026-11-27T11:00:00+01:00", "2026-11-27T11:00:00"),
             r"^pm\.yaml:4: timeline\[1\]\.at: .* has no time zone"),
            (PM.replace("due: 2026-12-15", "due: soon"),
             r"^pm\.yaml:12: actions\[0\]\.due: expected a due date"),
            (PM.replace("went_well:", "went_wel:"),
             r"^pm\.yaml:8: went_wel: unknown field; did you mean 'went_well'\?"),
            (PM.replace("2026-11-27T11:00:00+01:00", "2026-11-28T11:00:00+01:00"),
             r"^pm\.yaml:4: timeline\[1\]\.at: 2026-11-28T10:00:00\+00:00 is in the future")):
        doc, where = parse_postmortem_yaml(text, source="pm.yaml")
        with pytest.raises(InputError) as err:
            _act(db, record_postmortem, "victor", iid, doc, source="pm.yaml", where=where,
                 now=NOW + timedelta(hours=3))
        import re

        assert re.search(message, str(err.value)), str(err.value)
    assert _snapshot(db) == before


def test_the_developer_may_not_resolve_and_the_auditor_reads_only(db: Store, model: str
                                                                   ) -> None:
    iid = _open(db)
    _act(db, acknowledge_incident, "dana", iid, now=NOW)
    _act(db, mitigate_incident, "dana", iid, now=NOW)
    before = _snapshot(db)
    with pytest.raises(PermissionDenied, match="may not resolve incidents"):
        _act(db, resolve_incident, "dana", iid, now=NOW)  # no resolver role at all
    with db.transaction() as s:
        reg.grant_role(s, reg.get_user(s, "ada"), "dana", "validator")
    before = _snapshot(db)
    with pytest.raises(PermissionDenied, match="registered pd@1 and may not resolve"):
        _act(db, resolve_incident, "dana", iid, now=NOW)
    for fn in (acknowledge_incident, mitigate_incident, resolve_incident, close_incident):
        with pytest.raises(PermissionDenied):
            _act(db, fn, "audrey", iid, now=NOW)
    assert _snapshot(db) == before


def test_a_report_to_the_authority_stops_the_report_clock(db: Store, model: str) -> None:
    iid = _open(db, serious="general", severity="SEV3")
    late = AWARE_UTC + timedelta(days=16)
    assert _show(db, iid, late)["overdue"] == ["acknowledge", "mitigate", "report"]
    _act(db, record_report, "cora", iid, reference="MSA case 2026-118",
         at="2026-12-01T10:00:00+01:00", now=late)
    shown = _show(db, iid, late)
    assert "report" not in shown["overdue"] and shown["report_reference"] == "MSA case 2026-118"
    with pytest.raises(ConflictError, match="already reported"):
        _act(db, record_report, "cora", iid, reference="again", now=late)
    with pytest.raises(PermissionDenied):
        _act(db, record_report, "victor", iid, reference="x", now=late)


def test_a_severity_change_moves_the_clocks_and_is_audited(db: Store, model: str) -> None:
    iid = _open(db, severity="SEV3")
    _act(db, update_incident, "victor", iid, severity="SEV1", now=NOW)
    shown = _show(db, iid)
    assert shown["severity"] == "SEV1" and shown["postmortem_required"]
    assert shown["deadlines"][0]["due"] == iso(AWARE_UTC + timedelta(hours=1))


def test_the_incidents_section_of_a_policy_is_checked_with_its_line(tmp_path) -> None:
    from assay.policy import load_policy

    base = (tmp_path / "p.yaml")
    head = ("name: p\nversion: '1'\ntiers:\n  high:\n    checks: []\nincidents:\n")
    for body, message in (
            ("  deadlines:\n    SEV1: {acknowledge_within: soon}\n",
             r"p\.yaml:8: incidents\.deadlines\.SEV1\.acknowledge_within: expected a duration"),
            ("  postmortem_required_from: SEV7\n",
             r"p\.yaml:7: incidents\.postmortem_required_from: unknown severity 'SEV7'"),
            ("  escalation: [validator, boss]\n",
             r"p\.yaml:7: incidents\.escalation\[1\]: unknown role 'boss'"),
            ("  tiers:\n    hihg: {escalation: [admin]}\n",
             r"p\.yaml:8: incidents\.tiers\.hihg: unknown tier 'hihg'.*did you mean 'high'"),
            ("  playbooks:\n    drfit: []\n",
             r"p\.yaml:8: incidents\.playbooks\.drfit: unknown incident kind"),
            ("  severities: [P1, P2]\n",
             r"p\.yaml:6: incidents\.deadlines: severity 'P1' needs acknowledge_within")):
        base.write_text(head + body)
        with pytest.raises(PolicyError, match=message):
            load_policy(str(base))


def test_the_service_escalates_as_a_periodic_job(db: Store, model: str, monkeypatch,
                                                 tmp_path) -> None:
    from assay.api.scheduler import run_job, service_jobs
    from assay.config import load_settings

    monkeypatch.delenv("ASSAY_ESCALATION_INTERVAL", raising=False)
    assert load_settings(tmp_path).escalation_interval == 300
    monkeypatch.setenv("ASSAY_ESCALATION_INTERVAL", "60")
    jobs = {j.name: j for j in service_jobs(load_settings(tmp_path))}
    assert jobs["incident.escalate"].interval == 60
    monkeypatch.setenv("ASSAY_ESCALATION_INTERVAL", "soon")
    with pytest.raises(InputError, match="ASSAY_ESCALATION_INTERVAL: expected a number"):
        load_settings(tmp_path)
    monkeypatch.setenv("ASSAY_ESCALATION_INTERVAL", "0")
    assert "incident.escalate" not in {j.name for j in service_jobs(load_settings(tmp_path))}

    iid = _open(db, aware_at="2026-01-05T09:30:00+01:00", now=None)  # long overdue by now
    record = run_job(db, jobs["incident.escalate"])
    assert record.outcome == "ran", record.error
    assert [(e["incident"], e["step"]) for e in record.result] == [
        (iid, "acknowledge"), (iid, "mitigate"), (iid, "report")]
    assert run_job(db, jobs["incident.escalate"]).result == []


def test_two_escalation_runs_at_once_notify_once(db: Store, model: str) -> None:
    """Cron and the service's job running together: one of them escalates, the other finds
    nothing left to do (PostgreSQL: row locks; SQLite: the write lock taken first)."""
    import threading

    iid = _open(db)
    at = AWARE_UTC + timedelta(days=3)
    results: list = []
    errors: list = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        try:
            results.append(escalate_overdue(db, at))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    assert sorted(len(r) for r in results) == [0, 3]
    with db.transaction() as s:
        rows = s.scalars(select(IncidentEscalation).where(
            IncidentEscalation.incident_id == iid)).all()
        assert sorted(r.step for r in rows) == ["acknowledge", "mitigate", "report"]
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "incident.escalate")) == 3
