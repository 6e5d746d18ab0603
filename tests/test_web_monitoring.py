"""The Monitoring tab and the Alerts page over the real app and store (both backends):
what they show, and the acknowledge and resolve forms' CSRF, role and separation-of-duties
checks."""

from __future__ import annotations

import html as htmllib
import re
from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy import select

from _monitored import LONG, monitored_version, year_of_evaluations
from assay.api.app import create_app
from assay.api.sample import populate
from assay.store import Store
from assay.store.audit import AuditEvent

PASSWORD = "web monitoring password"


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def site(db: Store, tmp_path: Path):
    populate(db, password=PASSWORD, models=1, reports=False)
    info = monitored_version(db, tmp_path / "mon")
    return create_app(db.settings, store=db), info


def browser(app, user: str) -> TestClient:
    client = TestClient(app, headers={"accept": "text/html"})
    page = client.get("/login")
    resp = client.post("/login", data={"username": user, "password": PASSWORD,
                                       "csrf_token": csrf_of(page.text)},
                       follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def rows_of(table_html: str) -> list[list[str]]:
    out = []
    for tr in re.findall(r"<tr>(.*?)</tr>", table_html, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)
        out.append([" ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", c)).split())
                    for c in cells])
    return [r for r in out if r]


def test_the_monitoring_tab_draws_each_rule_and_tabulates_the_same_numbers(
        db: Store, site) -> None:
    from assay.monitor import status

    app, _ = site
    c = browser(app, "aud")
    model = c.get("/models/credit-scoring").text
    assert 'href="/models/credit-scoring/monitoring?version=2.0"' in model
    html = c.get("/models/credit-scoring/monitoring", params={"version": "2.0"}).text
    assert 'aria-current="page">Monitoring of 2.0' in html
    assert re.search(r'id="windows-ingested">6 days, 2026-03-02 to 2026-03-07<', html)
    assert "id=\"last-evaluation\">2026-" in html
    # drift: the worst three of five features are drawn, income first, with a way to all
    drift = html[html.index('id="rule-1"'):html.index('id="rule-2"')]
    shown = re.findall(r'class="series" data-rule="drift.feature" data-label="([^"]+)"', drift)
    assert len(shown) == 3 and shown[0] == "income"
    assert "Show all 5" in drift and "all=drift.feature" in drift
    svg = drift[drift.index("<svg"):drift.index("</svg>")]
    assert 'class="threshold"' in svg and svg.count('class="breach"') == 1
    assert "<title>drift.feature: income</title>" in svg and "<desc>" in svg
    # the table of income's values is status()'s numbers, newest window first
    table = drift[drift.index('<table class="values">'):drift.index("</table>")]
    with db.transaction() as s:
        evs = [e for e in status(s, "credit-scoring", "2.0")["evaluations"]
               if e["rule"] == "drift.feature" and e["label"] == "income"]
    rows = rows_of(table)
    assert len(rows) == 6
    for row, e in zip(rows, reversed(evs), strict=True):
        assert row[0] == e["window"]["start"][:10]
        assert row[1] == f"{e['value']:.4g}"
        assert row[2] == f"{e['ci'][0]:.4g} to {e['ci'][1]:.4g}".replace("-", "\u2212")
        assert (row[3], row[4]) == ("<= 0.1", e["state"])
    assert [r[4] for r in rows].count("fail") == 1
    # every feature, the long name too, once asked
    every = c.get("/models/credit-scoring/monitoring",
                  params={"version": "2.0", "all": "drift.feature"}).text
    assert len(re.findall(r'data-rule="drift.feature" data-label=', every)) == 5
    assert LONG in every and "Show the worst 3" in every
    # the rule that could not be measured on the first day says why
    assert "Not measured on 1 window: no previous window to compare with" in html
    # the version's alerts, with a way to act on them
    alerts = html[html.index('id="version-alerts"'):]
    assert re.search(r'<td class="rule">drift.feature</td><td class="wide"><bdi>income</bdi>'
                     r"</td><td>2026-03-05</td>", alerts)
    assert "/alerts?model=credit-scoring&amp;version=2.0" in alerts


def test_a_version_without_monitoring_explains_how_to_start(site) -> None:
    app, _ = site
    c = browser(app, "vic")
    html = c.get("/models/credit-scoring/monitoring", params={"version": "1.0"}).text
    assert 'id="monitoring-empty"' in html and "<svg" not in html
    assert "assay monitor ingest credit-scoring 1.0 --data batch.parquet" in html
    assert "assay monitor run credit-scoring 1.0" in html
    resp = c.get("/models/credit-scoring/monitoring", params={"version": "9.9"})
    assert resp.status_code == 404 and "has no version" in resp.text
    assert c.get("/models/nope/monitoring").status_code == 404
    resp = c.get("/models/credit-scoring/monitoring", params={"version": "2.0",
                                                              "period": "weekly"})
    assert resp.status_code == 400 and "no weekly evaluations" in resp.text


def test_a_year_of_daily_windows_renders_quickly_and_bounded(db: Store, site) -> None:
    import time

    app, _ = site
    year_of_evaluations(db, "credit-scoring", "9.0", days=365, features=12)
    c = browser(app, "aud")
    start = time.perf_counter()
    resp = c.get("/models/credit-scoring/monitoring", params={"version": "9.0"})
    took = time.perf_counter() - start
    assert resp.status_code == 200
    assert resp.text.count("<svg") == 4  # the worst 3 of 12 drifting features, and volume
    assert "Show all 12" in resp.text
    assert len(resp.text) < 600_000 and took < 10, (len(resp.text), took)


def test_the_alerts_page_is_in_the_navigation_and_shows_buttons_only_to_who_may_act(
        site) -> None:
    app, _ = site
    for user, ack, res in (("aud", False, False), ("dana", True, False),
                           ("bob", True, False), ("vic", True, True), ("cora", True, True)):
        html = browser(app, user).get("/alerts").text
        assert '<a href="/alerts" aria-current="page">Alerts</a>' in html, user
        assert ('action="/alerts/1/ack"' in html, 'action="/alerts/1/resolve"' in html) == (
            ack, res), user
        row = rows_of(html[html.index('<tr id="alert-1"'):html.index("</tbody>")].replace(
            '<tr id="alert-1" data-state="open">', "<tr>"))[0]
        assert row[1:5] == ["credit-scoring 2.0", "drift.feature psi", "income",
                            "daily from 2026-03-05"], row
        assert row[6] == "<= 0.1" and row[8].startswith("open")


def test_acknowledge_and_resolve_through_the_forms_with_notes_and_audit_events(
        db: Store, site) -> None:
    app, _ = site
    bob = browser(app, "bob")
    page = bob.get("/alerts").text
    resp = bob.post("/alerts/1/ack", data={"csrf_token": csrf_of(page), "note": "on it",
                                           "back": "/alerts?state=open&page=1"},
                    follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/alerts?state=open&page=1&flash=Alert")
    html = bob.get("/alerts", params={"state": "acknowledged"}).text
    assert 'data-state="acknowledged"' in html and "Acknowledged by <bdi>bob</bdi>" in html
    assert ": <span class=\"usertext\" dir=\"auto\">on it</span>" in html
    assert 'action="/alerts/1/ack"' not in html  # nothing left to acknowledge
    assert 'id="alerts-empty"' in bob.get("/alerts", params={"state": "open"}).text
    # acknowledging twice is a conflict, said on a page
    again = bob.post("/alerts/1/ack", data={"csrf_token": csrf_of(page)},
                     follow_redirects=False)
    assert again.status_code == 409 and "only an open alert" in again.text
    vic = browser(app, "vic")
    resp = vic.post("/alerts/1/resolve", data={"csrf_token": csrf_of(vic.get("/alerts").text),
                                               "note": "feed fixed",
                                               "back": "https://elsewhere.example/"},
                    follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/alerts?flash=")
    html = vic.get("/alerts").text
    assert 'data-state="resolved"' in html and "Resolved by <bdi>vic</bdi>" in html
    assert "feed fixed" in html and "on it" in html
    assert 'action="/alerts/1/' not in html
    with db.transaction() as s:
        events = s.execute(select(AuditEvent.action, AuditEvent.actor, AuditEvent.payload)
                           .where(AuditEvent.subject_type == "monitor_alert",
                                  AuditEvent.subject_id == "1")
                           .order_by(AuditEvent.seq)).all()
    assert [(a, who, p.get("note")) for a, who, p in events] == [
        ("monitor.alert", "vic", ""), ("alert.ack", "bob", "on it"),
        ("alert.resolve", "vic", "feed fixed")]


def test_forged_and_forbidden_posts_are_refused_and_change_nothing(db: Store, site) -> None:
    from assay.monitor import list_alerts

    app, _ = site
    aud = browser(app, "aud")
    token = csrf_of(aud.get("/alerts").text)
    # an auditor with a valid form token: refused by the domain's role check
    for action in ("ack", "resolve"):
        resp = aud.post(f"/alerts/1/{action}", data={"csrf_token": token},
                        follow_redirects=False)
        assert resp.status_code == 403 and "may not" in resp.text, action
    # the version's developer may acknowledge but not resolve
    dana = browser(app, "dana")
    resp = dana.post("/alerts/1/resolve", data={"csrf_token": csrf_of(dana.get("/").text)},
                     follow_redirects=False)
    assert resp.status_code == 403
    # a resolver without the form's token (a forged cross-site post) is refused
    vic = browser(app, "vic")
    for data in ({}, {"csrf_token": "forged"}):
        resp = vic.post("/alerts/1/resolve", data=data, follow_redirects=False)
        assert resp.status_code == 403 and "CSRF" in resp.text
    # not signed in: to the sign-in page; an unknown alert: 404
    anon = TestClient(app, headers={"accept": "text/html"})
    resp = anon.post("/alerts/1/ack", data={"csrf_token": token}, follow_redirects=False)
    assert resp.status_code in (303, 401, 403)
    resp = vic.post("/alerts/999/ack", data={"csrf_token": csrf_of(vic.get("/").text)},
                    follow_redirects=False)
    assert resp.status_code == 404
    with db.transaction() as s:
        [alert] = list_alerts(s)
        assert alert["state"] == "open" and alert["acknowledged_at"] is None
        actions = set(s.scalars(select(AuditEvent.action)
                                .where(AuditEvent.subject_type == "monitor_alert")))
    assert actions == {"monitor.alert"}


def test_alerts_filter_by_model_and_state_and_page(db: Store, site, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.web.monitoring as web

    app, _ = site
    monitored_version(db, tmp_path / "m3", version="3.0", drift_day=1, seed=3)
    monitored_version(db, tmp_path / "m4", version="4.0", drift_day=2, seed=4)
    monkeypatch.setattr(web, "ALERTS_PER_PAGE", 2)
    c = browser(app, "rita")
    first = c.get("/alerts").text
    assert re.findall(r'<tr id="alert-(\d+)"', first) == ["3", "2"]
    assert "page 1 of 2 (3 alerts)" in first and 'href="/alerts?page=2" rel="next"' in first
    second = c.get("/alerts", params={"page": "2"}).text
    assert re.findall(r'<tr id="alert-(\d+)"', second) == ["1"]
    assert 'rel="prev"' in second
    only = c.get("/alerts", params={"model": "credit-scoring", "version": "3.0"}).text
    assert re.findall(r'<tr id="alert-(\d+)"', only) == ["2"]
    assert "Version 3.0 of credit-scoring only." in only
    assert 'id="alerts-empty"' in c.get("/alerts", params={"state": "resolved"}).text
    resp = c.get("/alerts", params={"model": "nope"})
    assert resp.status_code == 404 and "unknown model" in resp.text
    resp = c.get("/alerts", params={"state": "closed"})
    assert resp.status_code == 400 and "expected one of open" in resp.text
