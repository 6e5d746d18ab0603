"""The model page's Releases section in headless Chromium against the real server: an
approved version released to full, read by an auditor; a model without releases says so."""

from __future__ import annotations

import pytest

from _browser import ARGS, CHROMIUM, SHOTS, need_chromium
from _sample import sample_store
from assay.api.process import start_server, stop_server

pytestmark = pytest.mark.browser

PASSWORD = "browser test password"


def _approve_and_release(store) -> None:
    """fraud-alerts (tier medium) 1.0 through its stages, then released to full."""
    from assay.evidence import store_bytes
    from assay.operate import record
    from assay.registry import get_user
    from assay.workflow import service as wf

    def as_(user: str, fn, *args, **kw):
        with store.transaction() as s:
            return fn(s, get_user(s, user), "fraud-alerts", *args, **kw)

    digest = store_bytes(store.settings, b"Scope: card fraud review queue.\n")
    as_("bob", wf.approve, "1.0", stage="scope", documents={"scope.txt": digest})
    as_("vic", wf.approve, "1.0", stage="validation")
    as_("rita", wf.approve, "1.0", stage="deployment_approval")
    as_("bob", record, "1.0", mode="full", note="CHG-1")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    need_chromium()
    home = tmp_path_factory.mktemp("browser-releases")
    store, url = sample_store(home, password=PASSWORD, models=2)
    _approve_and_release(store)
    store.dispose()
    proc, base = start_server({"ASSAY_HOME": str(home), "ASSAY_DATABASE_URL": url})
    yield base
    stop_server(proc)


def test_the_model_page_says_which_version_serves_where(server) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_context(base_url=server).new_page()
        page.set_default_timeout(15000)
        page.goto("/login")
        page.get_by_label("User name").fill("aud")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        page.goto("/models/fraud-alerts")
        section = page.locator("#releases")
        assert section.get_by_role("heading", name="Releases").is_visible()
        row = section.get_by_role("row", name="production")
        cells = row.get_by_role("cell").all_inner_texts()
        assert cells[:4] == ["1.0", "—", "—", "—"], cells
        page.goto("/models/credit-scoring")
        assert "No release recorded" in page.locator("#releases").inner_text()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.goto("/models/fraud-alerts")
        page.screenshot(path=str(SHOTS / "releases-model-page.png"), full_page=True)
        browser.close()
