"""The governance routes over the real app and store (SQLite and PostgreSQL): models,
certifications, risk, workflow, the deployment gate and the audit trail; the actor of
every change is the authenticated user."""

from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient

from assay.api.app import create_app
from assay.api.sample import populate, sample_results
from assay.auth import service as auth
from assay.registry import get_user
from assay.store.audit import list_events


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


class Api:
    def __init__(self, store, sample) -> None:
        self.store = store
        self.sample = sample
        self.client = TestClient(create_app(store.settings, store=store))
        self.tokens: dict[str, str] = {}
        with store.transaction() as s:
            admin = get_user(s, "admin")
            for name in sample.users:
                self.tokens[name] = auth.create_token(s, admin, name, "tests")[1]

    def __call__(self, user: str | None, method: str, path: str, **kw):
        headers = kw.pop("headers", {})
        if user:
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        return self.client.request(method, path, headers=headers, **kw)


@pytest.fixture
def api(db) -> Api:
    sample = populate(db, password="unused password 1", models=2, reports=False)
    return Api(db, sample)


def err(resp, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert set(body) == {"code", "message", "details"}
    return body["message"]


def test_inventory_and_model_detail(api: Api) -> None:
    rows = api("aud", "GET", "/api/models").json()
    assert [r["name"] for r in rows] == ["credit-scoring", "fraud-alerts"]
    cs = rows[0]
    assert cs["tier"] == "high" and cs["owner"] == "bob" and cs["approval"] == "in_review"
    assert cs["certification"] == "passed" and cs["next_review_at"]
    assert [r["name"] for r in api("aud", "GET", "/api/models", params={"q": "FRAUD"}).json()] \
        == ["fraud-alerts"]
    assert api("aud", "GET", "/api/models", params={"tier": "low"}).json() == []
    detail = api("aud", "GET", "/api/models/credit-scoring").json()
    assert detail["versions"][0]["version"] == "1.0"
    err(api("aud", "GET", "/api/models/nope"), 404)


def test_register_model_and_version_records_the_authenticated_actor(api: Api) -> None:
    body = {"name": "pricing", "owner": "bob", "decision_type": "human_in_the_loop",
            "criticality": "medium", "purpose": "Motor insurance premium"}
    resp = api("dana", "POST", "/api/models", json=body)
    assert resp.status_code == 201, resp.text
    err(api("dana", "POST", "/api/models", json=body), 409)
    resp = api("dana", "POST", "/api/models/pricing/versions",
               json={"version": "2.1", "artifact_digest": "ab" * 32, "code_revision": "abc"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["artifact_digest"] == "sha256:" + "ab" * 32
    err(api("vic", "POST", "/api/models", json={**body, "name": "other"}), 403)
    err(api("dana", "POST", "/api/models", json={**body, "criticality": "extreme"}), 422)
    with api.store.transaction() as s:
        ev = list_events(s, action="model.version_add", limit=1)[0]
        assert ev.actor == "dana" and ev.subject_id == "pricing@2.1"


def test_upload_certification_then_read_results_and_report(api: Api) -> None:
    results = sample_results(api.sample.policy_path, tier="high", status="blocked")
    resp = api("vic", "POST", "/api/models/fraud-alerts/versions/1.0/certifications",
               files={"results": ("results.json", json.dumps(results).encode()),
                      "report": ("report.html", b"<html><body>report</body></html>")})
    assert resp.status_code == 201, resp.text
    cert = resp.json()
    assert cert["status"] == "blocked" and cert["results_digest"].startswith("sha256:")
    listed = api("aud", "GET", "/api/models/fraud-alerts/versions/1.0/certifications").json()
    assert listed[0]["id"] == cert["id"]
    stored = api("aud", "GET", f"/api/models/fraud-alerts/versions/1.0/certifications/"
                               f"{cert['id']}").json()
    assert stored == results
    report = api("aud", "GET", cert["report_url"])
    assert report.status_code == 200 and report.text == "<html><body>report</body></html>"
    assert "script-src" not in report.headers["content-security-policy"]
    err(api("vic", "POST", "/api/models/fraud-alerts/versions/1.0/certifications",
            files={"results": ("results.json", b"{not json")}), 400)
    err(api("vic", "POST", "/api/models/fraud-alerts/versions/1.0/certifications",
            files={"results": ("results.json", b"[1, 2]")}), 400)
    err(api("bob", "POST", "/api/models/fraud-alerts/versions/1.0/certifications",
            files={"results": ("results.json", json.dumps(results).encode())}), 403)


def test_workflow_gate_and_audit_over_the_api(api: Api) -> None:
    gate = api("aud", "GET", "/api/models/credit-scoring/versions/1.0/gate").json()
    assert gate["allowed"] is False and gate["reasons"]
    assert gate["evidence"]["artifact"].startswith("sha256:")
    queue = api("vic", "GET", "/api/queue").json()
    assert [(q["model"], q["stage"]) for q in queue] == [("credit-scoring", "validation")]
    assert api("aud", "GET", "/api/queue").json() == []
    rev = queue[0]["revision"]

    # Out of order, wrong role, stale revision.
    msg = err(api("rita", "POST", "/api/models/credit-scoring/versions/1.0/stages/"
                                  "deployment_approval/approve", json={}), 409)
    assert "validation" in msg
    err(api("aud", "POST", "/api/models/credit-scoring/versions/1.0/stages/validation/approve",
            json={}), 403)
    err(api("vic", "POST", "/api/models/credit-scoring/versions/1.0/stages/validation/approve",
            json={"expected_revision": rev + 5}), 409)

    resp = api("vic", "POST", "/api/models/credit-scoring/versions/1.0/stages/validation/"
                              "approve", json={"conditions": ["Quarterly fairness re-run"],
                                               "expected_revision": rev})
    assert resp.status_code == 201, resp.text
    assert resp.json()["actor"] == "vic"
    # Separation of duties: one person fills one approver slot.
    resp = api("rita", "POST", "/api/models/credit-scoring/versions/1.0/stages/"
                               "deployment_approval/approve", json={})
    assert resp.status_code == 201, resp.text
    msg = err(api("rita", "POST", "/api/models/credit-scoring/versions/1.0/stages/"
                                  "deployment_approval/approve", json={}), 409)
    assert "separation of duties" in msg
    resp = api("bob", "POST", "/api/models/credit-scoring/versions/1.0/stages/"
                              "deployment_approval/approve", json={})
    assert resp.status_code == 201, resp.text
    gate = api("aud", "GET", "/api/models/credit-scoring/versions/1.0/gate").json()
    assert gate["allowed"] is True and gate["reasons"] == []
    assert gate["conditions"] == ["Quarterly fairness re-run"]
    assert gate["evidence"]["certification"].startswith("sha256:")

    status = api("aud", "GET", "/api/models/credit-scoring/workflow").json()
    events = [e["event"] for e in status["versions"][0]["timeline"]]
    assert events.count("approve") == 4 and "approved_for_deployment" in events

    audit = api("aud", "GET", "/api/audit", params={"action": "workflow.*", "limit": 3}).json()
    assert audit[0]["actor"] == "bob" and audit[0]["seq"] > audit[1]["seq"]
    assert api("aud", "GET", "/api/audit/verify").json()["ok"] is True
    export = api("aud", "GET", "/api/audit/export")
    lines = export.text.strip().splitlines()
    chain = json.loads(export.headers["x-assay-chain"])
    assert chain["ok"] is True and len(lines) == chain["exported"] == chain["checked"]
    err(api("dana", "GET", "/api/audit/export"), 403)


def test_submitter_cannot_sign_and_reject_needs_a_reason(api: Api) -> None:
    with api.store.transaction() as s:
        from assay.registry import grant_role

        grant_role(s, get_user(s, "admin"), "dana", "business_owner")
    msg = err(api("dana", "POST", "/api/models/fraud-alerts/versions/1.0/stages/scope/approve",
                  json={}), 409)
    assert "separation of duties" in msg
    err(api("bob", "POST", "/api/models/fraud-alerts/versions/1.0/stages/scope/reject",
            json={"reason": ""}), 422)
    resp = api("bob", "POST", "/api/models/fraud-alerts/versions/1.0/stages/scope/reject",
               json={"reason": "Scope document missing the affected population"})
    assert resp.status_code == 201
    assert api("aud", "GET", "/api/models/fraud-alerts/versions/1.0/gate").json()[
        "state"] == "rejected"


def test_comment_and_waiver_routes(api: Api) -> None:
    resp = api("vera", "POST", "/api/models/credit-scoring/versions/1.0/comments",
               json={"body": "Looked at the calibration plot", "stage": "validation"})
    assert resp.status_code == 201 and resp.json()["actor"] == "vera"
    err(api("aud", "POST", "/api/models/credit-scoring/versions/1.0/comments",
            json={"body": "x"}), 403)
    err(api("vic", "POST", "/api/models/credit-scoring/versions/1.0/waivers",
            json={"justification": "x", "expires": "2099-01-01"}), 403)


def test_risk_routes(api: Api) -> None:
    risks = api("aud", "GET", "/api/risks", params={"model": "credit-scoring"}).json()
    assert {r["title"] for r in risks} >= {"Selection-rate gap by sex"}
    backlog = api("aud", "GET", "/api/risk-backlog").json()
    assert backlog[0]["rank"] == 1
    resp = api("vic", "POST", "/api/risks", json={
        "model": "fraud-alerts", "title": "Label delay", "category": "data_quality",
        "likelihood": 3, "impact": 2})
    assert resp.status_code == 201, resp.text
    rid = resp.json()["id"]
    err(api("aud", "POST", "/api/risks", json={
        "model": "fraud-alerts", "title": "x", "category": "data_quality",
        "likelihood": 3, "impact": 2}), 403)
    err(api("vic", "POST", "/api/risks", json={
        "model": "fraud-alerts", "title": "x", "category": "data_quality",
        "likelihood": 6, "impact": 2}), 422)
    resp = api("rita", "PATCH", f"/api/risks/{rid}", json={"likelihood": 4,
                                                           "expected_version": 1})
    assert resp.status_code == 200, resp.text
    err(api("rita", "PATCH", f"/api/risks/{rid}", json={"likelihood": 5,
                                                        "expected_version": 1}), 409)
    assessments = api("aud", "GET", "/api/models/credit-scoring/risk-assessments").json()
    assert assessments[-1]["tier"] == "high"


def test_run_a_certification_on_stored_data(api: Api, backend: str) -> None:
    if backend == "postgresql":
        pytest.skip("the run itself does not touch the database; recording is tested on both")
    import numpy as np

    from assay.datasets import ADULT_POSITIVE_LABEL, ADULT_TARGET, load_adult

    _train, test = load_adult()
    df = test.sample(3000, random_state=1).reset_index(drop=True)
    y = (df[ADULT_TARGET] == ADULT_POSITIVE_LABEL).astype(int)
    score = np.clip(0.6 * y + np.random.default_rng(1).normal(0.2, 0.2, len(df)), 0, 1)
    df = df.assign(y=y, score=score, pred=(score >= 0.5).astype(int)).drop(columns=[ADULT_TARGET])
    up = api("dana", "POST", "/api/evidence",
             files={"file": ("eval.csv", df.to_csv(index=False).encode())})
    assert up.status_code == 201, up.text
    resp = api("dana", "POST", "/api/models/credit-scoring/versions",
               json={"version": "2.0", "evaluation_data_digest": up.json()["digest"]})
    assert resp.status_code == 201, resp.text
    body = {"policy": "default", "tier": "low", "target": "y", "prediction": "pred",
            "score": "score", "sensitive": ["sex"]}
    err(api("bob", "POST", "/api/models/credit-scoring/versions/2.0/certifications/run",
            json=body), 403)
    err(api("vic", "POST", "/api/models/credit-scoring/versions/2.0/certifications/run",
            json={**body, "policy": "../../etc/passwd"}), 422)
    resp = api("vic", "POST", "/api/models/credit-scoring/versions/2.0/certifications/run",
               json=body)
    assert resp.status_code == 201, resp.text
    cert = resp.json()
    assert cert["status"] in ("passed", "passed_with_warnings", "blocked")
    assert cert["policy_name"] == "default" and cert["tier"] == "low"
    assert sum(cert["summary"].values()) > 0
    results = api("aud", "GET", f"/api/models/credit-scoring/versions/2.0/certifications/"
                                f"{cert['id']}").json()
    assert results["data"]["evaluation"]["rows"] == 3000
    err(api("vic", "POST", "/api/models/credit-scoring/versions/1.0/certifications/run",
            json=body), 400)
