"""The notification routes over the real app and store (SQLite and PostgreSQL): channels
for admins only, the delivery log for the roles that read alerts, and a secret that no
answer ever holds."""

from __future__ import annotations

import pytest

from _receivers import webhook_receiver
from assay.registry import get_user
from test_api_governance import Api, _fast_hashes, err  # noqa: F401 (fixture)

SECRET = "s3cret-hmac-key-0123456789"


@pytest.fixture
def api(db) -> Api:
    from assay.api.sample import populate

    sample = populate(db, password="unused password 1", models=1, reports=False)
    return Api(db, sample)


def _channel(url: str, **kw) -> dict:
    body = {"name": "ops", "kind": "webhook", "config": {"url": url}, "secret": SECRET,
            "backoff_seconds": 0, "max_attempts": 2}
    body.update(kw)
    return body


def test_only_admins_manage_channels_and_the_secret_never_comes_back(api: Api) -> None:
    body = _channel("https://hooks.example.test/a")
    for user in ("dana", "vic", "rita", "cora", "aud", "sid"):
        assert "may not set up notification channels" in err(
            api(user, "POST", "/api/channels", json=body), 403)
    assert api(None, "POST", "/api/channels", json=body).status_code == 401
    made = api("admin", "POST", "/api/channels", json=body)
    assert made.status_code == 201, made.text
    assert made.json()["has_secret"] is True and SECRET not in made.text
    for user in ("rita", "aud"):
        err(api(user, "GET", "/api/channels"), 403)
        err(api(user, "GET", "/api/channels/ops"), 403)
        err(api(user, "PATCH", "/api/channels/ops", json={"enabled": False}), 403)
        err(api(user, "DELETE", "/api/channels/ops"), 403)
        err(api(user, "POST", "/api/channels/ops/test"), 403)
    for path in ("/api/channels", "/api/channels/ops"):
        resp = api("admin", "GET", path)
        assert resp.status_code == 200 and SECRET not in resp.text and "has_secret" in resp.text
    resp = api("admin", "PATCH", "/api/channels/ops",
               json={"secret": "another-secret-0123456", "events": ["monitor.*"]})
    assert resp.status_code == 200 and "another-secret" not in resp.text
    assert resp.json()["events"] == ["monitor.*"]
    assert "already" in err(api("admin", "POST", "/api/channels", json=body), 409)
    assert "expected an http:// or https:// URL" in err(api(
        "admin", "POST", "/api/channels", json=_channel("gopher://x", name="g")), 400)
    assert api("admin", "POST", "/api/channels",
               json={**body, "name": "x", "config": {"url": "https://a/", "extra": 1}}
               ).status_code == 422
    assert "unknown channel" in err(api("admin", "GET", "/api/channels/nope"), 404)
    with api.store.transaction() as s:
        from sqlalchemy import select

        from assay.store.audit import AuditEvent

        events = s.scalars(select(AuditEvent).where(
            AuditEvent.action.like("notify.channel_%"))).all()
        assert [e.action for e in events] == ["notify.channel_add", "notify.channel_update"]
        assert all(SECRET not in repr(e.payload) and "another-secret" not in repr(e.payload)
                   for e in events)
        assert events[0].actor == "admin"
    resp = api("admin", "DELETE", "/api/channels/ops")
    assert resp.status_code == 200 and resp.json()["pending_abandoned"] == 0
    assert api("admin", "GET", "/api/channels").json() == []


def test_test_message_log_and_retry(api: Api) -> None:
    with webhook_receiver(SECRET, always_fail=True) as hook:
        assert api("admin", "POST", "/api/channels", json=_channel(hook.url)).status_code == 201
        sent = api("admin", "POST", "/api/channels/ops/test")
        assert sent.status_code == 201, sent.text
        [d] = sent.json()["deliveries"]
        assert d["state"] == "pending" and d["attempt_log"][0]["status_code"] == 500
        with api.store.transaction() as s:
            from assay.notify import dispatch_due, notify

            notify(s, get_user(s, "vic"), "monitor.alert", "PSI breached", {"alert": 1})
        dispatch_due(api.store)
        dispatch_due(api.store)
        failed = api("aud", "GET", "/api/notifications", params={"state": "failed"})
        assert failed.status_code == 200 and len(failed.json()) == 2
        assert api("vic", "GET", "/api/notifications").status_code == 200
        assert "may not read the notification log" in err(
            api("sid", "GET", "/api/notifications"), 403)
        assert api("aud", "GET", "/api/notifications",
                   params={"state": "lost"}).status_code == 422
        alert = next(f for f in failed.json() if f["event_kind"] == "monitor.alert")
        one = api("rita", "GET", f"/api/notifications/{alert['id']}").json()
        assert [a["status_code"] for a in one["attempt_log"]] == [500, 500]
        assert "may not retry notifications" in err(
            api("rita", "POST", f"/api/notifications/{alert['id']}/retry"), 403)
        hook.always_fail = False
        again = api("admin", "POST", f"/api/notifications/{alert['id']}/retry")
        assert again.status_code == 200 and again.json()["state"] == "pending"
        assert "only a failed delivery" in err(
            api("admin", "POST", f"/api/notifications/{alert['id']}/retry"), 409)
        assert "unknown delivery" in err(api("admin", "GET", "/api/notifications/9999"), 404)
        assert dispatch_due(api.store).delivered == [alert["id"]]
        assert hook.accepted[0]["payload"] == {"alert": 1}
