"""The red-team record on SQLite and PostgreSQL (the ``db`` fixture): who may record and
resolve findings (never the version's developer), evidence by digest, audit events, a
refused call that changes nothing, the command line, the API with attempts to get around
its role checks, and the findings judged by ``security.red_team`` in a certification."""

from __future__ import annotations

import json
import os
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from assay import registry as reg
from assay.api.app import create_app
from assay.api.sample import populate
from assay.auth import service as auth
from assay.cli import main
from assay.errors import ConflictError, InputError, NotFoundError, PermissionDenied
from assay.registry.redteam import findings_for, record_finding, resolve_finding
from assay.registry.redteam_tables import RedTeamFinding
from assay.store import Store
from assay.store.audit import AuditEvent, verify_chain


def test_the_table_matches_the_migration(db: Store) -> None:
    from _schema import schema_diffs

    assert schema_diffs(db.engine, {"red_team_findings"}) == []


@pytest.fixture
def model(db: Store, people: dict) -> str:
    with db.transaction() as s:
        dana = reg.get_user(s, "dana")
        reg.register_model(s, dana, "pd", owner="bo", decision_type="automated",
                           criticality="high", purpose="probability of default")
        reg.add_version(s, dana, "pd", "1")
    with db.transaction() as s:  # a validator who also builds models: developer of v2
        admin = reg.get_user(s, "ada")
        reg.grant_role(s, admin, "victor", "data_scientist")
    with db.transaction() as s:
        reg.add_version(s, reg.get_user(s, "victor"), "pd", "2")
    return "pd"


def _act(db: Store, fn, who: str, *args, **kw):
    with db.transaction() as s:
        s.info["settings"] = db.settings
        out = fn(s, reg.get_user(s, who), *args, **kw)
        return out.to_dict() if hasattr(out, "to_dict") else out


def _snapshot(db: Store) -> dict:
    with db.transaction() as s:
        return {"audit": s.scalar(select(func.count()).select_from(AuditEvent)),
                "findings": [f.to_dict() for f in s.scalars(select(RedTeamFinding))]}


def test_record_list_and_resolve_with_evidence_and_audit(db: Store, model: str,
                                                         tmp_path: Path) -> None:
    ev = tmp_path / "transcript.txt"
    ev.write_text("changed income by 3% and the decline became an approval\n")
    f = _act(db, record_finding, "sean", "pd", "1", technique="evasion (income)",
             severity="high", outcome="succeeded", evidence=ev, note="see transcript")
    assert f["status"] == "open" and f["recorded_by"] == "sean"
    assert f["evidence_name"] == "transcript.txt"
    assert f["evidence_digest"].startswith("sha256:")
    from assay.evidence import open_artifact

    assert open_artifact(db.settings, f["evidence_digest"]) == ev.read_bytes()
    g = _act(db, record_finding, "rita", "pd", "1", technique="membership inference",
             severity="medium", outcome="failed", note="AUC 0.51 for the attack")
    with db.transaction() as s:
        items = findings_for(s, "pd", "1")
    assert [i["id"] for i in items] == [f["id"], g["id"]]
    done = _act(db, resolve_finding, "victor", f["id"], resolution="monotone constraint "
                                                                   "added in v1.1")
    assert done["status"] == "resolved" and done["resolved_by"] == "victor"
    with db.transaction() as s:
        events = list(s.scalars(select(AuditEvent).where(
            AuditEvent.subject_type == "red_team_finding").order_by(AuditEvent.seq)))
        assert [e.action for e in events] == ["red_team.record", "red_team.record",
                                              "red_team.resolve"]
        assert events[0].payload["technique"] == "evasion (income)"
        assert events[0].evidence == {"evidence": f["evidence_digest"]}
        assert [e.actor for e in events] == ["sean", "rita", "victor"]
        assert verify_chain(s).ok


@pytest.mark.parametrize(("who", "version", "error", "needle"), [
    ("dana", "1", PermissionDenied, "needs one of"),          # developers' role may not
    ("bo", "1", PermissionDenied, "needs one of"),            # business owner may not
    ("audrey", "1", PermissionDenied, "needs one of"),        # the auditor reads only
    ("cora", "1", PermissionDenied, "needs one of"),          # compliance reviews, not attacks
    ("victor", "2", PermissionDenied, "registered pd@2"),     # a validator who built v2
])
def test_who_may_not_record_findings(db: Store, model: str, who: str, version: str,
                                     error: type, needle: str) -> None:
    before = _snapshot(db)
    with pytest.raises(error, match=needle):
        _act(db, record_finding, who, "pd", version, technique="evasion", severity="high",
             outcome="succeeded", note="n")
    assert _snapshot(db) == before


def test_the_developer_may_not_resolve_findings_on_their_version(db: Store,
                                                                  model: str) -> None:
    f = _act(db, record_finding, "sean", "pd", "2", technique="evasion", severity="critical",
             outcome="succeeded", note="flip with one feature")
    before = _snapshot(db)
    with pytest.raises(PermissionDenied, match="registered pd@2"):
        _act(db, resolve_finding, "victor", f["id"], resolution="fixed, trust me")
    with pytest.raises(PermissionDenied, match="needs one of"):
        _act(db, resolve_finding, "dana", f["id"], resolution="fixed")
    assert _snapshot(db) == before
    _act(db, resolve_finding, "rita", f["id"], resolution="risk accepted until Q2",
         status="accepted")
    with pytest.raises(ConflictError, match="already accepted"):
        _act(db, resolve_finding, "sean", f["id"], resolution="again")


@pytest.mark.parametrize(("kw", "needle"), [
    ({"severity": "severe"}, "severity: expected one of 'low', 'medium', 'high', "
                             "'critical', got 'severe'"),
    ({"outcome": "yes"}, "outcome: expected one of"),
    ({"technique": "  "}, "technique: expected a non-empty text"),
    ({"technique": "a\nb"}, "technique: expected one line"),
    ({"note": ""}, "give evidence (a file) or note"),
    ({"evidence": "/nonexistent/file.txt"}, "file not found"),
    ({"evidence_digest": "sha256:" + "0" * 64, "note": ""}, "is not in the evidence store"),
])
def test_bad_input_is_refused_and_changes_nothing(db: Store, model: str, kw: dict,
                                                  needle: str) -> None:
    args = {"technique": "evasion", "severity": "high", "outcome": "succeeded", "note": "n"}
    args.update(kw)
    before = _snapshot(db)
    with pytest.raises(InputError) as err:
        _act(db, record_finding, "sean", "pd", "1", **args)
    assert needle in str(err.value)
    assert _snapshot(db) == before
    with pytest.raises(NotFoundError, match="unknown red-team finding #99"):
        _act(db, resolve_finding, "sean", 99, resolution="x")
    with pytest.raises(NotFoundError, match="no version '7'"):
        _act(db, record_finding, "sean", "pd", "7", technique="t", severity="low",
             outcome="failed", note="n")


# --------------------------------------------------------------------------- command line


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _data(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    df["y"] = (df["x1"] + rng.normal(0, 0.5, n) > 0).astype(int)
    return df


POLICY = """\
name: rt
version: "1"
tiers:
  high:
    checks:
      - id: security.red_team
        threshold: {max: 0}
        rationale: attacked before it decides
"""


def test_cli_add_list_and_certify_with_the_recorded_findings(
        db: Store, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ev = tmp_path / "ev.txt"
    ev.write_text("evidence")
    code, out, err = _cli(["redteam", "add", "pd", "1", "--technique", "evasion",
                           "--severity", "high", "--outcome", "succeeded", "--evidence", ev,
                           "--as", "sean"], capsys)
    assert code == 0, err
    assert "recorded on pd@1" in out
    code, out, err = _cli(["redteam", "add", "pd", "1", "--technique", "evasion",
                           "--severity", "high", "--outcome", "succeeded", "--note", "x",
                           "--as", "dana"], capsys)
    assert code == 2 and "needs one of" in err and "Traceback" not in err
    code, out, err = _cli(["redteam", "add", "pd", "1", "--technique", "evasion",
                           "--severity", "huge", "--outcome", "succeeded", "--note", "x",
                           "--as", "sean"], capsys)
    assert code == 2 and "--severity: expected one of" in err
    code, out, _ = _cli(["redteam", "list", "pd", "1", "--format", "json"], capsys)
    items = json.loads(out)
    assert code == 0 and [i["technique"] for i in items] == ["evasion"]
    assert items[0]["evidence_name"] == "ev.txt"

    data = tmp_path / "eval.csv"
    _data().to_csv(data, index=False)
    policy = tmp_path / "rt.yaml"
    policy.write_text(POLICY)
    common = ["certify", "--policy", policy, "--tier", "high", "--data", data, "--target",
              "y", "--prediction", "y", "--format", "json"]
    code, out, err = _cli([*common, "--out", tmp_path / "a", "--red-team", "pd@1"], capsys)
    results = json.loads(out)
    (c,) = results["checks"]
    assert code == 1 and c["status"] == "fail", err
    assert c["details"]["findings"][0]["technique"] == "evasion"
    html = (tmp_path / "a" / "report.html").read_text()
    assert "evasion" in html and "Red-team findings" in html

    code, _, err = _cli(["redteam", "resolve", str(items[0]["id"]), "--note",
                         "monotone constraint", "--as", "rita"], capsys)
    assert code == 0, err
    code, out, _ = _cli([*common, "--out", tmp_path / "b", "--red-team", "pd@1"], capsys)
    assert code == 0 and json.loads(out)["checks"][0]["status"] == "pass"
    code, out, _ = _cli([*common, "--out", tmp_path / "c", "--red-team", "pd@2"], capsys)
    c = json.loads(out)["checks"][0]
    assert c["status"] == "skip" and "no red-team exercise recorded" in c["message"]
    code, _, err = _cli([*common, "--out", tmp_path / "d", "--red-team", "pd"], capsys)
    assert code == 2 and "--red-team: expected MODEL@VERSION" in err


# --------------------------------------------------------------------------- API


@pytest.fixture(autouse=False)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def api(db: Store, _fast_hashes):
    populate(db, password="unused password 1", models=1, reports=False)
    tokens = {}
    with db.transaction() as s:
        admin = reg.get_user(s, "admin")
        reg.add_user(s, admin, "sec", display_name="Sec", roles=["security"])
        for name in ("aud", "dana", "vic", "rita", "bob", "admin", "sec"):
            tokens[name] = auth.create_token(s, admin, name, "tests")[1]
    app = create_app(db.settings, store=db)
    return TestClient(app), {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}


URL = "/api/models/credit-scoring/versions/1.0/red-team"
BODY = {"technique": "evasion", "severity": "critical", "outcome": "succeeded",
        "note": "one feature flips it"}


def test_api_roles_and_attempts_to_get_around_them(api, db: Store) -> None:
    client, h = api
    # the developer (dana registered 1.0), the business owner and the auditor may not add
    for who in ("dana", "bob", "aud"):
        r = client.post(URL, json=BODY, headers=h[who])
        assert r.status_code == 403, (who, r.text)
    # no forging the recorder, the status or the id through extra fields
    for extra in ({"recorded_by": "vic"}, {"status": "resolved"}, {"id": 1}):
        r = client.post(URL, json={**BODY, **extra}, headers=h["sec"])
        assert r.status_code == 422, r.text
    r = client.post(URL, json={**BODY, "severity": "apocalyptic"}, headers=h["sec"])
    assert r.status_code == 422
    assert client.get(URL, headers=h["aud"]).json() == []

    r = client.post(URL, json=BODY, headers=h["sec"])
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    assert r.json()["recorded_by"] == "sec" and r.json()["status"] == "open"
    # evidence uploaded first, then named by digest
    up = client.post("/api/evidence", files={"file": ("t.txt", b"transcript")},
                     headers=h["vic"])
    assert up.status_code in (200, 201), up.text
    digest = up.json()["digest"]
    r = client.post(URL, json={**BODY, "severity": "low", "note": "",
                               "evidence_digest": digest, "evidence_name": "t.txt"},
                    headers=h["vic"])
    assert r.status_code == 201 and r.json()["evidence_digest"] == digest
    # everyone with a role reads, the auditor too
    for who in ("aud", "dana", "bob"):
        assert [f["id"] for f in client.get(URL, headers=h[who]).json()] == [fid, fid + 1]
    # the developer and the auditor may not resolve; the id must exist
    for who in ("dana", "aud", "bob"):
        r = client.post(f"/api/red-team/{fid}/resolve", json={"resolution": "fixed"},
                        headers=h[who])
        assert r.status_code == 403, (who, r.text)
    assert client.post("/api/red-team/999/resolve", json={"resolution": "x"},
                       headers=h["rita"]).status_code == 404
    r = client.post(f"/api/red-team/{fid}/resolve", json={"resolution": "retrained"},
                    headers=h["rita"])
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    with db.transaction() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).where(
            AuditEvent.subject_type == "red_team_finding").order_by(AuditEvent.seq))]
    assert actions == ["red_team.record", "red_team.record", "red_team.resolve"]


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_api_run_refuses_a_malicious_model_artifact_and_trust_is_for_security_or_admin(
        api, db: Store, tmp_path: Path) -> None:
    client, h = api
    from assay.evidence import store_artifact

    marker = tmp_path / "pwned"
    model_file = tmp_path / "m.joblib"
    joblib.dump([Payload(marker)], model_file)
    data = tmp_path / "eval.csv"
    _data().to_csv(data, index=False)
    art = store_artifact(db.settings, model_file)
    ev = store_artifact(db.settings, data)
    with db.transaction() as s:
        reg.add_version(s, reg.get_user(s, "dana"), "credit-scoring", "6.6",
                        artifact_digest=art, evaluation_data_digest=ev)
    url = "/api/models/credit-scoring/versions/6.6/certifications/run"
    body = {"policy": "default", "tier": "low", "target": "y"}
    r = client.post(url, json=body, headers=h["vic"])
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "unsafe_model"
    assert "system" in r.json()["error"]["message"]
    assert "trust_model_file=True" in r.json()["error"]["message"]
    assert not marker.exists()
    r = client.post(url, json={**body, "trust_model_file": True}, headers=h["vic"])
    assert r.status_code == 403 and "security" in r.json()["error"]["message"]
    assert not marker.exists()
    r = client.post(url, json={**body, "trust_model_file": True}, headers=h["dana"])
    assert r.status_code == 403
    assert not marker.exists()
    # a certifier who is also security or admin may trust it: the file is loaded (its
    # code runs; then it is no model)
    r = client.post(url, json={**body, "trust_model_file": True}, headers=h["admin"])
    assert r.status_code == 422 and "no predict" in r.json()["error"]["message"]
    assert marker.exists()


def test_a_reproduction_judges_the_findings_the_certification_judged(tmp_path: Path) -> None:
    from assay.certification import certify
    from assay.registry.reproduce import reproduce

    data = tmp_path / "eval.csv"
    _data().to_csv(data, index=False)
    policy = tmp_path / "rt.yaml"
    policy.write_text(POLICY)
    finding = {"id": 3, "technique": "evasion", "severity": "critical", "outcome": "succeeded",
               "status": "open", "recorded_by": "sean", "recorded_at": "2026-11-29T10:00:00Z",
               "note": "", "evidence_digest": None}
    cert = certify(data=data, policy=policy, tier="high", target="y", prediction="y",
                   red_team=[finding], out_dir=tmp_path / "run")
    assert cert.checks[0].status == "fail"
    result = reproduce(tmp_path / "run" / "results.json", data=data)
    assert result.mismatches == [] and result.compared > 0
    assert result.reproduced_results["checks"][0]["status"] == "fail"


def test_api_run_judges_the_findings_recorded_for_the_version(api, db: Store,
                                                              tmp_path: Path) -> None:
    client, h = api
    from assay.evidence import store_artifact

    data = tmp_path / "eval.csv"
    df = _data()
    df["p"] = df["y"]
    df.to_csv(data, index=False)
    with db.transaction() as s:
        reg.add_version(s, reg.get_user(s, "dana"), "credit-scoring", "7.0",
                        evaluation_data_digest=store_artifact(db.settings, data))
    url = "/api/models/credit-scoring/versions/7.0"
    body = {"policy": "default", "tier": "high", "target": "y", "prediction": "p"}

    def red_team_check() -> dict:
        r = client.post(f"{url}/certifications/run", json=body, headers=h["vic"])
        assert r.status_code == 201, r.text
        results = client.get(f"{url}/certifications/{r.json()['id']}", headers=h["aud"]).json()
        return next(c for c in results["checks"] if c["id"] == "security.red_team")

    c = red_team_check()
    assert c["status"] == "warn" and "no red-team exercise recorded" in c["message"]
    r = client.post(f"{url}/red-team", json=BODY, headers=h["sec"])
    assert r.status_code == 201
    c = red_team_check()
    assert c["status"] == "fail" and c["details"]["blocking"] == [r.json()["id"]]
