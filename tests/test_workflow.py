"""The approval workflow on SQLite and PostgreSQL: stages in order, separation of
duties, the certification gate and waivers, conditions and expiry, change
control, audit events and whole-or-nothing transactions."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from _results import consistent_results
from assay import registry
from assay.errors import ConflictError, InputError, NotFoundError, PermissionDenied
from assay.evidence import store_bytes
from assay.store import Store
from assay.store.audit import AuditEvent, verify_chain
from assay.workflow import _common, signoffs
from assay.workflow import service as wf
from assay.workflow.tables import Comment, Condition, SignOff, StageState, Submission, Waiver

MODEL = "scorer"
HIGH_DEPLOY = {"default": {"roles": ["risk_officer"]},
               "high": {"roles": ["risk_officer", "business_owner"], "approvers": 2}}
WORKFLOW = {
    "approval_valid_days": {"default": 200},
    "waivers": {"granted_by": {"default": ["risk_officer"]}, "max_days": 60},
    "stages": [
        {"id": "scope", "evidence": ["documents"],
         "signoff": {"default": {"roles": ["business_owner"]}}},
        {"id": "validation", "evidence": ["certification"], "independent": True,
         "signoff": {"default": {"roles": ["validator"]}}},
        {"id": "deployment_approval", "evidence": ["certification"], "signoff": HIGH_DEPLOY},
        {"id": "monitoring", "signoff": {"default": {"roles": ["validator"]},
                                         "low": {"skip": True}}},
    ],
}
USERS = {
    "alice": ["data_scientist", "validator"],  # develops and submits
    "dave": ["data_scientist"],
    "val": ["validator"],
    "val2": ["validator"],
    "rita": ["risk_officer"],
    "rob": ["risk_officer"],
    "bea": ["business_owner"],
    "ben": ["business_owner"],
    "carl": ["compliance"],
    "aud": ["auditor"],
}


class Env:
    def __init__(self, store: Store, policy: Path) -> None:
        self.store = store
        self.policy = policy

    def run(self, user: str, fn, *args, **kw):
        with self.store.transaction() as s:
            return fn(s, registry.get_user(s, user), MODEL, *args, **kw)

    def read(self, fn, *args, **kw):
        with self.store.transaction() as s:
            return fn(s, MODEL, *args, **kw)

    def count(self, table) -> int:
        with self.store.transaction() as s:
            return s.scalar(select(func.count()).select_from(table))

    def certify(self, version: str, status: str = "passed", failed: tuple[str, ...] = (),
                policy: Path | None = None, tier: str = "high") -> int:
        """Record a results.json consistent with the policy: the ``failed`` checks fail."""
        path = policy or self.policy
        results = consistent_results(path, tier, failed=failed)
        assert results["status"] == status, results["status"]
        raw = json.dumps(results).encode()
        with self.store.transaction() as s:
            register(s, path)
            cert = registry.record_certification(s, registry.get_user(s, "val"), MODEL,
                                                 version, results, raw)
            return cert.id


def register(s, path: Path) -> None:
    """Register a policy file in the store (a no-op once registered; shipped ones are known)."""
    from assay.policy import SHIPPED_DIR

    if path.resolve().parent != SHIPPED_DIR:
        registry.register_policy(s, registry.get_user(s, "root"), path.read_bytes(),
                                 source=path.name)


#: The checks of every tier of the test policy, each blocking.
CHECKS = [
    {"id": "performance.accuracy", "threshold": {"min": 0.6}},
    {"id": "performance.roc_auc", "threshold": {"min": 0.7}},
    {"id": "fairness.disparate_impact", "threshold": {"min": 0.8}},
    {"id": "fairness.fpr_difference", "threshold": {"max": 0.1}},
    {"id": "drift.psi", "threshold": {"max": 0.25}},
]


def write_policy(path: Path, workflow: dict, version: str = "1") -> Path:
    doc = {"name": "wf-test", "version": version,
           "tiers": {"high": {"checks": CHECKS}, "medium": {"extends": "high"},
                     "low": {"extends": "high"}}, "workflow": workflow}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def env(db: Store, tmp_path: Path) -> Env:
    return make_env(db, tmp_path)


def make_env(db: Store, tmp_path: Path) -> Env:
    """Users with their roles, model 'scorer' (tier high) and its version 1 by alice."""
    policy = write_policy(tmp_path / "wf-test.yaml", WORKFLOW)
    with db.transaction() as s:
        admin = registry.add_user(s, None, "root")
        for name, roles in USERS.items():
            registry.add_user(s, admin, name, roles=roles)
        alice = registry.get_user(s, "alice")
        registry.register_model(s, alice, MODEL, owner="bea", decision_type="automated",
                                criticality="high")
        registry.set_model_tier(s, registry.get_user(s, "rita"), MODEL, "high")
        registry.add_version(s, alice, MODEL, "1", artifact_digest="sha256:" + "a" * 64)
        register(s, policy)
    assert store_bytes(db.settings, DOC) == DOC_DIGEST
    return Env(db, policy)


def submit(env: Env, version: str = "1", user: str = "alice") -> Submission:
    return env.run(user, wf.submit, version, policy=str(env.policy))


DOC = b"Scope: retail credit line increases; out of scope: new-to-bank applicants.\n"
DOC_DIGEST = "sha256:" + hashlib.sha256(DOC).hexdigest()


def doc(name: str = "scope.pdf") -> dict[str, str]:
    """A document already in the evidence store (the env fixture stores it)."""
    return {name: DOC_DIGEST}


def through_validation(env: Env, version: str = "1") -> None:
    env.certify(version)
    submit(env, version)
    env.run("bea", wf.approve, version, stage="scope", documents=doc())
    env.run("val", wf.approve, version, stage="validation")


def approved(env: Env, version: str = "1", **kw) -> None:
    through_validation(env, version)
    env.run("rita", wf.approve, version, stage="deployment_approval", **kw)
    env.run("bea", wf.approve, version, stage="deployment_approval")


# --------------------------------------------------------------------------- happy path


def test_high_tier_path_to_deployment_with_audit(env: Env):
    seq_before = env.count(AuditEvent)
    approved(env, conditions=["re-run fairness checks quarterly"], comment="ok with conditions")
    d = env.read(wf.gate, "1")
    assert d.allowed, d.reasons
    assert d.reasons == []
    assert d.conditions == ["re-run fairness checks quarterly"]
    assert d.evidence["artifact"] == "sha256:" + "a" * 64
    assert d.evidence["certification"].startswith("sha256:")
    assert d.evidence["policy"] == d.evidence["certified_policy"]
    # the post-deployment stage is still open after deployment is approved
    info = env.read(wf.review, "1")
    assert info.state == "approved"
    assert info.stage.stage == "monitoring"
    assert {e["user"] for e in info.eligible} == {"val", "val2"}  # alice developed it
    env.run("val2", wf.approve, "1", stage="monitoring")
    assert env.read(wf.review, "1").stage is None
    with env.store.transaction() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))
                   ][seq_before:]
        # assay's service key is registered as trusted the first time it signs a decision
        assert actions == ["certification.record", "workflow.submit", "key.register"] + [
            "workflow.approve"] * 5
        approvals = s.scalars(select(AuditEvent).where(AuditEvent.action == "workflow.approve"))
        assert all(e.evidence["attestation"].startswith("sha256:") for e in approvals)
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert last.subject_id == "scorer@1"
        assert last.payload["stage"] == "monitoring"
        deploy = next(e for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action == "workflow.approve")) if e.payload["stage_complete"]
            and e.payload["stage"] == "deployment_approval")
        assert deploy.evidence["certification"] == d.evidence["certification"]
        assert verify_chain(s).ok


def test_inventory_deployment_status_follows_the_workflow(env: Env):
    def status() -> str:
        with env.store.transaction() as s:
            return registry.get_model(s, MODEL).deployment_status

    assert status() == "development"
    through_validation(env)
    assert status() == "validation"
    env.run("rita", wf.approve, "1", stage="deployment_approval")
    env.run("bea", wf.approve, "1", stage="deployment_approval")
    assert status() == "approved"
    with env.store.transaction() as s:
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert last.payload["deployment_status"] == {"from": "validation", "to": "approved"}


def test_status_timeline_lists_every_event(env: Env):
    approved(env, conditions=["monthly drift report"], expires=datetime.now(UTC)
             + timedelta(days=30))
    env.run("carl", wf.comment, "1", "reviewed the scope memo", stage="scope")
    st = env.read(wf.status)
    assert st.model == MODEL and st.tier == "high"
    (v,) = st.versions
    assert v.state == "approved"
    assert [s.status for s in v.stages] == ["approved", "approved", "approved", "pending"]
    kinds = [e["event"] for e in v.timeline]
    assert kinds[0] == "submitted"
    assert kinds.count("approve") == 4
    assert "approved_for_deployment" in kinds
    assert kinds.index("approved_for_deployment") > max(
        i for i, k in enumerate(kinds[:-2]) if k == "approve")
    assert any(e["event"] == "document" and "scope.pdf" in e["text"] for e in v.timeline)
    assert any(e["event"] == "comment" and e["user"] == "carl" for e in v.timeline)
    assert any("monthly drift report" in e.get("text", "") for e in v.timeline)
    assert [c["text"] for c in v.conditions] == ["monthly drift report"]
    assert v.gate.allowed
    json.dumps(st.to_dict())  # JSON-ready for the CLI and the REST service


# --------------------------------------------------------------------------- order & roles


def test_stages_are_acted_on_in_order(env: Env):
    env.certify("1")
    submit(env)
    with pytest.raises(ConflictError, match="before stage 'scope' is approved"):
        env.run("rita", wf.approve, "1", stage="deployment_approval")
    with pytest.raises(ConflictError, match="before stage 'scope'"):
        env.run("val", wf.reject, "1", stage="validation", reason="too early")
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    with pytest.raises(ConflictError, match="'scope' is already approved"):
        env.run("ben", wf.approve, "1", stage="scope")
    with pytest.raises(InputError, match="unknown stage 'deploy'; expected one of scope"):
        env.run("val", wf.approve, "1", stage="deploy")
    assert env.count(SignOff) == 1


def test_role_outside_its_rights_and_auditor(env: Env):
    env.certify("1")
    submit(env)
    with pytest.raises(PermissionDenied, match="it needs business_owner"):
        env.run("val", wf.approve, "1", stage="scope", documents=doc())
    with pytest.raises(PermissionDenied):
        env.run("aud", wf.approve, "1", stage="scope", documents=doc())
    with pytest.raises(PermissionDenied, match="read-only"):
        env.run("aud", wf.comment, "1", "looks fine")
    with pytest.raises(PermissionDenied):
        env.run("val", wf.submit, "1", policy=str(env.policy))
    with pytest.raises(NotFoundError):
        env.run("bea", wf.approve, "9", stage="scope")
    with pytest.raises(NotFoundError, match="unknown user 'mallory'"):
        env.run("mallory", wf.approve, "1", stage="scope")
    assert env.count(SignOff) == 0
    assert env.count(Comment) == 0


def test_separation_of_duties(env: Env):
    env.certify("1")
    with env.store.transaction() as s:  # alice develops version 1, dave submits it
        registry.grant_role(s, registry.get_user(s, "root"), "dave", "business_owner")
    submit(env, user="dave")
    with pytest.raises(ConflictError, match="cannot sign off their own submission"):
        env.run("dave", wf.approve, "1", stage="scope", documents=doc())
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    # the developer holds the validator role but may not validate their own version
    with pytest.raises(ConflictError, match="alice developed this version"):
        env.run("alice", wf.approve, "1", stage="validation")
    env.run("val", wf.approve, "1", stage="validation")
    env.run("rita", wf.approve, "1", stage="deployment_approval")
    # one person, one slot: rita cannot also fill the second approver slot
    with pytest.raises(ConflictError, match="rita has already signed"):
        env.run("rita", wf.approve, "1", stage="deployment_approval")
    # another risk officer cannot take the business owner's slot
    with pytest.raises(ConflictError, match="still needs sign-off by business_owner"):
        env.run("rob", wf.approve, "1", stage="deployment_approval")
    assert not env.read(wf.gate, "1").allowed
    env.run("ben", wf.approve, "1", stage="deployment_approval")
    assert env.read(wf.gate, "1").allowed


def test_medium_tier_resolves_its_own_stages(env: Env):
    with env.store.transaction() as s:
        registry.set_model_tier(s, registry.get_user(s, "rita"), MODEL, "medium")
    env.certify("1", tier="medium")
    sub = submit(env)
    assert sub.tier == "medium"
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    env.run("val", wf.approve, "1", stage="validation")
    env.run("rita", wf.approve, "1", stage="deployment_approval")  # one approver suffices
    assert env.read(wf.gate, "1").allowed


def test_low_tier_skips_stages(env: Env):
    with env.store.transaction() as s:
        registry.set_model_tier(s, registry.get_user(s, "rita"), MODEL, "low")
    env.certify("1", tier="low")
    submit(env)
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    env.run("val", wf.approve, "1", stage="validation")
    env.run("rita", wf.approve, "1", stage="deployment_approval")
    info = env.read(wf.review, "1")
    assert info.stage is None  # monitoring is skipped for low
    with pytest.raises(ConflictError, match="not required for tier low"):
        env.run("val", wf.approve, "1", stage="monitoring")


def test_submit_needs_a_tier_and_no_double_submission(env: Env):
    with env.store.transaction() as s:
        registry.set_model_tier(s, registry.get_user(s, "rita"), MODEL, None)
    with pytest.raises(ConflictError, match="no risk tier yet"):
        submit(env)
    assert env.count(Submission) == 0
    with env.store.transaction() as s:
        registry.set_model_tier(s, registry.get_user(s, "rita"), MODEL, "high")
    submit(env)
    with pytest.raises(ConflictError, match="already in review"):
        submit(env)
    assert env.count(Submission) == 1


# --------------------------------------------------------------------------- evidence


def test_documents_evidence_needed_and_comment_attaches_it(env: Env):
    env.certify("1")
    submit(env)
    with pytest.raises(ConflictError, match="no document attached to stage 'scope'"):
        env.run("bea", wf.approve, "1", stage="scope")
    env.run("carl", wf.comment, "1", "scope memo attached", stage="scope",
            documents=doc("memo.pdf"))
    so = env.run("bea", wf.approve, "1", stage="scope")
    assert so.evidence["document:memo.pdf"] == DOC_DIGEST
    with pytest.raises(InputError, match="expected a digest"):
        env.run("carl", wf.comment, "1", "bad", stage="scope", documents={"x": "abc"})
    with pytest.raises(InputError, match="is not in the evidence store"):
        env.run("carl", wf.comment, "1", "bad", stage="scope",
                documents={"x": "sha256:" + "0" * 64})


def test_blocked_certification_blocks_until_waived(env: Env):
    env.certify("1", status="blocked",
                failed=("fairness.disparate_impact", "fairness.fpr_difference"))
    submit(env)
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    with pytest.raises(ConflictError, match=re.escape(
            "failed checks without a valid waiver: fairness.disparate_impact, "
            "fairness.fpr_difference")):
        env.run("val", wf.approve, "1", stage="validation")
    soon = datetime.now(UTC) + timedelta(days=30)
    env.run("rita", wf.waive, "1", check_id="fairness.disparate_impact", justification="known gap",
            expires=soon)
    with pytest.raises(ConflictError, match=r"without a valid waiver: fairness\.fpr_difference$"):
        env.run("val", wf.approve, "1", stage="validation")
    w = env.run("rob", wf.waive, "1", check_id="fairness.fpr_difference",
                justification="mitigation due in Q1", expires=soon)
    env.run("val", wf.approve, "1", stage="validation")
    env.run("rita", wf.approve, "1", stage="deployment_approval")
    env.run("bea", wf.approve, "1", stage="deployment_approval")
    d = env.read(wf.gate, "1")
    assert d.allowed
    assert d.evidence[f"waiver:{w.id}"].startswith("sha256:")
    # when the waivers lapse the gate closes again
    later = env.read(wf.gate, "1", now=soon + timedelta(days=1))
    assert not later.allowed
    assert any("without a valid waiver" in r for r in later.reasons)


def test_whole_certification_waiver_and_missing_certification(env: Env):
    submit(env)
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    with pytest.raises(ConflictError, match="no certification under policy 'wf-test' tier high"):
        env.run("val", wf.approve, "1", stage="validation")
    soon = datetime.now(UTC) + timedelta(days=10)
    env.run("rita", wf.waive, "1", justification="vendor model; evaluated offline",
            expires=soon)
    env.run("val", wf.approve, "1", stage="validation")
    # a certification waiver covers the certification it was granted for, not a later one
    env.certify("1", status="blocked", failed=("performance.roc_auc",))
    with pytest.raises(ConflictError, match=r"performance\.roc_auc"):
        env.run("rita", wf.approve, "1", stage="deployment_approval")


@pytest.mark.parametrize(
    ("user", "kw", "error", "match"),
    [
        ("rita", {"justification": "  "}, InputError, "needs a justification"),
        ("rita", {"expires": None}, InputError, "needs an expiry date"),
        ("rita", {"expires": datetime(2020, 1, 1, tzinfo=UTC)}, InputError, "not in the future"),
        ("rita", {"expires": datetime.now(UTC) + timedelta(days=61)}, InputError,
         "more than 60 days away"),
        ("carl", {}, PermissionDenied, "allows risk_officer"),
        ("aud", {}, PermissionDenied, "cannot grant waivers"),
    ],
)
def test_bad_waivers_write_nothing(env: Env, user, kw, error, match):
    env.certify("1", status="blocked", failed=("fairness.disparate_impact",))
    submit(env)
    args = {"justification": "reason", "expires": datetime.now(UTC) + timedelta(days=5),
            "check_id": "fairness.disparate_impact", **kw}
    before = env.count(AuditEvent)
    with pytest.raises(error, match=match):
        env.run(user, wf.waive, "1", **args)
    assert env.count(Waiver) == 0
    assert env.count(AuditEvent) == before


def test_revoking_a_waiver_closes_the_gate(env: Env):
    env.certify("1", status="blocked", failed=("fairness.disparate_impact",))
    submit(env)
    soon = datetime.now(UTC) + timedelta(days=20)
    w = env.run("rita", wf.waive, "1", check_id="fairness.disparate_impact", justification="gap",
                expires=soon)
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    env.run("val", wf.approve, "1", stage="validation")
    env.run("rita", wf.approve, "1", stage="deployment_approval")
    env.run("bea", wf.approve, "1", stage="deployment_approval")
    assert env.read(wf.gate, "1").allowed
    with pytest.raises(InputError, match="needs a reason"):
        env.run("rob", wf.revoke_waiver, "1", w.id, reason="")
    with pytest.raises(PermissionDenied, match="cannot revoke waiver"):
        env.run("val", wf.revoke_waiver, "1", w.id, reason="no")
    with pytest.raises(NotFoundError, match="no waiver #77"):
        env.run("rob", wf.revoke_waiver, "1", 77, reason="no")
    env.run("rob", wf.revoke_waiver, "1", w.id, reason="complaints about declines")
    d = env.read(wf.gate, "1")
    assert not d.allowed
    assert "without a valid waiver: fairness.disparate_impact" in d.reasons[0]
    with pytest.raises(ConflictError, match="already ended"):
        env.run("rita", wf.revoke_waiver, "1", w.id, reason="again")
    st = env.read(wf.status).versions[0]
    assert st.waivers[0]["valid"] is False
    assert any("waiver #1 revoked: complaints about declines" in e["text"]
               for e in st.timeline)


def test_waiving_an_unknown_check_is_refused(env: Env):
    env.certify("1", status="blocked", failed=("fairness.disparate_impact",))
    submit(env)
    with pytest.raises(InputError,
                       match=r"has no such check; failed checks: fairness\.disparate_impact"):
        env.run("rita", wf.waive, "1", check_id="fairness.dp_ratoi", justification="typo",
                expires=datetime.now(UTC) + timedelta(days=5))
    assert env.count(Waiver) == 0


def test_review_tells_the_reader_whether_they_may_sign(env: Env):
    env.certify("1")
    submit(env)
    with env.store.transaction() as s:
        bea = wf.review(s, MODEL, "1", actor=registry.get_user(s, "bea"))
        alice = wf.review(s, MODEL, "1", actor=registry.get_user(s, "alice"))
        val = wf.review(s, MODEL, "1", actor=registry.get_user(s, "val"))
    assert bea.you_may_sign_as == ["business_owner"] and bea.why_not_you is None
    assert alice.you_may_sign_as == [] and "own submission" in alice.why_not_you
    assert "it needs business_owner" in val.why_not_you


def test_developer_cannot_waive_and_nothing_to_waive(env: Env):
    env.certify("1")
    submit(env)
    with env.store.transaction() as s:
        registry.grant_role(s, registry.get_user(s, "root"), "alice", "risk_officer")
    soon = datetime.now(UTC) + timedelta(days=5)
    with pytest.raises(ConflictError, match="separation of duties"):
        env.run("alice", wf.waive, "1", justification="x", expires=soon,
                check_id="fairness.disparate_impact")
    with pytest.raises(ConflictError, match="nothing to waive"):
        env.run("rita", wf.waive, "1", justification="x", expires=soon)


# --------------------------------------------------------------------------- reject, conditions


def test_rejection_needs_reason_closes_and_allows_resubmission(env: Env):
    through_validation(env)
    with pytest.raises(InputError, match="needs a reason"):
        env.run("rita", wf.reject, "1", stage="deployment_approval", reason=" ")
    env.run("rita", wf.reject, "1", stage="deployment_approval",
            reason="stress test missing")
    d = env.read(wf.gate, "1")
    assert not d.allowed
    assert "stress test missing" in d.reasons[0]
    with pytest.raises(ConflictError, match="is rejected"):
        env.run("bea", wf.approve, "1", stage="deployment_approval")
    sub = submit(env)
    assert sub.current_stage == "scope"
    st = env.read(wf.status).versions[0]
    assert st.state == "in_review"
    assert [e["event"] for e in st.timeline].count("submitted") == 2
    assert any(e["event"] == "reject" and e["text"] == "stress test missing"
               for e in st.timeline)


def test_conditions_and_expiry(env: Env):
    with pytest.raises(InputError, match="not in the future"):
        approved(env, expires=datetime(2020, 1, 1, tzinfo=UTC))
    until = datetime.now(UTC) + timedelta(days=20)
    env.run("rita", wf.approve, "1", stage="deployment_approval", expires=until,
            conditions=["quarterly fairness re-run", "human review of declines"])
    env.run("bea", wf.approve, "1", stage="deployment_approval")
    assert env.count(Condition) == 2
    d = env.read(wf.gate, "1")
    assert d.allowed
    assert d.approved_until.startswith(until.strftime("%Y-%m-%d"))
    later = env.read(wf.gate, "1", now=until + timedelta(hours=1))
    assert not later.allowed
    assert any("approval expired" in r for r in later.reasons)


def test_meeting_a_condition(env: Env):
    approved(env, conditions=["quarterly fairness re-run"])
    cond = env.read(wf.status).versions[0].conditions[0]
    assert cond["status"] == "open" and cond["text"] == "quarterly fairness re-run"
    with pytest.raises(InputError, match="--note"):
        env.run("val", wf.meet_condition, "1", cond["id"], note=" ")
    with pytest.raises(ConflictError, match="separation of duties"):
        env.run("alice", wf.meet_condition, "1", cond["id"], note="done")
    with pytest.raises(PermissionDenied, match="cannot close conditions"):
        env.run("ben", wf.meet_condition, "1", cond["id"], note="done")
    with pytest.raises(NotFoundError, match="no condition #999"):
        env.run("val", wf.meet_condition, "1", 999, note="done")
    events = env.count(AuditEvent)
    env.run("rita", wf.meet_condition, "1", cond["id"], note="Q1 re-run passed, report #12")
    assert env.count(AuditEvent) == events + 1
    with pytest.raises(ConflictError, match="already met"):
        env.run("val", wf.meet_condition, "1", cond["id"], note="again")
    st = env.read(wf.status).versions[0]
    assert st.conditions[0]["status"] == "met"
    assert st.gate.conditions == []
    assert any(e["event"] == "comment" and "Q1 re-run passed" in e["text"] for e in st.timeline)


def test_default_validity_from_policy(env: Env):
    approved(env)
    d = env.read(wf.gate, "1")
    expected = (datetime.now(UTC) + timedelta(days=200)).strftime("%Y-%m-%d")
    assert d.approved_until[:10] == expected


# --------------------------------------------------------------------------- change control


def test_new_policy_version_sends_back_to_certification(env: Env):
    approved(env)
    assert env.read(wf.gate, "1").allowed
    wf_changed = json.loads(json.dumps(WORKFLOW))
    wf_changed["approval_valid_days"] = {"default": 100}
    write_policy(env.policy, wf_changed, version="2")
    d = env.read(wf.gate, "1")
    assert not d.allowed
    assert any("policy 'wf-test' changed" in r and "recertify" in r for r in d.reasons)
    assert env.read(wf.status).versions[0].changes == d.reasons
    seq = env.count(AuditEvent)
    reasons = env.run("rob", wf.recheck, "1")
    assert reasons == d.reasons
    assert env.count(AuditEvent) == seq + 1
    st = env.read(wf.status).versions[0]
    assert st.state == "recertification_required"
    # recertify under the new policy and submit again
    env.certify("1")
    sub = submit(env)
    assert sub.policy_version == "2"


def test_risk_tier_change_sends_back(env: Env):
    approved(env)
    with env.store.transaction() as s:
        registry.set_model_tier(s, registry.get_user(s, "rita"), MODEL, "medium")
    d = env.read(wf.gate, "1")
    assert not d.allowed
    assert d.reasons == ["risk tier changed from high to medium since submission: "
                         "recertify under tier medium"]


def test_risk_assessment_evidence_from_the_risk_register(env: Env):
    from assay.risk import service as risk
    from assay.risk.config import CATEGORIES
    from assay.risk.questionnaire import load_questionnaire

    section = dict(WORKFLOW, stages=[
        {"id": "fairness_risk", "evidence": ["risk_assessment"],
         "signoff": {"default": {"roles": ["risk_officer"]}}},
        WORKFLOW["stages"][2]])
    write_policy(env.policy, section, version="2")
    env.certify("1")
    submit(env)
    with pytest.raises(ConflictError, match="no risk assessment of this version"):
        env.run("rita", wf.approve, "1", stage="fairness_risk")
    with env.store.transaction() as s:
        cats = {c: {"likelihood": 4, "impact": 5, "rationale": f"why {c}"} for c in CATEGORIES}
        q = load_questionnaire()
        answers = {x.id: ([] if x.multiple else x.options[0].value) for x in q.questions}
        a = risk.assess(s, registry.get_user(s, "rob"), MODEL, "1", categories=cats,
                        answers=answers)
        digest = a.record_digest
    so = env.run("rita", wf.approve, "1", stage="fairness_risk")
    assert so.evidence["risk_assessment"] == digest


def test_policy_change_during_review_blocks_deployment_approval(env: Env):
    through_validation(env)
    write_policy(env.policy, WORKFLOW, version="2")
    with pytest.raises(ConflictError, match=r"policy 'wf-test' changed .* submit the version"):
        env.run("rita", wf.approve, "1", stage="deployment_approval")
    # a certification made under the old policy file does not count for a new submission
    env.run("rita", wf.reject, "1", stage="deployment_approval", reason="policy changed")
    submit(env)
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    with pytest.raises(ConflictError, match="another version of policy 'wf-test'"):
        env.run("val", wf.approve, "1", stage="validation")
    env.certify("1")
    env.run("val", wf.approve, "1", stage="validation")


def test_newer_certification_that_fails_sends_back(env: Env):
    approved(env)
    env.certify("1", status="blocked", failed=("drift.psi",))
    d = env.read(wf.gate, "1")
    assert not d.allowed
    assert any("newer certification" in r for r in d.reasons)


def test_expired_approval_recheck_records_and_allows_resubmit(env: Env):
    approved(env)
    with pytest.raises(ConflictError, match="already approved"):
        submit(env)
    future = datetime.now(UTC) + timedelta(days=201)
    reasons = env.run("rita", wf.recheck, "1", now=future)
    assert any("approval expired" in r for r in reasons)
    assert env.read(wf.review, "1").state == "recertification_required"
    assert env.run("rita", wf.recheck, "1") == reasons  # recorded: stays until resubmitted
    with pytest.raises(PermissionDenied):
        env.run("aud", wf.recheck, "1")


def test_new_model_version_needs_its_own_approval(env: Env):
    approved(env)
    with env.store.transaction() as s:
        registry.add_version(s, registry.get_user(s, "alice"), MODEL, "2",
                             artifact_digest="sha256:" + "c" * 64)
    old = env.read(wf.gate, "1")
    assert old.allowed
    assert old.notes == ["newer version(s) 2 registered: each needs its own certification "
                         "and approval"]
    new = env.read(wf.gate, "2")
    assert not new.allowed
    assert new.reasons == ["not submitted for approval (assay submit)"]
    st = env.read(wf.status)
    assert st.changes == ["version 2 registered after approved version 1: it needs "
                          "certification and approval (not submitted)"]


def test_policy_may_end_older_approvals_on_a_new_version(env: Env):
    write_policy(env.policy, dict(WORKFLOW, new_version_revokes_approval=True), version="2")
    approved(env)
    assert env.read(wf.gate, "1").allowed
    with env.store.transaction() as s:
        registry.add_version(s, registry.get_user(s, "alice"), MODEL, "2")
    d = env.read(wf.gate, "1")
    assert not d.allowed
    assert d.reasons == ["newer version(s) 2 registered: policy 'wf-test' ends the approval "
                         "of older versions"]


def test_submitting_a_new_version_supersedes_an_open_review(env: Env):
    env.certify("1")
    submit(env)
    with env.store.transaction() as s:
        registry.add_version(s, registry.get_user(s, "alice"), MODEL, "2")
    submit(env, "2")
    st = {v.version: v for v in env.read(wf.status).versions}
    assert st["1"].state == "superseded"
    assert st["2"].state == "in_review"
    with pytest.raises(ConflictError, match="superseded: version 2 submitted"):
        env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    # submitting the older version again leaves the newer one's review open
    submit(env, "1")
    st = {v.version: v for v in env.read(wf.status).versions}
    assert (st["1"].state, st["2"].state) == ("in_review", "in_review")


# --------------------------------------------------------------------------- transactions


def test_crash_mid_operation_leaves_nothing(env: Env, monkeypatch: pytest.MonkeyPatch):
    through_validation(env)
    counts = (env.count(SignOff), env.count(AuditEvent), env.count(Condition))

    def boom(*a, **k):
        raise RuntimeError("disk full")

    # the sign-off, its conditions and the stage change are flushed before the audit
    # event is appended; a failure there must roll all of them back
    monkeypatch.setattr(signoffs, "_audit", boom)
    with pytest.raises(RuntimeError):
        env.run("rita", wf.approve, "1", stage="deployment_approval", conditions=["c"])
    monkeypatch.undo()
    assert (env.count(SignOff), env.count(AuditEvent), env.count(Condition)) == counts
    info = env.read(wf.review, "1")
    assert info.stage.stage == "deployment_approval" and info.stage.signed == []


def test_stale_revision_is_a_conflict(env: Env):
    through_validation(env)
    rev = env.read(wf.review, "1").revision
    env.run("rita", wf.approve, "1", stage="deployment_approval", expected_revision=rev)
    with pytest.raises(ConflictError, match="changed since you read it"):
        env.run("bea", wf.approve, "1", stage="deployment_approval", expected_revision=rev)
    assert env.count(SignOff) == 3


def test_row_version_stops_a_stale_writer(env: Env):
    """Two sessions load the same submission; the second writer loses."""
    env.certify("1")
    submit(env)
    start = env.read(wf.review, "1").revision
    s1, s2 = env.store.sessions(), env.store.sessions()
    try:
        a = s1.scalars(select(Submission)).one()
        b = s2.scalars(select(Submission)).one()
        a.updated_at = datetime.now(UTC)
        s1.commit()
        b.updated_at = datetime.now(UTC)
        with pytest.raises(ConflictError, match="at the same time"):
            _common._flush(s2, "approve")
        s2.rollback()
    finally:
        s1.close()
        s2.close()
    with env.store.transaction() as s:
        assert s.scalars(select(Submission.revision)).one() == start + 1


def test_stage_rows_snapshot_the_policy(env: Env):
    env.certify("1")
    sub = submit(env)
    with env.store.transaction() as s:
        rows = s.scalars(select(StageState).where(StageState.submission_id == sub.id)
                         .order_by(StageState.position)).all()
        assert [(r.stage, r.roles, r.approvers, r.status) for r in rows] == [
            ("scope", ["business_owner"], 1, "pending"),
            ("validation", ["validator"], 1, "pending"),
            ("deployment_approval", ["risk_officer", "business_owner"], 2, "pending"),
            ("monitoring", ["validator"], 1, "pending"),
        ]


# --------------------------------------------------------------------------- shipped policies


def drive(env: Env, version: str = "1") -> list[tuple[str, str]]:
    """Sign every stage with whoever review() says may sign; return (stage, user) pairs."""
    signed: list[tuple[str, str]] = []
    for _ in range(40):
        info = env.read(wf.review, version)
        if info.stage is None:
            return signed
        st = info.stage
        eligible = info.eligible
        want = list(info.missing_roles)
        pick = next((u for u in eligible if any(r in want for r in u["roles"])), None)
        if pick is None and info.approvals_needed:
            pick = eligible[0] if eligible else None
        assert pick is not None, f"nobody may sign {st.stage}: {info}"
        docs = doc(f"{st.stage}.pdf") if "documents" in st.evidence else None
        env.run(pick["user"], wf.approve, version, stage=st.stage, documents=docs)
        signed.append((st.stage, pick["user"]))
    raise AssertionError("workflow did not finish")


@pytest.mark.parametrize("policy_name", ["default", "credit-lending"])
@pytest.mark.parametrize("tier", ["high", "low"])
def test_shipped_policies_drive_to_deployment(env: Env, backend: str, policy_name: str,
                                             tier: str):
    if backend != "sqlite":
        pytest.skip("policy content, not the database, is under test here")
    from assay.risk import service as risk
    from assay.risk.config import CATEGORIES
    from assay.risk.questionnaire import load_questionnaire
    from assay.workflow.policy import SHIPPED

    path = SHIPPED / f"{policy_name}.yaml"
    q = load_questionnaire()
    answers = {x.id: ([] if x.multiple else x.options[0].value) for x in q.questions}
    cats = {c: {"likelihood": 2, "impact": 2, "rationale": f"why {c}"} for c in CATEGORIES}
    with env.store.transaction() as s:
        root = registry.get_user(s, "root")
        registry.add_user(s, root, "sam", roles=["security"])
        registry.add_user(s, root, "cleo", roles=["compliance"])
        rob = registry.get_user(s, "rob")
        risk.assess(s, rob, MODEL, "1", categories=cats, answers=answers, policy=policy_name)
        # the tier under test, whatever the assessment gave
        registry.set_model_tier(s, rob, MODEL, tier)
    env.certify("1", policy=path, tier=tier)
    sub = env.run("alice", wf.submit, "1", policy=policy_name)
    assert (sub.policy_name, sub.tier) == (policy_name, tier)
    signed = drive(env)
    stages = [s for s, _ in signed]
    d = env.read(wf.gate, "1")
    assert d.allowed, d.reasons
    assert "validation_performance" in stages
    assert ("validation_performance", "alice") not in signed  # the developer never validates
    deployers = {u for s, u in signed if s == "deployment_approval"}
    if tier == "high":
        assert len(deployers) >= 2
    if policy_name == "credit-lending":
        assert "regulatory_review" in stages  # fair-lending review even for low tier


# --------------------------------------------------------------------------- monitoring


def _recertify_alert(env: Env, version: str = "1", rule: str = "performance.drop") -> int:
    """A breached monitoring rule with ``action: recertify`` on the version, as
    ``assay monitor run`` stores it (tests/test_monitor.py raises them from real data)."""
    from assay.monitor.tables import MonitorAlert, MonitorEvaluation
    from assay.store.db import utcnow

    start = datetime(2026, 11, 2, tzinfo=UTC)
    with env.store.transaction() as s:
        mv = registry.get_version(s, MODEL, version)
        common = dict(model_version_id=mv.id, period="daily", window_start=start,
                      window_end=start + timedelta(days=1), rule=rule, rule_id=rule,
                      metric="roc_auc", label="overall", value=0.12, ci_low=0.08,
                      ci_high=0.16, threshold={"max": 0.05}, created_at=utcnow())
        ev = MonitorEvaluation(policy_name="wf-test", tier="high", state="fail", n=5000,
                               **common)
        s.add(ev)
        s.flush()
        alert = MonitorAlert(evaluation_id=ev.id, severity="block", action="recertify",
                             state="open", **common)
        s.add(alert)
        s.flush()
        return alert.id


def test_a_recertify_alert_closes_the_gate_until_a_waiver_or_a_new_certification(env: Env):
    approved(env)
    assert env.read(wf.gate, "1").allowed
    first = _recertify_alert(env)
    d = env.read(wf.gate, "1")
    assert not d.allowed
    assert [r for r in d.reasons if "monitoring" in r] == [
        f"monitoring alert #{first}: rule performance.drop (overall) on the window from "
        "2026-11-02 requires re-certification (action: recertify): certify again, or grant "
        "a waiver"]
    # nobody waives a passing certification, except to answer a monitoring alert: a waiver
    # granted after the alert reopens the gate (by someone the policy allows)
    with pytest.raises(PermissionDenied):
        env.run("val", wf.waive, "1", justification="known seasonal dip",
                expires=datetime.now(UTC) + timedelta(days=10))
    env.run("rita", wf.waive, "1", justification="known seasonal dip; retraining booked",
            expires=datetime.now(UTC) + timedelta(days=10))
    assert env.read(wf.gate, "1").allowed
    # an alert after the waiver closes it again; a new passing certification reopens it
    second = _recertify_alert(env)
    assert [r for r in env.read(wf.gate, "1").reasons if "monitoring" in r] == [
        f"monitoring alert #{second}: rule performance.drop (overall) on the window from "
        "2026-11-02 requires re-certification (action: recertify): certify again, or grant "
        "a waiver"]
    env.certify("1")
    assert env.read(wf.gate, "1").allowed


def test_without_a_monitoring_alert_a_passing_certification_has_nothing_to_waive(env: Env):
    approved(env)
    with pytest.raises(ConflictError, match="there is nothing to waive"):
        env.run("rita", wf.waive, "1", justification="just in case",
                expires=datetime.now(UTC) + timedelta(days=10))
