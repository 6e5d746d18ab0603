"""The model inventory: users and roles, models, versions, certifications, inventory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from _results import consistent_results
from assay import registry as reg
from assay.errors import ConflictError, InputError, NotFoundError, PermissionDenied
from assay.evidence import open_artifact
from assay.policy import load_policy
from assay.registry.tables import Model, ModelVersion
from assay.store import Store
from assay.store.audit import AuditEvent, list_events, verify_chain

HEX = "ab" * 32


def _model(db: Store, actor: str = "dana", name: str = "credit-pd", **kw) -> None:
    fields = {"owner": "bo", "decision_type": "human_in_the_loop", "criticality": "high",
              "purpose": "Probability of default for retail loans",
              "stakeholders": ["applicants", "credit officers"], **kw}
    with db.transaction() as s:
        reg.register_model(s, reg.get_user(s, actor), name, **fields)


def _events(db: Store) -> int:
    with db.transaction() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent))


def test_first_user_bootstraps_as_admin(db: Store) -> None:
    # the first user creates themself: they may not give themself a signing role
    with db.transaction() as s, pytest.raises(
            PermissionDenied, match=r"first user 'root'.*cannot give themself.*validator"):
        reg.add_user(s, None, "Root", roles=["validator"])
    assert _events(db) == 0
    with db.transaction() as s:
        user = reg.add_user(s, None, "Root", roles=["auditor"])
        assert user.username == "root" and user.roles == {"admin", "auditor"}
    with db.transaction() as s, pytest.raises(PermissionDenied):
        reg.add_user(s, None, "second")
    with db.transaction() as s:
        (ev,) = list_events(s)
        assert (ev.action, ev.actor, ev.subject_id) == ("user.add", "root", "root")


def test_only_admins_manage_users(db: Store, people) -> None:
    with db.transaction() as s:
        dana = reg.get_user(s, "dana")
        with pytest.raises(PermissionDenied, match=r"dana.*may not add users.*admin"):
            reg.add_user(s, dana, "eve")
        with pytest.raises(PermissionDenied):
            reg.grant_role(s, dana, "dana", "validator")


def test_user_input_errors(db: Store, people) -> None:
    with db.transaction() as s:
        ada = reg.get_user(s, "ada")
        with pytest.raises(InputError, match="unknown role 'pilot'"):
            reg.add_user(s, ada, "eve", roles=["pilot"])
        with pytest.raises(InputError, match="user name"):
            reg.add_user(s, ada, "bad name!")
        with pytest.raises(ConflictError, match="already exists"):
            reg.add_user(s, ada, "DANA")
        with pytest.raises(NotFoundError, match="unknown user 'nobody'"):
            reg.get_user(s, "nobody")


def test_grant_and_revoke_roles_are_audited(db: Store, people) -> None:
    with db.transaction() as s:
        ada = reg.get_user(s, "ada")
        reg.grant_role(s, ada, "dana", "validator")
    with db.transaction() as s:
        assert reg.get_user(s, "dana").roles == {"data_scientist", "validator"}
        ada = reg.get_user(s, "ada")
        reg.revoke_role(s, ada, "dana", "validator")
    with db.transaction() as s:
        assert reg.get_user(s, "dana").roles == {"data_scientist"}
        actions = [e.action for e in list_events(s, subject_id="dana", newest_first=False)]
        assert actions == ["user.add", "user.role_grant", "user.role_revoke"]
        with pytest.raises(ConflictError, match="last admin"):
            reg.revoke_role(s, reg.get_user(s, "ada"), "ada", "admin")


def test_deactivated_users_cannot_act(db: Store, people) -> None:
    with db.transaction() as s:
        reg.set_user_active(s, reg.get_user(s, "ada"), "dana", False)
    with db.transaction() as s:
        with pytest.raises(PermissionDenied, match="deactivated"):
            reg.get_user(s, "dana")
        assert not reg.get_user(s, "dana", allow_inactive=True).active


def test_register_model_records_inventory_fields(db: Store, people) -> None:
    _model(db, business_unit="Retail", out_of_scope_uses="small business loans")
    with db.transaction() as s:
        m = reg.get_model(s, "credit-pd")
        d = m.to_dict()
        assert d["owner"] == "bo" and d["decision_type"] == "human_in_the_loop"
        assert d["deployment_status"] == "development" and d["tier"] is None
        assert d["stakeholders"] == ["applicants", "credit officers"]
        (ev,) = list_events(s, subject_type="model")
        assert ev.action == "model.register" and ev.actor == "dana"
        assert ev.payload["purpose"] == "Probability of default for retail loans"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("decision_type", "robotic", "decision_type 'robotic': expected one of automated"),
    ("criticality", "extreme", "criticality 'extreme'"),
    ("owner", "nobody", "unknown user 'nobody'"),
    ("next_review_at", "next week", "expected an ISO date"),
    ("colour", "red", "unknown model field"),
])
def test_register_model_rejects_bad_fields_and_writes_nothing(db: Store, people, field, value,
                                                               message) -> None:
    before = _events(db)
    with pytest.raises((InputError, NotFoundError), match=message):
        _model(db, **{field: value})
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Model)) == 0
    assert _events(db) == before


def test_roles_that_may_not_register_models(db: Store, people) -> None:
    with pytest.raises(PermissionDenied, match=r"audrey.*may not register models"):
        _model(db, actor="audrey")
    with pytest.raises(PermissionDenied):
        _model(db, actor="victor")


def test_duplicate_model_is_a_conflict(db: Store, people) -> None:
    _model(db)
    with pytest.raises(ConflictError, match="already registered"):
        _model(db)


def test_versions_carry_lineage(db: Store, people) -> None:
    _model(db)
    with db.transaction() as s:
        dana = reg.get_user(s, "dana")
        v1 = reg.add_version(s, dana, "credit-pd", "1.0", artifact_digest=HEX,
                             training_data_source="s3://bank/loans/2025.parquet",
                             code_revision="9f1c2e0")
        assert v1.parent_version_id is None and v1.artifact_digest == "sha256:" + HEX
        v2 = reg.add_version(s, dana, "credit-pd", "1.1")
        assert v2.parent is v1
        v3 = reg.add_version(s, dana, "credit-pd", "2.0-rc1", parent_version=None)
        assert v3.parent_version_id is None
    with db.transaction() as s:
        assert [v.version for v in reg.list_versions(s, "credit-pd")] == ["1.0", "1.1", "2.0-rc1"]
        assert reg.get_version(s, "credit-pd", "1.1").to_dict()["parent_version"] == "1.0"
        ev = list_events(s, action="model.version_add", newest_first=False)[0]
        assert ev.evidence == {"artifact": "sha256:" + HEX}
        with pytest.raises(NotFoundError, match=r"no version '9\.9'"):
            reg.get_version(s, "credit-pd", "9.9")
        with pytest.raises(ConflictError):
            reg.add_version(s, reg.get_user(s, "dana"), "credit-pd", "1.0")
        with pytest.raises(InputError, match="artifact_digest"):
            reg.add_version(s, reg.get_user(s, "dana"), "credit-pd", "3", artifact_digest="md5:x")


def _results(status: str = "passed", model_sha: str | None = HEX) -> dict:
    """A results.json of the shipped credit-lending policy, tier high, consistent with it."""
    failed = ("performance.roc_auc",) if status == "blocked" else ()
    doc = consistent_results("credit-lending", "high", failed=failed, model_sha=model_sha)
    if status not in ("passed", "blocked"):
        doc["status"] = status
    assert doc["status"] == status
    return doc


def test_record_certification_stores_evidence_and_audits(db: Store, people) -> None:
    _model(db)
    raw = json.dumps(_results()).encode()
    with db.transaction() as s:
        dana = reg.get_user(s, "dana")
        mv = reg.add_version(s, dana, "credit-pd", "1.0", artifact_digest=HEX)
        cert = reg.record_certification(s, dana, "credit-pd", "1.0", None, raw, b"<html>r</html>")
        assert cert.passed and cert.tier == "high"
        assert cert.policy_digest == "sha256:" + load_policy("credit-lending").sha256
        version_id = mv.id
    assert open_artifact(db.settings, cert.results_digest) == raw
    assert open_artifact(db.settings, cert.report_digest) == b"<html>r</html>"
    with db.transaction() as s:
        latest = reg.latest_certification(s, version_id)
        assert latest is not None and latest.id == cert.id
        (ev,) = list_events(s, action="certification.record")
        assert ev.evidence["results"] == cert.results_digest
        assert ev.evidence["model"] == "sha256:" + HEX
        assert ev.evidence["evaluation_data"] == "sha256:" + "ef" * 32
        assert ev.payload["status"] == "passed"
        assert verify_chain(s).ok


def test_certification_of_another_artifact_is_refused(db: Store, people) -> None:
    _model(db)
    with db.transaction() as s:
        reg.add_version(s, reg.get_user(s, "dana"), "credit-pd", "1.0", artifact_digest=HEX)
    raw = json.dumps(_results(model_sha="00" * 32)).encode()
    with db.transaction() as s, pytest.raises(ConflictError, match="produced for model"):
        reg.record_certification(s, reg.get_user(s, "dana"), "credit-pd", "1.0", None, raw)


@pytest.mark.parametrize(("doc", "message"), [
    (b"not json", "not valid JSON"),
    (json.dumps(_results(status="green")).encode(), "status 'green'"),
    (json.dumps({**_results(), "policy": {"name": "p"}}).encode(), "policy"),
])
def test_bad_results_are_refused(db: Store, people, doc, message) -> None:
    _model(db)
    with db.transaction() as s:
        reg.add_version(s, reg.get_user(s, "dana"), "credit-pd", "1.0")
    before = _events(db)
    with db.transaction() as s, pytest.raises(InputError, match=message):
        reg.record_certification(s, reg.get_user(s, "dana"), "credit-pd", "1.0", None, doc)
    assert _events(db) == before


def test_a_crash_mid_operation_leaves_nothing(db: Store, people) -> None:
    _model(db)
    before = _events(db)
    with pytest.raises(RuntimeError), db.transaction() as s:
        dana = reg.get_user(s, "dana")
        reg.add_version(s, dana, "credit-pd", "1.0")
        reg.update_model(s, dana, "credit-pd", deployment_status="validation")
        raise RuntimeError("power cut")
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ModelVersion)) == 0
        assert reg.get_model(s, "credit-pd").deployment_status == "development"
    assert _events(db) == before


def test_update_model_audits_changes(db: Store, people) -> None:
    _model(db)
    with db.transaction() as s, pytest.raises(PermissionDenied, match="only its owner"):
        reg.update_model(s, reg.get_user(s, "dana"), "credit-pd", owner="rita")
    with db.transaction() as s:  # the owner hands the model over
        reg.update_model(s, reg.get_user(s, "bo"), "credit-pd", deployment_status="validation",
                         owner="rita")
    with db.transaction() as s:
        (ev,) = list_events(s, action="model.update")
        assert ev.payload["changes"]["deployment_status"] == {"from": "development",
                                                              "to": "validation"}
        assert ev.payload["changes"]["owner"] == {"from": "bo", "to": "rita"}


def test_inventory_orders_by_tier_and_flags_overdue_reviews(db: Store, people) -> None:
    now = datetime(2027, 3, 1, tzinfo=UTC)
    _model(db, name="a-low")
    _model(db, name="b-high-ok")
    _model(db, name="c-high-late")
    _model(db, name="d-unassessed")
    _model(db, name="e-retired-late", deployment_status="retired")
    with db.transaction() as s:
        rita = reg.get_user(s, "rita")
        reg.set_model_tier(s, rita, "a-low", "low", next_review_at=now + timedelta(days=300))
        reg.set_model_tier(s, rita, "b-high-ok", "high", next_review_at="2027-06-01")
        reg.set_model_tier(s, rita, "c-high-late", "high", next_review_at=now - timedelta(days=10))
        reg.set_model_tier(s, rita, "e-retired-late", "medium",
                           next_review_at=now - timedelta(days=10))
        with pytest.raises(PermissionDenied):
            reg.set_model_tier(s, reg.get_user(s, "dana"), "a-low", "high")
    with db.transaction() as s:
        rows = reg.inventory(s, now=now)
        assert [r.name for r in rows] == ["c-high-late", "b-high-ok", "e-retired-late", "a-low",
                                          "d-unassessed"]
        late = rows[0]
        assert late.overdue and late.days_overdue == 10 and late.tier == "high"
        assert not rows[2].overdue  # retired models are not reviewed
        assert [r.name for r in reg.inventory(s, now=now, overdue_only=True)] == ["c-high-late"]
        assert [r.name for r in reg.inventory(s, now=now, tier="high")] == ["c-high-late",
                                                                            "b-high-ok"]
        assert rows[1].to_dict()["next_review_at"] == "2027-06-01T00:00:00Z"
        assert rows[0].latest_version is None and rows[0].versions == 0

    with db.transaction() as s:
        dana = reg.get_user(s, "dana")
        reg.add_version(s, dana, "b-high-ok", "1", artifact_digest=HEX)
        reg.record_certification(s, dana, "b-high-ok", "1", None,
                                 json.dumps(_results("blocked")).encode())
        reg.record_certification(s, dana, "b-high-ok", "1", None,
                                 json.dumps(_results("passed")).encode())
        reg.add_version(s, dana, "a-low", "1")
        reg.add_version(s, dana, "a-low", "2")
    with db.transaction() as s:
        rows = {r.name: r for r in reg.inventory(s, now=now)}
        assert (rows["b-high-ok"].latest_version, rows["b-high-ok"].certification) == ("1",
                                                                                      "passed")
        assert (rows["a-low"].latest_version, rows["a-low"].versions) == ("2", 2)
        assert rows["a-low"].certification is None


def test_inventory_shows_the_approval_state_of_the_latest_version(db: Store, people) -> None:
    wf = pytest.importorskip("assay.workflow.tables")
    now = datetime(2027, 3, 1, tzinfo=UTC)
    for name in ("approved", "lapsed", "reviewing", "new"):
        _model(db, name=name)
    with db.transaction() as s:
        dana = reg.get_user(s, "dana")
        for name, state, stage, expires in [
                ("approved", "approved", None, now + timedelta(days=30)),
                ("lapsed", "approved", None, now - timedelta(days=1)),
                ("reviewing", "in_review", "validation", None)]:
            mv = reg.add_version(s, dana, name, "1")
            s.add(wf.Submission(model_version_id=mv.id, policy_name="p", policy_version="1",
                                policy_digest="sha256:" + "0" * 64, policy_source="p",
                                tier="high", state=state, current_stage=stage,
                                deployment_stage="deployment", submitted_by=dana.id,
                                submitted_at=now, updated_at=now, expires_at=expires))
        reg.add_version(s, dana, "new", "1")
    with db.transaction() as s:
        rows = {r.name: r.approval for r in reg.inventory(s, now=now)}
    assert rows == {"approved": "approved", "lapsed": "expired",
                    "reviewing": "in_review: validation", "new": None}


def test_deployed_is_set_only_through_the_deployment_gate(db: Store, people) -> None:
    """The registry alone cannot mark a model deployed: only the workflow's update, which
    asks the gate, can; a model with no approved version stays undeployed either way."""
    from assay.workflow import update_model

    _model(db)
    with pytest.raises(ConflictError, match=r"set through assay\.workflow\.update_model"), \
            db.transaction() as s:
        reg.update_model(s, reg.get_user(s, "ada"), "credit-pd", deployment_status="deployed")
    with pytest.raises(ConflictError, match=r"needs the deployment gate to allow one of its "
                       r"versions \(it has no version\)"), db.transaction() as s:
        update_model(s, reg.get_user(s, "ada"), "credit-pd", deployment_status="deployed")
    with pytest.raises(ConflictError, match="cannot be registered as 'deployed'"):
        _model(db, name="born-deployed", deployment_status="deployed")
    with db.transaction() as s:
        assert reg.get_model(s, "credit-pd").deployment_status == "development"
        update_model(s, reg.get_user(s, "ada"), "credit-pd", deployment_status="validation")
        assert reg.get_model(s, "credit-pd").deployment_status == "validation"
