"""``assay risk`` commands, run in-process against the shared ``db`` store."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from assay.registry.tables import Model, ModelVersion, User, UserRole
from assay.risk.config import CATEGORIES
from assay.risk.questionnaire import load_questionnaire
from assay.risk.tables import Risk, RiskAssessment
from assay.store.audit import AuditEvent

POLICY = """\
name: cli-policy
version: "1"
tiers:
  high:
    checks: []
  medium:
    checks: []
  low:
    checks: []
risk:
  tiers:
    medium: {review_interval_days: 100}
"""


def run(argv: list[str]) -> int:
    from assay.cli import main

    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def env(db, tmp_path: Path, monkeypatch):
    now = datetime.now(UTC)
    with db.transaction() as s:
        ids = {}
        for name, role in (("rita", "risk_officer"), ("alice", "data_scientist"),
                           ("bob", "business_owner"), ("aud", "auditor")):
            u = User(username=name, display_name=name, created_at=now)
            s.add(u)
            s.flush()
            s.add(UserRole(user_id=u.id, role=role, granted_at=now, granted_by="setup"))
            ids[name] = u.id
        m = Model(name="scorer", owner_id=ids["bob"], decision_type="automated",
                  deployment_status="development", criticality="high", created_at=now,
                  created_by=ids["alice"], stakeholders=[])
        s.add(m)
        s.flush()
        s.add(ModelVersion(model_id=m.id, version="2.0", created_by=ids["alice"], created_at=now))
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    q = load_questionnaire()
    answers = {x.id: ([] if x.multiple else x.options[0].value) for x in q.questions}
    doc = {
        "model": "scorer",
        "version": "2.0",
        "notes": "first assessment",
        "categories": {c: {"likelihood": 2, "impact": 2, "rationale": f"about {c}"}
                       for c in CATEGORIES},
    }
    doc["categories"]["model_performance"] = {
        "likelihood": 3, "impact": 4, "rationale": "new segment",
        "controls": [{"name": "challenger model", "strength": "weak"}]}
    assessment = tmp_path / "assessment.yaml"
    assessment.write_text(yaml.safe_dump(doc))
    answers_file = tmp_path / "answers.json"
    answers_file.write_text(json.dumps(answers))
    monkeypatch.delenv("ASSAY_USER", raising=False)
    return {"store": db, "policy": str(policy), "assessment": assessment,
            "answers": answers_file, "tmp": tmp_path}


def count(store, table) -> int:
    with store.transaction() as s:
        return s.scalar(select(func.count()).select_from(table))


def test_assess_from_files(env, capsys):
    code = run(["risk", "assess", "scorer", "2.0", "--from-file", str(env["assessment"]),
                "--questionnaire-answers", str(env["answers"]), "--policy", env["policy"],
                "--as", "rita", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    d = json.loads(out)
    # model_performance 12 x (1 - 0.2) = 9.6 -> medium; level I
    assert (d["tier"], d["score"], d["impact_level"]) == ("medium", 9.6, "I")
    assert d["created_by"] == "rita" and d["input_digest"].startswith("sha256:")
    with env["store"].transaction() as s:
        model = s.scalars(select(Model)).one()
        assert model.tier == "medium"
        created = model.next_review_at
        assert created is not None
    # the assessment file itself is kept as evidence
    from assay.evidence import open_artifact

    assert open_artifact(env["store"].settings, d["input_digest"]) == \
        env["assessment"].read_bytes()
    # so are the policy and the questionnaire the audit event names
    assert open_artifact(env["store"].settings, d["policy"]["digest"]) == \
        Path(env["policy"]).read_bytes()
    q = load_questionnaire()
    assert open_artifact(env["store"].settings, d["questionnaire"]["digest"]) == \
        Path(q.source).read_bytes()
    assert run(["risk", "show", "scorer"]) == 0
    text = capsys.readouterr().out
    assert "tier: medium" in text and "model_performance" in text


def test_assess_as_env_user(env, monkeypatch):
    monkeypatch.setenv("ASSAY_USER", "rita")
    assert run(["risk", "assess", "scorer", "2.0", "-f", str(env["assessment"]),
                "--questionnaire-answers", str(env["answers"]), "--policy", env["policy"]]) == 0
    assert count(env["store"], RiskAssessment) == 1


@pytest.mark.parametrize("args, message", [
    (["--as", "nobody"], "nobody"),
    (["--as", "alice"], "may not assess"),
    ([], "no acting user"),
])
def test_assess_refused_exit_2_nothing_written(env, capsys, args, message):
    code = run(["risk", "assess", "scorer", "2.0", "--from-file", str(env["assessment"]),
                "--questionnaire-answers", str(env["answers"]), "--policy", env["policy"],
                *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert count(env["store"], RiskAssessment) == 0
    assert count(env["store"], AuditEvent) == 0


def test_bad_assessment_file_names_file_and_field(env, capsys):
    doc = yaml.safe_load(env["assessment"].read_text())
    doc["categories"]["privacy"]["likelihood"] = 7
    bad = env["tmp"] / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    code = run(["risk", "assess", "scorer", "2.0", "--from-file", str(bad),
                "--questionnaire-answers", str(env["answers"]), "--policy", env["policy"],
                "--as", "rita"])
    err = capsys.readouterr().err
    assert code == 2
    assert "bad.yaml: categories.privacy.likelihood: expected a whole number from 1 to 5" in err
    doc["categories"]["privacy"]["likelihood"] = 2
    doc["model"] = "other"
    bad.write_text(yaml.safe_dump(doc))
    assert run(["risk", "assess", "scorer", "2.0", "--from-file", str(bad), "--policy",
                env["policy"], "--as", "rita"]) == 2
    assert "about model 'other'" in capsys.readouterr().err
    assert count(env["store"], RiskAssessment) == 0


def test_register_mitigate_backlog(env, capsys):
    assert run(["risk", "register", "add", "scorer", "--title", "Segment shift",
                "--category", "model_performance", "--likelihood", "4", "--impact", "5",
                "--owner", "bob", "--as", "rita"]) == 0
    assert run(["risk", "register", "add", "scorer", "--title", "Small one",
                "--category", "privacy", "--likelihood", "2", "--impact", "5",
                "--as", "rita"]) == 0
    capsys.readouterr()
    with env["store"].transaction() as s:
        first = s.scalars(select(Risk).where(Risk.title == "Segment shift")).one().id
    assert run(["risk", "mitigate", str(first), "--title", "Retrain on 2026 data",
                "--success-criteria", "AUC >= 0.75 on the new segment", "--cost", "40000",
                "--days", "45", "--due", "2099-02-01", "--as", "bob"]) == 0
    capsys.readouterr()
    assert run(["risk", "backlog", "--format", "csv", "--policy", env["policy"]]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    # Segment shift: 20 / (1 + 0.8 + 0.5) = 8.6957 ; Small one: 10 / 1 = 10
    assert [r["title"] for r in rows] == ["Small one", "Segment shift"]
    assert float(rows[1]["priority"]) == pytest.approx(8.695652)
    assert rows[1]["next_due"] == "2099-02-01" and rows[1]["status"] == "mitigating"
    assert rows[1]["overdue"] == "0"
    assert run(["risk", "backlog", "--format", "json", "--policy", env["policy"]]) == 0
    assert json.loads(capsys.readouterr().out)[0]["rank"] == 1
    assert run(["risk", "register", "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {r["title"] for r in listed} == {"Segment shift", "Small one"}
    assert run(["risk", "register", "show", str(first)]) == 0
    assert "Retrain on 2026 data" in capsys.readouterr().out
    assert run(["risk", "heatmap", "--format", "json"]) == 0
    cells = json.loads(capsys.readouterr().out)
    assert {(c["likelihood"], c["impact"], len(c["risks"])) for c in cells} == {(4, 5, 1),
                                                                                (2, 5, 1)}
    assert run(["risk", "heatmap"]) == 0
    assert "likelihood (rows)" in capsys.readouterr().out


def test_register_update_and_refusals(env, capsys):
    assert run(["risk", "register", "add", "scorer", "--title", "Outage", "--category",
                "operational_reliability", "--likelihood", "2", "--impact", "3",
                "--as", "rita"]) == 0
    capsys.readouterr()
    with env["store"].transaction() as s:
        rid = s.scalars(select(Risk)).one().id
    # the auditor is read-only
    assert run(["risk", "register", "add", "scorer", "--title", "x", "--category", "privacy",
                "--likelihood", "1", "--impact", "1", "--as", "aud"]) == 2
    # missing fields
    assert run(["risk", "register", "add", "scorer", "--title", "x", "--as", "rita"]) == 2
    assert "missing --category, --likelihood, --impact" in capsys.readouterr().err
    # accepting needs a resolution, then works
    assert run(["risk", "register", "update", str(rid), "--status", "accepted",
                "--as", "rita"]) == 2
    assert "needs a resolution" in capsys.readouterr().err
    assert run(["risk", "register", "update", str(rid), "--status", "accepted",
                "--resolution", "Within appetite", "--expect-version", "1",
                "--as", "rita"]) == 0
    # a stale expected version is refused
    assert run(["risk", "register", "update", str(rid), "--status", "open",
                "--expect-version", "1", "--as", "rita"]) == 2
    assert "someone changed it" in capsys.readouterr().err
    assert run(["risk", "mitigate", "999", "--title", "x", "--success-criteria", "y",
                "--as", "rita"]) == 2
    assert run(["risk", "mitigate", str(rid), "--title", "x", "--success-criteria", "y",
                "--due", "next week", "--as", "rita"]) == 2
    assert "--due: expected a date YYYY-MM-DD" in capsys.readouterr().err
    assert run(["risk", "backlog", "--format", "xml"]) == 2


def test_from_certification_via_cli(env, capsys):
    from assay.evidence import store_bytes
    from assay.registry.tables import Certification

    results = {"policy": {"tier": "medium"}, "checks": [
        {"id": "performance.auc", "family": "performance", "title": "AUC", "status": "fail",
         "severity": "block", "message": "overall: 0.61, required >= 0.7"}]}
    digest = store_bytes(env["store"].settings, json.dumps(results).encode())
    with env["store"].transaction() as s:
        mv = s.scalars(select(ModelVersion)).one()
        rita = s.scalars(select(User).where(User.username == "rita")).one()
        s.add(Certification(model_version_id=mv.id, policy_name="cli-policy",
                            policy_version="1", policy_digest="sha256:" + "2" * 64,
                            tier="medium", status="blocked", results_digest=digest,
                            created_by=rita.id, created_at=datetime.now(UTC)))
    assert run(["risk", "register", "add", "scorer", "--from-certification", "2.0",
                "--format", "json", "--as", "rita"]) == 0
    opened = json.loads(capsys.readouterr().out)
    assert len(opened) == 1
    f = opened[0]
    assert (f["kind"], f["category"], f["likelihood"], f["impact"], f["owner"]) == \
        ("finding", "model_performance", 5, 4, "bob")
    assert run(["risk", "register", "add", "scorer", "--from-certification", "2.0",
                "--as", "rita"]) == 0
    assert "no new findings" in capsys.readouterr().out


def test_questionnaire_template_round_trips(env, capsys, tmp_path):
    assert run(["risk", "questionnaire", "--template"]) == 0
    template = capsys.readouterr().out
    answers = yaml.safe_load(template)
    from assay.risk.questionnaire import score_answers

    assert score_answers(load_questionnaire(), answers).level in ("I", "II", "III", "IV")
    assert run(["risk", "questionnaire"]) == 0
    assert "decision_automation" in capsys.readouterr().out


def test_interactive_questionnaire(env):
    from typer.testing import CliRunner

    from assay.cli import app

    q = load_questionnaire()
    # a wrong answer first (it is asked again), then the first option everywhere;
    # "none" for questions that allow several options
    replies = ["9"] + ["none" if x.multiple else "1" for x in q.questions]
    result = CliRunner().invoke(app, [
        "risk", "assess", "scorer", "2.0", "--from-file", str(env["assessment"]),
        "--interactive", "--policy", env["policy"], "--as", "rita", "--format", "json",
    ], input="\n".join(replies) + "\n")
    assert result.exit_code == 0, result.output
    assert "please choose from the numbers shown" in result.output
    with env["store"].transaction() as s:
        a = s.scalars(select(RiskAssessment)).one()
        assert a.impact_level == "I" and a.questionnaire["raw_impact"] == 0
        assert a.questionnaire["answers"]["vulnerable_groups"] == []


def test_tier_requirements_command(capsys):
    assert run(["risk", "requirements", "high", "--policy", "credit-lending",
                "--format", "json"]) == 0
    req = json.loads(capsys.readouterr().out)
    assert req["review_interval_days"] == 180
    assert len(req["signoff_roles"]["deployment_approval"]) >= 2
    assert len(req["checks"]) == len(set(req["checks"])) > 0
    assert run(["risk", "requirements", "extreme"]) == 2
    assert "unknown tier 'extreme'" in capsys.readouterr().err


def test_missing_questionnaire_says_how_to_answer(env, capsys):
    assert run(["risk", "assess", "scorer", "2.0", "--from-file", str(env["assessment"]),
                "--policy", env["policy"], "--as", "rita"]) == 2
    err = capsys.readouterr().err
    assert "requires the impact questionnaire" in err and "--template" in err
    assert count(env["store"], RiskAssessment) == 0


def test_dry_run_writes_nothing_and_needs_no_user(env, capsys):
    assert run(["risk", "assess", "scorer", "2.0", "--from-file", str(env["assessment"]),
                "--questionnaire-answers", str(env["answers"]), "--policy", env["policy"],
                "--dry-run", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["dry_run"] and (d["tier"], d["score"]) == ("medium", 9.6)
    assert count(env["store"], RiskAssessment) == 0
    assert count(env["store"], AuditEvent) == 0
    assert run(["risk", "assess", "scorer", "2.0", "--from-file", str(env["assessment"]),
                "--questionnaire-answers", str(env["answers"]), "--policy", env["policy"],
                "--dry-run"]) == 0
    assert "nothing was written" in capsys.readouterr().out


def test_template_is_refused_until_filled_and_history_lists(env, capsys, tmp_path):
    assert run(["risk", "template"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert set(doc["categories"]) == set(CATEGORIES)
    blank = tmp_path / "blank.yaml"
    blank.write_text(yaml.safe_dump(doc))
    assert run(["risk", "assess", "scorer", "2.0", "--from-file", str(blank),
                "--questionnaire-answers", str(env["answers"]), "--policy", env["policy"],
                "--as", "rita"]) == 2
    assert "rationale is required" in capsys.readouterr().err
    for c in CATEGORIES:
        doc["categories"][c]["rationale"] = "reviewed"
    blank.write_text(yaml.safe_dump(doc))
    for _ in range(2):
        assert run(["risk", "assess", "scorer", "2.0", "--from-file", str(blank),
                    "--questionnaire-answers", str(env["answers"]), "--policy",
                    env["policy"], "--as", "rita"]) == 0
    capsys.readouterr()
    assert run(["risk", "history", "scorer", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["tier"] for r in rows] == ["low", "low"] and rows[0]["id"] < rows[1]["id"]
    assert run(["risk", "history", "scorer"]) == 0
    assert "cli-policy" in capsys.readouterr().out
