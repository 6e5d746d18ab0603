"""The release routes over the real app and store (SQLite and PostgreSQL): the actor is
the authenticated user; roles, separation of duties, the gate and the release rule
hold through the API; refused requests write nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assay import registry
from assay.api.app import create_app
from assay.auth import service as auth
from test_operate_releases import _shadow_setup, env, events, serving_in  # noqa: F401
from test_workflow import USERS, Env, approved


class Api:
    def __init__(self, e: Env) -> None:
        self.client = TestClient(create_app(e.store.settings, store=e.store))
        with e.store.transaction() as s:
            root = registry.get_user(s, "root")
            self.tokens = {name: auth.create_token(s, root, name, "tests")[1] for name in USERS}

    def __call__(self, user: str | None, method: str, path: str, **kw):
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return self.client.request(method, path, headers=headers, **kw)


@pytest.fixture
def api(env: Env) -> Api:  # noqa: F811
    return Api(env)


def err(resp, status: int) -> str:
    assert resp.status_code == status, resp.text
    return resp.json()["error"]["message"]


V = "/api/models/scorer/versions"


def test_release_routes_walk_the_states(api: Api, env: Env) -> None:  # noqa: F811
    approved(env, "1")
    approved(env, "2")
    r = api("bea", "POST", f"{V}/1/releases", json={"mode": "full", "note": "CHG-7"})
    assert r.status_code == 201, r.text
    assert r.json()["actor"] == "bea" and r.json()["gate"]["allowed"]
    assert api("dave", "POST", f"{V}/2/releases", json={"mode": "shadow"}).status_code == 201
    r = api("dave", "POST", f"{V}/2/releases/promote", json={"to": "canary", "share": 0.2})
    assert r.status_code == 201, r.text
    st = api("aud", "GET", "/api/models/scorer/releases").json()
    assert st["environments"][0]["canary"]["share"] == 0.2
    assert st["environments"][0]["full"]["version"] == "1"
    assert api("bea", "POST", f"{V}/2/releases/promote", json={}).status_code == 201
    r = api("rita", "POST", "/api/models/scorer/releases/rollback", json={"to": "1"})
    assert r.status_code == 201 and r.json()["action"] == "rollback"
    assert [e["action"] for e in api("aud", "GET", "/api/models/scorer/releases").json()[
        "history"]] == ["rollback", "promote", "promote", "record", "record"]


def test_release_routes_refuse_what_the_domain_refuses(api: Api, env: Env) -> None:  # noqa: F811
    until = datetime.now(UTC) + timedelta(days=20)
    approved(env, "1", expires=until)
    approved(env, "2")
    assert err(api(None, "POST", f"{V}/1/releases", json={"mode": "full"}), 401)
    assert "may not record a full release" in err(
        api("dave", "POST", f"{V}/1/releases", json={"mode": "full"}), 403)
    assert "may not record a shadow release" in err(
        api("aud", "POST", f"{V}/1/releases", json={"mode": "shadow"}), 403)
    # the developer may not take her own version to full, whatever roles she holds
    with env.store.transaction() as s:
        registry.grant_role(s, registry.get_user(s, "root"), "alice", "business_owner")
    assert "separation of duties" in err(
        api("alice", "POST", f"{V}/1/releases", json={"mode": "full"}), 403)
    # the actor is who the token says: a user name in the body is refused
    err(api("dave", "POST", f"{V}/1/releases", json={"mode": "full", "actor": "bea"}), 422)
    err(api("bea", "POST", f"{V}/1/releases", json={"mode": "canary", "share": 1.5}), 422)
    err(api("bea", "POST", f"{V}/1/releases", json={"mode": "live"}), 422)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert "is in the future" in err(
        api("bea", "POST", f"{V}/1/releases", json={"mode": "full", "at": future}), 400)
    assert "'staging' is not an environment" in err(
        api("bea", "POST", f"{V}/1/releases", json={"mode": "full", "environment": "staging"}),
        400)
    assert "the deployment gate is closed for scorer@3" in err(
        api("dave", "POST", f"{V}/3/releases", json={"mode": "shadow"}), 409)
    assert "does not serve in 'production'" in err(
        api("bea", "POST", f"{V}/1/releases/promote", json={}), 409)
    assert events(env) == 0
    api("bea", "POST", f"{V}/1/releases", json={"mode": "full"})
    api("bea", "POST", f"{V}/2/releases", json={"mode": "canary", "share": 0.1})
    api("bea", "POST", f"{V}/2/releases/promote", json={"to": "full"})
    assert events(env) == 3
    # rollback to a version whose approval expired: refused with the gate's reason
    # (the clock is moved by expiring the approval in the store instead of waiting)
    from assay.workflow._common import latest_submission

    with env.store.transaction() as s:
        sub = latest_submission(s, registry.get_version(s, "scorer", "1").id)
        sub.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    msg = err(api("rita", "POST", "/api/models/scorer/releases/rollback", json={"to": "1"}), 409)
    assert "rollback refused" in msg and "approval expired" in msg
    assert events(env) == 3 and serving_in(env)["full"]["version"] == "2"


def test_compare_route(api: Api, env: Env, tmp_path: Path) -> None:  # noqa: F811
    _shadow_setup(env, tmp_path, challenger_quality=0.5)
    r = api("aud", "GET", "/api/models/scorer/compare",
            params={"champion": "2", "challenger": "3"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["paired"] and body["tests"]["delong"]["p_value"] < 0.001
    assert body["tests"]["mcnemar"]["method"] == "chi-squared with continuity correction"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert "is in the future" in err(api("aud", "GET", "/api/models/scorer/compare", params={
        "champion": "2", "challenger": "3", "until": tomorrow}), 400)
    err(api("aud", "GET", "/api/models/scorer/compare",
            params={"champion": "2", "challenger": "3", "since": "soon"}), 422)
    r = api("bea", "POST", f"{V}/3/releases/promote", json={"to": "full"})
    body = r.json()["error"]
    assert r.status_code == 409 and "refused by the release rule" in body["message"]
    assert body["details"]["rule"]["allowed"] is False
    assert events(env) == 2


def test_model_page_shows_which_version_serves_where(api: Api, env: Env) -> None:  # noqa: F811
    from assay.api.deps import SESSION_COOKIE

    approved(env, "1")
    approved(env, "2")
    page_client = TestClient(api.client.app, headers={"accept": "text/html"})
    with env.store.transaction() as s:
        raw, _ = auth.open_session(s, registry.get_user(s, "aud"))
    page_client.cookies.set(SESSION_COOKIE, raw)
    html = page_client.get("/models/scorer").text
    assert 'id="h-releases"' in html and "No release recorded" in html
    api("bea", "POST", f"{V}/1/releases", json={"mode": "full"})
    api("bea", "POST", f"{V}/2/releases", json={"mode": "canary", "share": 0.15})
    api("bea", "POST", f"{V}/1/releases", json={"mode": "full", "environment": "eu-prod"})
    html = page_client.get("/models/scorer").text
    section = html.split('id="h-releases"')[1].split("</section>")[0]
    rows = [r for r in section.split("<tr>")[2:]]
    assert '<th scope="row">eu-prod</th>' in rows[0] and "<td>1</td>" in rows[0]
    assert '<th scope="row">production</th>' in rows[1] and "2 at 15%" in rows[1]
    today = datetime.now(UTC).date().isoformat()
    assert f"<td>{today}</td>" in rows[1]
