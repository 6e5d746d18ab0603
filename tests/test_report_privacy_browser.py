"""The privacy section of a real certification's report, opened in headless Chromium."""

from __future__ import annotations

import os
import shutil

import pytest
from sklearn.tree import DecisionTreeClassifier

from assay.certification import certify
from test_checks_privacy import _memorable

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                       reason="Chromium is not installed"),
]


def test_privacy_section_shows_findings_and_charts(tmp_path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    train, test = _memorable(1200, 1), _memorable(1200, 2)
    test["email"] = [f"person{i}@example.org" for i in range(len(test))]
    test["age"] = (test["x5"] * 12 + 45).round().clip(18, 90)
    test["sex"] = (test["x4"] > 0).map({True: "F", False: "M"})
    feats = [f"x{i}" for i in range(6)]
    model = DecisionTreeClassifier(random_state=0).fit(train[feats], train["y"])
    certify(data=test, reference=train, model=model, target="y", policy="default",
            tier="high", out_dir=tmp_path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True,
                                   java_script_enabled=False).new_page()
        page.goto((tmp_path / "report.html").as_uri())
        section = page.locator("section", has=page.locator("h2", has_text="Privacy"))
        assert section.is_visible()
        pii = section.locator("#check-privacy-pii-columns")
        table = pii.locator("table.findings")
        assert table.is_visible()
        assert table.locator("tr").nth(1).inner_text().split("\t")[:4] == [
            "evaluation", "email", "e-mail address", "direct"]
        mia = section.locator("#check-privacy-membership-inference")
        svg = mia.locator("svg")
        assert svg.is_visible() and svg.bounding_box()["width"] > 200
        assert "Membership inference attack" in svg.inner_html()
        dm = section.locator("#check-privacy-data-minimisation svg")
        assert dm.is_visible() and "Permutation importance" in dm.inner_html()
        k = section.locator("#check-privacy-k-anonymity svg")
        assert k.is_visible() and "Rows by class size" in k.inner_html()
        assert "example.org" not in page.content()
        browser.close()
