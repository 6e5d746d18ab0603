"""The Incidents pages in headless Chromium against the real app.

The sample store gets a monitored version with a drift alert; an incident is opened from
it three hours after awareness (its acknowledgement is overdue) and a second one by hand.
A validator finds the overdue mark on the list, reads the deadlines (UTC and the zone the
awareness time was given in) and the playbook, acknowledges and mitigates; a risk officer
resolves, is refused closing without a post-mortem, then asks to close; the incident's
owner may not confirm, an admin does. An auditor sees no buttons and a forged post is
refused. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from test_browser_monitoring import (  # noqa: F401 (fixtures)
    PASSWORD,
    browser,
    no_sideways_scroll,
    page,
    shot,
    sign_in,
)
from test_incidents import PM

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from _browser import need_chromium
    from _monitored import monitored_version
    from _sample import sample_store
    from assay.api.process import start_server
    from assay.registry import get_user

    need_chromium()
    home = tmp_path_factory.mktemp("browser-incidents-home")
    store, url = sample_store(home, password=PASSWORD, models=1, reports=False)
    run = monitored_version(store, home / "monitoring")
    from assay.operate import open_incident

    paris = timezone(timedelta(hours=1))
    aware = (datetime.now(UTC) - timedelta(hours=3)).astimezone(paris).replace(microsecond=0)
    with store.transaction() as s:
        s.info["settings"] = store.settings
        first = open_incident(
            s, get_user(s, "vic"), "credit-scoring", "2.0", title="Income drift after the "
            "bureau changed its unit", severity="SEV1", kind="drift", aware_at=aware,
            alerts=[a["id"] for a in run["alerts"] if a["label"] == "income"][:1],
            owner="cora", groups=["applicants over 60"], serious="general").id
        second = open_incident(s, get_user(s, "vic"), "credit-scoring", "1.0",
                               title="Scoring API timeouts", severity="SEV3",
                               kind="outage").id
    store.dispose()
    from assay.api.process import stop_server

    proc, base = start_server({"ASSAY_HOME": str(home), "ASSAY_DATABASE_URL": url})
    yield {"base": base, "home": home, "url": url, "first": first, "second": second,
           "aware": aware}
    stop_server(proc)


@pytest.fixture
def store(server):
    from assay.config import Settings
    from assay.store import open_store

    st = open_store(Settings(home=server["home"], database_url=server["url"]))
    yield st
    st.dispose()


def _act(pg, label: str) -> str:
    pg.get_by_role("button", name=label).click()
    pg.wait_for_load_state()
    return pg.locator(".flash").inner_text()


def test_an_incident_is_handled_through_its_pages(page, store, server) -> None:  # noqa: F811
    from assay.operate import record_postmortem, show_incident
    from assay.operate.postmortem import parse_postmortem_yaml
    from assay.registry import get_user
    from assay.store.audit import AuditEvent, verify_chain

    iid = server["first"]
    sign_in(page, "vic")
    page.get_by_role("link", name="Incidents").click()
    page.wait_for_load_state()
    assert page.locator("nav a[aria-current=page]").inner_text() == "Incidents"
    row = page.locator(f"#incident-{iid}")
    assert row.get_attribute("data-overdue") == "acknowledge"
    assert "acknowledge overdue" in row.inner_text() and "serious" in row.inner_text()
    assert "overdue" not in page.locator(f"#incident-{server['second']}").inner_text()
    shot(page, "30-incidents")
    page.get_by_label("Overdue only").check()
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    assert page.locator("#incidents tbody tr[id^=incident-]").count() == 1

    page.get_by_role("link", name="Income drift after the bureau changed its unit").click()
    page.wait_for_load_state()
    ack = page.locator('#deadlines tr[data-step="acknowledge"]')
    assert ack.get_attribute("data-overdue") == "1"
    due = server["aware"] + timedelta(hours=1)
    cells = ack.locator("td").all_inner_texts()
    assert cells[0] == due.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    assert cells[1] == due.strftime("%Y-%m-%d %H:%M +01:00")  # in the zone it was given in
    assert "UTC+01:00" in page.locator("#deadlines thead").inner_text()
    report = page.locator('#deadlines tr[data-step="report"]').inner_text()
    assert "policy: SEV1 report_within 2d" in report
    steps = page.locator("#playbook tbody tr")
    assert steps.count() == 2 and steps.nth(0).get_attribute("data-done") == "no"
    assert "monitoring status export" in steps.nth(0).inner_text()
    assert "required to close" in page.locator("#no-postmortem").inner_text()
    assert "Alert #" in page.locator("#h-log + ul").inner_text()
    assert no_sideways_scroll(page)
    shot(page, "31-incident-overdue")

    assert f"Incident #{iid} acknowledged." in _act(page, "Acknowledge")
    assert page.locator('#deadlines tr[data-step="acknowledge"]').get_attribute(
        "data-overdue") is None
    assert "done late" in page.locator('#deadlines tr[data-step="acknowledge"]').inner_text()
    assert f"Incident #{iid} marked mitigated." in _act(page, "Mark mitigated")
    assert page.get_by_role("button", name="Resolve").count() == 1  # a validator may
    page.context.clear_cookies()

    sign_in(page, "rita")
    page.goto(f"/incidents/{iid}")
    assert f"Incident #{iid} resolved." in _act(page, "Resolve")
    flash = _act(page, "Close")
    assert f"incident #{iid} (SEV1) needs a post-mortem before it is closed" in flash
    assert page.locator(".flash.error").count() == 1
    with store.transaction() as s:
        assert show_incident(s, iid)["state"] == "resolved"
        s.info["settings"] = store.settings
        doc, where = parse_postmortem_yaml(PM.replace("owner: victor", "owner: vic"),
                                           source="pm.yaml")
        record_postmortem(s, get_user(s, "vic"), iid, doc, source="pm.yaml", where=where)
    page.reload()
    assert "bureau feed changed the unit" in page.locator("#root-cause").inner_text()
    assert "close requested; a second person must confirm" in _act(page, "Close")
    assert "rita asked to close it" in page.locator("#two-people").inner_text()
    page.context.clear_cookies()

    sign_in(page, "cora")
    page.goto(f"/incidents/{iid}")
    assert "user 'cora' owns the incident" in _act(page, "Confirm close")
    page.context.clear_cookies()
    sign_in(page, "admin")
    page.goto(f"/incidents/{iid}")
    assert f"Incident #{iid} closed." in _act(page, "Confirm close")
    assert "Closed" in page.locator("#closed").inner_text() and "rita" in page.locator(
        "#closed").inner_text()
    assert page.get_by_role("button").filter(has_text="Close").count() == 0
    shot(page, "32-incident-closed")

    with store.transaction() as s:
        assert show_incident(s, iid)["state"] == "closed"
        events = s.execute(select(AuditEvent.action, AuditEvent.actor)
                           .where(AuditEvent.subject_type == "incident",
                                  AuditEvent.subject_id == str(iid))
                           .order_by(AuditEvent.seq)).all()
        assert verify_chain(s).ok
    assert [tuple(e) for e in events] == [
        ("incident.open", "vic"), ("incident.ack", "vic"), ("incident.mitigate", "vic"),
        ("incident.resolve", "rita"), ("incident.postmortem", "vic"),
        ("incident.close_request", "rita"), ("incident.close", "admin")]


def test_a_read_only_user_sees_no_buttons_and_a_forged_post_is_refused(
        page, store, server) -> None:  # noqa: F811
    from assay.operate import show_incident

    iid = server["second"]
    sign_in(page, "aud")
    page.goto(f"/incidents/{iid}")
    assert page.locator("#h-act").count() == 0 and page.get_by_role("button", name=(
        "Acknowledge")).count() == 0
    shot(page, "33-incident-auditor")
    # a post without the session's CSRF token (a cross-site form) is refused
    resp = page.request.post(f"/incidents/{iid}/ack", form={"note": "x"},
                             max_redirects=0)
    assert resp.status == 403
    # and with it, the auditor's role is refused by the domain: the page says why
    csrf = page.locator("form[action='/logout'] input[name=csrf_token]").get_attribute("value")
    resp = page.request.post(f"/incidents/{iid}/ack", form={"csrf_token": csrf},
                             max_redirects=0)
    assert resp.status == 303 and "may+not+acknowledge" in resp.headers["location"]
    with store.transaction() as s:
        assert show_incident(s, iid)["state"] == "open"
