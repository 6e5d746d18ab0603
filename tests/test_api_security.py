"""Security of the service: every endpoint needs credentials, read-only roles cannot
write, and hostile text in every field is stored verbatim and shown escaped."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from assay.api.app import create_app
from assay.api.sample import populate
from assay.auth import service as auth
from assay.registry import get_user

PUBLIC = {"/api/health"}
PARAMS = {"name": "credit-scoring", "version": "1.0", "stage": "validation", "risk_id": "1",
          "mitigation_id": "1", "cert_id": "1", "key_id": "000000000000", "username": "vic",
          "document_id": "1", "delivery_id": "1", "alert_id": "1", "card_id": "1",
          "incident_id": "1", "kpi": "approval_rate", "entry": "1", "key": "ci-runner",
          "finding_id": "1"}
#: What the read-only auditor may still change: their own tokens and password.
SELF_SERVICE = {("POST", "/api/tokens"), ("DELETE", "/api/tokens/{key_id}"),
                ("POST", "/api/users/{username}/password")}

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SQLI = "'; DROP TABLE users; -- \" OR 1=1 --"
HOSTILE = f"{XSS} {SQLI}"


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def app_env(db):
    populate(db, password="unused password 1", models=1, reports=False)
    tokens = {}
    with db.transaction() as s:
        admin = get_user(s, "admin")
        for name in ("aud", "dana", "vic", "rita", "bob", "admin"):
            tokens[name] = auth.create_token(s, admin, name, "tests")[1]
    app = create_app(db.settings, store=db)
    return app, TestClient(app), tokens, db


def _api_routes(app):
    """Every operation the OpenAPI schema publishes."""
    for path, ops in app.openapi()["paths"].items():
        for method in ops:
            yield method.upper(), path


def _fill(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], path)


def test_every_api_endpoint_refuses_requests_without_credentials(app_env) -> None:
    app, client, _tokens, _ = app_env
    routes = list(_api_routes(app))
    assert len(routes) > 35
    for method, path in routes:
        resp = client.request(method, _fill(path))
        if path in PUBLIC:
            assert resp.status_code == 200
            continue
        assert resp.status_code == 401, (method, path, resp.status_code, resp.text)
        assert resp.json()["error"]["code"] == "unauthenticated"


def test_the_read_only_auditor_cannot_change_anything(app_env) -> None:
    app, client, tokens, _ = app_env
    h = {"Authorization": f"Bearer {tokens['aud']}"}
    bodies = {
        "/api/models": {"name": "m2", "owner": "bob", "decision_type": "automated",
                        "criticality": "low"},
        "/api/models/{name}/versions": {"version": "9"},
        "/api/models/{name}": {"purpose": "x"},
        "/api/models/{name}/versions/{version}/submit": {},
        "/api/models/{name}/versions/{version}/stages/{stage}/approve": {},
        "/api/models/{name}/versions/{version}/stages/{stage}/reject": {"reason": "no"},
        "/api/models/{name}/versions/{version}/comments": {"body": "hi"},
        "/api/models/{name}/versions/{version}/waivers": {"justification": "j",
                                                          "expires": "2099-01-01"},
        "/api/models/{name}/versions/{version}/risk-assessments": {
            "categories": {"privacy": {"likelihood": 1, "impact": 1}}},
        "/api/risks": {"model": "credit-scoring", "title": "t", "category": "privacy",
                       "likelihood": 1, "impact": 1},
        "/api/risks/{risk_id}": {"title": "t"},
        "/api/risks/{risk_id}/mitigations": {"title": "t", "success_criteria": "s"},
        "/api/mitigations/{mitigation_id}": {"status": "done"},
        "/api/users": {"username": "eve", "roles": ["admin"]},
        "/api/users/{username}": {"grant": ["admin"]},
        "/api/models/{name}/versions/{version}/certifications/run": {
            "policy": "default", "tier": "low", "target": "y", "prediction": "p"},
        "/api/incidents": {"model": "credit-scoring", "version": "1.0", "title": "t",
                           "severity": "SEV3"},
        "/api/incidents/escalate": {},
        "/api/incidents/{incident_id}/acknowledge": {"note": "n"},
        "/api/incidents/{incident_id}/ack": {"note": "n"},
        "/api/incidents/{incident_id}/mitigate": {"note": "n"},
        "/api/incidents/{incident_id}/resolve": {"note": "n"},
        "/api/incidents/{incident_id}/close": {"note": "n"},
        "/api/incidents/{incident_id}/update": {"note": "n"},
        "/api/incidents/{incident_id}/report": {"reference": "r"},
        "/api/incidents/{incident_id}/postmortem": {"root_cause": "r"},
        "/api/keys": {"name": "ci", "purpose": "ci",
                      "public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"},
        "/api/keys/{key}/revoke": {},
        "/api/channels": {"name": "ops", "kind": "webhook",
                          "config": {"url": "https://hooks.example.test/"},
                          "secret": "s3cret-hmac-key-0123456789"},
        "/api/channels/{name}": {"enabled": False},
        "/api/channels/{name}/test": {},
        "/api/notifications/{delivery_id}/retry": {},
        "/api/models/{name}/versions/{version}/monitoring/batches": [{"x": 1, "p": 0.5}],
        "/api/models/{name}/versions/{version}/monitoring/labels": [{"id": "a", "y": 1}],
        "/api/monitoring/run": {},
        "/api/alerts/{alert_id}/ack": {"note": "mine now"},
        "/api/alerts/{alert_id}/resolve": {"note": "done"},
        "/api/models/{name}/versions/{version}/releases": {"mode": "shadow"},
        "/api/models/{name}/versions/{version}/releases/promote": {},
        "/api/models/{name}/releases/rollback": {"to": "1.0"},
        "/api/models/{name}/versions/{version}/card/narrative": {
            "fields": {"intended_use": "x"}},
        "/api/models/{name}/versions/{version}/cards": {"format": "md"},
        "/api/models/{name}/versions/{version}/impact/assessment": {
            "yaml": "intended_outcomes: [{outcome: o, for_whom: [a]}]\npathway: [p]\n"},
        "/api/models/{name}/versions/{version}/impact/kpis": {"name": "k",
                                                              "direction": "increase"},
        "/api/models/{name}/versions/{version}/impact/kpis/{kpi}/observations": {"value": 1},
        "/api/models/{name}/versions/{version}/impact/kpis/evaluate": {},
        "/api/models/{name}/versions/{version}/impact/register": {
            "title": "t", "kind": "negative", "likelihood": 1, "severity": 1},
        "/api/models/{name}/versions/{version}/impact/register/{entry}/links": {},
        "/api/models/{name}/versions/{version}/impact/feedback": {"channel": "web",
                                                                  "category": "c"},
        "/api/models/{name}/versions/{version}/red-team": {
            "technique": "evasion", "severity": "high", "outcome": "succeeded", "note": "n"},
        "/api/red-team/{finding_id}/resolve": {"resolution": "fixed"},
    }
    files = {"/api/models/{name}/versions/{version}/certifications":
             {"results": ("r.json", b'{"status": "passed", "policy": {}, "checks": []}')},
             "/api/evidence": {"file": ("f.txt", b"data")},
             "/api/policies": {"file": ("p.yaml", b"name: p\nversion: '1'\ntiers: {low: {}}\n")},
             **{f"/api/impact/{kind}": {"file": ("d.csv", b"y,s\n1,0.5\n0,0.2\n"),
                                        "scenarios": (None, "scenarios: []\n")}
                for kind in ("value", "frontier", "scenarios", "sensitivity", "abtest", "did",
                             "rdd", "compare", "mitigate/thresholds", "mitigate/reweigh")}}
    # everyone signed in may compute the impact numbers; recording them is the change
    impact_numbers = {"record": "credit-scoring@1.0", "target": "y", "positive_label": "1",
                      "score": "s", "value": "tp=1,fp=-1,tn=0,fn=0", "sensitive": "s",
                      "outcome": "y", "arm": "s", "unit": "s", "time": "s", "treated": "s",
                      "post": "s", "running": "s", "cutoff": "0"}
    checked = 0
    for method, path in _api_routes(app):
        if method == "GET" or (method, path) in SELF_SERVICE:
            continue
        kw = {"files": files[path]} if path in files else {"json": bodies[path]}
        if path.endswith("/monitoring/labels"):
            kw["params"] = {"id_column": "id", "target": "y"}
        if path.startswith("/api/impact/"):
            kw["params"] = impact_numbers
        resp = client.request(method, _fill(path), headers=h, **kw)
        assert resp.status_code == 403, (method, path, resp.status_code, resp.text)
        checked += 1
    assert checked >= 15


def _hostile_records(client, tokens) -> None:
    def h(user):
        return {"Authorization": f"Bearer {tokens[user]}"}

    resp = client.post("/api/models", headers=h("dana"), json={
        "name": "hostile", "owner": "bob", "decision_type": "automated", "criticality": "low",
        "purpose": HOSTILE, "intended_use": HOSTILE, "out_of_scope_uses": HOSTILE,
        "business_unit": HOSTILE[:200], "stakeholders": [HOSTILE]})
    assert resp.status_code == 201, resp.text
    resp = client.post("/api/models/hostile/versions", headers=h("dana"), json={
        "version": "1", "training_data_source": HOSTILE, "evaluation_data_source": HOSTILE,
        "feature_pipeline": HOSTILE, "code_revision": HOSTILE[:200]})
    assert resp.status_code == 201, resp.text
    resp = client.post("/api/models/credit-scoring/versions/1.0/comments", headers=h("vic"),
                       json={"body": HOSTILE, "stage": "validation"})
    assert resp.status_code == 201, resp.text
    resp = client.post("/api/risks", headers=h("vic"), json={
        "model": "credit-scoring", "title": HOSTILE, "description": HOSTILE,
        "category": "privacy", "likelihood": 2, "impact": 2})
    assert resp.status_code == 201, resp.text
    resp = client.post("/api/tokens", headers=h("vic"), json={"name": HOSTILE})
    assert resp.status_code == 201, resp.text
    resp = client.post("/api/users", headers=h("admin"), json={
        "username": "mallory", "display_name": HOSTILE[:200], "email": "m@example.org"})
    assert resp.status_code == 201, resp.text


def test_hostile_text_is_stored_verbatim_and_shown_escaped(app_env) -> None:
    _app, client, tokens, store = app_env
    _hostile_records(client, tokens)
    h = {"Authorization": f"Bearer {tokens['aud']}"}
    model = client.get("/api/models/hostile", headers=h).json()
    assert model["purpose"] == HOSTILE and model["stakeholders"] == [HOSTILE]
    assert model["versions"][0]["feature_pipeline"] == HOSTILE
    risks = client.get("/api/risks", headers=h, params={"model": "credit-scoring"}).json()
    assert HOSTILE in {r["title"] for r in risks}
    status = client.get("/api/models/credit-scoring/workflow", headers=h).json()
    assert HOSTILE in {e.get("text") for e in status["versions"][0]["timeline"]}
    # The tables are all still there.
    with store.transaction() as s:
        names = set(inspect(s.get_bind()).get_table_names())
    assert {"users", "models", "audit_events", "auth_tokens"} <= names
    # Pages show the text escaped, never as markup.
    pw = "a long enough password 1"
    with store.transaction() as s:
        auth.set_password(s, get_user(s, "aud"), "aud", pw)
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"username": "aud", "password": pw, "csrf_token": csrf})
    for path in ("/?q=hostile", "/models/hostile", "/models/credit-scoring", "/risk", "/audit",
                 f"/?q={SQLI}"):
        html = client.get(path).text
        assert "<script>alert" not in html, path
        assert "<img src=x onerror" not in html, path
    assert "&lt;script&gt;alert(" in client.get("/models/hostile").text
    assert "&lt;script&gt;alert(" in client.get("/risk").text
    assert "&lt;script&gt;alert(" in client.get("/audit").text


def test_search_and_filters_take_sql_text_as_plain_text(app_env) -> None:
    _app, client, tokens, _ = app_env
    h = {"Authorization": f"Bearer {tokens['aud']}"}
    assert client.get("/api/models", headers=h, params={"q": "' OR '1'='1"}).json() == []
    assert client.get("/api/audit", headers=h, params={"actor": "x' OR '1'='1"}).json() == []
    resp = client.get("/api/risks", headers=h, params={"category": "x' OR 1=1 --"})
    assert resp.status_code == 400
