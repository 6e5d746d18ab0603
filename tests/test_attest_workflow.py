"""Signed workflow decisions on SQLite and PostgreSQL: each sign-off and rejection is
a stage-decision statement signed by assay's service key, a recorded gate decision is
signed too, and the gate lists the attestations it rests on (API, CLI, domain)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy import select

from _results import consistent_results
from assay import registry
from assay.api.app import create_app
from assay.auth import service as auth
from assay.cli import main
from assay.evidence import attest, digest_bytes, open_artifact
from assay.evidence import keys as K
from assay.evidence.predicates import certification_statement
from assay.evidence.tables import TrustedKey
from assay.store import Store
from assay.store.audit import AuditEvent
from assay.workflow import service as wf
from test_workflow import DOC_DIGEST, MODEL, Env, approved, doc, make_env, submit

ARTEFACT = "sha256:" + "a" * 64


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def env(db: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.delenv(K.SIGNING_KEY_ENV, raising=False)
    return make_env(db, tmp_path)


def _service_keys(env: Env) -> dict[str, attest.PublicKey]:
    with env.store.transaction() as s:
        rows = s.scalars(select(TrustedKey).where(TrustedKey.purpose == "service")).all()
        return {r.keyid: attest.load_public_key(r.public_key.encode()) for r in rows}


def _open(env: Env, digest: str) -> attest.Verified:
    return attest.verify_envelope(open_artifact(env.store.settings, digest), _service_keys(env))


def test_each_signoff_and_rejection_is_signed(env: Env) -> None:
    env.certify("1")
    submit(env)
    so = env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    with env.store.transaction() as s:
        (att,) = K.attestations_of(s, f"{MODEL}@1", kind="stage_decision")
        assert att.ref == f"signoff:{so.id}" and att.subject_digest == ARTEFACT
        digest = att.envelope_digest
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "workflow.approve")).one()
        assert ev.evidence["attestation"] == digest
    ok = _open(env, digest)
    assert ok.predicate_type == attest.STAGE_DECISION
    assert ok.subject_digests() == ["a" * 64]
    p = ok.predicate
    assert (p["stage"], p["decision"], p["by"], p["role"]) == ("scope", "approve", "bea",
                                                               "business_owner")
    assert p["documents"] == {"scope.pdf": DOC_DIGEST}
    assert p["at"].endswith("Z") and p["stageComplete"] is True
    # a rejection is signed the same way
    rej = env.run("val", wf.reject, "1", stage="validation", reason="calibration is off")
    with env.store.transaction() as s:
        atts = K.attestations_of(s, f"{MODEL}@1", kind="stage_decision")
        assert [a.ref for a in atts] == [f"signoff:{so.id}", f"signoff:{rej.id}"]
        digest = atts[-1].envelope_digest
    p = _open(env, digest).predicate
    assert (p["decision"], p["by"], p["reason"]) == ("reject", "val", "calibration is off")
    # one service key, registered once, trusted for purpose 'service'
    assert len(_service_keys(env)) == 1


def _signed_certification(env: Env) -> int:
    key = attest.generate_key()
    results = consistent_results(env.policy, "high", model_sha=ARTEFACT)
    raw = json.dumps(results).encode()
    envelope = json.dumps(attest.sign_statement(
        certification_statement(results, digest_bytes(raw)), key)).encode()
    with env.store.transaction() as s:
        root = registry.get_user(s, "root")
        K.register_key(s, root, "ci", attest.public_pem(key), purpose="ci")
        return registry.record_certification(s, registry.get_user(s, "val"), MODEL, "1",
                                             results, raw, attestation=envelope).id


def _approve_all(env: Env) -> None:
    submit(env)
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    env.run("val", wf.approve, "1", stage="validation")
    env.run("rita", wf.approve, "1", stage="deployment_approval")
    env.run("bea", wf.approve, "1", stage="deployment_approval")


def test_the_gate_lists_and_signs_what_it_rests_on(env: Env) -> None:
    cert_id = _signed_certification(env)
    _approve_all(env)
    d = env.read(wf.gate, "1")
    assert d.allowed, d.reasons
    kinds = [(a["kind"], a["ref"]) for a in d.attestations]
    assert kinds[0] == ("certification", f"certification:{cert_id}")
    assert [k for k, _ in kinds[1:]] == ["stage_decision"] * 4
    assert all(a["predicate_type"].startswith(attest.PREDICATE_BASE) for a in d.attestations)
    assert d.attestation is None  # reading the gate records nothing
    with env.store.transaction() as s:
        recorded = wf.record_gate(s, MODEL, "1")
    assert recorded.attestation["kind"] == "gate_decision"
    ok = _open(env, recorded.attestation["digest"])
    assert ok.predicate_type == attest.GATE_DECISION
    assert ok.predicate["allowed"] is True and ok.predicate["decidedAt"].endswith("Z")
    assert [a["digest"] for a in ok.predicate["attestations"]] == \
        [a["digest"] for a in d.attestations]


def test_a_version_without_artefact_digest_is_not_signed(env: Env) -> None:
    with env.store.transaction() as s:
        registry.add_version(s, registry.get_user(s, "alice"), MODEL, "2")
    env.certify("2")
    submit(env, "2")
    env.run("bea", wf.approve, "2", stage="scope", documents=doc())
    with env.store.transaction() as s:
        assert K.attestations_of(s, f"{MODEL}@2") == []
        d = wf.record_gate(s, MODEL, "2")
    assert d.attestation is None and d.attestations == []


def test_gate_through_the_api_and_the_cli(env: Env, capsys) -> None:
    approved(env)
    with env.store.transaction() as s:
        token = auth.create_token(s, registry.get_user(s, "root"), "aud", "tests")[1]
    client = TestClient(create_app(env.store.settings, store=env.store))
    resp = client.get(f"/api/models/{MODEL}/versions/1/gate",
                      headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["allowed"] is True
    assert [a["kind"] for a in body["attestations"]] == ["stage_decision"] * 4
    assert body["attestation"]["kind"] == "gate_decision"
    assert _open(env, body["attestation"]["digest"]).predicate["allowed"] is True
    main(["gate", MODEL, "1", "--format", "json"])  # exit 0: allowed
    out = json.loads(capsys.readouterr().out)
    assert [a["kind"] for a in out["attestations"]] == ["stage_decision"] * 4
    # the same decision moments later: the attestation just signed, not another one
    assert out["attestation"]["digest"] == body["attestation"]["digest"]
    for _ in range(5):  # a deployment pipeline polling the gate
        again = client.get(f"/api/models/{MODEL}/versions/1/gate",
                           headers={"Authorization": f"Bearer {token}"}).json()
        assert again["attestation"]["digest"] == body["attestation"]["digest"]
    with env.store.transaction() as s:
        assert len(K.attestations_of(s, f"{MODEL}@1", kind="gate_decision")) == 1


def test_a_gate_decision_is_signed_again_when_it_changes_or_grows_old(env: Env) -> None:
    from datetime import UTC, datetime, timedelta

    from assay.workflow.attestations import GATE_REUSE_SECONDS

    approved(env)
    t0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def record(at: datetime) -> tuple[bool, str]:
        with env.store.transaction() as s:
            d = wf.record_gate(s, MODEL, "1", now=at)
        return d.allowed, d.attestation["digest"]

    allowed, first = record(t0)
    assert allowed
    assert record(t0 + timedelta(seconds=GATE_REUSE_SECONDS - 1)) == (True, first)
    # older than the reuse window: signed anew, with the new time
    allowed, second = record(t0 + timedelta(seconds=GATE_REUSE_SECONDS))
    assert allowed and second != first
    assert _open(env, second).predicate["decidedAt"] == "2026-06-01T12:05:00Z"
    # a different decision (the approval has expired two years on) is signed at once
    later = t0 + timedelta(days=800)
    allowed, expired = record(later)
    assert not allowed and expired not in (first, second)
    assert record(later + timedelta(seconds=1)) == (False, expired)
    assert _open(env, expired).predicate["allowed"] is False
    with env.store.transaction() as s:
        assert len(K.attestations_of(s, f"{MODEL}@1", kind="gate_decision")) == 3


def test_a_policy_may_require_signed_certifications(db: Store, tmp_path: Path) -> None:
    from test_workflow import WORKFLOW, write_policy

    env = make_env(db, tmp_path)
    env.policy = write_policy(tmp_path / "signed.yaml",
                              {**WORKFLOW, "require_signed_certification": {"high": True}},
                              version="2")
    with env.store.transaction() as s:
        registry.register_policy(s, registry.get_user(s, "root"), env.policy.read_bytes(),
                                 source="signed.yaml")
    cert = env.certify("1")  # recorded without an attestation
    submit(env)
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    from assay.errors import ConflictError

    with pytest.raises(ConflictError, match=f"certification #{cert} is not signed: policy "
                                            "'wf-test' requires a signed certification"):
        env.run("val", wf.approve, "1", stage="validation")
    assert any("is not signed" in r for r in env.read(wf.gate, "1").reasons)
    signed = _signed_certification(env)
    env.run("val", wf.approve, "1", stage="validation")
    assert not any("is not signed" in r for r in env.read(wf.gate, "1").reasons)
    assert env.read(wf.gate, "1").evidence["certification"]
    assert signed != cert


def test_require_signed_certification_names_known_tiers() -> None:
    from assay.errors import PolicyError
    from assay.workflow import parse_workflow

    cfg = parse_workflow({"require_signed_certification": {"default": True, "low": False}})
    assert cfg.signed_certification_required("high") and not \
        cfg.signed_certification_required("low")
    assert not parse_workflow({}).signed_certification_required("high")
    with pytest.raises(PolicyError, match="unknown tier 'critical'"):
        parse_workflow({"require_signed_certification": {"critical": True}})
