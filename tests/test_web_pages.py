"""The server-rendered pages over the real app and store: filters, forms with CSRF,
errors as pages, assets served by the app."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient

from assay.api.app import create_app
from assay.api.sample import populate

PASSWORD = "web test password 1"


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def site(db):
    populate(db, password=PASSWORD, models=3, reports=False)
    return create_app(db.settings, store=db)


def browser(app, user: str) -> TestClient:
    client = TestClient(app, headers={"accept": "text/html"})
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    resp = client.post("/login", data={"username": user, "password": PASSWORD,
                                       "csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_inventory_filters_and_search(site) -> None:
    c = browser(site, "aud")
    html = c.get("/").text
    assert "3 of 3 models" in html
    for name in ("credit-scoring", "fraud-alerts", "churn-propensity"):
        assert f'href="/models/{name}"' in html
    assert "1 of 3 models" in c.get("/", params={"tier": "high"}).text
    assert "0 of 3 models" in c.get("/", params={"overdue": "1"}).text
    assert "1 of 3 models" in c.get("/", params={"q": "fraud"}).text
    html = c.get("/", params={"status": "validation"}).text
    assert "3 of 3 models" in html and 'value="validation" selected' in html


def test_unknown_model_is_a_404_page(site) -> None:
    c = browser(site, "aud")
    resp = c.get("/models/no-such-model")
    assert resp.status_code == 404 and "text/html" in resp.headers["content-type"]
    assert "unknown model &#39;no-such-model&#39;" in resp.text


def test_reject_needs_reasons_and_comment_appears_in_the_timeline(site) -> None:
    c = browser(site, "vic")
    queue = c.get("/queue").text
    token = csrf_of(queue)
    revision = re.search(r'name="revision" value="(\d+)"', queue).group(1)
    form = {"model": "credit-scoring", "version": "1.0", "stage": "validation",
            "revision": revision, "csrf_token": token, "back": "/queue"}
    resp = c.post("/workflow/comment", data={**form, "body": "Checked the calibration"},
                  follow_redirects=False)
    assert resp.status_code == 303
    assert "Checked the calibration" in c.get("/models/credit-scoring").text
    # The comment moved the submission on: the form's revision is stale now.
    resp = c.post("/workflow/reject", data={**form, "reason": "x"}, follow_redirects=False)
    assert resp.status_code == 409
    form["revision"] = re.search(r'name="revision" value="(\d+)"', c.get("/queue").text).group(1)
    resp = c.post("/workflow/reject", data={**form, "reason": ""}, follow_redirects=False)
    assert resp.status_code == 400 and "needs a reason" in resp.text
    resp = c.post("/workflow/reject", data={**form, "reason": "Calibration by group missing"},
                  follow_redirects=True)
    assert "Rejected stage validation of credit-scoring 1.0" in resp.text
    assert "Nothing waits for you." in resp.text
    page = c.get("/models/credit-scoring").text
    assert "Calibration by group missing" in page and "badge rejected" in page


def test_stale_and_forged_forms_are_refused(site) -> None:
    c = browser(site, "vic")
    queue = c.get("/queue").text
    form = {"model": "credit-scoring", "version": "1.0", "stage": "validation",
            "revision": "999", "csrf_token": csrf_of(queue)}
    resp = c.post("/workflow/approve", data=form, follow_redirects=False)
    assert resp.status_code == 409
    resp = c.post("/workflow/approve", data={**form, "csrf_token": "forged", "revision": ""},
                  follow_redirects=False)
    assert resp.status_code == 403 and "CSRF" in resp.text
    other = browser(site, "rita")
    resp = other.post("/workflow/approve", data={**form, "revision": "",
                                                 "csrf_token": csrf_of(other.get("/").text)},
                      follow_redirects=False)
    assert resp.status_code in (403, 409)


def test_audit_page_filters_and_verifies(site) -> None:
    c = browser(site, "aud")
    html = c.get("/audit", params={"actor": "bob"}).text
    actors = re.findall(r"<td>(\w+)</td><td><code>", html)
    assert actors and set(actors) == {"bob"}
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d UTC</td>", html)  # when it happened
    html = c.get("/audit", params={"subject": "credit-scoring"}).text
    subjects = set(re.findall(r"<td>model(?:_version)? ([\w.@-]+)</td>", html))
    assert subjects == {"credit-scoring", "credit-scoring@1.0"}
    resp = c.post("/audit/verify", data={"csrf_token": csrf_of(html)}, follow_redirects=True)
    assert "intact" in resp.text and "events checked" in resp.text


def test_assets_are_served_by_the_app_and_pages_load_nothing_external(site) -> None:
    c = browser(site, "vic")
    css = c.get("/static/app.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert c.get("/static/app.js").status_code == 200
    for path in ("/", "/models/credit-scoring", "/queue", "/risk", "/audit", "/account"):
        resp = (browser(site, "rita") if path == "/audit" else c).get(path)
        assert resp.status_code == 200, path
        assert not re.search(r'(src|href)="(https?:)?//', resp.text), path
        assert "default-src 'self'" in resp.headers["content-security-policy"]
        assert resp.headers["x-frame-options"] == "DENY"


def test_api_reference_is_served_without_scripts_or_cdn(site) -> None:
    client = TestClient(site)
    html = client.get("/docs").text
    assert "GET /api/models/{name}/versions/{version}/gate" in html
    assert "<script src=\"/static/app.js\"" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert client.get("/openapi.json").json()["info"]["title"] == "assay"


def test_submit_then_approve_the_scope_stage_with_an_attached_document(site) -> None:
    dana = browser(site, "dana")
    page = dana.get("/models/churn-propensity").text
    assert 'id="submit-version"' in page
    resp = dana.post("/workflow/submit", data={"model": "churn-propensity", "version": "1.0",
                                               "csrf_token": csrf_of(page)},
                     follow_redirects=True)
    assert resp.status_code == 200, resp.text
    assert "Submitted churn-propensity 1.0 for approval" in resp.text
    assert 'id="submit-version"' not in resp.text
    bob = browser(site, "bob")
    queue = bob.get("/queue").text
    assert "churn-propensity 1.0" in queue
    section = queue[queue.index("churn-propensity 1.0"):]
    stage = re.search(r'name="stage" value="([^"]+)"', section).group(1)
    form = {"model": "churn-propensity", "version": "1.0", "stage": stage,
            "csrf_token": csrf_of(queue)}
    resp = bob.post("/workflow/approve", data=form, follow_redirects=False)
    assert resp.status_code == 409 and "no document attached" in resp.text
    resp = bob.post("/workflow/approve", data=form, follow_redirects=False,
                    files={"document": ("scope.pdf", b"%PDF-1.4 scope", "application/pdf")})
    assert resp.status_code == 303, resp.text
    page = bob.get("/models/churn-propensity").text
    link = re.search(r'<a href="(/models/churn-propensity/versions/1.0/documents/\d+)" '
                     r'class="document" download><bdi>scope.pdf</bdi></a> '
                     r'<span class="digest">sha256:[0-9a-f]{64}</span>', page)
    assert link, "the attached document is listed with its digest and a download link"
    assert bob.get(link.group(1)).content == b"%PDF-1.4 scope"


def test_account_page_creates_and_revokes_tokens(site) -> None:
    c = browser(site, "vic")
    page = c.get("/account").text
    resp = c.post("/account/tokens", data={"name": "ci gate", "days": "7",
                                          "csrf_token": csrf_of(page)})
    assert resp.status_code == 201
    token = re.search(r'id="new-token">[^<]*<code>(assay_[^<]+)</code>', resp.text).group(1)
    api = TestClient(site)
    assert api.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()[
        "username"] == "vic"
    key_id = token.split("_")[1]
    assert token not in c.get("/account").text  # shown once only
    resp = c.post(f"/account/tokens/{key_id}/revoke", data={"csrf_token": csrf_of(page)},
                  follow_redirects=True)
    assert f"Token {key_id} revoked." in resp.text
    assert api.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_risk_officer_waives_a_blocked_certification_from_the_model_page(site, db) -> None:
    from datetime import date, timedelta

    from assay.api.sample import record, sample_results, write_policy

    results = sample_results(write_policy(db.settings.home), tier="medium", status="blocked",
                             artifact=None)
    record(db, "vic", "fraud-alerts", "1.0", results, report=False)
    assert 'action="/workflow/waive"' not in browser(site, "vic").get(
        "/models/fraud-alerts").text
    c = browser(site, "rita")
    page = c.get("/models/fraud-alerts").text
    assert 'action="/workflow/waive"' in page
    until = (date.today() + timedelta(days=30)).isoformat()
    form = {"model": "fraud-alerts", "version": "1.0", "justification": "",
            "expires": until, "csrf_token": csrf_of(page)}
    assert c.post("/workflow/waive", data=form, follow_redirects=False).status_code == 400
    form["justification"] = "Compensating control: manual review of every alert"
    resp = c.post("/workflow/waive", data=form, follow_redirects=True)
    assert "Waiver granted." in resp.text
    assert "Compensating control: manual review of every alert" in resp.text
