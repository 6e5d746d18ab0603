"""``assay db / user / model / inventory / audit`` run in-process against both backends."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from _results import consistent_results
from assay.cli import main
from assay.store import Store

DOCS = Path(__file__).resolve().parents[1] / "docs" / "audit.md"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys, *args: str) -> str:
    code, out, err = run(capsys, *args)
    assert code == 0, f"{args}: exit {code}\n{out}\n{err}"
    return out


def _events(capsys) -> int:
    """How many events the trail holds (read from the store: the count must not need a
    user, since a store may have none yet)."""
    from assay.store import open_store
    from assay.store.audit import chain_head

    store = open_store()
    try:
        with store.transaction() as s:
            return chain_head(s)[0]
    finally:
        store.dispose()


@pytest.fixture
def setup(db: Store, capsys, tmp_path, monkeypatch) -> Store:
    monkeypatch.delenv("ASSAY_USER", raising=False)
    ok(capsys, "user", "add", "ada", "--display-name", "Ada Admin")
    ok(capsys, "user", "add", "dana", "-r", "data_scientist", "--as", "ada")
    ok(capsys, "user", "add", "bo", "-r", "business_owner", "--email", "bo@bank.example",
       "--as", "ada")
    ok(capsys, "user", "add", "audrey", "-r", "auditor", "--as", "ada")
    spec = tmp_path / "model.yaml"
    spec.write_text(
        "name: credit-pd\n"
        "purpose: Probability of default of retail loan applicants\n"
        "intended_use: Rank applications for manual review\n"
        "out_of_scope_uses: Small-business lending\n"
        "owner: bo\n"
        "business_unit: Retail credit\n"
        "stakeholders: [applicants, credit officers]\n"
        "decision_type: human_in_the_loop\n"
        "criticality: high\n"
        "next_review_at: 2020-01-31\n", encoding="utf-8")
    monkeypatch.setenv("ASSAY_USER", "dana")
    ok(capsys, "model", "register", "--from-file", str(spec))
    return db


def test_register_version_record_show_and_inventory(setup: Store, capsys, tmp_path) -> None:
    artifact = tmp_path / "model.joblib"
    artifact.write_bytes(b"model bytes")
    digest = hashlib.sha256(b"model bytes").hexdigest()
    ok(capsys, "model", "version", "credit-pd", "1.0", "--artifact", str(artifact),
       "--code-revision", "9f1c2e0", "--training-source", "warehouse.loans_2025")
    ok(capsys, "model", "version", "credit-pd", "1.1", "--parent", "none")
    results = tmp_path / "out" / "results.json"
    results.parent.mkdir()
    doc = consistent_results("credit-lending", "high", failed=("integrity.duplicates",),
                             model_sha=digest)
    assert doc["status"] == "passed_with_warnings"  # a warn-severity check missed
    results.write_text(json.dumps(doc), encoding="utf-8")
    (results.parent / "report.html").write_text("<html></html>", encoding="utf-8")
    out = ok(capsys, "model", "record", "credit-pd", "1.0", "--results", str(results.parent))
    assert "passed_with_warnings" in out

    shown = json.loads(ok(capsys, "model", "show", "credit-pd", "-f", "json"))
    assert shown["owner"] == "bo" and shown["stakeholders"] == ["applicants", "credit officers"]
    v1, v11 = shown["versions"]
    assert v1["artifact_digest"] == "sha256:" + digest and v1["code_revision"] == "9f1c2e0"
    assert v11["parent_version"] is None
    cert = v1["certifications"][0]
    assert cert["status"] == "passed_with_warnings" and cert["report_digest"].startswith("sha256")
    assert [e["action"] for e in shown["recent_events"]] == [
        "certification.record", "model.version_add", "model.version_add", "model.register"]

    inv = json.loads(ok(capsys, "inventory", "-f", "json"))
    assert len(inv) == 1 and inv[0]["overdue"] and inv[0]["latest_version"] == "1.1"
    rows = list(csv.DictReader(io.StringIO(ok(capsys, "inventory", "-f", "csv"))))
    assert rows[0]["name"] == "credit-pd" and rows[0]["overdue"] == "True"
    assert rows[0]["next_review_at"] == "2020-01-31T00:00:00Z"
    table = ok(capsys, "inventory")
    assert "overdue reviews: 1" in table
    assert json.loads(ok(capsys, "inventory", "--overdue", "--tier", "low", "-f", "json")) == []

    # the evidence behind the records
    check = json.loads(ok(capsys, "evidence", "verify", "-f", "json"))
    # stored: results, report; external: model file, shipped policy, evaluation data
    assert check["ok"] and check["checked"] == 2 and check["external"] == 3
    copy = tmp_path / "copy.json"
    ok(capsys, "evidence", "get", cert["results_digest"], "--out", str(copy))
    assert copy.read_bytes() == results.read_bytes()
    from assay.evidence import artifact_path

    results_file = artifact_path(setup.settings, cert["results_digest"])
    results_file.chmod(0o644)
    results_file.write_bytes(b"{}")
    artifact_path(setup.settings, cert["report_digest"]).unlink()
    code, out, _ = run(capsys, "evidence", "verify")
    assert code == 1 and "corrupted: " + cert["results_digest"] in out
    assert "missing: " + cert["report_digest"] in out
    code, _, err = run(capsys, "evidence", "get", cert["results_digest"], "--out", str(copy))
    assert code == 2 and "corrupted" in err


def test_users_and_roles(setup: Store, capsys) -> None:
    ok(capsys, "user", "grant", "dana", "validator", "--as", "ada")
    users = {u["username"]: u for u in json.loads(ok(capsys, "user", "list", "-f", "json"))}
    assert users["dana"]["roles"] == ["data_scientist", "validator"]
    assert users["ada"]["roles"] == ["admin"]
    ok(capsys, "user", "revoke", "dana", "validator", "--as", "ada")
    ok(capsys, "user", "deactivate", "audrey", "--as", "ada")
    code, _, err = run(capsys, "model", "list", "--as", "audrey")
    assert code == 2  # --as is not an option of a read-only command
    code, _, err = run(capsys, "user", "grant", "dana", "admin", "--as", "audrey")
    assert code == 2 and "deactivated" in err
    actions = [e["action"] for e in json.loads(ok(capsys, "audit", "list", "--subject",
                                                  "user:dana", "-f", "json", "--as", "ada"))]
    assert actions == ["user.role_revoke", "user.role_grant", "user.add"]
    ok(capsys, "user", "deactivate", "audrey", "--activate", "--as", "ada")
    users = {u["username"]: u for u in json.loads(ok(capsys, "user", "list", "-f", "json"))}
    assert users["audrey"]["active"]


def test_model_update_and_list_filters(setup: Store, capsys) -> None:
    ok(capsys, "model", "update", "credit-pd", "--status", "suspended", "--next-review",
       "2031-01-01")
    (m,) = json.loads(ok(capsys, "model", "list", "--status", "suspended", "-f", "json"))
    assert m["next_review_at"] == "2031-01-01T00:00:00Z"
    assert json.loads(ok(capsys, "model", "list", "--status", "retired", "-f", "json")) == []
    (event,) = json.loads(ok(capsys, "audit", "list", "--action", "model.update", "-f", "json",
                             "--as", "audrey"))
    assert event["payload"]["changes"]["deployment_status"] == {"from": "development",
                                                                "to": "suspended"}
    code, _, err = run(capsys, "model", "update", "credit-pd")
    assert code == 2 and "nothing to change" in err


def test_only_audit_readers_list_or_export_the_trail(setup: Store, capsys, tmp_path) -> None:
    for who in ("dana", "bo"):  # a developer and a business owner
        for args in (["audit", "list"], ["audit", "export", "--out", str(tmp_path / "t")]):
            code, out, err = run(capsys, *args, "--as", who)
            assert code == 2 and "may not read the audit trail" in err, (who, args)
            assert not out
    assert not (tmp_path / "t").exists()
    code, _, err = run(capsys, "audit", "list")  # $ASSAY_USER is dana
    assert code == 2 and "may not read the audit trail" in err
    assert json.loads(ok(capsys, "audit", "list", "-f", "json", "--as", "audrey"))
    assert "audit trail intact" in ok(capsys, "audit", "verify")  # verifying is for anyone


def test_model_update_refuses_deployed_without_the_gate_and_owner_changes_by_others(
        setup: Store, capsys) -> None:
    code, _, err = run(capsys, "model", "update", "credit-pd", "--status", "deployed")
    assert code == 2 and "deployment gate" in err and "has no version" in err
    code, _, err = run(capsys, "model", "update", "credit-pd", "--owner", "dana")
    assert code == 2 and "only its owner or an admin" in err
    ok(capsys, "model", "update", "credit-pd", "--owner", "dana", "--as", "bo")
    (m,) = json.loads(ok(capsys, "model", "list", "-f", "json"))
    assert m["owner"] == "dana" and m["deployment_status"] != "deployed"


BAD_INPUT = [
    (["model", "show", "nope"], "unknown model 'nope'"),
    (["model", "version", "nope", "1"], "unknown model 'nope'"),
    (["model", "version", "credit-pd", "2", "--as", "ghost"], "unknown user 'ghost'"),
    (["model", "version", "credit-pd", "2", "--as", "audrey"], "may not add model versions"),
    (["user", "add", "eve", "--as", "dana"], "may not add users"),
    (["user", "add", "eve", "-r", "wizard", "--as", "ada"], "unknown role 'wizard'"),
    (["model", "register", "m2", "--owner", "bo", "--decision-type", "sometimes",
      "--criticality", "low"], "decision_type 'sometimes'"),
    (["model", "register", "m2", "--decision-type", "automated", "--criticality", "low"],
     "owner: required"),
    (["model", "record", "credit-pd", "1", "--results", "/nonexistent/results.json"],
     "file not found"),
    (["audit", "verify", "--anchor", "x"], "expected SEQ:HASH"),
    (["inventory", "--tier", "extreme"], "tier 'extreme'"),
]


def test_bad_input_exits_2_and_writes_nothing(setup: Store, capsys) -> None:
    before = _events(capsys)
    for args, message in BAD_INPUT:
        code, out, err = run(capsys, *args)
        assert code == 2, (args, out + err)
        assert message in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1, (args, err)
    assert _events(capsys) == before


def test_no_acting_user(setup: Store, capsys, monkeypatch) -> None:
    monkeypatch.delenv("ASSAY_USER")
    code, _, err = run(capsys, "model", "version", "credit-pd", "1")
    assert code == 2 and "--as USER" in err


def test_bad_model_file(setup: Store, capsys, tmp_path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("name: x\ncolour: red\n", encoding="utf-8")
    code, _, err = run(capsys, "model", "register", "--from-file", str(f))
    assert code == 2 and f"{f}: unknown field(s) colour" in err
    f.write_text("name: [x\n", encoding="utf-8")
    code, _, err = run(capsys, "model", "register", "--from-file", str(f))
    assert code == 2 and "not valid YAML" in err


def _snippet(tmp_path: Path) -> Path:
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"<!-- verify-snippet:start -->\s*```python\n(.*?)```", text, re.S)
    assert block, "docs/audit.md lost its verification snippet"
    path = tmp_path / "verify_trail.py"
    path.write_text(block.group(1), encoding="utf-8")
    return path


def test_export_verifies_with_the_documented_snippet(setup: Store, capsys, tmp_path) -> None:
    trail = tmp_path / "trail.jsonl"
    ok(capsys, "audit", "export", "--out", str(trail), "--as", "audrey")
    verified = ok(capsys, "audit", "verify", "-f", "json")
    head = json.loads(verified)
    script = _snippet(tmp_path)
    done = subprocess.run([sys.executable, str(script), str(trail)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"OK: {head['checked']} events, head " \
                                  f"{head['head_seq']}:{head['head_hash']}"
    lines = trail.read_text(encoding="utf-8").splitlines()
    assert ok(capsys, "audit", "export", "--out", "-", "--as", "audrey").splitlines() == lines
    forged = json.loads(lines[2])
    forged["actor"] = "mallory"
    lines[2] = json.dumps(forged, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    trail.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(trail)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 1 and "event 3 was altered" in done.stderr


def test_verify_reports_tampering_with_exit_1(setup: Store, capsys, tmp_path) -> None:
    out = ok(capsys, "audit", "verify")
    assert "audit trail intact" in out
    head = re.search(r"head (\d+:[0-9a-f]{64})", out).group(1)
    with setup.engine.begin() as conn:
        if setup.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
        conn.exec_driver_sql("DELETE FROM audit_events WHERE seq = 2")
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 1 and "BROKEN at event 2" in out and "deleted" in out
    code, out, _ = run(capsys, "audit", "verify", "--anchor", head, "-f", "json")
    assert code == 1 and json.loads(out)["first_bad_seq"] == 2
    code, _, err = run(capsys, "audit", "export", "--out", str(tmp_path / "t.jsonl"),
                       "--as", "ada")
    assert code == 1 and "BROKEN at event 2" in err
    assert (tmp_path / "t.jsonl").exists()


def test_verify_records_finds_rows_written_around_assay(setup: Store, capsys) -> None:
    assert "every inventory record has its audit event" in ok(capsys, "audit", "verify",
                                                              "--records")
    with setup.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO models (name, purpose, intended_use, out_of_scope_uses, owner_id, "
            "business_unit, stakeholders, decision_type, deployment_status, criticality, "
            "created_at, created_by) VALUES ('shadow', '', '', '', 1, '', '[]', 'automated', "
            "'deployed', 'high', CURRENT_TIMESTAMP, 1)")
    assert "audit trail intact" in ok(capsys, "audit", "verify")
    code, out, _ = run(capsys, "audit", "verify", "--records", "-f", "json")
    assert code == 1
    assert json.loads(out)["unaudited_records"] == ["model 'shadow' has no model.register event"]


def test_db_upgrade_and_current(db: Store, capsys) -> None:
    assert "up to date" in ok(capsys, "db", "upgrade")
    assert "expected" in ok(capsys, "db", "current")
    assert _events(capsys) == 0  # nothing changed, nothing recorded


def test_db_upgrade_records_a_schema_change(tmp_path, capsys, monkeypatch) -> None:
    from assay.store import upgrade
    from assay.store.db import make_engine

    path = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine, "0001_core")
    engine.dispose()
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path))
    monkeypatch.setenv("ASSAY_DATABASE_URL", f"sqlite:///{path}")
    code, _, err = run(capsys, "model", "list")
    assert code == 2 and "run `assay db upgrade`" in err
    code, out, _ = run(capsys, "db", "current")
    assert code == 1 and "0001_core" in out
    assert "upgraded" in ok(capsys, "db", "upgrade", "--as", "ops")
    from assay.store import open_store
    from assay.store.audit import list_events

    store = open_store()
    with store.transaction() as s:
        (event,) = [e.to_dict() for e in list_events(s)]
    store.dispose()
    assert (event["action"], event["actor"]) == ("store.upgrade", "ops")
    assert event["payload"]["from"] == ["0001_core"] and "0001_core" not in event["payload"]["to"]


def test_fresh_home_is_created_on_first_use(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "new-home"))
    monkeypatch.delenv("ASSAY_DATABASE_URL", raising=False)
    assert "no models registered" in ok(capsys, "model", "list")
    assert (tmp_path / "new-home" / "assay.db").exists()


def test_signed_checkpoints_catch_a_rewritten_tail(setup: Store, capsys, tmp_path) -> None:
    key = tmp_path / "keys" / "audit.pem"
    ok(capsys, "audit", "keygen", "--out", str(key))
    assert (key.stat().st_mode & 0o777) == 0o600
    pub = Path(str(key) + ".pub")
    cp = tmp_path / "cp.json"
    code, _, err = run(capsys, "audit", "checkpoint", "--key", str(key), "--out", str(cp),
                       "--as", "dana")
    assert code == 2 and "may not sign audit checkpoints" in err
    ok(capsys, "audit", "checkpoint", "--key", str(key), "--out", str(cp), "--as", "audrey")
    doc = json.loads(cp.read_text())
    assert doc["signed_by"] == "audrey" and doc["seq"] == 5
    assert "intact" in ok(capsys, "audit", "verify", "--checkpoint", str(cp),
                          "--public-key", str(pub))

    # a forged checkpoint (or one signed with another key) is refused
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**doc, "seq": 4}), encoding="utf-8")
    code, _, err = run(capsys, "audit", "verify", "--checkpoint", str(forged),
                       "--public-key", str(pub))
    assert code == 2 and "signature does not match" in err
    other = tmp_path / "other.pem"
    ok(capsys, "audit", "keygen", "--out", str(other))
    code, _, err = run(capsys, "audit", "verify", "--checkpoint", str(cp),
                       "--public-key", str(other) + ".pub")
    assert code == 2 and "signature does not match" in err
    code, _, err = run(capsys, "audit", "keygen", "--out", str(key))
    assert code == 2 and "refusing to overwrite" in err

    # the newest event is removed by someone with database rights: the chain alone is fine,
    # the signed checkpoint is not
    with setup.engine.begin() as conn:
        if setup.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
        conn.exec_driver_sql("DELETE FROM audit_events WHERE seq = 5")
    assert "intact" in ok(capsys, "audit", "verify")
    code, out, _ = run(capsys, "audit", "verify", "--checkpoint", str(cp), "--public-key",
                       str(pub))
    assert code == 1 and "deleted from the end" in out
    with setup.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_events WHERE seq = 2")
    code, _, err = run(capsys, "audit", "checkpoint", "--key", str(key), "--out",
                       str(tmp_path / "cp2.json"), "--as", "ada")
    assert code == 2 and "refusing to sign" in err
