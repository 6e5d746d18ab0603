"""The impact record on SQLite and PostgreSQL: the theory of impact validated with
file:line errors and versioned with audit, KPIs and their guardrail alerts in the
monitoring alerts, feedback counted per window, the register and its links, the
workflow evidence kind ``impact_assessment``, and the roles that may write."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from sqlalchemy import select

from assay import impact, monitor, registry
from assay.errors import AssayError, NotFoundError, PermissionDenied, PolicyError
from assay.impact.tables import ImpactAssessment
from assay.store import Store
from assay.store.audit import AuditEvent, verify_chain
from test_workflow import WORKFLOW, Env, make_env, write_policy

THEORY = """\
summary: Faster, fairer credit-line decisions.
intended_outcomes:
  - outcome: fewer defaults on increased lines
    for_whom: [lender, applicants]
    measured_by: [default_rate]
pathway:
  - the model scores each request
  - requests above 0.7 are approved automatically
  - approved customers get the line within a day
assumptions: [repayment behaviour is stable]
out_of_scope: [new-to-bank applicants]
unintended_consequences: [lower approval rates for thin-file applicants]
"""


@pytest.fixture
def env(db: Store, tmp_path: Path) -> Env:
    return make_env(db, tmp_path)


def run(env: Env, user: str, fn, *args, **kw):
    return env.run(user, fn, "1", *args, **kw)


def test_theory_errors_name_file_line_and_field(tmp_path: Path):
    bad = THEORY.replace("    for_whom: [lender, applicants]\n", "    for_whom: []\n")
    with pytest.raises(PolicyError, match=r"^theory\.yaml:4:5: "
                                          r"intended_outcomes\[0\]\.for_whom: "):
        impact.parse_theory(bad, source="theory.yaml")
    with pytest.raises(PolicyError, match=r"^t\.yaml:1:1: pathway: required field is "
                                          r"missing \(and 1 more problem\)$") as info:
        impact.parse_theory(THEORY.replace("pathway:", "pathwy:"), source="t.yaml")
    problems = info.value.details["problems"]
    assert any(p.startswith("t.yaml:6:1: pathwy: unknown field") for p in problems)
    with pytest.raises(PolicyError, match=r"^t\.yaml:1: expected a mapping"):
        impact.parse_theory("- a list\n", source="t.yaml")
    path = tmp_path / "theory.yaml"
    path.write_text(THEORY)
    assert impact.read_theory(path)["pathway"][1].startswith("requests above")


def test_each_save_is_a_new_audited_revision(env: Env):
    first = run(env, "bea", impact.save_assessment, THEORY, source="theory.yaml")
    changed = THEORY.replace("within a day", "within two days")
    second = run(env, "dave", impact.save_assessment, changed, source="theory.yaml")
    assert (first["revision"], second["revision"]) == (1, 2)
    assert first["digest"] != second["digest"]
    cur = env.read(impact.current_assessment, "1")
    assert cur["revision"] == 2 and cur["created_by"] == "dave"
    assert "two days" in cur["theory"]["pathway"][2]
    assert [h["created_by"] for h in env.read(impact.assessment_history, "1")] == ["bea", "dave"]
    with env.store.transaction() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "impact.assess")))
        assert [e.evidence["impact_assessment"] for e in events] == [first["digest"],
                                                                     second["digest"]]
        assert verify_chain(s).ok


def test_only_editors_write_and_a_refusal_writes_nothing(env: Env):
    for user in ("val", "aud", "carl"):  # validator, auditor, compliance
        with pytest.raises(PermissionDenied):
            run(env, user, impact.save_assessment, THEORY)
        with pytest.raises(PermissionDenied):
            run(env, user, impact.add_kpi, name="x", direction="increase")
        with pytest.raises(PermissionDenied):
            run(env, user, impact.add_feedback, channel="complaint", category="denied")
    assert env.count(ImpactAssessment) == 0
    assert env.read(impact.current_assessment, "1") is None


def test_observed_guardrail_breach_raises_exactly_one_alert(env: Env):
    run(env, "bea", impact.add_kpi, name="approval_rate", direction="increase", unit="%",
        baseline=60, target=65, guardrail=55, cadence="monthly", owner="bea")
    ok = run(env, "bea", impact.observe, "approval_rate", 58, at="2026-10-03", group="F")
    assert ok["alert"] is None
    assert env.read(lambda s, m: monitor.list_alerts(s, model=m)) == []
    hit = run(env, "bea", impact.observe, "approval_rate", 52, at="2026-10-20", group="F")
    again = run(env, "bea", impact.observe, "approval_rate", 50, at="2026-10-25", group="F")
    assert hit["alert"] is not None and again["alert"] is None
    alerts = env.read(lambda s, m: monitor.list_alerts(s, model=m))
    assert len(alerts) == 1
    a = alerts[0]
    assert a["rule"] == "impact.kpi_guardrail:approval_rate" and a["label"] == "F"
    assert a["value"] == 52 and a["threshold"] == {"min": 55.0} and a["state"] == "open"
    assert a["window"]["start"].startswith("2026-10-01")
    # once resolved, a new breach alerts again
    env.run("rita", lambda s, u, m: monitor.resolve(s, u, a["id"], note="fixed"))
    run(env, "bea", impact.observe, "approval_rate", 40, at="2026-11-02", group="F")
    assert len(env.read(lambda s, m: monitor.list_alerts(s, model=m))) == 2


def test_feedback_is_counted_per_window_and_its_guardrail_alerts(env: Env):
    run(env, "bea", impact.add_kpi, name="complaints", direction="decrease",
        source="feedback", metric="denied", by="group", cadence="weekly", guardrail=2)
    entry = run(env, "rita", impact.add_register_entry, title="thin-file applicants denied",
                kind="negative", likelihood=3, severity=4, groups=["thin file"],
                stakeholders=["applicants"])
    days = ["2026-11-02", "2026-11-03", "2026-11-09", "2026-11-10", "2026-11-11"]
    for d in days:
        run(env, "bea", impact.add_feedback, channel="complaint", category="denied",
            group="thin", received_at=d, register_id=entry["id"], text="no reason given")
    run(env, "bea", impact.add_feedback, channel="survey", category="praise",
        received_at="2026-11-10")
    s = env.read(impact.series, "1", "complaints")
    assert [(p["start"][:10], p["group"], p["value"]) for p in s["points"]] == [
        ("2026-11-02", "thin", 2.0), ("2026-11-09", "thin", 3.0)]
    assert [p["breach"] for p in s["points"]] == [False, True]
    found = env.run("bea", lambda s_, u, m: impact.evaluate(s_, u, m, "1"))
    assert len(found) == 1 and found[0]["alert"] is not None
    assert env.run("bea", lambda s_, u, m: impact.evaluate(s_, u, m, "1"))[0]["alert"] is None
    assert len(env.read(lambda s_, m: monitor.list_alerts(s_, model=m))) == 1
    reg = env.read(impact.list_register, "1")
    assert reg[0]["feedback"] == 5 and reg[0]["score"] == 12


def test_register_links_are_checked_and_audited(env: Env):
    run(env, "bea", impact.add_kpi, name="approval_rate", direction="increase")
    e = run(env, "bea", impact.add_register_entry, title="faster decisions", kind="positive",
            likelihood=4, severity=2)
    linked = run(env, "rita", impact.link_register_entry, e["id"], risks=["R-3"],
                 kpis=["approval_rate"], status="monitoring")
    assert linked["links"] == {"risks": ["R-3"], "kpis": ["approval_rate"], "incidents": []}
    with pytest.raises(NotFoundError, match="no KPI 'nope'"):
        run(env, "rita", impact.link_register_entry, e["id"], kpis=["nope"])
    with pytest.raises(AssayError, match="likelihood"):
        run(env, "bea", impact.add_register_entry, title="x", kind="positive",
            likelihood=9, severity=1)
    with pytest.raises(AssayError, match="kind: expected"):
        run(env, "bea", impact.add_register_entry, title="x", kind="good", likelihood=1,
            severity=1)


def test_a_stage_requiring_the_impact_assessment_blocks_until_there_is_one(env: Env,
                                                                            tmp_path: Path):
    from assay import workflow as wf
    from test_workflow import register

    flow = copy.deepcopy(WORKFLOW)
    flow["stages"][0]["evidence"] = ["impact_assessment"]
    policy = write_policy(tmp_path / "wf-impact.yaml", flow, version="2")
    with env.store.transaction() as s:
        register(s, policy)
    env.run("alice", wf.submit, "1", policy=str(policy))
    with pytest.raises(AssayError, match="no impact assessment of this version"):
        env.run("bea", wf.approve, "1", stage="scope")
    saved = run(env, "bea", impact.save_assessment, THEORY)
    env.run("ben", wf.approve, "1", stage="scope")
    with env.store.transaction() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action.like("workflow.%approve%"))
                       .order_by(AuditEvent.seq.desc())).first()
        assert ev is not None and ev.evidence.get("impact_assessment") == saved["digest"]


def test_impact_tables_match_the_migration(db: Store) -> None:
    from _schema import schema_diffs

    assert schema_diffs(db.engine, {"impact_assessments", "impact_kpis", "impact_observations",
                                    "impact_register", "impact_feedback"}) == []


def test_unknown_version_is_a_clear_error(env: Env):
    with pytest.raises(NotFoundError, match="model 'scorer' has no version '9'"):
        env.read(impact.current_assessment, "9")
    with pytest.raises(NotFoundError, match="unknown model 'nope'"), \
            env.store.transaction() as s:
        impact.save_assessment(s, registry.get_user(s, "bea"), "nope", "1", THEORY)
