"""What keeps the service fast under load, checked as behaviour over the real app
and store: the inventory and model page read a bounded number of plain
queries however many models there are; a report rendered from stored results
is cached by the results' digest (the same bytes for every viewer, a new entry
for a new certification); the security headers still reach every response."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy import event

from assay.api import views
from assay.api.app import create_app
from assay.api.sample import populate, record, sample_results
from assay.auth import service as auth
from assay.registry import (
    add_version,
    get_user,
    inventory,
    latest_certification,
    list_versions,
    register_model,
)

PASSWORD = "perf test password 1"


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def site(db):
    sample = populate(db, password=PASSWORD, models=3, submissions=2, reports=False)
    app = create_app(db.settings, store=db)
    app.state.sample = sample
    return app


def token_client(app, user: str) -> TestClient:
    store = app.state.store
    with store.transaction() as s:
        token = auth.create_token(s, get_user(s, "admin"), user, "perf test")[1]
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def browser(app, user: str) -> TestClient:
    client = TestClient(app, headers={"accept": "text/html"})
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    resp = client.post("/login", data={"username": user, "password": PASSWORD,
                                       "csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return client


@contextmanager
def statements(store) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def add_models(store, n: int, prefix: str) -> None:
    with store.transaction() as s:
        dana = get_user(s, "dana")
        for i in range(n):
            name = f"{prefix}-{i}"
            register_model(s, dana, name, owner="bob", decision_type="automated",
                           criticality="low", purpose="More of the inventory")
            for v in ("1.0", "1.1"):
                add_version(s, dana, name, v)


def test_inventory_reads_a_fixed_number_of_statements_however_many_models(site) -> None:
    c = token_client(site, "aud")
    store = site.state.store
    assert c.get("/api/models").status_code == 200  # warm: imports, statement caches
    with statements(store) as few:
        small = c.get("/api/models").json()
    add_models(store, 12, "extra")
    with statements(store) as many:
        big = c.get("/api/models").json()
    assert len(big) == len(small) + 12
    assert len(many) == len(few)


def test_inventory_rows_agree_with_the_records(site) -> None:
    store = site.state.store
    add_models(store, 3, "agree")
    with store.transaction() as s:
        rows = views.inventory(s)
        assert len(rows) == 3 + 2 + 3
        for row in rows:
            versions = list_versions(s, row["name"])
            assert row["versions"] == len(versions)
            assert row["latest_version"] == versions[-1].version
            cert = latest_certification(s, versions[-1].id)
            assert row["certification"] == (cert.status if cert else None)
            from assay.registry import get_model

            model = get_model(s, row["name"])
            assert row["owner"] == model.owner.username
            assert row["purpose"] == model.purpose
            assert row["tier"] == model.tier
        # the domain's own view orders them the same way
        assert [r["name"] for r in rows] == [r.name for r in inventory(s)]


def test_model_page_statements_do_not_grow_with_the_inventory(site) -> None:
    c = browser(site, "aud")
    store = site.state.store
    assert c.get("/models/credit-scoring").status_code == 200
    with statements(store) as before:
        first = c.get("/models/credit-scoring")
    add_models(store, 8, "other")
    with statements(store) as after:
        second = c.get("/models/credit-scoring")
    assert first.status_code == second.status_code == 200
    assert len(after) == len(before)
    assert first.text == second.text  # other models change nothing on this page


def test_model_detail_of_an_unknown_model_names_it(site) -> None:
    c = token_client(site, "aud")
    resp = c.get("/api/models/no-such-model")
    assert resp.status_code == 404
    assert "no-such-model" in resp.json()["error"]["message"]
    assert "no-such-model" in browser(site, "aud").get("/models/no-such-model").text


def _report_url(client: TestClient, model: str) -> str:
    html = client.get(f"/models/{model}").text
    return re.search(r'href="(/models/[^"]+/report/\d+)"', html).group(1)


def test_a_report_rendered_from_results_is_cached_by_digest_for_every_viewer(site) -> None:
    views.rendered_report.cache_clear()
    auditor, validator = browser(site, "aud"), browser(site, "vic")
    url = _report_url(auditor, "credit-scoring")
    one = auditor.get(url)
    assert one.status_code == 200 and "<html" in one.text.lower()
    misses = views.rendered_report.cache_info().misses
    two = validator.get(url)
    assert two.status_code == 200
    assert two.content == one.content  # the same page for another user
    info = views.rendered_report.cache_info()
    assert info.misses == misses and info.hits >= 1
    # the report's own strict policy still applies to the cached page
    assert "script-src" not in two.headers["content-security-policy"]


def test_a_new_certification_gets_its_own_report(site) -> None:
    views.rendered_report.cache_clear()
    store = site.state.store
    c = browser(site, "aud")
    old_url = _report_url(c, "credit-scoring")
    old = c.get(old_url)
    results = sample_results(site.state.sample.policy_path, status="blocked")
    results["summary"] = {**results.get("summary", {}), "note": "second run"}
    cert_id = record(store, "vic", "credit-scoring", "1.0", results, report=False)
    new_url = _report_url(c, "credit-scoring")
    assert new_url.endswith(f"/report/{cert_id}") and new_url != old_url
    new = c.get(new_url)
    assert new.status_code == 200
    assert new.content != old.content
    assert views.rendered_report.cache_info().currsize == 2
    assert c.get(old_url).content == old.content  # the old record keeps its report


def test_a_stored_report_is_served_as_stored(site) -> None:
    store = site.state.store
    results = sample_results(site.state.sample.policy_path)
    cert_id = record(store, "vic", "fraud-alerts", "1.0", results, report=True)
    with store.transaction() as s:
        cert = latest_certification(s, list_versions(s, "fraud-alerts")[-1].id)
        assert cert.id == cert_id and cert.report_digest
        digest = cert.report_digest
    from assay.evidence import open_artifact

    c = browser(site, "aud")
    resp = c.get(f"/models/fraud-alerts/versions/1.0/report/{cert_id}")
    assert resp.status_code == 200
    assert resp.content == open_artifact(store.settings, digest)


def test_security_headers_on_api_pages_and_assets(site) -> None:
    api = token_client(site, "aud").get("/api/models")
    page = browser(site, "aud").get("/models/credit-scoring")
    for resp in (api, page):
        h = resp.headers
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "same-origin"
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["cache-control"] == "no-store"
        assert "strict-transport-security" not in h  # plain HTTP on loopback
    css = re.search(r'href="(/static/[^"]+\.css)"', page.text)
    assert css, "the pages link their style sheet"
    asset = TestClient(site).get(css.group(1))
    assert asset.status_code == 200
    assert asset.headers["x-content-type-options"] == "nosniff"
    assert asset.headers.get("cache-control") != "no-store"


def test_hsts_over_https(site) -> None:
    resp = TestClient(site, base_url="https://assay.example").get("/api/health")
    assert resp.headers["strict-transport-security"] == "max-age=31536000"


def test_model_page_charts_are_rendered_once_per_results_digest(site) -> None:
    views._results_view.cache_clear()
    first = browser(site, "aud").get("/models/credit-scoring")
    assert first.status_code == 200 and "<svg" in first.text
    info = views._results_view.cache_info()
    assert info.misses == 1
    second = browser(site, "vic").get("/models/credit-scoring")
    charts = re.findall(r"<svg.*?</svg>", first.text, flags=re.S)
    assert charts and charts == re.findall(r"<svg.*?</svg>", second.text, flags=re.S)
    info = views._results_view.cache_info()
    assert info.misses == 1 and info.hits >= 1  # the other user's page used the cache
    # a new certification of the version is a new digest: rendered afresh
    results = sample_results(site.state.sample.policy_path, status="blocked")
    results["summary"] = {**results.get("summary", {}), "note": "re-run"}
    record(site.state.store, "vic", "credit-scoring", "1.0", results, report=False)
    third = browser(site, "aud").get("/models/credit-scoring")
    assert third.status_code == 200
    assert views._results_view.cache_info().misses == 2
