"""The program dashboard in headless Chromium against the real app served on loopback.

An auditor finds the Dashboard in the navigation, reads the headline figures and the
charts, changes the period, and exports the CSV (recorded in the audit trail); a bad
period is refused on the page; a validator sees no Dashboard link and is refused the
page. Screenshots go to test-artifacts/screenshots/ (kept by CI, not in git).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import pytest

from _sample import sample_store
from assay.api.process import start_server, stop_server

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("ASSAY_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
PASSWORD = "browser test password"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    home = tmp_path_factory.mktemp("program-browser-home")
    store, url = sample_store(home, password=PASSWORD, models=3)
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
    headline = page.locator("#headline").inner_text()
    assert "approval rate" in headline and "overdue reviews" in headline
    # the sample: three models, two certified passing (credit-scoring high, fraud-alerts
    # medium), churn-propensity (low) not certified
    assert "67%" in headline and "2 of 3 models" in headline
    for chart in ("time_to_approve", "approval_rate", "burn_down", "coverage"):
        assert page.locator(f"#chart-{chart} svg").count() == 1, chart
    coverage = page.locator("#coverage").inner_text()
    assert "high" in coverage and "100%" in coverage
    # the burn-down ends at the sample's open risk score: 4x4 + 3x3 = 25
    assert "25" in page.locator("#chart-burn_down").inner_text()
    shot(page, "program-dashboard", tmp_path)

    with page.expect_download() as info:
        page.locator("#export-csv").click()
    text = Path(info.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {"section": "coverage", "group": "all", "measure": "covered",
            "value": "2"} in rows
    assert ("aud", "csv") in _exports(server)


def test_bad_period_is_refused_on_the_page(page, tmp_path) -> None:
    sign_in(page, "rita")
    resp = page.goto("/dashboard?since=2026-11-20&until=2026-11-10")
    assert resp is not None and resp.status == 422
    assert page.locator("#period-error").inner_text() == (
        "From 2026-11-20 is after To 2026-11-10: expected since <= until")
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
