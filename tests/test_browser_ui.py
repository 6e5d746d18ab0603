"""The web UI in headless Chromium against the real app served on loopback.

A validator signs in, opens a model, reads its certification and the full
report, approves a stage from the queue, sees the audit event and verifies
the chain; an auditor is refused an admin page. Screenshots of the main pages
go to test-artifacts/screenshots/ (kept by CI, not in git).
"""

from __future__ import annotations

import pytest

from _browser import ARGS, CHROMIUM, SHOTS, need_chromium
from _sample import sample_store
from assay.api.process import start_server, stop_server

pytestmark = pytest.mark.browser

PASSWORD = "browser test password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    need_chromium()
    home = tmp_path_factory.mktemp("browser-home")
    store, url = sample_store(home, password=PASSWORD, models=3)
    store.dispose()
    proc, base = start_server({"ASSAY_HOME": str(home), "ASSAY_DATABASE_URL": url})
    yield base
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
    context = browser.new_context(viewport={"width": 1366, "height": 800}, base_url=server)
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


def sign_in(page, user: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_sign_in_is_required_and_wrong_password_refused(page) -> None:
    page.goto("/queue")
    assert "/login" in page.url
    shot(page, "01-sign-in")
    sign_in(page, "vic", "not the password")
    assert page.locator("#login-error").inner_text() == "Wrong user name or password."


def test_validator_reads_certification_and_approves_from_the_queue(page) -> None:
    sign_in(page, "vic")
    # Inventory with tier badges and search.
    page.get_by_role("link", name="Inventory").click()
    rows = page.locator("#inventory tbody tr")
    assert rows.count() == 3
    shot(page, "02-inventory")
    page.get_by_label("Search").fill("credit")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#inventory tbody tr").count() == 1
    page.get_by_role("link", name="credit-scoring").click()

    # Model page: certification with its checks, charts, heat map, timeline.
    assert page.locator("h1").inner_text().startswith("credit-scoring")
    assert page.locator("#cert-status").inner_text() == "passed"
    checks = page.locator("#checks tbody tr")
    assert checks.count() == 4
    assert "ROC AUC" in checks.first.inner_text()
    assert page.locator("figure.chart svg").count() >= 2
    assert page.locator("table.heat td.here").count() >= 1
    assert "Scope agreed with the lending committee" in page.locator("#timeline").inner_text()
    shot(page, "03-model")

    page.locator("#full-report").click()
    page.wait_for_load_state()
    assert "ROC AUC" in page.content()
    shot(page, "04-report")
    page.go_back()

    # My queue: approve the validation stage with a condition.
    page.get_by_role("link", name="My queue").click()
    item = page.locator("section.card", has_text="credit-scoring 1.0")
    assert "Independent validation" in item.inner_text()
    shot(page, "05-queue")
    item.get_by_label("Conditions (one a line, optional)").fill("Re-run fairness checks quarterly")
    item.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    assert "Approved stage validation of credit-scoring 1.0" in page.locator(".flash").inner_text()
    assert page.locator("section.card", has_text="credit-scoring 1.0").count() == 0

    # The validator does not read the whole audit trail; an auditor does, and sees the
    # sign-off; the chain verifies.
    assert page.get_by_role("link", name="Audit log").count() == 0
    sign_in(page, "aud")
    page.get_by_role("link", name="Audit log").click()
    first = page.locator("#events tbody tr").first
    assert "workflow.approve" in first.inner_text() and "vic" in first.inner_text()
    page.get_by_role("button", name="Verify chain").click()
    page.wait_for_load_state()
    assert "intact" in page.locator("#verify-result").inner_text()
    assert page.locator("#export").count() == 1
    shot(page, "06-audit")

    page.goto("/risk")
    assert page.locator("#backlog tbody tr").count() >= 1
    shot(page, "07-risk")


def test_auditor_is_refused_an_admin_action(page) -> None:
    sign_in(page, "aud")
    response = page.goto("/admin/users")
    assert response.status == 403
    assert "may not do this" in page.locator("#error-message").inner_text()
    shot(page, "08-forbidden")
    page.goto("/queue")
    assert page.locator("#queue-empty").inner_text() == "Nothing waits for you."


def test_keyboard_users_can_skip_to_content_and_see_focus(page) -> None:
    sign_in(page, "vic")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
