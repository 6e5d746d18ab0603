"""Separation of duties cannot be bypassed by one admin (SQLite and PostgreSQL).

The attack: an admin grants themself business_owner, validator, risk_officer,
compliance and security, then signs every stage of one submission alone and
the gate says ``allowed``. Each step is refused here, over the REST API, the
command line and the domain functions, and the gate recomputes the rules from
the stored sign-offs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import select

from assay import registry
from assay import workflow as wf
from assay.auth import service as auth
from assay.errors import ConflictError, PermissionDenied, PolicyError
from assay.evidence import store_bytes
from assay.store import Store
from assay.store.audit import list_events, verify_chain
from assay.workflow.config import parse_workflow
from assay.workflow.policy import load_policy_info
from assay.workflow.tables import SignOff, StageState, Submission
from test_api_governance import Api, err
from test_workflow import MODEL, WORKFLOW, Env, doc, make_env, submit, write_policy
from test_workflow_cli import fails, ok, run

SIGNING = ["business_owner", "validator", "risk_officer", "compliance", "security"]
FRAUD = "/api/models/fraud-alerts/versions/1.0"


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def api(db: Store) -> Api:
    from assay.api.sample import populate

    return Api(db, populate(db, password="unused password 1", models=2, reports=False))


def _grants(store: Store) -> list[tuple[str, str, str]]:
    with store.transaction() as s:
        return [(e.actor, e.subject_id, e.payload["role"])
                for e in list_events(s, action="user.role_grant", newest_first=False)]


def _second_admin(api: Api, name: str = "root2") -> None:
    """Another person with the admin role (added by the first admin, with a token)."""
    with api.store.transaction() as s:
        admin = registry.get_user(s, "admin")
        registry.add_user(s, admin, name, roles=["admin"])
        api.tokens[name] = auth.create_token(s, admin, name, "tests")[1]


# --------------------------------------------------------------------------- the API


def test_api_admin_cannot_grant_themself_signing_roles(api: Api) -> None:
    resp = api("admin", "PATCH", "/api/users/admin", json={"grant": SIGNING})
    msg = err(resp, 403)
    assert "may not grant themself the role 'business_owner'" in msg
    assert "another admin must grant it" in msg
    for role in SIGNING:  # one at a time is refused too
        msg = err(api("admin", "PATCH", "/api/users/admin", json={"grant": [role]}), 403)
        assert f"'{role}'" in msg
    users = {u["username"]: u for u in api("admin", "GET", "/api/users").json()}
    assert users["admin"]["roles"] == ["admin"]
    assert _grants(api.store) == []  # nothing was written
    # the attack's next step fails for want of the role
    err(api("admin", "POST", f"{FRAUD}/stages/scope/approve", json={}), 403)
    # granting a role to somebody else is still an admin's job, and is audited
    resp = api("admin", "PATCH", "/api/users/vera", json={"grant": ["risk_officer"]})
    assert resp.status_code == 200 and resp.json()["roles"] == ["risk_officer", "validator"]
    assert _grants(api.store) == [("admin", "vera", "risk_officer")]
    with api.store.transaction() as s:
        (ev,) = list_events(s, action="user.role_grant")
        assert ev.payload["granted_by"] == "admin"
        assert verify_chain(s).ok


def test_api_one_person_cannot_sign_two_roles_of_one_submission(api: Api) -> None:
    # Even when another admin gave the admin every signing role ...
    _second_admin(api)
    resp = api("root2", "PATCH", "/api/users/admin", json={"grant": SIGNING})
    assert resp.status_code == 200, resp.text
    assert resp.json()["roles"] == sorted(["admin", *SIGNING])
    assert _grants(api.store) == [("root2", "admin", r) for r in SIGNING]
    # ... they sign one stage of the submission, in one role, and no more.
    digest = store_bytes(api.store.settings, b"Scope: card-present fraud alerts.\n")
    resp = api("admin", "POST", f"{FRAUD}/stages/scope/approve",
               json={"documents": {"scope.txt": digest}})
    assert resp.status_code == 201, resp.text
    msg = err(api("admin", "POST", f"{FRAUD}/stages/validation/approve", json={}), 409)
    assert msg == ("separation of duties: admin signed this submission as business_owner "
                   "(stage 'scope') and cannot sign stage 'validation' as validator; one "
                   "person signs a submission in one role only")
    err(api("admin", "POST", f"{FRAUD}/stages/validation/approve",
            json={"role": "validator"}), 409)
    resp = api("vic", "POST", f"{FRAUD}/stages/validation/approve", json={})
    assert resp.status_code == 201, resp.text
    msg = err(api("admin", "POST", f"{FRAUD}/stages/deployment_approval/approve", json={}), 409)
    assert "admin signed this submission as business_owner" in msg
    gate = api("aud", "GET", f"{FRAUD}/gate").json()
    assert gate["allowed"] is False
    assert "deployment_approval" in " ".join(gate["reasons"])
    # the review says who may still sign, and why not the admin
    review = api("admin", "GET", f"{FRAUD}/review").json()
    assert "admin" not in [e["user"] for e in review["eligible"]]
    assert review["eligible"] == [{"user": "rita", "roles": ["risk_officer"]}]
    assert "one role only" in review["why_not_you"]
    resp = api("rita", "POST", f"{FRAUD}/stages/deployment_approval/approve", json={})
    assert resp.status_code == 201, resp.text
    assert api("aud", "GET", f"{FRAUD}/gate").json()["allowed"] is True


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli_env(db: Store, tmp_path: Path) -> Env:
    env = make_env(db, tmp_path)
    with db.transaction() as s:
        registry.add_user(s, registry.get_user(s, "root"), "root2", roles=["admin"])
    return env


def test_cli_admin_cannot_grant_themself_roles(cli_env: Env, capsys) -> None:
    for role in SIGNING:
        line = fails(capsys, "user", "grant", "root", role, "--as", "root",
                     match=f"user 'root' may not grant themself the role '{role}'")
        assert "separation of duties" in line
    users = {u["username"]: u for u in json.loads(ok(capsys, "user", "list", "-f", "json"))}
    assert users["root"]["roles"] == ["admin"]
    assert _grants(cli_env.store) == []
    # another admin may grant it; the trail says who did
    ok(capsys, "user", "grant", "root", "validator", "--as", "root2")
    events = json.loads(ok(capsys, "audit", "list", "--action", "user.role_grant", "-f", "json",
                           "--as", "root2"))
    assert [(e["actor"], e["subject_id"], e["payload"]["role"]) for e in events] == [
        ("root2", "root", "validator")]


def test_cli_first_user_cannot_give_themself_a_signing_role(db: Store, capsys) -> None:
    fails(capsys, "user", "add", "ada", "-r", "validator",
          match="the first user 'ada' becomes the admin and cannot give themself the role(s) "
          "validator")
    with db.transaction() as s:
        assert registry.list_users(s) == []
    out = ok(capsys, "user", "add", "ada")
    assert "with roles: admin" in out


def test_cli_one_person_cannot_sign_two_roles(cli_env: Env, capsys, tmp_path: Path) -> None:
    env = cli_env
    for role in ("business_owner", "validator", "risk_officer"):
        ok(capsys, "user", "grant", "root", role, "--as", "root2")
    env.certify("1")
    submit(env)
    memo = tmp_path / "scope.txt"
    memo.write_text("scope")
    out = ok(capsys, "approve", MODEL, "1", "--stage", "scope", "--attach", str(memo),
             "--as", "root")
    assert "approved as business_owner" in out
    fails(capsys, "approve", MODEL, "1", "--stage", "validation", "--as", "root",
          match="separation of duties: root signed this submission as business_owner "
          "(stage 'scope') and cannot sign stage 'validation' as validator")
    fails(capsys, "reject", MODEL, "1", "--stage", "validation", "--reason", "no",
          "--as", "root", match="one person signs a submission in one role only")
    ok(capsys, "approve", MODEL, "1", "--stage", "validation", "--as", "val")
    fails(capsys, "approve", MODEL, "1", "--stage", "deployment_approval", "--as", "root",
          "--role", "risk_officer", match="cannot sign stage 'deployment_approval' as "
          "risk_officer")
    # the same role on a later stage is one role: allowed
    ok(capsys, "approve", MODEL, "1", "--stage", "deployment_approval", "--as", "root")
    ok(capsys, "approve", MODEL, "1", "--stage", "deployment_approval", "--as", "rita")
    code, out, _ = run(capsys, "gate", MODEL, "1")
    assert code == 0 and "ALLOWED" in out


# --------------------------------------------------------------------------- the gate


@pytest.fixture
def env(db: Store, tmp_path: Path) -> Env:
    return make_env(db, tmp_path)


def _forge(env: Env, signer: str) -> None:
    """Write what the pre-fix service let one person record: every stage of the
    submission signed by ``signer`` (in several roles) and the version approved."""
    with env.store.transaction() as s:
        user = registry.get_user(s, signer)
        sub = s.scalars(select(Submission)).one()
        now = datetime.now(UTC)
        for st in s.scalars(select(StageState).where(StageState.submission_id == sub.id)):
            if st.stage == "monitoring":
                continue
            s.add(SignOff(submission_id=sub.id, stage=st.stage, user_id=user.id,
                          role=st.roles[0], decision="approve", evidence={}, created_at=now))
            st.status, st.completed_at = "approved", now
        sub.state, sub.approved_at, sub.current_stage = "approved", now, "monitoring"


def test_gate_recomputes_the_rules_from_the_stored_signoffs(env: Env) -> None:
    with env.store.transaction() as s:
        root = registry.get_user(s, "root")
        registry.add_user(s, root, "root2", roles=["admin"])
        root2 = registry.get_user(s, "root2")
        for role in ("business_owner", "validator", "risk_officer"):
            registry.grant_role(s, root2, "root", role)
    env.certify("1")
    submit(env)
    _forge(env, "root")
    d = env.read(wf.gate, "1")
    assert d.allowed is False
    assert ("separation of duties: root signed this submission in 3 roles (business_owner, "
            "risk_officer, validator); one person signs in one role only") in d.reasons
    assert ("stage 'deployment_approval' has 1 of 2 required different approver(s) "
            "(no sign-off as business_owner)") in d.reasons


def test_gate_names_a_submitter_who_signed(env: Env) -> None:
    env.certify("1")
    submit(env)
    _forge(env, "alice")  # alice submitted and developed the version
    reasons = env.read(wf.gate, "1").reasons
    assert "separation of duties: alice submitted this version and signed stage 'scope'" \
        in reasons
    assert ("separation of duties: alice developed this version and signed the independent "
            "stage 'validation'") in reasons


# --------------------------------------------------------------------------- distinct people


def _people_env(db: Store, tmp_path: Path, signers: int) -> Env:
    env = make_env(db, tmp_path)
    write_policy(env.policy, {**WORKFLOW, "distinct_signers": {"high": signers}}, version="2")
    return env


def test_tier_can_require_distinct_people_across_the_submission(db: Store,
                                                                 tmp_path: Path) -> None:
    # scope (1 slot) + validation (1) + deployment (2): at most 4 different people
    env = _people_env(db, tmp_path, 4)
    env.certify("1")
    submit(env)
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    env.run("val", wf.approve, "1", stage="validation")
    env.run("rita", wf.approve, "1", stage="deployment_approval")
    info = env.read(wf.review, "1")
    eligible = [e["user"] for e in info.eligible]
    assert "ben" in eligible and "bea" not in eligible
    with pytest.raises(ConflictError, match=r"tier high needs 4 different people to sign this "
                       r"submission up to stage 'deployment_approval'; bea has already signed"):
        env.run("bea", wf.approve, "1", stage="deployment_approval")
    env.run("ben", wf.approve, "1", stage="deployment_approval")
    assert env.read(wf.gate, "1").allowed


def test_gate_rechecks_the_number_of_distinct_people(db: Store, tmp_path: Path) -> None:
    env = make_env(db, tmp_path)
    env.certify("1")
    submit(env)
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    env.run("val", wf.approve, "1", stage="validation")
    env.run("rita", wf.approve, "1", stage="deployment_approval")
    env.run("bea", wf.approve, "1", stage="deployment_approval")
    assert env.read(wf.gate, "1").allowed
    # three people signed; a policy that needs four (an edit is caught as a policy
    # change too, but the count is recomputed from the sign-offs, not a stored flag)
    with env.store.transaction() as s:
        sub = s.scalars(select(Submission)).one()
        assert wf.service.signature_problems(s, sub, registry.get_version(s, MODEL, "1")) == []
    write_policy(env.policy, {**WORKFLOW, "distinct_signers": {"high": 4}})
    reasons = env.read(wf.gate, "1").reasons
    assert ("tier high needs 4 different people to sign up to stage 'deployment_approval'; "
            "3 did") in reasons


def test_distinct_signers_beyond_the_slots_is_refused_with_the_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"workflow\.distinct_signers: tier 'high' needs 5 "
                       r"different signers but its stages up to 'deployment_approval' have only "
                       r"4 sign-off slot\(s\)"):
        parse_workflow({**WORKFLOW, "distinct_signers": {"high": 5}}, source="p.yaml")
    with pytest.raises(PolicyError, match=r"distinct_signers: unknown tier 'huge'"):
        parse_workflow({**WORKFLOW, "distinct_signers": {"huge": 2}})
    with pytest.raises(PolicyError, match=r"at least 1, got 0"):
        parse_workflow({**WORKFLOW, "distinct_signers": {"low": 0}})
    path = write_policy(tmp_path / "p.yaml", {**WORKFLOW, "distinct_signers": {"default": 9}})
    with pytest.raises(PolicyError, match=r"p\.yaml:\d+: workflow\.distinct_signers"):
        load_policy_info(str(path))
    cfg = parse_workflow({**WORKFLOW, "distinct_signers": {"high": 4, "default": 2}})
    assert (cfg.signers_for("high"), cfg.signers_for("low")) == (4, 2)
    assert parse_workflow(None).signers_for("high") == 1


def test_self_grant_refused_in_the_domain(db: Store, people) -> None:
    with db.transaction() as s:
        ada = registry.get_user(s, "ada")
        with pytest.raises(PermissionDenied, match="ada' may not grant themself"):
            registry.grant_role(s, ada, "ada", "risk_officer")
        registry.grant_role(s, ada, "ada", "admin")  # already held: no change, allowed
        assert registry.get_user(s, "ada").roles == {"admin"}
        registry.grant_role(s, ada, "dana", "risk_officer")
        assert registry.get_user(s, "dana").roles == {"data_scientist", "risk_officer"}


def test_risk_requirements_shows_the_people_a_tier_needs(tmp_path: Path, capsys) -> None:
    path = write_policy(tmp_path / "p.yaml", {**WORKFLOW, "distinct_signers": {"high": 4}})
    req = json.loads(ok(capsys, "risk", "requirements", "high", "--policy", str(path),
                        "--format", "json"))
    assert req["signoff_people"] == 4
    out = ok(capsys, "risk", "requirements", "high", "--policy", str(path))
    assert "different people signing one submission: at least 4 (one role each)" in out
    assert "different people" not in ok(capsys, "risk", "requirements", "low", "--policy",
                                         str(path))


# --------------------------------------------------------------------------- the web


def test_web_multi_role_admin_signs_one_role_and_the_queue_stops_offering(db: Store) -> None:
    import re

    from fastapi.testclient import TestClient

    from assay.api.app import create_app
    from assay.api.sample import populate

    populate(db, password="web test password 1", models=2, reports=False)
    with db.transaction() as s:
        admin = registry.get_user(s, "admin")
        registry.add_user(s, admin, "root2", roles=["admin"])
        with pytest.raises(PermissionDenied, match="may not grant themself"):
            registry.grant_role(s, admin, "admin", "validator")
    with db.transaction() as s:
        for role in ("business_owner", "validator", "risk_officer"):
            registry.grant_role(s, registry.get_user(s, "root2"), "admin", role)
    app = create_app(db.settings, store=db)
    web = TestClient(app, headers={"accept": "text/html"})

    def csrf(html: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    resp = web.post("/login", data={"username": "admin", "password": "web test password 1",
                                    "csrf_token": csrf(web.get("/login").text)},
                    follow_redirects=False)
    assert resp.status_code == 303, resp.text
    queue = web.get("/queue").text
    assert "fraud-alerts 1.0" in queue
    form = {"model": "fraud-alerts", "version": "1.0", "stage": "scope",
            "csrf_token": csrf(queue)}
    resp = web.post("/workflow/approve", data=form, follow_redirects=False,
                    files={"document": ("scope.pdf", b"%PDF-1.4 scope", "application/pdf")})
    assert resp.status_code == 303, resp.text
    assert "fraud-alerts 1.0" not in web.get("/queue").text  # validation is not theirs
    resp = web.post("/workflow/approve", data={**form, "stage": "validation"},
                    follow_redirects=False)
    assert resp.status_code == 409
    assert "one person signs a submission in one role only" in resp.text
