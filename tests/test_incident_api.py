"""The incident routes over the real app and store (SQLite and PostgreSQL): roles, the
separation of duties on closing, forged and cross-site requests, and bad input that
answers 4xx and changes nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from test_api_governance import Api, _fast_hashes, err  # noqa: F401 (fixture)
from test_incidents import _snapshot

PASSWORD = "unused password 1"


@pytest.fixture
def api(db) -> Api:
    from assay.api.sample import populate

    sample = populate(db, password=PASSWORD, models=1, reports=False)
    return Api(db, sample)


def _aware(hours: float = 3) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).astimezone().isoformat()


def _open(api: Api, user: str = "vic", **kw) -> dict:
    body = {"model": "credit-scoring", "version": "1.0", "title": "Income drift",
            "severity": "SEV1", "kind": "drift", "aware_at": _aware(), **kw}
    resp = api(user, "POST", "/api/incidents", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_an_incident_through_the_api(api: Api) -> None:
    inc = _open(api, owner="cora", groups=["applicants over 60"], serious="general")
    iid = inc["id"]
    assert inc["tier"] == "high" and inc["overdue"] == ["acknowledge"]
    assert inc["deadlines"][2]["basis"] == "policy: SEV1 report_within 2d"
    assert inc["playbook"][0]["title"].startswith("Confirm the drift")
    listed = api("aud", "GET", "/api/incidents", params={"overdue": True}).json()
    assert [i["id"] for i in listed] == [iid]
    assert api("aud", "GET", f"/api/incidents/{iid}").json()["owner"] == "cora"

    up = api("dana", "POST", "/api/evidence", files={"file": ("psi.csv", b"income,0.31\n")})
    assert up.status_code == 201, up.text
    digest = up.json()["digest"]
    for user, path, body in (
            ("vic", "ack", {"note": "on it"}),
            ("vic", "update", {"step": 1, "done": True,
                               "evidence": [{"name": "psi.csv", "digest": digest}],
                               "link_release": "rel-7"}),
            ("vic", "mitigate", None), ("rita", "resolve", None),
            ("cora", "report", {"reference": "MSA-118"}),
            ("vic", "postmortem", {"root_cause": "Unit change upstream",
                                   "actions": [{"action": "Unit check", "owner": "vic",
                                                "due": "2026-12-31"}]})):
        resp = api(user, "POST", f"/api/incidents/{iid}/{path}", json=body)
        assert resp.status_code == 200, (path, resp.text)
    shown = resp.json()
    assert shown["playbook"][0]["evidence"] == [{"name": "psi.csv", "digest": digest}]
    assert shown["links"][0]["ref"] == "rel-7" and shown["reported_by"] == "cora"
    assert shown["postmortem"]["root_cause"] == "Unit change upstream"

    # SEV1: two people; the incident's owner and the one who asked may not confirm
    first = api("rita", "POST", f"/api/incidents/{iid}/close").json()
    assert first["state"] == "resolved" and first["close_requested_by"] == "rita"
    assert "asked to close it" in err(api("rita", "POST", f"/api/incidents/{iid}/close"), 403)
    assert "owns the incident" in err(api("cora", "POST", f"/api/incidents/{iid}/close"), 403)
    assert "needs one of risk_officer, compliance, admin" in err(
        api("vic", "POST", f"/api/incidents/{iid}/close"), 403)
    closed = api("admin", "POST", f"/api/incidents/{iid}/close", json={"note": "ok"})
    assert closed.status_code == 200 and closed.json()["state"] == "closed"


def test_roles_forged_credentials_and_cross_site_requests_are_refused(api: Api) -> None:
    inc = _open(api)
    iid = inc["id"]
    before = _snapshot(api.store)
    body = {"model": "credit-scoring", "version": "1.0", "title": "x", "severity": "SEV2"}
    assert api(None, "POST", "/api/incidents", json=body).status_code == 401
    assert api(None, "GET", "/api/incidents").status_code == 401
    forged = api.client.post("/api/incidents", json=body, headers={
        "Authorization": "Bearer assay_forged_0000000000000000000000"})
    assert forged.status_code == 401
    assert "may not do this" in err(api("aud", "POST", "/api/incidents", json=body), 403)
    for path in ("ack", "mitigate", "resolve", "close", "update", "report", "postmortem"):
        json_body = {"reference": "x"} if path == "report" else {}
        err(api("aud", "POST", f"/api/incidents/{iid}/{path}", json=json_body), 403)
    err(api("vic", "POST", f"/api/incidents/{iid}/report", json={"reference": "x"}), 403)
    err(api("aud", "POST", "/api/incidents/escalate"), 403)
    # the developer of the version may open and take it in hand, but not resolve it
    assert api("dana", "POST", f"/api/incidents/{iid}/ack").status_code == 200
    before = _snapshot(api.store)
    err(api("dana", "POST", f"/api/incidents/{iid}/resolve"), 403)
    # a browser session without the CSRF token cannot act (a cross-site form post)
    page = api.client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    login = api.client.post("/login", data={"username": "rita", "password": PASSWORD,
                                            "csrf_token": csrf, "next": "/"},
                            follow_redirects=False)
    assert login.status_code == 303
    assert "CSRF" in err(api.client.post(f"/api/incidents/{iid}/mitigate"), 403)
    api.client.cookies.clear()
    assert _snapshot(api.store) == before


@pytest.mark.parametrize("call, status, message", [
    (lambda api, iid: api("vic", "POST", "/api/incidents/4242/ack"), 404,
     "unknown incident #4242"),
    (lambda api, iid: api("rita", "POST", f"/api/incidents/{iid}/resolve"), 409,
     "is open: acknowledge it first"),
    (lambda api, iid: api("rita", "POST", f"/api/incidents/{iid}/close"), 409,
     "is open: acknowledge it first"),
    (lambda api, iid: api("vic", "POST", "/api/incidents", json={
        "model": "credit-scoring", "version": "1.0", "title": "x", "severity": "SEV2",
        "aware_at": "2099-01-01T00:00:00+01:00"}), 400, "aware_at: 2099-01-01T00:00:00+01:00 "
                                                       "is in the future"),
    (lambda api, iid: api("vic", "POST", "/api/incidents", json={
        "model": "credit-scoring", "version": "1.0", "title": "x", "severity": "SEV9"}), 400,
     "severity: expected one of"),
    (lambda api, iid: api("vic", "POST", "/api/incidents", json={
        "model": "credit-scoring", "version": "9", "title": "x", "severity": "SEV2"}), 404,
     "version"),
    (lambda api, iid: api("vic", "POST", f"/api/incidents/{iid}/postmortem",
                          json={"timeline": []}), 409, "is open: acknowledge it first"),
    (lambda api, iid: api("vic", "POST", f"/api/incidents/{iid}/update", json={
        "step": 1, "done": True, "evidence": [{"name": "x", "digest": "sha256:" + "0" * 64}]}),
     404, "not in the evidence store"),
    (lambda api, iid: api("vic", "POST", f"/api/incidents/{iid}/update", json={}), 400,
     "nothing to update"),
])
def test_bad_input_answers_4xx_and_changes_nothing(api: Api, call, status, message) -> None:
    iid = _open(api)["id"]
    before = _snapshot(api.store)
    assert message in err(call(api, iid), status)
    assert _snapshot(api.store) == before


def test_a_postmortem_without_root_cause_is_refused(api: Api) -> None:
    iid = _open(api)["id"]
    api("vic", "POST", f"/api/incidents/{iid}/ack")
    before = _snapshot(api.store)
    assert err(api("vic", "POST", f"/api/incidents/{iid}/postmortem",
                   json={"went_well": ["fast alert"]}), 400) == \
        "body: root_cause: required: say it in a sentence or more"
    assert _snapshot(api.store) == before
