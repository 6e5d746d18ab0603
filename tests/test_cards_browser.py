"""The model card as a person sees it: the model page's link opened in headless Chromium
against the real app, and the card's PDF-ready page laid out within the window."""

from __future__ import annotations

import pytest

from test_browser_ui import browser, page, server, shot, sign_in  # noqa: F401

pytestmark = pytest.mark.browser


def test_model_page_links_to_its_card(page) -> None:  # noqa: F811
    sign_in(page, "aud")  # the read-only auditor may read a card
    page.goto("/models/credit-scoring?version=1.0")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.locator("#model-card").click()
    page.wait_for_load_state()
    assert page.title() == "Model card: credit-scoring 1.0"
    assert page.get_by_role("heading", name="Model card: credit-scoring").is_visible()
    for heading in ("Model details", "Intended use", "Metrics", "Risk", "Monitoring plan",
                    "Considerations"):
        assert page.get_by_role("heading", name=heading, exact=True).is_visible(), heading
    assert page.locator("table").count() >= 4
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366
    # the page is self-contained: nothing is fetched besides the page itself
    assert [u for u in requests if "/card" not in u and "favicon" not in u] == []
    shot(page, "model-card")
