"""What the model page does with hostile text and files, in headless Chromium against
the real app served on loopback: long unbroken text stays inside its card, a
direction-overriding character does not reverse what follows, an uploaded report with
a ``<meta http-equiv="refresh">`` goes nowhere, and an attached HTML document is
downloaded, not opened on the app's origin."""

from __future__ import annotations

import hashlib
import json

import pytest

from _browser import ARGS, CHROMIUM, need_chromium
from _sample import sample_store
from assay.api.process import start_server, stop_server
from assay.api.sample import sample_results

pytestmark = pytest.mark.browser

PASSWORD = "browser test password"

LONG = "x" * 600  # one unbroken word, far wider than any card
#: "abc" then RIGHT-TO-LEFT OVERRIDE then "def": shown raw, "def" reads "fed".
BIDI = "abc\u202edef"
EVIL_HTML = (b'<!doctype html><title>evil</title>'
             b'<meta http-equiv="refresh" content="0;url=/login?redirected-by=upload">'
             b'<p id="evil">uploaded</p>')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    need_chromium()
    from assay.evidence import store_bytes
    from assay.registry import get_user, record_certification, update_model
    from assay.workflow import service as wf

    home = tmp_path_factory.mktemp("browser-hardening-home")
    store, url = sample_store(home, password=PASSWORD, models=1, reports=False)
    artifact = "sha256:" + hashlib.sha256(b"credit-scoring-1.0").hexdigest()
    results = sample_results(home / "sample-policy.yaml", tier="high", artifact=artifact,
                             status="passed")
    with store.transaction() as s:
        update_model(s, get_user(s, "dana"), "credit-scoring", purpose=LONG,
                     intended_use=BIDI)
        digest = store_bytes(store.settings, EVIL_HTML)
        vic = get_user(s, "vic")
        wf.comment(s, vic, "credit-scoring", "1.0", "see the attached page " + LONG,
                   stage="validation", documents={"page.html": digest})
        wf.comment(s, vic, "credit-scoring", "1.0", BIDI)
        cert = record_certification(s, vic, "credit-scoring", "1.0", None,
                                    json.dumps(results).encode(), EVIL_HTML,
                                    settings=store.settings)
        cert_id = cert.id
    store.dispose()
    proc, base = start_server({"ASSAY_HOME": str(home), "ASSAY_DATABASE_URL": url})
    yield base, cert_id
    stop_server(proc)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _page(browser, base: str, width: int):
    context = browser.new_context(viewport={"width": width, "height": 900}, base_url=base,
                                  accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto("/login")
    page.get_by_label("User name").fill("vic")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return context, page


@pytest.mark.parametrize("width", [1366, 390])
def test_long_unbroken_text_stays_inside_its_card(browser, server, width) -> None:
    base, _ = server
    context, page = _page(browser, base, width)
    try:
        page.goto("/models/credit-scoring")
        assert LONG in page.locator("dl.meta").first.inner_text()
        overflowing = page.evaluate("""() => [...document.querySelectorAll('.card')]
            .filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.id || c.className)""")
        assert overflowing == []
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        context.close()


def test_a_direction_override_does_not_reverse_the_text(browser, server) -> None:
    base, _ = server
    context, page = _page(browser, base, 1366)
    try:
        page.goto("/models/credit-scoring")
        for element in (page.locator("dl.meta").first.locator("dd").nth(1),
                        page.locator("#timeline .usertext", has_text="abc").last):
            assert element.inner_text().strip() == "abcdef"
            # as drawn: 'd' is left of 'f' (an override would put it on the right)
            xs = element.evaluate("""el => {
                const node = [...el.childNodes]
                    .find(n => n.nodeType === 3 && n.data.includes('def'));
                const at = i => { const r = document.createRange();
                    const k = node.data.indexOf('def') + i;
                    r.setStart(node, k); r.setEnd(node, k + 1);
                    return r.getBoundingClientRect().left; };
                return [at(0), at(2)]; }""")
            assert xs[0] < xs[1], xs
    finally:
        context.close()


def test_an_uploaded_report_cannot_redirect_its_reader(browser, server) -> None:
    base, cert_id = server
    context, page = _page(browser, base, 1366)
    try:
        url = f"/models/credit-scoring/versions/1.0/report/{cert_id}"
        page.goto(url)
        assert page.locator("#evil").inner_text() == "uploaded"
        page.wait_for_timeout(1500)  # a refresh of 0 s would have happened by now
        assert page.url == base + url
        assert "redirected-by" not in page.url
    finally:
        context.close()


def test_an_attached_html_document_is_downloaded_not_opened(browser, server, tmp_path) -> None:
    base, _ = server
    context, page = _page(browser, base, 1366)
    try:
        page.goto("/models/credit-scoring")
        link = page.locator("#timeline a.document", has_text="page.html")
        with page.expect_download() as info:
            link.click()
        download = info.value
        assert download.suggested_filename == "page.html"
        saved = tmp_path / "page.html"
        download.save_as(saved)
        assert saved.read_bytes() == EVIL_HTML
        assert page.url.startswith(base + "/models/credit-scoring")  # still on the page
    finally:
        context.close()
