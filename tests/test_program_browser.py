"""The program dashboard in headless Chromium against the real app served on loopback.

The store holds the API's sample history and the seeded history of
tests/_program_history.py (November 2026). An auditor finds the Dashboard in the
navigation, reads the figures of November and their charts, and exports the CSV
(recorded in the audit trail); a bad period is refused on the page; a validator sees no
Dashboard link and is refused the page. Screenshots go to test-artifacts/screenshots/
(kept by CI, not in git).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from _browser import ARGS, CHROMIUM, SHOTS, need_chromium
from _program_history import seed
from _sample import sample_store
from assay.api.process import start_server, stop_server

pytestmark = pytest.mark.browser

PASSWORD = "browser test password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    need_chromium()
    home = tmp_path_factory.mktemp("program-browser-home")
    store, url = sample_store(home, password=PASSWORD, models=3)
    with pytest.MonkeyPatch.context() as mp:
        seed(store, mp, developer="dana", validator="vic", risk_officer="rita")
    store.dispose()
    proc, base = start_server({"ASSAY_HOME": str(home), "ASSAY_DATABASE_URL": url})
    yield base, home, url
    stop_server(proc)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=server[0],
                                  accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(15000)
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    context.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def shot(page, name: str, tmp_path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for where in (SHOTS, tmp_path):
        page.screenshot(path=str(where / f"{name}.png"), full_page=True)


def sign_in(page, user: str) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def _exports(server) -> list[tuple[str, str]]:
    from assay.config import Settings
    from assay.store import open_store
    from assay.store.audit import list_events

    _, home, url = server
    store = open_store(Settings(home=home, database_url=url))
    try:
        with store.transaction() as s:
            return [(e.actor, e.payload["format"]) for e in list_events(s)
                    if e.action == "program.export"]
    finally:
        store.dispose()


def test_auditor_reads_the_dashboard_and_exports_csv(page, server, tmp_path) -> None:
    sign_in(page, "aud")
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Dashboard"
    page.get_by_label("First day").fill("2026-11-02")
    page.get_by_label("Last day").fill("2026-11-28")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    headline = page.locator("#headline").inner_text()
    # figures of tests/test_program.py; coverage also counts the sample's three models,
    # certified after the period: 2 of 9
    assert "8.75\nmedian days to approve" in headline
    assert "13.5\np90 days to approve" in headline
    assert "57%\napproval rate (4 of 7)" in headline
    assert "2\noverdue reviews" in headline
    assert "25\nopen risk score" in headline
    assert "22%\ncertified (2 of 9 models)" in headline
    for chart in ("time_to_approve", "approval_rate", "burn_down", "coverage", "alerts"):
        assert page.locator(f"#chart-{chart} svg").count() == 1, chart
    assert page.locator("#chart-burn_down circle").count() == 5
    assert "Scope document missing" in page.locator("#rejections").inner_text()
    assert "m1" in page.locator("#overdue").inner_text()
    shot(page, "program-dashboard", tmp_path)

    with page.expect_download() as info:
        page.locator("#export-csv").click()
    assert info.value.suggested_filename == "assay-program-2026-11-02-2026-11-28.csv"
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    assert {"section": "time_to_approve", "group": "all", "measure": "median_days",
            "value": "8.75"} in rows
    assert ("aud", "csv") in _exports(server)


def test_bad_period_is_refused_on_the_page(page, tmp_path) -> None:
    sign_in(page, "rita")
    resp = page.goto("/dashboard?since=2026-11-20&until=2026-11-10")
    assert resp is not None and resp.status == 422
    assert page.locator("#period-error").inner_text() == (
        "First day 2026-11-20 is after Last day 2026-11-10: the period must start on or "
        "before its last day")
    resp = page.goto("/dashboard?since=2999-01-01")
    assert resp is not None and resp.status == 422
    assert "2999-01-01 is in the future" in page.locator("#period-error").inner_text()
    assert page.locator("svg").count() == 0
    shot(page, "program-dashboard-bad-period", tmp_path)


def test_validator_has_no_dashboard(page) -> None:
    sign_in(page, "vic")
    assert page.get_by_role("link", name="Dashboard").count() == 0
    resp = page.goto("/dashboard")
    assert resp is not None and resp.status == 403
