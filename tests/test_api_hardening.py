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


# -- evidence errors name digests, never server paths ------------------------------

def _first_certification(client, h) -> dict:
    certs = client.get("/api/models/credit-scoring/versions/1.0/certifications", headers=h)
    assert certs.status_code == 200 and certs.json(), certs.text
    return certs.json()[0]


def test_evidence_errors_do_not_show_server_paths(env) -> None:
    import os

    from assay.evidence import artifact_path

    app, client, tokens, db = env
    h = bearer(tokens, "vic")
    cert = _first_certification(client, h)
    path = artifact_path(db.settings, cert["results_digest"])
    os.chmod(path, 0o644)
    path.write_bytes(b'{"edited": true}')
    home = str(db.settings.home)
    url = f"/api/models/credit-scoring/versions/1.0/certifications/{cert['id']}"
    resp = client.get(url, headers=h)
    assert resp.status_code == 400, resp.text
    assert "corrupted" in resp.text and cert["results_digest"] in resp.text
    assert home not in resp.text and "/evidence/sha256/" not in resp.text
    path.unlink()
    resp = client.get(url, headers=h)
    assert resp.status_code == 404 and cert["results_digest"] in resp.text
    assert home not in resp.text and "evidence/sha256" not in resp.text
    page = browser(app, "vic").get(f"/models/credit-scoring/versions/1.0/report/{cert['id']}")
    if cert["report_digest"] is None:  # the report is rendered from the (missing) results
        assert page.status_code == 404 and "text/html" in page.headers["content-type"]
        assert home not in page.text and "evidence/sha256" not in page.text


def test_a_run_on_stored_data_does_not_show_its_working_directory(env) -> None:
    import tempfile

    _app, client, tokens, _db = env
    h = bearer(tokens, "vic")
    data = b"y,p\n1,1\n0,0\n1,0\n0,1\n"
    digest = client.post("/api/evidence", headers=bearer(tokens, "dana"),
                         files={"file": ("eval.csv", data)}).json()["digest"]
    assert client.post("/api/models/credit-scoring/versions", headers=bearer(tokens, "dana"),
                       json={"version": "7.0", "evaluation_data_digest": digest}
                       ).status_code == 201
    resp = client.post("/api/models/credit-scoring/versions/7.0/certifications/run", headers=h,
                       json={"policy": "default", "tier": "low", "target": "no_such_column",
                             "prediction": "p"})
    assert 400 <= resp.status_code < 500, resp.text
    assert "no_such_column" in resp.text
    assert tempfile.gettempdir() + "/" not in resp.text and "assay-run-" not in resp.text


# -- changing a password ---------------------------------------------------------

def _signed_in(client: TestClient) -> bool:
    resp = client.get("/api/me", headers={"accept": "application/json"})
    return resp.status_code == 200


def test_a_token_cannot_change_its_users_password_without_the_current_one(env) -> None:
    app, client, tokens, _db = env
    other_browser = browser(app, "dana")
    assert _signed_in(other_browser)
    h = bearer(tokens, "dana")
    url = "/api/users/dana/password"
    new = "a brand new password 2"
    resp = client.post(url, headers=h, json={"password": new})
    assert resp.status_code == 400 and "current password: required" in resp.text
    resp = client.post(url, headers=h, json={"password": new, "current_password": "guess"})
    assert resp.status_code == 400 and "does not match" in resp.text
    assert _signed_in(other_browser)  # nothing changed yet
    resp = client.post(url, headers=h, json={"password": new, "current_password": PASSWORD})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"username": "dana", "one_time_password": None}
    assert not _signed_in(other_browser)  # the other browser session has ended
    browser(app, "dana", new)  # the new password works
    events = client.get("/api/audit", headers=bearer(tokens, "aud"),
                        params={"action": "auth.password_set", "subject_id": "dana"}).json()
    assert events and events[0]["actor"] == "dana"


def test_a_browser_changing_its_password_keeps_itself_and_ends_the_others(env) -> None:
    app, _client, _tokens, _db = env
    mine, other = browser(app, "vic"), browser(app, "vic")
    csrf = csrf_of(mine.get("/account").text)
    resp = mine.post("/api/users/vic/password", headers={"X-CSRF-Token": csrf},
                     json={"password": "vic's new password 3", "current_password": PASSWORD})
    assert resp.status_code == 200, resp.text
    assert _signed_in(mine) and not _signed_in(other)


def test_an_admin_reset_ends_the_users_sessions(env) -> None:
    app, client, tokens, _db = env
    vic = browser(app, "vic")
    resp = client.post("/api/users/vic/password", headers=bearer(tokens, "admin"), json={})
    assert resp.status_code == 200 and resp.json()["one_time_password"]
    assert not _signed_in(vic)
    resp = client.post("/api/users/vic/password", headers=bearer(tokens, "rita"),
                       json={"password": "rita sets vic's password"})
    assert resp.status_code == 403


# -- who edits a model's owner and deployment status -------------------------------

def test_only_the_owner_or_an_admin_hands_a_model_to_another_owner(env) -> None:
    _app, client, tokens, _db = env
    url = "/api/models/credit-scoring"
    for writer in ("dana", "rita"):  # model writers, but not the owner (bob)
        resp = client.patch(url, headers=bearer(tokens, writer), json={"owner": writer})
        assert resp.status_code == 403, resp.text
        assert "only its owner or an admin" in resp.json()["error"]["message"]
    assert client.get(url, headers=bearer(tokens, "dana")).json()["owner"] == "bob"
    # writers still edit the descriptive fields, and may name the same owner
    resp = client.patch(url, headers=bearer(tokens, "dana"),
                        json={"purpose": "Default risk", "owner": "bob"})
    assert resp.status_code == 200 and resp.json()["purpose"] == "Default risk"
    resp = client.patch(url, headers=bearer(tokens, "bob"), json={"owner": "rita"})
    assert resp.status_code == 200 and resp.json()["owner"] == "rita"
    resp = client.patch(url, headers=bearer(tokens, "bob"), json={"owner": "bob"})
    assert resp.status_code == 403  # bob is no longer the owner
    resp = client.patch(url, headers=bearer(tokens, "admin"), json={"owner": "bob"})
    assert resp.status_code == 200 and resp.json()["owner"] == "bob"
    changes = [e["payload"]["changes"] for e in client.get(
        "/api/audit", headers=bearer(tokens, "aud"),
        params={"action": "model.update", "subject_id": "credit-scoring"}).json()]
    assert [c["owner"] for c in changes if "owner" in c] == [
        {"from": "rita", "to": "bob"}, {"from": "bob", "to": "rita"}]


def test_deployed_needs_the_deployment_gate_to_allow_it(env) -> None:
    _app, client, tokens, _db = env
    url = "/api/models/credit-scoring"
    gate = client.get(url + "/versions/1.0/gate", headers=bearer(tokens, "dana")).json()
    assert gate["allowed"] is False
    resp = client.patch(url, headers=bearer(tokens, "dana"), json={"deployment_status": "deployed"})
    assert resp.status_code == 409, resp.text
    message = resp.json()["error"]["message"]
    assert "deployment gate" in message and gate["reasons"][0] in message
    assert client.get(url, headers=bearer(tokens, "dana")).json()["deployment_status"] \
        == "validation"
    resp = client.post("/api/models", headers=bearer(tokens, "dana"), json={
        "name": "born-deployed", "owner": "bob", "decision_type": "automated",
        "criticality": "low", "deployment_status": "deployed"})
    assert resp.status_code == 409 and "no version" in resp.text
    # through the workflow to an approved deployment, then it may say deployed
    stages = [("vic", "validation"), ("rita", "deployment_approval"),
              ("bob", "deployment_approval")]
    for who, stage in stages:
        resp = client.post(f"{url}/versions/1.0/stages/{stage}/approve",
                           headers=bearer(tokens, who), json={})
        assert resp.status_code == 201, resp.text
    assert client.get(url + "/versions/1.0/gate", headers=bearer(tokens, "dana")
                      ).json()["allowed"] is True
    resp = client.patch(url, headers=bearer(tokens, "dana"), json={"deployment_status": "deployed"})
    assert resp.status_code == 200 and resp.json()["deployment_status"] == "deployed"


# -- one rule for reading the audit trail -----------------------------------------------

READERS = ("aud", "cora", "rita", "admin")
OTHERS = ("dana", "vic", "bob", "sid")


def test_only_audit_readers_list_or_export_the_trail(env) -> None:
    app, client, tokens, _db = env
    for who in READERS:
        h = bearer(tokens, who)
        assert client.get("/api/audit", headers=h).status_code == 200, who
        assert client.get("/api/audit/export", headers=h).status_code == 200, who
    for who in OTHERS:
        h = bearer(tokens, who)
        for path in ("/api/audit", "/api/audit/export"):
            resp = client.get(path, headers=h, params={"actor": who} if path == "/api/audit"
                              else None)
            assert resp.status_code == 403, (who, path, resp.text)
            assert resp.json()["error"]["code"] == "forbidden"
        # verifying the chain answers with counts and hashes: anyone may
        assert client.get("/api/audit/verify", headers=h).json()["ok"] is True
    # the web pages follow the same rule: no link, no page, no export link
    for who in OTHERS:
        c = browser(app, who)
        home = c.get("/").text
        assert 'href="/audit"' not in home and "/api/audit/export" not in home
        resp = c.get("/audit")
        assert resp.status_code == 403 and "text/html" in resp.headers["content-type"]
        assert c.post("/audit/verify", data={"csrf_token": csrf_of(home)},
                      follow_redirects=False).status_code == 403
    for who in READERS:
        c = browser(app, who)
        assert 'href="/audit"' in c.get("/").text
        page = c.get("/audit")
        assert page.status_code == 200 and 'href="/api/audit/export"' in page.text
        assert c.get("/api/audit/export").status_code == 200  # the link works


# -- sign-in throttling ------------------------------------------------------------------

def _login_from(app, address: str, user: str, password: str):
    client = TestClient(app, headers={"accept": "text/html"}, client=(address, 40000))
    page = client.get("/login")
    return client.post("/login", data={"username": user, "password": password,
                                       "csrf_token": csrf_of(page.text)},
                       follow_redirects=False)


def test_a_guesser_cannot_lock_the_admin_out_and_is_told_when_to_retry(env) -> None:
    from assay.auth import service as auth

    app, _client, _tokens, _db = env
    for _ in range(auth.MAX_FAILURES_PER_USER):
        assert _login_from(app, "203.0.113.9", "admin", "a wrong guess 1").status_code == 401
    resp = _login_from(app, "203.0.113.9", "admin", PASSWORD)  # even the right password
    assert resp.status_code == 429
    retry = int(resp.headers["Retry-After"])
    assert 1 <= retry <= auth.BACKOFF_START.total_seconds()
    assert f"try again in {retry} seconds" in resp.text
    assert "assay_session" not in resp.headers.get("set-cookie", "")
    # the admin, from their own address, signs in at once
    assert _login_from(app, "198.51.100.7", "admin", PASSWORD).status_code == 303


def test_back_off_doubles_per_failure_and_a_success_resets_it(db) -> None:
    from datetime import timedelta

    from assay.auth import service as auth
    from assay.auth.errors import TooManyAttempts
    from assay.registry import add_user

    with db.transaction() as s:
        add_user(s, None, "ada", roles=["admin"])
        auth.set_password(s, get_user(s, "ada"), "ada", PASSWORD, one_time=False)
    t = auth.now_utc()
    guesser, home = "203.0.113.9", "198.51.100.7"

    def attempt(at, password="a wrong guess 1", client=guesser):
        with db.transaction() as s:
            return auth.authenticate_password(s, "ada", password, client=client, now=at)

    for i in range(auth.MAX_FAILURES_PER_USER):
        assert attempt(t + timedelta(seconds=i)) is None
    last = t + timedelta(seconds=auth.MAX_FAILURES_PER_USER - 1)
    waits = []
    for _ in range(4):
        at = last + timedelta(seconds=1)
        with pytest.raises(TooManyAttempts) as refused:
            attempt(at)
        allowed = at + timedelta(seconds=refused.value.retry_after)
        waits.append(int((allowed - last).total_seconds()))
        last = allowed
        assert attempt(last) is None  # allowed once the wait is over; fails again
    assert waits == [30, 60, 120, 240]
    assert auth.backoff(40) == auth.BACKOFF_MAX
    # another address is not affected; the right password there resets nothing here
    assert attempt(last + timedelta(seconds=1), PASSWORD, home) is not None
    with pytest.raises(TooManyAttempts):
        attempt(last + timedelta(seconds=2), PASSWORD)
    # after the wait, the right password from the guesser's address works and resets it
    later = last + auth.BACKOFF_MAX
    assert attempt(later, PASSWORD) is not None
    assert attempt(later + timedelta(seconds=1)) is None
    assert attempt(later + timedelta(seconds=2), PASSWORD) is not None


# -- uploaded HTML never acts on the app's origin; documents download safely ---------

EVIL_HTML = (b'<!doctype html><meta http-equiv="refresh" content="0;url=https://evil.example/">'
             b'<script>document.title="pwned"</script><p>report</p>')


def _upload_report(client, tokens, version: str = "1.0") -> dict:
    """Upload a genuine results.json (the one already recorded) with a hostile report."""
    import json

    cert = _first_certification(client, bearer(tokens, "vic"))
    results = client.get(f"/api/models/credit-scoring/versions/1.0/certifications/{cert['id']}",
                         headers=bearer(tokens, "vic")).json()
    resp = client.post(f"/api/models/credit-scoring/versions/{version}/certifications",
                       headers=bearer(tokens, "vic"),
                       files={"results": ("results.json", json.dumps(results).encode()),
                              "report": ("report.html", EVIL_HTML)})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_an_uploaded_report_is_served_sandboxed(env) -> None:
    app, client, tokens, _db = env
    cert = _upload_report(client, tokens)
    for c, url in ((client, cert["report_url"]),
                   (browser(app, "vic"), f"/models/credit-scoring/versions/1.0/report/"
                                         f"{cert['id']}")):
        resp = c.get(url, headers=bearer(tokens, "vic") if c is client else None)
        assert resp.status_code == 200 and resp.content == EVIL_HTML
        csp = [d.strip() for d in resp.headers["content-security-policy"].split(";")]
        assert "sandbox" in csp  # no allow-same-origin, no allow-scripts
        assert not any(d.startswith("sandbox ") for d in csp)
        assert "script-src" not in resp.headers["content-security-policy"]
        assert resp.headers["x-content-type-options"] == "nosniff"


def _attach(client, tokens, name: str, data: bytes) -> int:
    digest = client.post("/api/evidence", headers=bearer(tokens, "vic"),
                         files={"file": ("x", data)}).json()["digest"]
    resp = client.post("/api/models/credit-scoring/versions/1.0/stages/validation/approve",
                       headers=bearer(tokens, "vic"), json={"documents": {name: digest}})
    assert resp.status_code == 201, resp.text
    wf = client.get("/api/models/credit-scoring/workflow", headers=bearer(tokens, "vic")).json()
    docs = [e for e in wf["versions"][0]["timeline"] if e["event"] == "document"
            and e["name"] == name]
    return docs[-1]["document"]


def test_documents_of_sign_offs_download_as_safe_attachments(env) -> None:
    app, client, tokens, db = env
    name = 'evil"\u202egnp.html\r\nX-Injected: 1'
    doc = _attach(client, tokens, name, EVIL_HTML)
    url = f"/api/models/credit-scoring/versions/1.0/documents/{doc}"
    for who in ("aud", "dana", "bob"):  # whoever reads the model
        resp = client.get(url, headers=bearer(tokens, who))
        assert resp.status_code == 200 and resp.content == EVIL_HTML
    disposition = resp.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    assert "\u202e" not in disposition and "\r" not in disposition and '"evil"' not in disposition
    assert "x-injected" not in resp.headers
    assert resp.headers["content-type"] == "application/octet-stream"
    assert resp.headers["content-security-policy"].startswith("sandbox;")
    assert resp.headers["x-content-type-options"] == "nosniff"
    # the web page links the document and the link downloads it
    c = browser(app, "aud")
    html = c.get("/models/credit-scoring").text
    link = f"/models/credit-scoring/versions/1.0/documents/{doc}"
    assert f'href="{link}"' in html
    page_resp = c.get(link)
    assert page_resp.status_code == 200 and page_resp.content == EVIL_HTML
    assert page_resp.headers["content-disposition"].startswith("attachment;")
    # no credentials, another version's id, an unknown id
    assert client.get(url).status_code == 401
    assert client.post("/api/models/credit-scoring/versions", headers=bearer(tokens, "dana"),
                       json={"version": "2.0"}).status_code == 201
    other = client.get(f"/api/models/credit-scoring/versions/2.0/documents/{doc}",
                       headers=bearer(tokens, "aud"))
    assert other.status_code == 404
    assert client.get("/api/models/credit-scoring/versions/1.0/documents/999999",
                      headers=bearer(tokens, "aud")).status_code == 404
    # a document whose evidence is gone: 404 naming the digest, not the server path
    import os

    from assay.evidence import artifact_path, digest_bytes

    path = artifact_path(db.settings, digest_bytes(EVIL_HTML))
    os.chmod(path, 0o644)
    path.unlink()
    gone = client.get(url, headers=bearer(tokens, "aud"))
    assert gone.status_code == 404 and str(db.settings.home) not in gone.text


# -- the timeline is paged ---------------------------------------------------------------

def test_the_timeline_is_paged_on_the_page_and_in_the_api(env) -> None:
    from assay.workflow import service as wf

    app, client, tokens, db = env
    with db.transaction() as s:
        vic = get_user(s, "vic")
        for i in range(200):
            wf.comment(s, vic, "credit-scoring", "1.0", f"comment number {i:03d}")
    api = client.get("/api/models/credit-scoring/workflow", headers=bearer(tokens, "vic"))
    v = api.json()["versions"][0]
    total = v["timeline_total"]
    assert total >= 200 and len(v["timeline"]) == 100 and v["timeline_offset"] == 0
    rest = client.get("/api/models/credit-scoring/workflow", headers=bearer(tokens, "vic"),
                      params={"timeline_offset": 200, "timeline_limit": 1000}).json()
    assert len(rest["versions"][0]["timeline"]) == total - 200
    c = browser(app, "vic")
    html = c.get("/models/credit-scoring").text
    items = re.findall(r"comment number (\d{3})", html)
    assert len(items) <= 50 and items[-1] == "199"  # the newest events first
    assert 'rel="prev"' in html and 'rel="next"' not in html
    prev = re.search(r'href="([^"]+)" rel="prev"', html).group(1).replace("&amp;", "&")
    earlier = c.get(prev).text
    older = re.findall(r"comment number (\d{3})", earlier)
    assert len(older) == 50 and int(older[-1]) < int(items[0])
    assert 'rel="next"' in earlier
    first = c.get("/models/credit-scoring", params={"tpage": 1}).text
    assert "<strong>submitted</strong>" in first and 'rel="prev"' not in first
    assert len(c.get("/models/credit-scoring", params={"tpage": 999}).text) > 0


def test_the_store_refuses_nul_text_from_any_face(db, people, capsys, tmp_path,
                                                  monkeypatch) -> None:
    """What the service's request check cannot see (a YAML file given to the CLI, a
    domain call) is refused by the store itself, on both backends, naming the column."""
    from assay.cli import main
    from assay.errors import InputError
    from assay.registry import get_model, register_model, update_model

    with db.transaction() as s:
        register_model(s, get_user(s, "dana"), "m1", owner="bo", decision_type="automated",
                       criticality="low")
    with pytest.raises(InputError, match=r"purpose: text may not contain the NUL"), \
            db.transaction() as s:
        update_model(s, get_user(s, "dana"), "m1", purpose="a\x00b", business_unit="Retail")
    with db.transaction() as s:
        m = get_model(s, "m1")
        assert (m.purpose, m.business_unit) == ("", "")  # nothing half-written
    spec = tmp_path / "model.yaml"
    spec.write_text('name: m2\nowner: bo\ndecision_type: automated\ncriticality: low\n'
                    'purpose: "evil\\0purpose"\n', encoding="utf-8")
    monkeypatch.setenv("ASSAY_USER", "dana")
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["model", "register", "--from-file", str(spec)])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "NUL character" in err and "Traceback" not in err
    with db.transaction() as s, pytest.raises(Exception, match="unknown model 'm2'"):
        get_model(s, "m2")
