"""Hardening of the service against an insider: NUL characters, uploaded HTML, password
changes, who may edit a model's owner and deployment status, evidence errors without
server paths, login throttling, who reads the audit trail, documents of sign-offs.

Every attack runs against the real app and store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient

from assay.api.app import create_app
from assay.api.sample import populate
from assay.auth import service as auth
from assay.registry import get_user

PASSWORD = "hardening password 1"


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def env(db):
    populate(db, password=PASSWORD, models=1, reports=False)
    tokens = {}
    with db.transaction() as s:
        admin = get_user(s, "admin")
        for name in ("aud", "dana", "vic", "rita", "bob", "cora", "sid", "admin"):
            tokens[name] = auth.create_token(s, admin, name, "tests")[1]
    app = create_app(db.settings, store=db)
    return app, TestClient(app), tokens, db


def bearer(tokens, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}"}


def browser(app, user: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(app, headers={"accept": "text/html"})
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    resp = client.post("/login", data={"username": user, "password": password,
                                       "csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def refused_422(resp, field: str) -> None:
    assert resp.status_code == 422, resp.text
    err = resp.json()["error"]
    assert err["code"] == "invalid_request"
    assert field in err["message"] and "NUL" in err["message"], err


# -- NUL characters ------------------------------------------------------------

def test_nul_characters_are_refused_with_422_everywhere(env) -> None:
    _app, client, tokens, db = env
    h = bearer(tokens, "dana")
    refused_422(client.patch("/api/models/credit-scoring", headers=h,
                             json={"purpose": "evil\x00purpose"}), "body.purpose")
    refused_422(client.post("/api/models", headers=h, json={
        "name": "m-nul", "owner": "bob", "decision_type": "automated", "criticality": "low",
        "stakeholders": ["ok", "bad\x00"]}), "body.stakeholders.1")
    refused_422(client.get("/api/models", headers=h, params={"q": "a\x00b"}), "query.q")
    refused_422(client.get("/api/audit", headers=bearer(tokens, "aud"),
                           params={"actor": "\x00"}), "query.actor")
    refused_422(client.get("/api/models/credit%00scoring", headers=h), "path")
    refused_422(client.get("/api/models/credit-scoring/versions/1%000/gate", headers=h),
                "path")
    refused_422(client.post("/api/models/credit-scoring/versions/1.0/comments", headers=h,
                            json={"body": "x\x00"}), "body.body")
    # a key holding a NUL is named without echoing the character
    refused_422(client.patch("/api/models/credit-scoring", headers=h,
                             json={"purp\x00ose": "x"}), "body.purp?ose")
    # binary file contents may hold NUL bytes: that is data, not text
    ok = client.post("/api/evidence", headers=h, files={"file": ("a.bin", b"\x00\x01\x02")})
    assert ok.status_code == 201, ok.text
    # nothing was written by the refused requests
    with db.transaction() as s:
        from assay.registry import get_model

        assert "\x00" not in (get_model(s, "credit-scoring").purpose or "")
    assert client.get("/api/models", headers=h, params={"q": "m-nul"}).json() == []


def test_nul_characters_in_web_forms_get_a_4xx_page(env) -> None:
    app, _client, _tokens, _db = env
    login = TestClient(app, headers={"accept": "text/html"})
    page = login.get("/login")
    resp = login.post("/login", data={"username": "ad\x00min", "password": "x",
                                      "csrf_token": csrf_of(page.text)})
    assert resp.status_code == 422
    assert "text/html" in resp.headers["content-type"] and "NUL" in resp.text
    c = browser(app, "vic")
    html = c.get("/queue").text
    resp = c.post("/workflow/comment", data={"model": "credit-scoring", "version": "1.0",
                                             "body": "hello\x00", "csrf_token": csrf_of(html)})
    assert resp.status_code == 422 and "NUL" in resp.text
    assert "Traceback" not in resp.text
    # a multipart form (with a document) likewise
    resp = c.post("/workflow/comment", data={"model": "credit-scoring", "version": "1.0",
                                             "stage": "x\x00", "body": "hello",
                                             "csrf_token": csrf_of(html)},
                  files={"document": ("notes.txt", b"notes")})
    assert resp.status_code == 422 and "NUL" in resp.text
    resp = c.get("/", params={"q": "\x00"})
    assert resp.status_code == 422 and "NUL" in resp.text
