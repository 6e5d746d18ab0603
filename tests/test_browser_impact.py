"""The Impact tab in headless Chromium against the real app: a data scientist writes the
theory of impact as YAML, sees an error naming its line with the draft kept, saves it as a
revision (stored and audited); an auditor reads it with no form, and a forged post
without the form's token is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from assay.store.audit import AuditEvent
from test_browser_monitoring import (  # noqa: F401
    PASSWORD,
    browser,
    no_sideways_scroll,
    page,
    server,
    shot,
    sign_in,
    store,
)
from test_impact_record import THEORY

pytestmark = pytest.mark.browser


def test_theory_written_in_the_ui_with_line_errors_and_revisions(page, store) -> None:  # noqa: F811
    from assay.impact import current_assessment

    sign_in(page, "dana")
    page.goto("/models/credit-scoring?version=2.0")
    page.locator("#tab-impact").click()
    page.wait_for_load_state()
    assert page.locator("nav.tabs a[aria-current=page]").inner_text() == "Impact"
    assert page.locator("#no-assessment").is_visible()
    box = page.get_by_label("Theory of impact (YAML; each save is a new revision)")
    box.fill(THEORY.replace("pathway:", "pathwy:"))
    page.get_by_role("button", name="Save a new revision").click()
    page.wait_for_load_state()
    error = page.locator("#theory-error").inner_text()
    assert error.startswith("theory:1:1: pathway: required field is missing")
    assert "pathwy:" in page.locator("#theory-yaml").input_value()  # the draft is kept
    page.locator("#theory-yaml").fill(THEORY)
    page.get_by_role("button", name="Save a new revision").click()
    page.wait_for_load_state()
    assert page.locator("p.flash[role=status]").inner_text() == "Revision 1 saved."
    assert page.locator("#revision").inner_text().startswith("Revision 1 by dana")
    assert "fewer defaults on increased lines" in page.locator("#theory ul li").first.inner_text()
    assert no_sideways_scroll(page)
    shot(page, "60-impact-tab")
    with store.transaction() as s:
        cur = current_assessment(s, "credit-scoring", "2.0")
        assert cur["revision"] == 1 and cur["created_by"] == "dana"
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "impact.assess")).one()
        assert ev.actor == "dana"


def test_a_reader_sees_no_form_and_a_forged_post_is_refused(page, store) -> None:  # noqa: F811
    sign_in(page, "aud")
    page.goto("/models/credit-scoring/impact?version=2.0")
    assert page.locator("#theory-form").count() == 0
    r = page.request.post("/models/credit-scoring/impact/assessment",
                          form={"version": "2.0", "theory": THEORY, "csrf_token": "forged"})
    assert r.status == 403
    with store.transaction() as s:
        assert not s.scalars(select(AuditEvent).where(AuditEvent.actor == "aud",
                                                      AuditEvent.action == "impact.assess")
                             ).first()
