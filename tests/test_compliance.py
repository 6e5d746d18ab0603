"""Compliance mapping packs, coverage, documentation packs and the ML-BOM, on a real
certification of a German credit model (Statlog data) recorded in the store, on
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from assay import registry
from assay.compliance import (
    PackError,
    build_bom,
    coverage,
    load_pack,
    parse_pack,
    shipped_packs,
    validate_bom,
    write_pack,
)
from assay.errors import PermissionDenied
from assay.evidence import digest_file
from assay.evidence.tables import Attestation
from assay.store import Store
from assay.store.audit import AuditEvent, verify_chain
from test_certification_e2e import german  # noqa: F401  (fixture: data, model, paths)

MODEL = "credit-pd"
SCOPE_DOC = b"Scope: retail credit; applicants from 18 to 75; not for business loans.\n"


def _user(s: Any, name: str) -> Any:
    return registry.get_user(s, name)


@pytest.fixture
def walkthrough(db: Store, people: dict[str, str], german: dict[str, Any],  # noqa: F811
                tmp_path: Path) -> Store:
    """The German credit walkthrough up to the data stage: model in the inventory, a
    real credit-lending certification recorded, a risk assessment and a register entry,
    the workflow's scope and data quality stages signed (with a scope document)."""
    from assay.certification import certify
    from assay.evidence import store_bytes
    from assay.risk import service as risk
    from assay.risk.config import CATEGORIES
    from assay.risk.questionnaire import load_questionnaire
    from assay.workflow import service as wf

    p = german["paths"]
    cert = certify(data=p["test"], reference=p["train"], model=p["model"],
                   policy="credit-lending", tier="high", target="credit",
                   sensitive=["sex", "age_band"], out_dir=tmp_path / "cert")
    results = cert.to_dict()
    raw = (tmp_path / "cert" / "results.json").read_bytes()
    report = (tmp_path / "cert" / "report.html").read_bytes()
    with db.transaction() as s:
        dana = _user(s, "dana")
        registry.register_model(s, dana, MODEL, owner="bo", decision_type="automated",
                                criticality="high", purpose="Probability of default",
                                intended_use="Retail credit line decisions")
        registry.add_version(s, dana, MODEL, "1.0", artifact_digest=digest_file(p["model"]),
                             training_data_digest=digest_file(p["train"]),
                             training_data_source="german.data, 60% stratified split")
        registry.record_certification(s, _user(s, "victor"), MODEL, "1.0", None, raw, report)
    q = load_questionnaire()
    answers = {x.id: ([] if x.multiple else x.options[0].value) for x in q.questions}
    cats = {c: {"likelihood": 3, "impact": 4, "rationale": f"credit {c}"} for c in CATEGORIES}
    with db.transaction() as s:
        rita = _user(s, "rita")
        risk.assess(s, rita, MODEL, "1.0", categories=cats, answers=answers,
                    policy="credit-lending", settings=db.settings)
        risk.add_risk(s, rita, MODEL, title="Sex proxy in the inputs", category="fairness_bias",
                      likelihood=3, impact=4)
    digest = store_bytes(db.settings, SCOPE_DOC)
    with db.transaction() as s:
        wf.submit(s, _user(s, "dana"), MODEL, "1.0", policy="credit-lending")
    for who, stage, docs in (("bo", "requirements_scope", {"scope.md": digest}),
                             ("rita", "requirements_scope", None),
                             ("victor", "data_quality_governance", None),
                             ("cora", "data_quality_governance", None)):
        with db.transaction() as s:
            wf.approve(s, _user(s, who), MODEL, "1.0", stage=stage, documents=docs)
    db.results = results  # type: ignore[attr-defined]
    db.results_bytes = raw  # type: ignore[attr-defined]
    return db


def _statuses(cov: Any) -> dict[str, str]:
    return {c.id: c.status for c in cov.clauses}


def test_eu_ai_act_coverage_matches_a_hand_made_expectation(walkthrough: Store) -> None:
    checks = {c["id"]: c["status"] for c in walkthrough.results["checks"]}
    with walkthrough.transaction() as s:
        cov = coverage(s, MODEL, "1.0", "eu-ai-act")
    got = _statuses(cov)
    # Art. 10: the data stage is signed, every integrity check ran; the proxy check fails
    # on this model (it keeps inputs that stand in for sex), so the clause is partial and
    # says which check is missing
    assert checks["integrity.proxy_features"] == "fail"
    assert got["art-10"] == "partial"
    art10 = cov.clause("art-10")
    assert art10.missing == ["check 'integrity.proxy_features' to pass (it is 'fail')"]
    assert {"stage": "data_quality_governance", "status": "approved", "submission": 1,
            "signoffs": 2} in art10.found
    assert {f["check"] for f in art10.found if "check" in f} == {
        c for c in checks if c.startswith("integrity.")}
    # Art. 15: performance checks pass or warn; a robustness check did not run (no
    # counterfactual attribute): partial, naming it
    assert got["art-15"] == "partial"
    assert [m for m in cov.clause("art-15").missing if "robustness." in m]
    # Art. 72: a monitoring plan with drift, performance and fairness rules, but the
    # post-deployment stage is not signed yet
    assert got["art-72"] == "partial"
    assert cov.clause("art-72").missing == [
        "stage 'post_deployment_monitoring' signed off (it is 'pending')"]
    # Art. 73: the credit-lending policy defines the incident process (deadlines and
    # playbooks) and no incident was opened: covered
    assert got["art-73"] == "covered"
    assert cov.clause("art-73").found[0]["incidents_section"] == "policy"
    # Art. 11 and Annex IV(1): the scope document is there, no model card was generated
    assert got["annex-iv-1"] == "partial"
    assert cov.clause("annex-iv-1").missing == [
        "a model card of version 1.0: no model card generated for this version (assay card)"]
    # Art. 12: digests recorded but no reproduction; the stage decisions are signed by
    # assay's service key, the certification itself is not signed
    assert got["art-12"] == "partial"
    assert [m for m in cov.clause("art-12").missing if "has not been reproduced" in m]
    assert {f["kind"] for f in cov.clause("art-12").found if "attestation" in f} == {
        "stage_decision"}
    # Art. 27: no impact assessment (the risk assessment is there)
    assert got["art-27"] == "partial"
    assert cov.clause("art-27").missing == [
        "an impact assessment of version 1.0 (assay impact assess)"]
    # Art. 14: neither deployment approval nor the regulatory review is signed
    assert got["art-14"] == "missing"
    # Annex IV(9): the post-market monitoring plan exists
    assert got["annex-iv-9"] == "covered"
    assert cov.summary == {"covered": list(got.values()).count("covered"),
                           "partial": list(got.values()).count("partial"),
                           "missing": list(got.values()).count("missing"), "total": 20}


def test_every_shipped_framework_evaluates_on_the_walkthrough(walkthrough: Store) -> None:
    assert set(shipped_packs()) == {"eu-ai-act", "nist-ai-rmf-1.0", "iso-42001", "sr-26-2",
                                    "ecoa-reg-b"}
    with walkthrough.transaction() as s:
        ecoa = _statuses(coverage(s, MODEL, "1.0", "ecoa-reg-b"))
        sr = _statuses(coverage(s, MODEL, "1.0", "sr-26-2"))
        nist = _statuses(coverage(s, MODEL, "1.0", "nist-ai-rmf-1.0"))
        iso = _statuses(coverage(s, MODEL, "1.0", "iso-42001"))
    # the proxy check fails: prohibited bases are not kept out of the inputs
    assert ecoa["1002.6-prohibited-bases"] == "missing"
    assert sr["data-quality"] == "partial" and sr["ongoing-monitoring"] == "covered"
    # the credit-lending policy's incident process, no incident opened
    assert nist["MANAGE-4.3"] == "covered" and nist["MEASURE-3.1"] == "covered"
    assert iso["A.7.4"] == "partial" and iso["A.8.4"] == "covered"
    # no model card was generated
    assert iso["A.8.2"] == "missing"


def test_a_mitigation_and_a_signed_stage_move_clauses_to_covered(walkthrough: Store) -> None:
    from assay.risk import service as risk

    with walkthrough.transaction() as s:
        assert _statuses(coverage(s, MODEL, "1.0", "eu-ai-act"))["annex-iv-5"] == "partial"
        risk.add_mitigation(s, _user(s, "rita"), 1, title="Drop the sex proxy",
                            success_criteria="proxy check passes", estimated_days=10)
    with walkthrough.transaction() as s:
        assert _statuses(coverage(s, MODEL, "1.0", "eu-ai-act"))["annex-iv-5"] == "covered"


THEORY = """\
summary: Faster, fairer credit-line decisions.
intended_outcomes:
  - outcome: fewer defaults on increased lines
    for_whom: [lender, applicants]
    measured_by: [default_rate]
pathway: [the model scores each request, requests above 0.7 are approved]
assumptions: [repayment behaviour is stable]
out_of_scope: [new-to-bank applicants]
unintended_consequences: [lower approval rates for thin-file applicants]
"""


def _sign_certification(db: Store) -> Any:
    """Record the walkthrough's results again, signed by a CI key an admin trusts."""
    from assay.evidence import attest, digest_bytes
    from assay.evidence import keys as K
    from assay.evidence.predicates import certification_statement

    ci = attest.generate_key()
    raw = db.results_bytes  # type: ignore[attr-defined]
    env = attest.sign_statement(certification_statement(json.loads(raw), digest_bytes(raw)), ci)
    with db.transaction() as s:
        K.register_key(s, _user(s, "ada"), "ci-runner", attest.public_pem(ci), purpose="ci")
    with db.transaction() as s:
        return registry.record_certification(s, _user(s, "victor"), MODEL, "1.0", None, raw,
                                             attestation=json.dumps(env).encode()).id


def test_cards_reproductions_signatures_incidents_and_impact_move_clauses(
        walkthrough: Store, tmp_path: Path) -> None:
    from datetime import timedelta

    from assay import impact
    from assay.evidence import keys as K
    from assay.operate.incidents import acknowledge, mitigate, open_incident, resolve
    from assay.registry import cards
    from assay.registry.reproduce import ReproductionResult, record_reproduction
    from assay.store.db import utcnow

    def eu() -> Any:
        with walkthrough.transaction() as s:
            return coverage(s, MODEL, "1.0", "eu-ai-act")

    # a model card: Annex IV(1) and Art. 13 are covered (the scope document was there)
    with walkthrough.transaction() as s:
        _, card = cards.generate_card(s, _user(s, "dana"), MODEL, "1.0", "html")
        card_digest = card.digest
    cov = eu()
    assert cov.clause("annex-iv-1").status == "covered"
    assert cov.clause("art-13").status == "covered"
    assert next(f for f in cov.clause("annex-iv-1").found if f.get("model_card"))["digest"] \
        == card_digest
    # Art. 12 and Art. 17 still want the certification signed by a trusted key: the
    # stage decisions signed by assay's own key are not enough
    assert cov.clause("art-12").status == "partial"
    # a signed certification: a new certification makes the card stale (partial)
    cert_id = _sign_certification(walkthrough)
    cov = eu()
    assert cov.clause("annex-iv-1").status == "partial"
    assert cov.clause("annex-iv-1").missing == [
        f"a current model card (the model card predates certification #{cert_id}: generate "
        "it again (assay card))"]
    assert not [m for m in cov.clause("art-12").missing if "trusted key" in m]
    signed = [f for f in cov.clause("art-12").found if f.get("kind") == "certification"]
    assert signed and signed[0]["ref"] == f"certification:{cert_id}"
    # a successful reproduction of the latest certification: Art. 12 is covered
    with walkthrough.transaction() as s:
        cert = registry.latest_certification(s, registry.get_version(s, MODEL, "1.0").id)
        record_reproduction(s, _user(s, "victor"), ReproductionResult(
            results_digest=cert.results_digest, compared=12, mismatches=[]))
    cov = eu()
    assert cov.clause("art-12").status == "covered", cov.clause("art-12").missing
    # revoking the CI key: the certification's envelope no longer verifies
    with walkthrough.transaction() as s:
        K.revoke_key(s, _user(s, "ada"), "ci-runner")
    cov = eu()
    assert cov.clause("art-12").status == "partial"
    assert "revoked_key" in cov.clause("art-12").missing[0]

    # an impact assessment without KPIs or register entries: Art. 27 partial, then covered
    with walkthrough.transaction() as s:
        impact.save_assessment(s, _user(s, "bo"), MODEL, "1.0", THEORY, source="theory.yaml")
    cov = eu()
    assert cov.clause("art-27").status == "partial"
    assert cov.clause("art-27").missing == [
        "KPIs of the impact assessment (assay impact kpi add)",
        "entries in the impact register (assay impact register add)"]
    with walkthrough.transaction() as s:
        impact.add_kpi(s, _user(s, "bo"), MODEL, "1.0", name="default_rate",
                       direction="decrease", baseline=0.3, target=0.25)
        impact.add_register_entry(s, _user(s, "bo"), MODEL, "1.0", title="Thin-file declines",
                                  kind="negative", likelihood=3, severity=3)
    assert eu().clause("art-27").status == "covered"

    # an SEV1 incident whose acknowledgement is overdue: Art. 73 partial, naming it
    aware = utcnow() - timedelta(hours=5)
    with walkthrough.transaction() as s:
        inc = open_incident(s, _user(s, "victor"), MODEL, "1.0", title="Drift after the "
                            "bureau change", severity="SEV1", kind="drift", aware_at=aware).id
    cov = eu()
    assert cov.clause("art-73").status == "partial"
    assert cov.clause("art-73").missing[0].startswith(
        f"incident #{inc} to acknowledge within its deadline (overdue since ")
    # acknowledged (late): still partial, the lateness is named
    with walkthrough.transaction() as s:
        acknowledge(s, _user(s, "victor"), inc)
    art73 = eu().clause("art-73")
    assert [m for m in art73.missing if "'acknowledge' step was done late" in m]
    assert {"incident": inc, "severity": "SEV1", "state": "acknowledged",
            "within_deadlines": False, "postmortem": None} in art73.found
    # resolved without the post-mortem its severity requires: named
    with walkthrough.transaction() as s:
        mitigate(s, _user(s, "victor"), inc)
        resolve(s, _user(s, "victor"), inc)
    assert f"a post-mortem of incident #{inc} (SEV1 requires one)" in \
        eu().clause("art-73").missing

    # the pack holds the impact record and report, the incident with its deadlines, and
    # the card generated again is the current one, read back as it was issued
    with walkthrough.transaction() as s:
        _, card = cards.generate_card(s, _user(s, "dana"), MODEL, "1.0", "md")
        card_doc = card.document_digest
    out = tmp_path / "pack"
    with walkthrough.transaction() as s:
        res = write_pack(s, _user(s, "cora"), MODEL, "1.0", "eu-ai-act", out)
    assert res.sections["model_card"]["info"]["current"] is True
    assert res.sections["model_card"]["info"]["document_digest"] == card_doc
    rec = json.loads((out / "impact/assessment.json").read_text())
    assert rec["assessment"]["revision"] == 1 and [k["name"] for k in rec["kpis"]] == [
        "default_rate"]
    assert "Thin-file declines" in (out / "impact/report.html").read_text()
    incs = json.loads((out / "incidents/incidents.json").read_text())["incidents"]
    assert [(i["id"], i["state"], i["severity"]) for i in incs] == [(inc, "resolved",
                                                                    "SEV1")]
    ack = next(d for d in incs[0]["deadlines"] if d["step"] == "acknowledge")
    assert ack["late"] is True
    page = (out / "incidents/incidents.html").read_text()
    assert "Drift after the bureau change" in page and "(late)" in page


# --------------------------------------------------------------------------- documentation pack


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_documentation_pack_contents_manifest_and_audit_excerpt(walkthrough: Store,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "pack"
    with walkthrough.transaction() as s:
        res = write_pack(s, _user(s, "cora"), MODEL, "1.0", "eu-ai-act", out)
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert {"index.html", "index.json", "manifest.json", "manifest.intoto-statement.json",
            "manifest.intoto.json", "model-card/card.html", "model-card/card.json",
            "validation/report.html", "validation/results.json", "risk/risk.json",
            "workflow/workflow.json", "workflow/workflow.html", "monitoring/monitoring.json",
            "incidents/incidents.json", "incidents/incidents.html",
            "audit/events.jsonl", "audit/verification.json", "coverage/coverage.json",
            "coverage/coverage.html"} == files
    # every file but the manifest, its statement and the signed envelope is in the
    # manifest, with its digest
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == files - {"manifest.json", "manifest.intoto-statement.json",
                                   "manifest.intoto.json"}
    for path, f in listed.items():
        assert f["sha256"] == _sha(out / path), path
        assert f["size"] == (out / path).stat().st_size
    # the statement's subjects are those files and the manifest itself
    st = json.loads((out / "manifest.intoto-statement.json").read_text())
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    subjects = {x["name"]: x["digest"]["sha256"] for x in st["subject"]}
    assert subjects == {**{p: f["sha256"] for p, f in listed.items()},
                        "manifest.json": _sha(out / "manifest.json")}
    assert st["predicate"]["model"] == MODEL and st["predicate"]["framework"] == "eu-ai-act"
    assert res.statement == st
    # the validation report is the stored one, byte for byte
    with walkthrough.transaction() as s:
        cert = registry.latest_certification(s, registry.get_version(s, MODEL, "1.0").id)
        assert "sha256:" + _sha(out / "validation/report.html") == cert.report_digest
        assert "sha256:" + _sha(out / "validation/results.json") == cert.results_digest
    # no card was generated: the pack holds the card assembled from the store now, and
    # says it was not issued
    index = json.loads((out / "index.json").read_text())
    card_info = index["sections"]["model_card"]["info"]
    assert card_info["current"] is False and "no model card generated" in card_info["note"]
    card = json.loads((out / "model-card/card.json").read_text())
    assert card["model_details"]["name"] == MODEL
    assert "credit-pd" in (out / "model-card/card.html").read_text()
    # the incident process of the policy and tier, and no incident
    inc = json.loads((out / "incidents/incidents.json").read_text())
    assert inc["incidents"] == [] and inc["process"]["from_policy"] is True
    assert inc["process"]["tier"] == "high" and inc["process"]["playbooks"]
    assert "No incident was opened" in (out / "incidents/incidents.html").read_text()
    # a section with no evidence is listed as missing, and no file is made for it
    assert index["sections"]["impact_assessment"]["status"] == "missing"
    assert "impact assessment" in index["sections"]["impact_assessment"]["missing"]
    # the statement is signed with assay's service key, kept in the attestations table
    from assay.evidence import attest
    from assay.evidence.keys import attestations_of, verify_trusted

    envelope = json.loads((out / "manifest.intoto.json").read_text())
    assert res.envelope == envelope
    with walkthrough.transaction() as s:
        verified = verify_trusted(s, envelope)
        rows = attestations_of(s, f"{MODEL}@1.0", kind="documentation_pack")
    assert verified.statement == st
    for path in listed:
        attest.require_subject(verified, _sha(out / path), what=path)
    assert [(r.ref, r.keyid) for r in rows] == [
        ("manifest:sha256:" + _sha(out / "manifest.json"), verified.keyid)]
    art10 = next(c for c in index["clauses"] if c["id"] == "art-10")
    assert "validation/report.html" in art10["files"] and "workflow/workflow.json" in \
        art10["files"]
    # the audit excerpt: every event about the model or this version, each re-hashed, and
    # the chain verified with its head as the anchor
    events = [json.loads(line) for line in (out / "audit/events.jsonl").read_text().splitlines()]
    ver = json.loads((out / "audit/verification.json").read_text())
    with walkthrough.transaction() as s:
        head = verify_chain(s)
        about = [e.seq for e in s.query(AuditEvent).order_by(AuditEvent.seq)
                 if (e.subject_type, e.subject_id) in (("model", MODEL),
                                                        ("model_version", f"{MODEL}@1.0"))
                 and e.action != "compliance.pack_export"]
    assert [e["seq"] for e in events] == about
    assert {"certification.record", "risk.assess", "workflow.submit"} <= {
        e["action"] for e in events}
    assert ver["ok"] is True and ver["excerpt_hashes_match"] is True
    # the anchor is the head of the chain at export time: the last sign-off, about this
    # version (the export event came after it)
    assert ver["anchor"] == {"seq": events[-1]["seq"], "hash": events[-1]["hash"]}
    assert ver["anchor"]["seq"] == head.head_seq - 1
    # the export itself is in the audit trail, with the manifest's digest
    with walkthrough.transaction() as s:
        ev = s.query(AuditEvent).filter_by(action="compliance.pack_export").one()
        assert ev.actor == "cora" and ev.subject_id == f"{MODEL}@1.0"
        assert ev.evidence["manifest"] == "sha256:" + _sha(out / "manifest.json")
        assert ev.evidence["attestation"] == rows[0].envelope_digest


def test_audit_excerpt_reports_a_tampered_chain(walkthrough: Store) -> None:
    from sqlalchemy import update

    from assay.compliance import audit_excerpt
    from test_audit import _drop_guard

    with walkthrough.transaction() as s:
        ex = audit_excerpt(s, MODEL, "1.0")
        assert ex["verification"]["ok"] is True
        seq = next(e["seq"] for e in ex["events"] if e["action"] == "certification.record")
    _drop_guard(walkthrough)  # what someone with database rights does first
    with walkthrough.transaction() as s:
        s.execute(update(AuditEvent).where(AuditEvent.seq == seq)
                  .values(payload={"status": "passed", "forged": True}))
    with walkthrough.transaction() as s:
        ver = audit_excerpt(s, MODEL, "1.0")["verification"]
    assert ver["ok"] is False and ver["first_bad_seq"] == seq
    assert ver["excerpt_hashes_match"] is False
    assert f"event {seq} was altered" in ver["reason"]


def test_a_version_without_evidence_is_missing_and_says_what_would_cover_it(
        walkthrough: Store) -> None:
    with walkthrough.transaction() as s:
        registry.add_version(s, _user(s, "dana"), MODEL, "1.1")
    with walkthrough.transaction() as s:
        cov = coverage(s, MODEL, "1.1", "eu-ai-act")
    got = _statuses(cov)
    assert got["art-10"] == got["art-15"] == got["art-72"] == got["annex-iv-9"] == "missing"
    assert cov.clause("art-15").missing[0].startswith("a certification of the version")
    assert any("never submitted" in m for m in cov.clause("art-14").missing)
    # the assessment is of 1.0, not of 1.1: partial, saying so
    art9 = cov.clause("art-9")
    assert any("risk assessment of version 1.1" in m for m in art9.missing)
    assert cov.certification is None


def test_a_failure_midway_leaves_no_pack_and_no_event(walkthrough: Store, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from assay.errors import InputError

    out = tmp_path / "pack"
    real = Path.write_bytes
    calls = []

    def failing(self: Path, data: bytes) -> int:
        calls.append(self)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing)
    with pytest.raises(InputError, match=r"cannot write the pack \(No space left on device\); "
                       r"nothing was written"), walkthrough.transaction() as s:
        write_pack(s, _user(s, "cora"), MODEL, "1.0", "eu-ai-act", out)
    monkeypatch.undo()
    assert len(calls) == 5
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [p for p in tmp_path.iterdir()
                                        if not p.name.startswith(".pack.")]
    with walkthrough.transaction() as s:
        assert s.query(AuditEvent).filter_by(action="compliance.pack_export").count() == 0
        assert s.query(Attestation).filter_by(kind="documentation_pack").count() == 0


def test_a_pack_that_cannot_be_signed_is_not_written(walkthrough: Store,
                                                     tmp_path: Path) -> None:
    from assay.errors import ConflictError
    from assay.evidence import keys as K

    with walkthrough.transaction() as s:  # the service key exists (the stage decisions)
        svc = next(k for k in K.list_keys(s, _user(s, "ada")) if k.purpose == "service")
        K.revoke_key(s, _user(s, "ada"), svc.name)
    out = tmp_path / "pack"
    before = set(tmp_path.iterdir())
    with pytest.raises(ConflictError, match=r"signing key .* is revoked"), \
            walkthrough.transaction() as s:
        write_pack(s, _user(s, "cora"), MODEL, "1.0", "eu-ai-act", out)
    assert not out.exists() and set(tmp_path.iterdir()) == before
    with walkthrough.transaction() as s:
        assert s.query(AuditEvent).filter_by(action="compliance.pack_export").count() == 0
        assert s.query(Attestation).filter_by(kind="documentation_pack").count() == 0


def test_pack_refuses_an_existing_directory_and_people_without_the_role(
        walkthrough: Store, tmp_path: Path) -> None:
    from assay.errors import InputError

    (tmp_path / "there").mkdir()
    with walkthrough.transaction() as s:
        with pytest.raises(InputError, match="already exists"):
            write_pack(s, _user(s, "audrey"), MODEL, "1.0", "eu-ai-act", tmp_path / "there")
        for who in ("dana", "bo", "victor"):
            with pytest.raises(PermissionDenied):
                write_pack(s, _user(s, who), MODEL, "1.0", "eu-ai-act", tmp_path / who)
            assert not (tmp_path / who).exists()


# --------------------------------------------------------------------------- ML-BOM


def test_ml_bom_validates_against_the_official_cyclonedx_1_6_schema(
        walkthrough: Store, german: dict[str, Any]) -> None:  # noqa: F811
    with walkthrough.transaction() as s:
        bom = build_bom(s, MODEL, "1.0")
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    assert validate_bom(bom) is None
    ml = bom["metadata"]["component"]
    assert ml["type"] == "machine-learning-model" and ml["name"] == MODEL
    assert ml["hashes"] == [{"alg": "SHA-256",
                             "content": digest_file(german["paths"]["model"])[7:]}]
    card = ml["modelCard"]
    assert card["modelParameters"]["task"] == "classification"
    metrics = {(m["type"], m["slice"]): m for m in card["quantitativeAnalysis"][
        "performanceMetrics"]}
    auc = next(c for c in walkthrough.results["checks"] if c["id"] == "performance.roc_auc")
    assert float(metrics[("performance.roc_auc", "overall")]["value"]) == pytest.approx(
        auc["measurements"][0]["value"], rel=1e-5)
    assert card["considerations"]["useCases"] == ["Retail credit line decisions"]
    comps = {c["bom-ref"]: c for c in bom["components"]}
    data = [c for c in comps.values() if c["type"] == "data"]
    roles = {p["value"] for c in data for p in c["properties"]}
    # the reference set is the training file: one component with both roles
    assert roles == {"evaluation", "reference", "training"} and len(data) == 2
    assert {c["hashes"][0]["content"] for c in data} >= {
        digest_file(german["paths"]["train"])[7:], digest_file(german["paths"]["test"])[7:]}
    assert {r["ref"] for r in card["modelParameters"]["datasets"]} == {
        c["bom-ref"] for c in data}
    libs = {c["name"]: c for c in comps.values() if c["type"] == "library"}
    assert set(libs) == {k for k, v in walkthrough.results["environment"]["packages"].items()
                         if v}
    np_ver = walkthrough.results["environment"]["packages"]["numpy"]
    assert libs["numpy"]["purl"] == f"pkg:pypi/numpy@{np_ver}"
    # a BOM broken after the fact is caught by the same validator
    broken = json.loads(json.dumps(bom))
    broken["metadata"]["component"]["modelCard"]["modelParameters"]["task"] = 7
    assert validate_bom(broken) is not None


# --------------------------------------------------------------------------- user packs


GOOD_PACK = """\
framework: in-house
title: In-house model standard
version: "3"
clauses:
  - id: perf
    title: Performance is measured
    citation: Std 4.1
    evidence:
      - check: performance.
  - id: either
    title: Some oversight
    citation: Std 5
    evidence:
      any:
        - stage: deployment_approval
        - risk_assessment
"""


def test_user_pack_is_validated_with_file_and_line(tmp_path: Path, walkthrough: Store) -> None:
    p = tmp_path / "in-house.yaml"
    p.write_text(GOOD_PACK)
    pack = load_pack(p)
    assert pack.framework == "in-house" and [c.id for c in pack.clauses] == ["perf", "either"]
    with walkthrough.transaction() as s:
        got = _statuses(coverage(s, MODEL, "1.0", str(p)))
    assert got == {"perf": "covered", "either": "covered"}  # any: the assessment suffices

    cases = {
        GOOD_PACK.replace("- check: performance.", "- chek: performance."):
            ("in-house.yaml:9: clauses[0].evidence[0].chek: unknown evidence kind 'chek'",
             "did you mean 'check'"),
        GOOD_PACK.replace("    citation: Std 5\n", ""):
            ("in-house.yaml:10: clauses[1]: missing field 'citation'",),
        GOOD_PACK.replace("- id: either", "- id: perf"):
            ("in-house.yaml:10: clauses[1].id: duplicate clause id 'perf'",),
        GOOD_PACK.replace("        - risk_assessment", "        - risk_assessment: yes please"):
            ("in-house.yaml:16: clauses[1].evidence.any[1].risk_assessment: "
             "'risk_assessment' takes no argument",),
        GOOD_PACK.replace("      any:", "      some:"):
            ("in-house.yaml:14: clauses[1].evidence.some: unknown evidence kind 'some'",),
        GOOD_PACK.replace("version: \"3\"", "version: \"3\"\nauthor: me"):
            ("in-house.yaml:4: author: unknown field 'author'",),
        GOOD_PACK + "  - id: doc\n    title: t\n    citation: c\n    evidence:\n"
                    "      - document: scope\n":
            ("in-house.yaml:21: clauses[2].evidence[0].document: 'document' expects STAGE/NAME",),
        "framework: x\n  bad: [":
            ("in-house.yaml:2", "invalid YAML"),
    }
    for text, needles in cases.items():
        with pytest.raises(PackError) as exc:
            parse_pack(text, source="in-house.yaml")
        for needle in needles:
            assert needle in str(exc.value), (needle, str(exc.value))


def test_unknown_framework_names_the_shipped_ones() -> None:
    with pytest.raises(PackError, match="did you mean 'eu-ai-act'"):
        load_pack("eu-ai-ac")


# --------------------------------------------------------------------------- command line


def test_cli_coverage_pack_bom_and_check(walkthrough: Store, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from test_workflow_cli import run

    code, out, err = run(capsys, "compliance", "coverage", MODEL, "1.0", "--framework",
                         "eu-ai-act", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["summary"]["total"] == 20
    assert {c["id"]: c["status"] for c in doc["clauses"]}["art-27"] == "partial"
    code, out, err = run(capsys, "compliance", "coverage", MODEL, "1.0", "--framework",
                         "eu-ai-act")
    assert code == 0 and "Art. 73" in out and "covered," in out
    code, out, _ = run(capsys, "compliance", "coverage", MODEL, "1.0", "--framework",
                       "ecoa-reg-b", "-f", "html", "--out", str(tmp_path / "c.html"))
    assert code == 0 and "<table>" in (tmp_path / "c.html").read_text()
    # bad input: exit 2 with one line, no traceback
    for args, needle in (((MODEL, "1.0", "--framework", "eu-ai-ac"), "did you mean 'eu-ai-act'"),
                         ((MODEL, "9.9", "--framework", "eu-ai-act"), "9.9"),
                         ((MODEL, "1.0", "--framework", "eu-ai-act", "-f", "pdf"), "pdf")):
        code, out, err = run(capsys, "compliance", "coverage", *args)
        assert code == 2 and needle in err and "Traceback" not in err, (args, err)

    bad = tmp_path / "mine.yaml"
    bad.write_text(GOOD_PACK.replace("citation: Std 4.1", "citation: [Std, 4.1]"))
    code, _, err = run(capsys, "compliance", "check", str(bad))
    assert code == 2 and "mine.yaml:7: clauses[0].citation: expected a non-empty text" in err
    bad.write_text(GOOD_PACK)
    code, out, _ = run(capsys, "compliance", "check", str(bad))
    assert code == 0 and "OK: framework 'in-house' version 3, 2 clauses" in out

    code, _, err = run(capsys, "compliance", "pack", MODEL, "1.0", "--out", str(tmp_path / "p"))
    assert code == 2 and "no acting user" in err and not (tmp_path / "p").exists()
    code, _, err = run(capsys, "compliance", "pack", MODEL, "1.0", "--out", str(tmp_path / "p"),
                       "--as", "dana")
    assert code != 0 and not (tmp_path / "p").exists()
    code, out, err = run(capsys, "compliance", "pack", MODEL, "1.0", "--out",
                         str(tmp_path / "p"), "--as", "audrey")
    assert code == 0, err
    assert "missing sections: Impact assessment" in out
    said = " ".join(out.split())
    assert "manifest.intoto.json (assay attest verify" in said and "--subject FILE)" in said
    assert (tmp_path / "p" / "manifest.json").is_file()
    # the signed manifest verifies each file of the pack; a changed byte does not
    env = str(tmp_path / "p" / "manifest.intoto.json")
    report = tmp_path / "p" / "validation" / "report.html"
    for f in ("validation/report.html", "model-card/card.json", "manifest.json"):
        code, out, err = run(capsys, "attest", "verify", env, "--subject",
                             str(tmp_path / "p" / f))
        assert code == 0 and "valid" in out and "compliance-pack/v1" in out, (f, err)
    data = bytearray(report.read_bytes())
    data[100] ^= 1
    report.write_bytes(bytes(data))
    code, out, err = run(capsys, "attest", "verify", env, "--subject", str(report))
    assert code == 1 and "subject" in err and "Traceback" not in err, (out, err)

    code, out, err = run(capsys, "compliance", "bom", MODEL, "1.0", "--out",
                         str(tmp_path / "bom.json"))
    assert code == 0, err
    assert validate_bom(json.loads((tmp_path / "bom.json").read_text())) is None


# --------------------------------------------------------------------------- REST API


def test_api_coverage_pack_and_bom_with_role_checks(walkthrough: Store) -> None:
    import io
    import zipfile

    from fastapi.testclient import TestClient

    from assay.api.app import create_app
    from assay.auth import service as auth

    client = TestClient(create_app(walkthrough.settings, store=walkthrough))
    tokens = {}
    with walkthrough.transaction() as s:
        for name in ("audrey", "cora", "rita", "dana", "bo", "victor"):
            tokens[name] = auth.create_token(s, _user(s, "ada"), name, "tests")[1]

    def call(user: str | None, method: str, path: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {tokens[user]}"} if user else {}
        return client.request(method, path, headers=headers, **kw)

    base = f"/api/models/{MODEL}/versions/1.0/compliance"
    cov = call("audrey", "GET", f"{base}/coverage", params={"framework": "eu-ai-act"})
    assert cov.status_code == 200, cov.text
    body = cov.json()
    assert {c["id"]: c["status"] for c in body["clauses"]}["art-10"] == "partial"
    assert body["framework"]["file"] == "eu-ai-act.yaml"  # a name, no path on the server
    # people outside the reading roles are refused, anonymous callers too
    for who in ("dana", "bo", "victor"):
        for method, path in (("GET", f"{base}/coverage"), ("GET", f"{base}/pack"),
                             ("GET", f"{base}/bom")):
            assert call(who, method, path).status_code == 403, (who, path)
    assert call(None, "GET", f"{base}/coverage").status_code == 401
    # only shipped frameworks: never a path on the server
    for fw in ("/etc/passwd", "../../policies/default", "nope"):
        r = call("cora", "GET", f"{base}/coverage", params={"framework": fw})
        assert r.status_code in (400, 422), (fw, r.text)
    # the pack: a zip of the directory, its manifest digests hold, the export is audited
    r = call("rita", "GET", f"{base}/pack", params={"framework": "eu-ai-act"})
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith(
        'attachment; filename="credit-pd-1.0-eu-ai-act-pack.zip"')
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    root = "credit-pd-1.0-eu-ai-act/"
    manifest = json.loads(zf.read(root + "manifest.json"))
    assert "/compliance/packs/" not in zf.read(root + "index.json").decode()
    for f in manifest["files"]:
        assert hashlib.sha256(zf.read(root + f["path"])).hexdigest() == f["sha256"]
    # the zip carries the signed statement over the same files
    from assay.evidence import attest
    from assay.evidence.keys import verify_trusted

    with walkthrough.transaction() as s:
        verified = verify_trusted(s, zf.read(root + "manifest.intoto.json"))
    assert sorted(verified.subject_digests()) == sorted(
        [f["sha256"] for f in manifest["files"]]
        + [hashlib.sha256(zf.read(root + "manifest.json")).hexdigest()])
    attest.require_subject(verified, hashlib.sha256(zf.read(root + "index.html")).hexdigest())
    with walkthrough.transaction() as s:
        ev = s.query(AuditEvent).filter_by(action="compliance.pack_export").one()
        assert ev.actor == "rita"
    bom = call("cora", "GET", f"{base}/bom")
    assert bom.status_code == 200 and validate_bom(bom.json()) is None
    assert call("cora", "GET", f"/api/models/{MODEL}/versions/9/compliance/bom"
                ).status_code == 404
    fws = call("bo", "GET", "/api/compliance/frameworks").json()
    assert {f["framework"] for f in fws} == set(shipped_packs())


def test_coverage_html_shows_each_status_and_escapes_what_users_wrote(
        walkthrough: Store) -> None:
    from assay.compliance import render_coverage_html

    hostile = GOOD_PACK.replace("Performance is measured",
                                "'<script>alert(1)</script><img src=x onerror=alert(2)>'")
    with walkthrough.transaction() as s:
        page = render_coverage_html(coverage(s, MODEL, "1.0", parse_pack(hostile)))
        eu = render_coverage_html(coverage(s, MODEL, "1.0", "eu-ai-act"))
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    art14 = eu.split("<tr id='art-14'>")[1].split("</tr>")[0]
    assert "<span class='badge missing'>missing</span>" in art14
    assert "deployment_approval" in art14
    art73 = eu.split("<tr id='art-73'>")[1].split("</tr>")[0]
    assert "<span class='badge covered'>covered</span>" in art73
    assert "<span class='badge partial'>partial</span>" in eu.split("<tr id='art-10'>")[1]


def test_pack_renders_the_report_from_results_when_none_was_stored(walkthrough: Store,
                                                                   tmp_path: Path) -> None:
    from assay.evidence import open_artifact

    with walkthrough.transaction() as s:
        mv = registry.get_version(s, MODEL, "1.0")
        raw = open_artifact(walkthrough.settings, registry.latest_certification(
            s, mv.id).results_digest)
        again = registry.record_certification(s, _user(s, "victor"), MODEL, "1.0", None, raw)
        assert again.report_digest is None
    with walkthrough.transaction() as s:
        res = write_pack(s, _user(s, "cora"), MODEL, "1.0", "eu-ai-act", tmp_path / "p")
    report = (tmp_path / "p" / "validation" / "report.html").read_text()
    assert res.sections["validation_report"]["info"] == {
        "certification": again.id, "status": again.status, "results": again.results_digest,
        "report": "rendered from results.json"}
    assert "credit-lending" in report and "integrity.proxy_features" in report


def test_a_module_that_brings_model_cards_plugs_in_a_provider_and_a_section(
        walkthrough: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assay.compliance import Finding, Section, docpack, register_provider, register_section
    from assay.compliance import evidence as ev

    monkeypatch.setattr(ev, "_PROVIDERS", dict(ev._PROVIDERS))
    monkeypatch.setattr(docpack, "_SECTIONS", dict(docpack._SECTIONS))
    monkeypatch.setattr(docpack, "_SECTION_KINDS", dict(docpack._SECTION_KINDS))
    card = b"# credit-pd 1.0\n"
    digest = "sha256:" + hashlib.sha256(card).hexdigest()
    register_provider("model_card", lambda ctx, arg: Finding(
        "covered", [{"model_card": digest, "version": ctx.version}]))
    register_section("model_card", "Model card",
                     lambda ctx, cov: Section({"model-card/card.md": card}),
                     kinds=("model_card",))
    with walkthrough.transaction() as s:
        cov = coverage(s, MODEL, "1.0", "eu-ai-act")
        res = write_pack(s, _user(s, "cora"), MODEL, "1.0", "eu-ai-act", tmp_path / "p")
    # Annex IV(1) needed a model card and a scope document: both are there now
    assert cov.clause("annex-iv-1").status == "covered"
    assert {"model_card": digest, "version": "1.0"} in cov.clause("annex-iv-1").found
    assert (tmp_path / "p" / "model-card" / "card.md").read_bytes() == card
    assert res.sections["model_card"]["status"] == "included"
    assert "model-card/card.md" in {f["path"] for f in res.manifest["files"]}
