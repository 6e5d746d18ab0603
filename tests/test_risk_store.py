"""Risk assessments, the register, mitigations and the backlog over the real store.

Runs on SQLite and PostgreSQL through the shared ``db`` fixture.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from assay.errors import ConflictError, InputError, NotFoundError, PermissionDenied
from assay.registry.tables import Certification, Model, ModelVersion, User, UserRole
from assay.risk import service as risk
from assay.risk.config import CATEGORIES
from assay.risk.tables import Mitigation, Risk, RiskAssessment
from assay.store.audit import AuditEvent, verify_chain

POLICY = """\
name: test-policy
version: "7"
tiers:
  high:
    checks: []
  medium:
    checks: []
  low:
    checks: []
"""

USERS = {
    "alice": ["data_scientist"],
    "rita": ["risk_officer"],
    "val": ["validator"],
    "bob": ["business_owner"],
    "aud": ["auditor"],
    "adm": ["admin"],
}


@pytest.fixture
def policy(tmp_path: Path) -> str:
    p = tmp_path / "policy.yaml"
    p.write_text(POLICY)
    return str(p)


@pytest.fixture
def store(db):
    now = datetime.now(UTC)
    with db.transaction() as s:
        users = {}
        for name, roles in USERS.items():
            u = User(username=name, display_name=name.title(), created_at=now)
            s.add(u)
            s.flush()
            for role in roles:
                s.add(UserRole(user_id=u.id, role=role, granted_at=now, granted_by="setup"))
            users[name] = u
        m = Model(name="credit-scorer", purpose="Score credit applications",
                  owner_id=users["bob"].id, decision_type="human_in_the_loop",
                  deployment_status="development", criticality="high", created_at=now,
                  created_by=users["alice"].id, stakeholders=[])
        s.add(m)
        s.flush()
        for v in ("1.0", "1.1"):
            s.add(ModelVersion(model_id=m.id, version=v, created_by=users["alice"].id,
                               created_at=now))
    return db


def user(s, name):
    from assay.registry import get_user

    return get_user(s, name)


def cats(default=(2, 2), **over):
    return {c: {"likelihood": over.get(c, default)[0], "impact": over.get(c, default)[1],
                "rationale": f"rationale for {c}"} for c in CATEGORIES}


def low_answers():
    from assay.risk.questionnaire import load_questionnaire

    q = load_questionnaire()
    return {x.id: ([] if x.multiple else x.options[0].value) for x in q.questions}


def count(s, table) -> int:
    return s.scalar(select(func.count()).select_from(table))


# ---------------------------------------------------------------- assessment

def test_assess_sets_tier_next_review_and_audits(store, policy):
    when = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    with store.transaction() as s:
        a = risk.assess(s, user(s, "rita"), "credit-scorer", "1.0",
                        categories=cats(privacy=(5, 3)), answers=low_answers(), policy=policy,
                        input_bytes=b"categories: {}", settings=store.settings, now=when)
        aid = a.id
    with store.transaction() as s:
        a = s.get(RiskAssessment, aid)
        model = s.scalars(select(Model).where(Model.name == "credit-scorer")).one()
        assert (a.tier, a.score, a.score_tier, a.impact_level) == ("high", 15, "high", "I")
        assert model.tier == "high"
        review = model.next_review_at.replace(tzinfo=model.next_review_at.tzinfo or UTC)
        assert review == when + timedelta(days=180)
        assert a.policy_name == "test-policy" and a.policy_version == "7"
        assert {c["category"] for c in a.categories} == set(CATEGORIES)
        # the record digest can be recomputed from what was stored
        rec = risk.assessment_record(a, "credit-scorer", "1.0")
        assert risk._digest(rec) == a.record_digest
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "risk.assess")).one()
        assert ev.actor == "rita" and ev.payload["tier"] == "high"
        assert (ev.subject_type, ev.subject_id) == ("model_version", "credit-scorer@1.0")
        from assay.store.audit import list_events

        assert [e.action for e in list_events(s, model="credit-scorer")] == ["risk.assess"]
        assert ev.evidence["assessment"] == a.record_digest
        assert ev.evidence["policy"] == a.policy_digest
        assert ev.evidence["assessment_input"] == a.input_digest
        assert verify_chain(s).ok
        latest = risk.latest_assessment(s, "credit-scorer")
        assert latest is not None and latest.id == aid


def test_impact_level_raises_the_tier(store, policy):
    from assay.risk.questionnaire import load_questionnaire

    q = load_questionnaire()
    worst = {x.id: ([o.value for o in x.options] if x.multiple else x.options[-1].value)
             for x in q.questions}
    for x in q.section("mitigation"):
        worst[x.id] = x.options[0].value
    with store.transaction() as s:
        a = risk.assess(s, user(s, "adm"), "credit-scorer", "1.1", categories=cats(),
                        answers=worst, policy=policy)
        assert (a.score_tier, a.impact_level, a.tier) == ("low", "IV", "high")


def test_questionnaire_is_required_and_nothing_is_written(store, policy):
    with pytest.raises(InputError, match="questionnaire answers are required"), \
            store.transaction() as s:
        risk.assess(s, user(s, "rita"), "credit-scorer", "1.0", categories=cats(),
                    policy=policy)
    with store.transaction() as s:
        assert count(s, RiskAssessment) == 0 and count(s, AuditEvent) == 0


@pytest.mark.parametrize("who, model, version, exc", [
    ("alice", "credit-scorer", "1.0", PermissionDenied),  # the developer may not tier
    ("aud", "credit-scorer", "1.0", PermissionDenied),
    ("val", "credit-scorer", "1.0", PermissionDenied),  # tiering is the risk function's
    ("rita", "no-such-model", "1.0", NotFoundError),
    ("rita", "credit-scorer", "9.9", NotFoundError),
])
def test_assess_refusals(store, policy, who, model, version, exc):
    with store.transaction() as s, pytest.raises(exc):
        risk.assess(s, user(s, who), model, version, categories=cats(),
                    answers=low_answers(), policy=policy)


def test_crash_inside_assess_leaves_nothing(store, policy, monkeypatch):
    import assay.store.audit as audit

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(audit, "append_event", boom)
    with pytest.raises(RuntimeError), store.transaction() as s:
        risk.assess(s, user(s, "rita"), "credit-scorer", "1.0", categories=cats(security=(5, 5)),
                    answers=low_answers(), policy=policy)
    with store.transaction() as s:
        assert count(s, RiskAssessment) == 0
        model = s.scalars(select(Model)).one()
        assert model.tier is None and model.next_review_at is None


# ---------------------------------------------------------------- register

def test_register_lifecycle(store):
    with store.transaction() as s:
        r = risk.add_risk(s, user(s, "alice"), "credit-scorer", title="Thin-file bias",
                          category="fairness_bias", likelihood=4, impact=4, owner="bob",
                          version="1.0")
        rid = r.id
        assert (r.severity, r.status, r.score) == ("high", "open", 16)
    with store.transaction() as s:
        m = risk.add_mitigation(s, user(s, "bob"), rid, title="Reject inference",
                                success_criteria="ratio >= 0.9", estimated_cost=30_000,
                                estimated_days=45, due_date=date(2027, 3, 31))
        mid = m.id
        assert risk.get_risk(s, rid).status == "mitigating"
    with store.transaction() as s, pytest.raises(InputError, match="needs a resolution"):
        risk.update_risk(s, user(s, "bob"), rid, status="closed")
    with store.transaction() as s, pytest.raises(ConflictError, match="unfinished mitigation"):
        risk.update_risk(s, user(s, "bob"), rid, status="closed", resolution="fixed")
    with store.transaction() as s:
        risk.update_mitigation(s, user(s, "bob"), mid, status="done")
        r = risk.update_risk(s, user(s, "bob"), rid, status="closed", resolution="fixed")
        assert r.status == "closed"
    with store.transaction() as s:
        d = risk.risk_dict(s, risk.get_risk(s, rid))
        assert d["owner"] == "bob" and d["version"] == "1.0" and d["mitigations"][0]["status"] \
            == "done"
        actions = [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
        assert actions == ["risk.register", "risk.mitigate", "risk.mitigation_update",
                           "risk.update"]
        assert verify_chain(s).ok


def test_register_refusals(store):
    with store.transaction() as s:
        rid = risk.add_risk(s, user(s, "val"), "credit-scorer", title="Drift",
                            category="data_quality", likelihood=3, impact=3).id
    cases = [
        (lambda s: risk.add_risk(s, user(s, "aud"), "credit-scorer", title="x",
                                 category="privacy", likelihood=1, impact=1), PermissionDenied),
        (lambda s: risk.add_risk(s, user(s, "val"), "credit-scorer", title="x",
                                 category="vibes", likelihood=1, impact=1), InputError),
        (lambda s: risk.add_risk(s, user(s, "val"), "credit-scorer", title="x",
                                 category="privacy", likelihood=6, impact=1), InputError),
        (lambda s: risk.add_risk(s, user(s, "val"), "credit-scorer", title="x",
                                 category="privacy", likelihood=1, impact=1, owner="nobody"),
         NotFoundError),
        (lambda s: risk.add_risk(s, user(s, "val"), "credit-scorer", title="x",
                                 category="privacy", likelihood=1, impact=1, owner="aud"),
         InputError),
        (lambda s: risk.add_risk(s, user(s, "val"), "credit-scorer", title=" ",
                                 category="privacy", likelihood=1, impact=1), InputError),
        # only the owner, a risk officer or an admin may change it
        (lambda s: risk.update_risk(s, user(s, "alice"), rid, likelihood=1), PermissionDenied),
        # the owner (a validator) may not accept it
        (lambda s: risk.update_risk(s, user(s, "val"), rid, status="accepted",
                                    resolution="tolerable"), PermissionDenied),
        (lambda s: risk.update_risk(s, user(s, "rita"), rid, status="gone"), InputError),
        (lambda s: risk.update_risk(s, user(s, "rita"), rid), InputError),
        (lambda s: risk.update_risk(s, user(s, "rita"), 999, likelihood=2), NotFoundError),
        (lambda s: risk.add_mitigation(s, user(s, "val"), rid, title="x",
                                       success_criteria=""), InputError),
        (lambda s: risk.add_mitigation(s, user(s, "val"), rid, title="x",
                                       success_criteria="y", estimated_cost=-1), InputError),
    ]
    for fn, exc in cases:
        with store.transaction() as s, pytest.raises(exc):
            fn(s)
    with store.transaction() as s:
        assert count(s, Risk) == 1 and count(s, Mitigation) == 0
        assert count(s, AuditEvent) == 1


def test_accepting_and_reopening(store):
    with store.transaction() as s:
        rid = risk.add_risk(s, user(s, "val"), "credit-scorer", title="Latency",
                            category="operational_reliability", likelihood=2, impact=2).id
    with store.transaction() as s:
        r = risk.update_risk(s, user(s, "rita"), rid, status="accepted",
                             resolution="Within appetite: batch scoring only")
        assert r.status == "accepted" and r.severity == "low"
    with store.transaction() as s, pytest.raises(ConflictError, match="re-open it"):
        risk.add_mitigation(s, user(s, "rita"), rid, title="x", success_criteria="y")
    with store.transaction() as s:
        assert risk.update_risk(s, user(s, "rita"), rid, status="open").status == "open"


def test_stale_update_is_refused(store):
    with store.transaction() as s:
        rid = risk.add_risk(s, user(s, "rita"), "credit-scorer", title="Model theft",
                            category="security", likelihood=2, impact=4).id
        seen = risk.get_risk(s, rid).row_version
    with store.transaction() as s:
        risk.update_risk(s, user(s, "rita"), rid, likelihood=3, expected_version=seen)
    with store.transaction() as s, pytest.raises(ConflictError, match="someone changed it"):
        risk.update_risk(s, user(s, "rita"), rid, likelihood=4, expected_version=seen)


def test_two_sessions_racing_cannot_both_win(store):
    with store.transaction() as s:
        rid = risk.add_risk(s, user(s, "rita"), "credit-scorer", title="Poisoning",
                            category="security", likelihood=2, impact=4).id
    first = store.sessions()
    second = store.sessions()
    try:
        seen_first = risk.get_risk(first, rid)
        seen_second = risk.get_risk(second, rid)  # both have read row version 1
        assert seen_first.row_version == seen_second.row_version == 1
        risk.update_risk(first, user(first, "rita"), rid, impact=5)
        first.commit()
        with pytest.raises(ConflictError, match="changed by someone else"):
            risk.update_risk(second, user(second, "adm"), rid, impact=1)
        second.rollback()
    finally:
        first.close()
        second.close()
    with store.transaction() as s:
        r = risk.get_risk(s, rid)
        assert (r.impact, r.row_version) == (5, 2)


def test_crash_mid_transaction_rolls_back_register(store):
    with pytest.raises(RuntimeError), store.transaction() as s:
        r = risk.add_risk(s, user(s, "rita"), "credit-scorer", title="x", category="privacy",
                          likelihood=3, impact=3)
        risk.add_mitigation(s, user(s, "rita"), r.id, title="y", success_criteria="z")
        raise RuntimeError("process killed")
    with store.transaction() as s:
        assert count(s, Risk) == 0 and count(s, Mitigation) == 0 and count(s, AuditEvent) == 0


# ---------------------------------------------------------------- backlog

def test_backlog_from_the_register_matches_the_hand_computation(store, policy):
    spec = [  # title, L, I, [(cost, days)]
        ("R1", 4, 5, [(30_000, 45), (10_000, 30)]),
        ("R2", 3, 4, [(5_000, 9)]),
        ("R3", 5, 5, [(200_000, 180)]),
        ("R4", 2, 3, []),
        ("closed one", 5, 5, []),
    ]
    ids = {}
    with store.transaction() as s:
        rita = user(s, "rita")
        for title, lik, imp, mits in spec:
            r = risk.add_risk(s, rita, "credit-scorer", title=title, category="privacy",
                              likelihood=lik, impact=imp)
            ids[title] = r.id
            for cost, days in mits:
                risk.add_mitigation(s, rita, r.id, title=f"fix {title}", success_criteria="ok",
                                    estimated_cost=cost, estimated_days=days)
        # a finished mitigation no longer discounts its risk
        m = risk.add_mitigation(s, rita, ids["R4"], title="done already", success_criteria="ok",
                                estimated_cost=1e6, estimated_days=1000)
        risk.update_mitigation(s, rita, m.id, status="done")
        risk.update_risk(s, rita, ids["closed one"], status="closed", resolution="n/a")
        due = risk.add_mitigation(s, rita, ids["R2"], title="late", success_criteria="ok",
                                  due_date=date(2027, 1, 10))
        risk.add_mitigation(s, rita, ids["R2"], title="on time", success_criteria="ok",
                            due_date=date(2027, 3, 1))
        assert due.estimated_cost == 0
    with store.transaction() as s:
        items = risk.backlog(s, policy=policy, today=date(2027, 2, 1))
    assert [i.title for i in items] == ["R2", "R1", "R3", "R4"]
    r2 = items[0].to_dict()
    assert (r2["next_due"], r2["overdue"], r2["mitigations"]) == ("2027-01-10", 1, 3)
    with store.transaction() as s:
        grid = risk.heatmap(s, model_name="credit-scorer")
    assert grid[3][4] == [ids["R1"]] and grid[4][4] == [ids["R3"]]  # the closed one is not
    assert sum(len(c) for row in grid for c in row) == 4
    assert [i.priority for i in items] == pytest.approx([10.0, 8.695652, 8.333333, 6.0])
    assert items[0].to_dict()["model"] == "credit-scorer"


# ---------------------------------------------------------------- findings from certifications

def _certify(s, results: dict, status="blocked", tier="high"):
    mv = s.scalars(select(ModelVersion).where(ModelVersion.version == "1.0")).one()
    c = Certification(model_version_id=mv.id, policy_name="test-policy", policy_version="7",
                      policy_digest="sha256:" + "0" * 64, tier=tier, status=status,
                      results_digest="sha256:" + "1" * 64, created_by=user(s, "val").id,
                      created_at=datetime.now(UTC))
    s.add(c)
    s.flush()
    return c


RESULTS = {
    "policy": {"tier": "high"},
    "checks": [
        {"id": "fairness.demographic_parity_ratio", "family": "fairness",
         "title": "Demographic parity ratio", "status": "fail", "severity": "block",
         "message": "sex=Female: 0.71, required >= 0.8"},
        {"id": "performance.auc", "family": "performance", "title": "AUC", "status": "pass",
         "severity": "block"},
        {"id": "drift.psi", "family": "drift", "title": "PSI", "status": "warn",
         "severity": "warn"},
        {"id": "integrity.nulls", "family": "integrity", "title": "Nulls", "status": "fail",
         "severity": "block", "message": ""},
        {"id": "robustness.noise", "family": "robustness", "title": "Noise", "status": "error",
         "severity": "block", "message": "model raised ValueError"},
        {"id": "fairness.eo", "family": "fairness", "title": "EO", "status": "fail",
         "severity": "warn"},
    ],
}


def test_findings_from_a_certification(store):
    with store.transaction() as s:
        _certify(s, RESULTS)
        opened = risk.register_from_certification(s, user(s, "val"), "credit-scorer", "1.0",
                                                  results=json.loads(json.dumps(RESULTS)))
        got = sorted((r.source, r.category, r.kind, r.likelihood, r.impact) for r in opened)
        assert got == [("check:fairness.demographic_parity_ratio", "fairness_bias", "finding",
                        5, 5), ("check:integrity.nulls", "data_quality", "finding", 5, 5),
                       ("check:robustness.noise", "model_performance", "finding", 5, 5)]
        errored = next(r for r in opened if r.source == "check:robustness.noise")
        assert errored.title.startswith("Errored check") and "could not run" in \
            errored.description
        owners = {risk.risk_dict(s, r)["owner"] for r in opened}
        assert owners == {"bob"}  # the model's owner
    with store.transaction() as s:  # nothing is opened twice
        assert risk.register_from_certification(s, user(s, "val"), "credit-scorer", "1.0",
                                                results=RESULTS) == []
    with store.transaction() as s, pytest.raises(PermissionDenied):
        risk.register_from_certification(s, user(s, "alice"), "credit-scorer", "1.0",
                                         results=RESULTS)


def test_findings_need_a_certification(store):
    with store.transaction() as s, pytest.raises(NotFoundError, match="no recorded certif"):
        risk.register_from_certification(s, user(s, "val"), "credit-scorer", "1.1",
                                         results=RESULTS)


def test_concurrent_updates_from_threads_exactly_one_wins(store):
    """Eight people change the same risk at once, each from the version they saw."""
    import threading

    with store.transaction() as s:
        rid = risk.add_risk(s, user(s, "rita"), "credit-scorer", title="Key leak",
                            category="security", likelihood=2, impact=4).id
    start = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def act(k: int) -> None:
        start.wait()
        try:
            with store.transaction() as s:
                risk.update_risk(s, user(s, "rita" if k % 2 else "adm"), rid,
                                 likelihood=1 + k % 5, description=f"seen by {k}",
                                 expected_version=1)
            result = "won"
        except ConflictError:
            result = "conflict"
        except Exception as exc:  # anything else is a failure of the test
            result = f"error: {type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=act, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["conflict"] * 7 + ["won"], outcomes
    with store.transaction() as s:
        assert risk.get_risk(s, rid).row_version == 2
        updates = s.scalars(select(AuditEvent).where(AuditEvent.action == "risk.update")).all()
        assert len(updates) == 1 and verify_chain(s).ok


def test_concurrent_assessments_leave_the_tier_of_the_latest(store, policy):
    """Risk officers assessing the same model at once: every assessment is kept and
    the model's tier is the tier of the one recorded last."""
    import threading

    start = threading.Barrier(6)
    errors: list[str] = []

    def act(k: int) -> None:
        start.wait()
        try:
            with store.transaction() as s:
                level = (5, 5) if k % 2 else (1, 1)  # high or low
                risk.assess(s, user(s, "rita" if k % 3 else "adm"), "credit-scorer", "1.0",
                            categories=cats(security=level), answers=low_answers(),
                            policy=policy)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=act, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with store.transaction() as s:
        assert count(s, RiskAssessment) == 6
        latest = risk.latest_assessment(s, "credit-scorer")
        model = s.scalars(select(Model)).one()
        assert model.tier == latest.tier
        last_event = s.scalars(select(AuditEvent).where(AuditEvent.action == "risk.assess")
                               .order_by(AuditEvent.seq.desc())).first()
        assert last_event.payload["assessment_id"] == latest.id
        assert verify_chain(s).ok


def test_concurrent_findings_from_one_certification_are_opened_once(store):
    import threading

    with store.transaction() as s:
        _certify(s, RESULTS)
    start = threading.Barrier(4)
    opened: list[int] = []
    errors: list[str] = []

    def act() -> None:
        start.wait()
        try:
            with store.transaction() as s:
                rows = risk.register_from_certification(s, user(s, "val"), "credit-scorer",
                                                        "1.0", results=RESULTS)
                opened.append(len(rows))
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=act) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == [] and sorted(opened) == [0, 0, 0, 3]
    with store.transaction() as s:
        assert count(s, Risk) == 3
