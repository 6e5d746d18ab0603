"""Authentication over the real app and store: tokens, sessions, CSRF, throttling, errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from assay.api.app import create_app
from assay.auth import service as auth
from assay.auth.tables import ApiToken, Credential, LoginAttempt
from assay.registry import add_user, get_user
from assay.store.audit import list_events

PASSWORD = "a long enough password 1"


def _users(store) -> dict[str, str]:
    """admin, validator, auditor with passwords; returns tokens by user name."""
    tokens = {}
    with store.transaction() as s:
        admin = add_user(s, None, "admin", display_name="Ada Admin", roles=["admin"])
        add_user(s, admin, "val", display_name="Val Idator", roles=["validator"])
        add_user(s, admin, "aud", roles=["auditor"])
        for name in ("admin", "val", "aud"):
            auth.set_password(s, get_user(s, name), name, PASSWORD)
        for name in ("admin", "val", "aud"):
            _row, tokens[name] = auth.create_token(s, admin, name, "tests")
    return tokens


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with the cheapest parameters: the same code path, test-speed hashing."""
    from argon2 import PasswordHasher, profiles

    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def env(db):
    tokens = _users(db)
    client = TestClient(create_app(db.settings, store=db))
    return client, tokens, db


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_health_needs_no_credentials_but_me_does(env) -> None:
    client, _tokens, _ = env
    assert client.get("/api/health").json()["status"] == "ok"
    resp = client.get("/api/me")
    err = _error(resp, 401, "unauthenticated")
    assert "Bearer" in resp.headers["www-authenticate"]
    assert "credentials" in err["message"]


def test_token_identifies_the_user_and_its_roles(env) -> None:
    client, tokens, _ = env
    me = client.get("/api/me", headers=_bearer(tokens["val"])).json()
    assert me == {"username": "val", "display_name": "Val Idator", "roles": ["validator"],
                  "authenticated_by": "token", "must_change_password": False}


@pytest.mark.parametrize("header", ["Bearer", "Basic dXNlcjpwYXNz", "Bearer nonsense",
                                    "Bearer assay_000000000000_secret",
                                    "Bearer assay_0123_short"])
def test_bad_credentials_are_401(env, header: str) -> None:
    client, _tokens, _ = env
    _error(client.get("/api/me", headers={"Authorization": header}), 401, "unauthenticated")


def test_a_wrong_secret_for_a_real_key_is_refused(env) -> None:
    client, tokens, _ = env
    bad = tokens["val"][:-3] + ("xyz" if not tokens["val"].endswith("xyz") else "abc")
    _error(client.get("/api/me", headers=_bearer(bad)), 401)


def test_only_a_salted_hash_of_the_token_is_stored(env) -> None:
    _client, tokens, store = env
    secret = tokens["val"].split("_", 2)[2]
    with store.transaction() as s:
        rows = s.scalars(select(ApiToken)).all()
        assert rows
        for row in rows:
            for value in (row.key_id, row.salt, row.secret_hash, row.name):
                assert secret not in value
        creds = s.scalars(select(Credential)).all()
        assert all(c.password_hash.startswith("$argon2id$") for c in creds)
        assert all(PASSWORD not in c.password_hash for c in creds)


def test_revoked_and_expired_tokens_are_refused(env) -> None:
    client, tokens, store = env
    key_val = tokens["val"].split("_")[1]
    key_aud = tokens["aud"].split("_")[1]
    resp = client.delete(f"/api/tokens/{key_val}", headers=_bearer(tokens["val"]))
    assert resp.status_code == 200 and resp.json()["state"] == "revoked"
    err = _error(client.get("/api/me", headers=_bearer(tokens["val"])), 401)
    assert "revoked" in err["message"]
    with store.transaction() as s:
        s.execute(update(ApiToken).where(ApiToken.key_id == key_aud)
                  .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    err = _error(client.get("/api/me", headers=_bearer(tokens["aud"])), 401)
    assert "expired" in err["message"]


def test_token_created_over_the_api_is_shown_once_and_works(env) -> None:
    client, tokens, store = env
    resp = client.post("/api/tokens", json={"name": "ci gate", "expires_in_days": 7},
                       headers=_bearer(tokens["val"]))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["username"] == "val" and body["state"] == "active"
    assert client.get("/api/me", headers=_bearer(body["token"])).json()["username"] == "val"
    listed = client.get("/api/tokens", headers=_bearer(tokens["val"])).json()
    assert {t["key_id"] for t in listed} >= {body["key_id"]}
    assert all("token" not in t for t in listed)
    with store.transaction() as s:
        ev = list_events(s, action="auth.token_created", limit=1)[0]
        assert ev.actor == "val" and ev.payload["key_id"] == body["key_id"]
        assert body["token"] not in str(ev.payload)


def test_only_admins_manage_other_peoples_tokens_and_users(env) -> None:
    client, tokens, _ = env
    _error(client.post("/api/tokens", json={"name": "x", "username": "aud"},
                       headers=_bearer(tokens["val"])), 403, "forbidden")
    _error(client.post("/api/tokens", json={"name": "x", "expires_in_days": None},
                       headers=_bearer(tokens["val"])), 403)
    _error(client.get("/api/tokens", params={"username": "*"},
                      headers=_bearer(tokens["val"])), 403)
    _error(client.get("/api/users", headers=_bearer(tokens["val"])), 403)
    _error(client.post("/api/users", json={"username": "eve", "roles": ["admin"]},
                       headers=_bearer(tokens["aud"])), 403)
    key_admin = client.get("/api/tokens", headers=_bearer(tokens["admin"])).json()[0]["key_id"]
    _error(client.delete(f"/api/tokens/{key_admin}", headers=_bearer(tokens["val"])), 403)
    resp = client.post("/api/tokens", json={"name": "for aud", "username": "aud"},
                       headers=_bearer(tokens["admin"]))
    assert resp.status_code == 201 and resp.json()["username"] == "aud"


def test_admin_adds_a_user_who_must_change_the_one_time_password(env) -> None:
    client, tokens, store = env
    resp = client.post("/api/users", json={"username": "rita", "display_name": "Rita Risk",
                                           "roles": ["risk_officer"]},
                       headers=_bearer(tokens["admin"]))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["roles"] == ["risk_officer"] and len(body["one_time_password"]) >= 20
    users = client.get("/api/users", headers=_bearer(tokens["admin"])).json()
    assert "rita" in {u["username"] for u in users}
    # The one-time password signs in, and the first page is the password change.
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    resp = client.post("/login", data={"username": "rita", "password": body["one_time_password"],
                                       "csrf_token": csrf, "next": "/"}, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/account"
    with store.transaction() as s:
        ev = list_events(s, action="user.add", limit=1)[0]
        assert ev.actor == "admin" and ev.subject_id == "rita"
    # Until the one-time password is replaced, the session can do nothing else.
    resp = client.get("/queue", headers={"accept": "text/html"}, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/account"
    _error(client.get("/api/models"), 403, "password_change_required")
    assert client.get("/api/me").json()["must_change_password"] is True
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/account").text).group(1)
    resp = client.post("/account/password", data={"current": body["one_time_password"],
                                                  "new": "rita's own passphrase",
                                                  "csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 303
    assert client.get("/api/models").status_code == 200


def test_unknown_fields_cannot_claim_another_actor(env) -> None:
    client, tokens, _ = env
    err = _error(client.post("/api/tokens", json={"name": "x", "actor": "admin"},
                             headers=_bearer(tokens["val"])), 422, "invalid_request")
    assert "actor" in err["message"]


def test_every_error_has_the_json_shape(env) -> None:
    client, tokens, _ = env
    h = _bearer(tokens["val"])
    err = _error(client.get("/api/no/such/route", headers=h), 404, "not_found")
    assert "/api/no/such/route" in err["message"]
    _error(client.put("/api/me", headers=h), 405, "method_not_allowed")
    err = _error(client.post("/api/tokens", content=b"{not json", headers={
        **h, "content-type": "application/json"}), 422, "invalid_request")
    assert err["details"]["errors"]
    _error(client.post("/api/tokens", json={"name": "x", "expires_in_days": 0}, headers=h), 422)
    _error(client.delete("/api/tokens/nosuchtoken", headers=h), 404, "not_found")


def _login(client: TestClient, username: str, password: str, next_: str = "/"):
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf, "next": next_},
                       follow_redirects=False)


def test_browser_session_cookie_flags_and_csrf_on_api_writes(env) -> None:
    client, _tokens, store = env
    resp = _login(client, "val", PASSWORD, "/queue")
    assert resp.status_code == 303 and resp.headers["location"] == "/queue"
    cookie = resp.headers["set-cookie"]
    assert "assay_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    me = client.get("/api/me").json()
    assert me["authenticated_by"] == "session"
    # A state-changing API call with the cookie alone is refused (CSRF).
    err = _error(client.post("/api/tokens", json={"name": "x"}), 403)
    assert "CSRF" in err["message"]
    page = client.get("/account")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    resp = client.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf})
    assert resp.status_code == 201
    # Only the digest of the session id is stored.
    raw = client.cookies.get("assay_session")
    with store.transaction() as s:
        from assay.auth.tables import WebSession

        assert all(raw not in r.id_digest for r in s.scalars(select(WebSession)))


def test_cookies_are_secure_off_loopback(db) -> None:
    _users(db)
    client = TestClient(create_app(db.settings, store=db), base_url="https://assay.example.org")
    resp = _login(client, "val", PASSWORD)
    assert resp.status_code == 303
    assert "Secure" in resp.headers["set-cookie"]
    assert "Secure" in client.get("/login").headers["set-cookie"]


def test_login_form_without_its_csrf_token_is_refused(env) -> None:
    client, _tokens, _ = env
    client.get("/login")
    resp = client.post("/login", data={"username": "val", "password": PASSWORD,
                                       "csrf_token": "forged"}, follow_redirects=False)
    assert resp.status_code == 400 and "assay_session" not in resp.headers.get("set-cookie", "")


def test_web_forms_need_the_session_csrf_token(env) -> None:
    client, _tokens, _ = env
    _login(client, "val", PASSWORD)
    resp = client.post("/logout", data={"csrf_token": "wrong"}, follow_redirects=False,
                       headers={"accept": "text/html"})
    assert resp.status_code == 403
    assert client.get("/api/me").status_code == 200  # still signed in


def test_logout_ends_the_session_on_the_server(env) -> None:
    client, _tokens, _ = env
    _login(client, "val", PASSWORD)
    raw = client.cookies.get("assay_session")
    page = client.get("/account")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    resp = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 303
    stolen = TestClient(client.app)
    stolen.cookies.set("assay_session", raw)
    _error(stolen.get("/api/me"), 401)


def test_failed_logins_are_throttled_per_user_and_address(env) -> None:
    client, _tokens, store = env
    for _ in range(auth.MAX_FAILURES_PER_USER):
        assert _login(client, "val", "wrong password here").status_code == 401
    resp = _login(client, "val", PASSWORD)
    assert resp.status_code == 429 and "too many failed sign-ins" in resp.text
    assert "assay_session" not in resp.headers.get("set-cookie", "")
    # Another user from the same address is not locked out by val's failures.
    assert _login(client, "aud", PASSWORD).status_code == 303
    with store.transaction() as s:
        n = len(s.scalars(select(LoginAttempt).where(LoginAttempt.username == "val",
                                                     LoginAttempt.success.is_(False))).all())
    assert n == auth.MAX_FAILURES_PER_USER


def test_unknown_user_and_wrong_password_look_the_same(env) -> None:
    client, _tokens, _ = env
    a = _login(client, "nobody", PASSWORD)
    b = _login(client, "val", "not the password!")
    assert a.status_code == b.status_code == 401
    assert "Wrong user name or password." in a.text and "Wrong user name or password." in b.text


def test_html_pages_redirect_to_sign_in(env) -> None:
    client, _tokens, _ = env
    resp = client.get("/queue", headers={"accept": "text/html"}, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/login?next=%2Fqueue"


def test_password_change_needs_the_current_one_and_renews_the_session(env) -> None:
    client, _tokens, _store = env
    _login(client, "val", PASSWORD)
    old = client.cookies.get("assay_session")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/account").text).group(1)
    resp = client.post("/account/password", data={"current": "wrong", "new": "x" * 20,
                                                  "csrf_token": csrf},
                       headers={"accept": "text/html"}, follow_redirects=False)
    assert resp.status_code == 400
    resp = client.post("/account/password", data={"current": PASSWORD, "new": "short",
                                                  "csrf_token": csrf},
                       headers={"accept": "text/html"}, follow_redirects=False)
    assert resp.status_code == 400 and "12 characters" in resp.text
    resp = client.post("/account/password", data={"current": PASSWORD,
                                                  "new": "a brand new passphrase",
                                                  "csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 303
    assert client.cookies.get("assay_session") != old
    stale = TestClient(client.app)
    stale.cookies.set("assay_session", old)
    _error(stale.get("/api/me"), 401)
    assert _login(TestClient(client.app), "val", "a brand new passphrase").status_code == 303


def test_admin_changes_roles_and_deactivation_locks_the_user_out(env) -> None:
    client, tokens, store = env
    h = _bearer(tokens["admin"])
    resp = client.patch("/api/users/val", json={"grant": ["risk_officer"]}, headers=h)
    assert resp.status_code == 200 and resp.json()["roles"] == ["risk_officer", "validator"]
    assert client.get("/api/me", headers=_bearer(tokens["val"])).json()["roles"] == [
        "risk_officer", "validator"]
    _error(client.patch("/api/users/val", json={"revoke": ["admin"]}, headers=h), 409)
    _error(client.patch("/api/users/val", json={"grant": ["wizard"]}, headers=h), 400)
    _error(client.patch("/api/users/val", json={}, headers=h), 400)
    _error(client.patch("/api/users/val", json={"active": False},
                        headers=_bearer(tokens["val"])), 403)
    _login(client, "val", PASSWORD)
    assert client.get("/api/me").status_code == 200
    resp = client.patch("/api/users/val", json={"active": False}, headers=h)
    assert resp.status_code == 200 and resp.json()["active"] is False
    _error(client.get("/api/me", headers=_bearer(tokens["val"])), 401)
    client.headers.pop("Authorization", None)
    _error(client.get("/api/me"), 401)  # the session was closed too
    assert _login(TestClient(client.app), "val", PASSWORD).status_code == 401
    with store.transaction() as s:
        assert [e.action for e in list_events(s, action="user.*", limit=2)] == [
            "user.deactivate", "user.role_grant"]
