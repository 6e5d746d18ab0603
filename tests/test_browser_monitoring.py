"""The Monitoring tab and the Alerts page in headless Chromium against the real app.

The sample store gets a monitored version (credit-scoring 2.0: six daily windows, income
drifted on the fourth, evaluated). A validator reads the chart and its table on the
model page's Monitoring tab, then acknowledges and resolves the alert on the Alerts page;
the store and the audit trail show both; an auditor sees no buttons and a forged post is
refused. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from _browser import ARGS, CHROMIUM, SHOTS, need_chromium
from _monitored import LONG, monitored_version
from _sample import sample_store
from assay.api.process import start_server, stop_server
from assay.config import Settings
from assay.store import open_store

pytestmark = pytest.mark.browser

PASSWORD = "browser monitoring password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    need_chromium()
    home = tmp_path_factory.mktemp("browser-monitoring-home")
    store, url = sample_store(home, password=PASSWORD, models=1, reports=False)
    monitored_version(store, home / "monitoring")
    store.dispose()
    proc, base = start_server({"ASSAY_HOME": str(home), "ASSAY_DATABASE_URL": url})
    yield {"base": base, "home": home, "url": url}
    stop_server(proc)


@pytest.fixture
def store(server):
    st = open_store(Settings(home=server["home"], database_url=server["url"]))
    yield st
    st.dispose()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1366, "height": 900},
                                  base_url=server["base"])
    pg = context.new_page()
    pg.set_default_timeout(15000)
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    context.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, user: str) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_monitoring_tab_shows_the_chart_and_the_numbers_of_status(page, store) -> None:
    from assay.monitor import status

    sign_in(page, "vic")
    page.goto("/models/credit-scoring?version=2.0")
    page.get_by_role("link", name="Monitoring of 2.0").click()
    page.wait_for_load_state()
    assert page.locator("nav.tabs a[aria-current=page]").inner_text() == "Monitoring of 2.0"
    assert page.locator("#windows-ingested").inner_text().startswith("6 days, 2026-03-02")
    income = page.locator('.series[data-rule="drift.feature"][data-label="income"]')
    chart = income.locator("svg")
    assert chart.get_attribute("role") == "img"
    assert chart.locator("line.threshold").count() == 1
    assert chart.locator("circle.breach").count() == 1
    assert chart.locator("polygon.band").count() >= 1
    assert "2026-03-05" in chart.locator("circle.breach title").text_content()
    # the breached point is drawn above the threshold line
    box = chart.locator("circle.breach").bounding_box()
    line = chart.locator("line.threshold").bounding_box()
    assert box["y"] + box["height"] / 2 < line["y"]
    shot(page, "20-monitoring-tab")

    # the table, the chart's accessible alternative, holds status()'s numbers
    income.get_by_text("Values as a table").click()
    rows = income.locator("table.values tbody tr")
    assert rows.count() == 6
    with store.transaction() as s:
        evs = [e for e in status(s, "credit-scoring", "2.0")["evaluations"]
               if e["rule"] == "drift.feature" and e["label"] == "income"]
    for i, e in enumerate(reversed(evs)):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[0] == e["window"]["start"][:10]
        assert cells[1] == f"{e['value']:.4g}"
        assert cells[2] == f"{e['ci'][0]:.4g} to {e['ci'][1]:.4g}".replace("-", "\u2212")
        assert cells[4] == e["state"]

    # every feature, the long name wrapped, and nothing scrolls the page sideways
    page.get_by_role("link", name="Show all 5").click()
    page.wait_for_load_state()
    assert page.locator('.series[data-rule="drift.feature"]').count() == 5
    assert page.get_by_text(LONG, exact=True).first.is_visible()
    assert no_sideways_scroll(page)
    page.set_viewport_size({"width": 600, "height": 900})
    assert no_sideways_scroll(page)
    shot(page, "21-monitoring-all-features-narrow")

    # a version with nothing monitored says how to start
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto("/models/credit-scoring/monitoring?version=1.0")
    assert "assay monitor ingest credit-scoring 1.0" in page.locator(
        "#monitoring-empty").inner_text()


def test_an_alert_is_acknowledged_then_resolved_through_the_alerts_page(page, store) -> None:
    from assay.monitor import list_alerts
    from assay.store.audit import AuditEvent, verify_chain

    sign_in(page, "vic")
    page.get_by_role("link", name="Alerts").click()
    page.wait_for_load_state()
    row = page.locator("#alerts tbody tr", has_text="income")
    assert row.count() == 1 and "open" in row.inner_text()
    alert_id = int(row.get_attribute("id").removeprefix("alert-"))
    shot(page, "22-alerts")

    row.get_by_label(f"Note on acknowledging alert {alert_id}").fill("looking at the feed")
    row.get_by_role("button", name="Acknowledge").click()
    page.wait_for_load_state()
    assert f"Alert #{alert_id} acknowledged." in page.locator(".flash").inner_text()
    with store.transaction() as s:
        [a] = [a for a in list_alerts(s) if a["id"] == alert_id]
    assert a["state"] == "acknowledged" and a["acknowledged_at"]
    row = page.locator(f"#alert-{alert_id}")
    assert "Acknowledged by vic" in row.inner_text()
    assert row.get_by_role("button", name="Acknowledge").count() == 0

    row.get_by_label(f"Note on resolving alert {alert_id}").fill("feed fixed, PSI back down")
    row.get_by_role("button", name="Resolve").click()
    page.wait_for_load_state()
    assert f"Alert #{alert_id} resolved." in page.locator(".flash").inner_text()
    row = page.locator(f"#alert-{alert_id}")
    assert re.search(r"Resolved by vic, .*: feed fixed, PSI back down", row.inner_text())
    assert row.get_by_role("button").count() == 0
    shot(page, "23-alert-resolved")
    with store.transaction() as s:
        [a] = [a for a in list_alerts(s) if a["id"] == alert_id]
        events = s.execute(select(AuditEvent.action, AuditEvent.actor, AuditEvent.payload)
                           .where(AuditEvent.subject_type == "monitor_alert",
                                  AuditEvent.subject_id == str(alert_id),
                                  AuditEvent.action.like("alert.%"))
                           .order_by(AuditEvent.seq)).all()
        assert verify_chain(s).ok
    assert a["state"] == "resolved" and a["resolved_at"]
    assert [(act, who, p["note"]) for act, who, p in events] == [
        ("alert.ack", "vic", "looking at the feed"),
        ("alert.resolve", "vic", "feed fixed, PSI back down")]


def test_a_read_only_user_sees_no_buttons_and_a_forged_post_is_refused(page, store) -> None:
    from assay.monitor import list_alerts

    sign_in(page, "aud")
    page.goto("/alerts")
    assert page.locator("#alerts tbody tr[id^=alert-]").count() >= 1
    assert page.get_by_role("button", name="Acknowledge").count() == 0
    assert page.get_by_role("button", name="Resolve").count() == 0
    with store.transaction() as s:
        before = {a["id"]: a["state"] for a in list_alerts(s)}
    alert_id = min(before)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    # the auditor's own session and token: the domain refuses the role
    resp = page.request.post(f"/alerts/{alert_id}/resolve",
                             form={"csrf_token": token, "note": "x"}, max_redirects=0)
    assert resp.status == 403 and "may not" in resp.text()
    # a resolver's session without the form's token: a forged post
    sign_in(page, "rita")
    resp = page.request.post(f"/alerts/{alert_id}/resolve", form={"note": "forged"},
                             max_redirects=0)
    assert resp.status == 403 and "CSRF" in resp.text()
    with store.transaction() as s:
        assert {a["id"]: a["state"] for a in list_alerts(s)} == before
