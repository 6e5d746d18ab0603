"""``assay submit / review / approve / reject / comment / waive / status / recheck / gate``
run in-process against the ``db`` store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from assay import registry
from assay.cli import main
from assay.store import Store
from assay.store.audit import AuditEvent
from assay.workflow.tables import Comment, SignOff, Submission, Waiver
from test_workflow import MODEL, USERS, WORKFLOW, Env, register, write_policy


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys, *args: str) -> str:
    code, out, err = run(capsys, *args)
    assert code == 0, (args, out, err)
    return out


def fails(capsys, *args: str, match: str, code: int = 2) -> str:
    got, out, err = run(capsys, *args)
    assert got == code, (args, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err  # one line, no traceback
    assert match in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def env(db: Store, tmp_path: Path) -> Env:
    policy = write_policy(tmp_path / "wf-test.yaml", WORKFLOW)
    with db.transaction() as s:
        admin = registry.add_user(s, None, "root")
        for name, roles in USERS.items():
            registry.add_user(s, admin, name, roles=roles)
        alice = registry.get_user(s, "alice")
        registry.register_model(s, alice, MODEL, owner="bea", decision_type="automated",
                                criticality="high")
        registry.set_model_tier(s, registry.get_user(s, "rita"), MODEL, "high")
        registry.add_version(s, alice, MODEL, "1")
        register(s, policy)
    return Env(db, policy)


def counts(env: Env) -> tuple[int, ...]:
    with env.store.transaction() as s:
        return tuple(s.scalar(select(func.count()).select_from(t))
                     for t in (Submission, SignOff, Comment, Waiver, AuditEvent))


def test_cli_walkthrough(env: Env, capsys, tmp_path: Path, monkeypatch):
    env.certify("1", status="blocked", failed=("fairness.disparate_impact",))
    monkeypatch.setenv("ASSAY_USER", "alice")
    out = ok(capsys, "submit", MODEL, "1", "--policy", str(env.policy))
    assert "submission #1 (tier high, policy wf-test); first stage: scope" in out

    review = json.loads(ok(capsys, "review", MODEL, "1", "-f", "json", "--as", "val"))
    assert review["stage"]["stage"] == "scope"
    assert review["eligible"] == [{"user": "bea", "roles": ["business_owner"]},
                                  {"user": "ben", "roles": ["business_owner"]}]
    assert review["evidence"][0]["ok"] is False
    text = ok(capsys, "review", MODEL, "1")
    assert "current stage: scope" in text and "may sign: bea (business_owner)" in text

    memo = tmp_path / "scope memo.txt"
    memo.write_text("intended use: retail credit line increases")
    out = ok(capsys, "approve", MODEL, "1", "--stage", "scope", "--attach", str(memo),
             "--comment", "scope is clear", "--as", "bea")
    assert "scope: approved as business_owner" in out and "next stage: validation" in out
    assert "stage scope complete" in out

    fails(capsys, "approve", MODEL, "1", "--stage", "validation", "--as", "val",
          match="failed checks without a valid waiver: fairness.disparate_impact")
    fails(capsys, "waive", MODEL, "1", "--check", "fairness.disparate_impact", "--expires",
          "2999-01-01", "--as", "rita", match="needs a justification")
    soon = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    out = ok(capsys, "waive", MODEL, "1", "--check", "fairness.disparate_impact", "--justification",
             "remediation planned for Q1; declines reviewed by hand", "--expires", soon,
             "--as", "rita")
    assert f"waiver #1 granted for check fairness.disparate_impact of {MODEL}@1 until {soon}" in out

    ok(capsys, "approve", MODEL, "1", "--stage", "validation", "--as", "val")
    ok(capsys, "comment", MODEL, "1", "back-test attached", "--stage", "validation",
       "--attach", str(memo), "--as", "carl")
    code, out, _ = run(capsys, "gate", MODEL, "1", "--as", "aud")
    assert code == 1 and "BLOCKED" in out and "awaits sign-off" in out

    ok(capsys, "approve", MODEL, "1", "--stage", "deployment_approval", "--as", "rita",
       "--condition", "quarterly fairness re-run", "--condition", "[red]literal[/] text",
       "--expires", soon)
    out = ok(capsys, "approve", MODEL, "1", "--stage", "deployment_approval", "--as", "ben")
    assert f"approved for deployment until {soon}" in out

    code, out, _ = run(capsys, "gate", MODEL, "1")
    assert code == 0 and "ALLOWED" in out
    assert "condition: [red]literal[/] text" in out  # user text is not rich markup
    gate = json.loads(ok(capsys, "gate", MODEL, "1", "-f", "json"))
    assert gate["allowed"] is True and gate["evidence"]["waiver:1"].startswith("sha256:")

    status = ok(capsys, "status", MODEL)
    for needle in ("version 1: approved", "scope", "document #1 scope by bea: scope memo.txt",
                   "waiver by rita: #1 check fairness.disparate_impact",
                   "comment #1 validation by carl",
                   "condition #1 quarterly fairness re-run", "ALLOWED"):
        assert needle in status, needle
    data = json.loads(ok(capsys, "status", MODEL, "-f", "json"))
    assert data["versions"][0]["gate"]["allowed"] is True

    out = ok(capsys, "condition-met", MODEL, "1", "1", "--note", "schedule agreed",
             "--as", "val")
    assert "condition #1 met: quarterly fairness re-run" in out
    assert "condition #1 (met, deployment_approval)" in ok(capsys, "status", MODEL)

    out = ok(capsys, "recheck", MODEL, "1", "--as", "rita")
    assert "no change requires recertification" in out

    fails(capsys, "revoke-waiver", MODEL, "1", "1", "--as", "rita", match="needs a reason")
    out = ok(capsys, "revoke-waiver", MODEL, "1", "1", "--reason", "new evidence",
             "--as", "rita")
    assert f"waiver #1 of {MODEL}@1 revoked" in out
    code, out, _ = run(capsys, "gate", MODEL, "1")
    assert code == 1 and "without a valid waiver: fairness.disparate_impact" in out


def test_cli_reject(env: Env, capsys, monkeypatch):
    env.certify("1")
    ok(capsys, "submit", MODEL, "1", "--policy", str(env.policy), "--as", "alice")
    fails(capsys, "reject", MODEL, "1", "--stage", "scope", "--reason", "  ", "--as", "bea",
          match="needs a reason")
    out = ok(capsys, "reject", MODEL, "1", "--stage", "scope", "--reason",
             "intended use not stated", "--as", "bea")
    assert "scope: rejected by business_owner: intended use not stated" in out
    monkeypatch.delenv("ASSAY_USER", raising=False)
    code, out, _ = run(capsys, "gate", MODEL, "1")  # reading needs no acting user
    assert code == 1 and "intended use not stated" in out
    assert "version 1: rejected" in ok(capsys, "status", MODEL)


ERRORS = [
    (("submit", MODEL, "1", "--as", "mallory"), "unknown user 'mallory'"),
    (("submit", "nope", "1", "--as", "alice"), "nope"),
    (("submit", MODEL, "1"), "no acting user"),
    (("submit", MODEL, "1", "--as", "alice"), "already in review"),
    (("approve", MODEL, "1", "--stage", "deployment_approval", "--as", "rita"),
     "before stage 'scope' is approved"),
    (("approve", MODEL, "1", "--stage", "scope", "--as", "aud"), "cannot sign"),
    (("approve", MODEL, "1", "--stage", "scope", "--as", "alice"), "own submission"),
    (("approve", MODEL, "1", "--stage", "scope", "--as", "bea", "--expires", "soon"),
     "--expires: expected a date YYYY-MM-DD"),
    (("approve", MODEL, "1", "--stage", "scope", "--as", "bea", "--attach", "/no/file"),
     "--attach /no/file: no such file"),
    (("approve", MODEL, "1", "--stage", "scope", "--as", "bea"), "no document attached"),
    (("waive", MODEL, "1", "--certification", "--check", "x", "--as", "rita"),
     "exactly one of --check ID or --certification"),
    (("waive", MODEL, "1", "--certification", "--justification", "j", "--as", "rita"),
     "needs an expiry date"),
    (("waive", MODEL, "1", "--certification", "--justification", "j", "--expires",
      "2001-01-01", "--as", "rita"), "not in the future"),
    (("waive", MODEL, "1", "--certification", "--justification", "j", "--expires",
      "2999-01-01", "--as", "carl"), "cannot grant waivers"),
    (("review", MODEL, "1", "-f", "xml", "--as", "rita"), "expected text or json"),
    (("comment", MODEL, "1", "hi", "--stage", "nowhere", "--as", "carl"),
     "unknown stage 'nowhere'"),
    (("comment", MODEL, "1", "hi", "--as", "aud"), "read-only"),
    (("status", "nope", "--as", "aud"), "nope"),
]


def test_cli_errors_exit_2_with_one_line_and_write_nothing(env: Env, capsys, monkeypatch):
    monkeypatch.delenv("ASSAY_USER", raising=False)
    env.certify("1", status="blocked", failed=("fairness.disparate_impact",))
    ok(capsys, "submit", MODEL, "1", "--policy", str(env.policy), "--as", "alice")
    before = counts(env)
    for args, match in ERRORS:
        fails(capsys, *args, match=match)
        assert counts(env) == before, args
