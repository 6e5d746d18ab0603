"""The validation report as a person sees it: opened in headless Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from assay.report import write_report
from test_report import sample_results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    # CI installs Chromium (scripts/test); there a missing browser is a failure, not a skip.
    pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                       reason="Chromium is not installed"),
]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api")
    path = write_report(sample_results(), tmp_path_factory.mktemp("report") / "report.html")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      offline=True, java_script_enabled=False)
        pg = context.new_page()
        requests: list[str] = []
        pg.on("request", lambda r: requests.append(r.url))
        pg.goto(path.as_uri())
        pg.requests = requests  # type: ignore[attr-defined]
        yield pg
        artifacts = Path("test-artifacts")
        if artifacts.is_dir():
            pg.screenshot(path=str(artifacts / "report.png"), full_page=True)
        browser.close()


def test_opens_offline_without_fetching_anything(page):
    assert [u for u in page.requests if not u.startswith("file:")] == []
    assert page.title().startswith("Validation report")


def test_fits_the_page_width(page):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280


def test_charts_are_drawn(page):
    boxes = [page.locator("svg.chart").nth(i).bounding_box()
             for i in range(page.locator("svg.chart").count())]
    assert len(boxes) >= 11
    assert all(b is not None and b["width"] > 200 and b["height"] > 80 for b in boxes)


def test_user_text_is_shown_as_text(page):
    assert page.locator("script").count() == 0
    assert page.get_by_text("<script>alert('x')</script>", exact=False).count() >= 1
    assert "Blocked by the policy" in page.inner_text(".verdict")
