"""Notifications against real receivers: an SMTP server (aiosmtpd) and HTTP webhook
receivers on loopback, on SQLite and PostgreSQL (the ``db`` fixture)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from _receivers import smtp_server, webhook_receiver
from assay import registry as reg
from assay.errors import ConflictError, InputError, NotFoundError, PermissionDenied
from assay.notify import (
    add_channel,
    attempts_of,
    channel_to_dict,
    delivery_to_dict,
    dispatch_due,
    list_channels,
    list_deliveries,
    notify,
    remove_channel,
    retry,
    send_test,
    update_channel,
)
from assay.notify.tables import NotifyChannel, NotifyDelivery
from assay.store import Store
from assay.store.audit import AuditEvent, verify_chain

SECRET = "s3cret-hmac-key-0123456789"
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _hook(db: Store, url: str, name: str = "ops", **kw) -> None:
    kw.setdefault("backoff_seconds", 0)
    with db.transaction() as s:
        add_channel(s, reg.get_user(s, "ada"), name, kind="webhook", config={"url": url},
                    secret=SECRET, **kw)


def _mail(db: Store, port: int, name: str = "mail", **kw) -> None:
    kw.setdefault("backoff_seconds", 0)
    with db.transaction() as s:
        add_channel(s, reg.get_user(s, "ada"), name, kind="email",
                    config={"host": "127.0.0.1", "port": port, "sender": "assay@bank.test"},
                    **kw)


def _queue(db: Store, kind: str = "monitor.alert", **kw):
    with db.transaction() as s:
        return notify(s, reg.get_user(s, "victor"), kind, "PSI breached on pd@1",
                      {"alert": 7, "value": 0.31}, **kw)


def _deliveries(db: Store) -> list[dict]:
    with db.transaction() as s:
        return [delivery_to_dict(d, attempts_of(s, d.id))
                for d in s.scalars(select(NotifyDelivery).order_by(NotifyDelivery.id))]


def _actions(db: Store) -> list[str]:
    with db.transaction() as s:
        return list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


def test_notify_tables_match_the_migration(db: Store) -> None:
    from _schema import schema_diffs
    from assay.store.db import Base

    ours = {t for t in Base.metadata.tables if t.startswith("notify_")}
    assert ours == {"notify_channels", "notify_deliveries", "notify_attempts"}
    assert schema_diffs(db.engine, ours) == []


def test_policy_roles_are_the_registry_roles() -> None:
    from assay.policy.schema import NOTIFY_ROLES
    from assay.registry.roles import ROLES

    assert tuple(NOTIFY_ROLES) == tuple(ROLES)


def test_signed_webhook_is_delivered_and_verified(db: Store, people: dict) -> None:
    with webhook_receiver(SECRET) as hook:
        _hook(db, hook.url)
        note = _queue(db)
        assert [d.state for d in note.deliveries] == ["pending"]
        res = dispatch_due(db)
        assert res.delivered == [note.deliveries[0].id] and res.ok
        assert len(hook.requests) == 1 and hook.requests[0]["verified"]
        got = hook.accepted[0]
        assert got["event"] == "monitor.alert" and got["payload"] == {"alert": 7, "value": 0.31}
        assert got["delivery"] == note.deliveries[0].id and got["subject"].startswith("PSI")
        headers = hook.requests[0]["headers"]
        assert abs(int(headers["X-Assay-Timestamp"]) - time.time()) < 60
        assert headers["X-Assay-Event"] == "monitor.alert"
    [d] = _deliveries(db)
    assert d["state"] == "delivered" and d["attempts"] == 1
    assert d["attempt_log"][0]["status_code"] == 200 and d["attempt_log"][0]["outcome"] == \
        "delivered"
    assert dispatch_due(db).delivered == []  # nothing left to send
    actions = _actions(db)
    assert actions[-3:] == ["notify.channel_add", "notify.queued", "notify.delivered"]
    with db.transaction() as s:
        assert verify_chain(s).ok


def test_a_tampered_or_replayed_body_fails_verification(db: Store, people: dict) -> None:
    """The receiver's check is only worth something if a change to the body or to the
    timestamp breaks it."""
    from assay.notify import sign

    body = b'{"event":"monitor.alert"}'
    good = sign(SECRET, "1700000000", body)
    assert good != sign(SECRET, "1700000001", body)  # an old body with a new timestamp
    assert good != sign(SECRET, "1700000000", body + b" ")
    assert good != sign("another-secret-of-16+", "1700000000", body)
    with webhook_receiver("a-different-secret-0000") as hook:  # receiver has another key
        _hook(db, hook.url, max_attempts=1)
        _queue(db)
        res = dispatch_due(db)
        assert res.failed and not hook.accepted
        assert hook.requests[0]["verified"] is False
    [d] = _deliveries(db)
    assert d["state"] == "failed" and "HTTP 401" in d["last_error"]


def test_the_secret_is_encrypted_and_never_shown(db: Store, people: dict) -> None:
    _hook(db, "https://hooks.example.test/assay")
    with db.transaction() as s:
        ch = s.scalars(select(NotifyChannel)).one()
        assert ch.secret and SECRET not in ch.secret  # stored sealed
        shown = channel_to_dict(ch)
        assert shown["has_secret"] is True and SECRET not in repr(shown)
        events = s.scalars(select(AuditEvent)).all()
        assert all(SECRET not in repr(e.payload) for e in events)
    assert (db.settings.home / "secret.key").stat().st_mode & 0o077 == 0


def test_retries_with_back_off_then_delivers(db: Store, people: dict) -> None:
    with webhook_receiver(SECRET, fail_first=2) as hook:
        _hook(db, hook.url, backoff_seconds=10, max_attempts=5)
        note = _queue(db, now=T0)
        did = note.deliveries[0].id
        assert dispatch_due(db, now=T0).retrying == [did]
        [d] = _deliveries(db)
        assert d["next_attempt_at"] == "2026-11-29T12:00:10Z" and "HTTP 500" in d["last_error"]
        assert dispatch_due(db, now=T0 + timedelta(seconds=9)).to_dict() == {
            "delivered": [], "retrying": [], "failed": []}  # not due yet
        assert dispatch_due(db, now=T0 + timedelta(seconds=10)).retrying == [did]
        [d] = _deliveries(db)
        assert d["next_attempt_at"] == "2026-11-29T12:00:30Z"  # 10 s, then 20 s
        assert dispatch_due(db, now=T0 + timedelta(seconds=30)).delivered == [did]
        assert len(hook.requests) == 3 and len(hook.accepted) == 1
    [d] = _deliveries(db)
    assert d["state"] == "delivered" and d["attempts"] == 3
    assert [(a["number"], a["status_code"], a["outcome"]) for a in d["attempt_log"]] == [
        (1, 500, "error"), (2, 500, "error"), (3, 200, "delivered")]
    assert [a["at"] for a in d["attempt_log"]] == [
        "2026-11-29T12:00:00Z", "2026-11-29T12:00:10Z", "2026-11-29T12:00:30Z"]


def test_a_receiver_that_always_fails_ends_failed_visible_and_retryable(
        db: Store, people: dict) -> None:
    with webhook_receiver(SECRET, always_fail=True) as hook:
        _hook(db, hook.url, max_attempts=3)
        did = _queue(db).deliveries[0].id
        results = [dispatch_due(db) for _ in range(4)]
        assert [r.retrying for r in results] == [[did], [did], [], []]
        assert results[2].failed == [did] and not results[2].ok
        assert len(hook.requests) == 3
        with db.transaction() as s:
            failed = list_deliveries(s, reg.get_user(s, "audrey"), state="failed")
            assert [f.id for f in failed] == [did]
            assert list_deliveries(s, reg.get_user(s, "audrey"), state="pending") == []
            with pytest.raises(PermissionDenied):
                list_deliveries(s, reg.get_user(s, "sean"))  # security reads no alerts
            with pytest.raises(InputError, match="expected one of pending, delivered, failed"):
                list_deliveries(s, reg.get_user(s, "ada"), state="lost")
        with db.transaction() as s, pytest.raises(PermissionDenied):
            retry(s, reg.get_user(s, "victor"), did)
        with db.transaction() as s:
            ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "notify.failed")).one()
            assert ev.payload["attempts"] == 3 and "HTTP 500" in ev.payload["error"]
            retry(s, reg.get_user(s, "ada"), did)
        with db.transaction() as s, pytest.raises(ConflictError, match="only a failed"):
            retry(s, reg.get_user(s, "ada"), did)
        hook.always_fail = False
        assert dispatch_due(db).delivered == [did]
    [d] = _deliveries(db)
    assert d["state"] == "delivered" and len(d["attempt_log"]) == 4
    assert "notify.retry" in _actions(db)
    with db.transaction() as s, pytest.raises(NotFoundError):
        retry(s, reg.get_user(s, "ada"), 999)


def test_a_connection_error_is_recorded(db: Store, people: dict) -> None:
    from _receivers import free_port

    _hook(db, f"http://127.0.0.1:{free_port()}/nobody", max_attempts=1)
    _queue(db)
    assert dispatch_due(db).failed
    [d] = _deliveries(db)
    assert d["state"] == "failed" and "ConnectError" in d["last_error"]
    assert d["attempt_log"][0]["status_code"] is None


def test_email_reaches_the_role_users_with_an_address(db: Store, people: dict) -> None:
    with db.transaction() as s:
        ada = reg.get_user(s, "ada")
        reg.add_user(s, ada, "vera", email="vera@bank.test", roles=["validator"])
        reg.add_user(s, ada, "vlad", email="vlad@bank.test", roles=["validator"])
        reg.add_user(s, ada, "rhea", email="rhea@bank.test", roles=["risk_officer"])
        reg.set_user_active(s, ada, "vlad", False)  # disabled: skipped
    with smtp_server() as box:
        _mail(db, box.port)
        note = _queue(db, roles=["validator", "risk_officer"])
        assert sorted(d.recipient for d in note.deliveries) == ["rhea@bank.test",
                                                               "vera@bank.test"]
        # victor and rita hold the roles but have no address: said in the log
        assert note.deliveries[0].note == "2 user(s) to notify have no e-mail address: rita, victor"
        res = dispatch_due(db)
        assert len(res.delivered) == 2
        assert sorted(r for rcpts, _ in box.messages for r in rcpts) == [
            "rhea@bank.test", "vera@bank.test"]
        [msg] = box.to("vera@bank.test")
        assert msg["Subject"] == "[assay] PSI breached on pd@1"
        assert msg["From"] == "assay@bank.test" and msg["To"] == "vera@bank.test"
        assert "value: 0.31" in msg.get_payload()
    d = _deliveries(db)[0]
    assert d["attempt_log"][0]["status_code"] == 250
    assert "accepted" in d["attempt_log"][0]["response"]
    assert d["recipient_user"] in ("rhea", "vera")


def test_a_subject_with_line_breaks_is_sent_on_one_line(db: Store, people: dict) -> None:
    with smtp_server() as box:
        _mail(db, box.port, max_attempts=1)
        with db.transaction() as s:
            reg.add_user(s, reg.get_user(s, "ada"), "vera", email="vera@bank.test")
            notify(s, reg.get_user(s, "victor"), "monitor.alert",
                   "pd@1: feature 'a\r\nBcc: eve@evil.test' drifted", {}, users=["vera"])
        assert dispatch_due(db).ok
        [(rcpts, msg)] = box.messages
        assert rcpts == ["vera@bank.test"] and msg["Bcc"] is None
        assert msg["Subject"] == "[assay] pd@1: feature 'a Bcc: eve@evil.test' drifted"


def test_nobody_to_reach_and_unknown_channels_are_failed_deliveries(
        db: Store, people: dict) -> None:
    with smtp_server() as box:
        _mail(db, box.port)
        note = _queue(db, roles=["compliance"], channels=["pager"])  # cora has no address
    states = sorted((d["channel"], d["state"], d["last_error"]) for d in _deliveries(db))
    assert states == [
        ("mail", "failed", "nobody to e-mail: 1 user(s) to notify have no e-mail address: "
                           "cora"),
        ("pager", "failed", "no channel named 'pager' (see `assay channel list`)")]
    assert len(note.problems) == 3
    with db.transaction() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "notify.queued")).one()
        assert ev.payload["problems"] == note.problems


def test_no_channel_set_up_queues_and_records_nothing(db: Store, people: dict) -> None:
    note = _queue(db, roles=["validator"])
    assert note.deliveries == [] and _deliveries(db) == []
    assert "notify.queued" not in _actions(db)


def test_a_rolled_back_transaction_leaves_no_delivery(db: Store, people: dict) -> None:
    _hook(db, "https://hooks.example.test/assay")
    before = len(_actions(db))
    with pytest.raises(RuntimeError), db.transaction() as s:
        notify(s, reg.get_user(s, "victor"), "monitor.alert", "x", {})
        assert s.scalar(select(func.count()).select_from(NotifyDelivery)) == 1
        raise RuntimeError("the alert's transaction fails after queueing")
    assert _deliveries(db) == [] and len(_actions(db)) == before


def test_subscriptions_decide_which_channels_take_an_event(db: Store, people: dict) -> None:
    _hook(db, "https://a.example.test/", name="alerts", events=["monitor.*"])
    _hook(db, "https://b.example.test/", name="approvals", events=["approval.awaiting"])
    _hook(db, "https://c.example.test/", name="off", enabled=False)
    assert [d.channel_name for d in _queue(db).deliveries] == ["alerts"]
    assert [d.channel_name for d in _queue(db, "approval.awaiting").deliveries] == ["approvals"]
    named = _queue(db, "approval.awaiting", channels=["alerts", "off"]).deliveries
    assert sorted((d.channel_name, d.state) for d in named) == [
        ("alerts", "pending"), ("approvals", "pending"), ("off", "failed")]


def test_channel_rules_and_who_may_change_them(db: Store, people: dict) -> None:
    def add(user: str = "ada", **kw):
        name = kw.pop("name", "c1")
        args = dict(kind="webhook", config={"url": "https://x.test/"}, secret=SECRET)
        args.update(kw)
        with db.transaction() as s:
            return add_channel(s, reg.get_user(s, user), name, **args)

    with pytest.raises(PermissionDenied):
        add("rita")
    with pytest.raises(InputError, match="expected an http:// or https:// URL"):
        add(config={"url": "file:///etc/passwd"})
    with pytest.raises(InputError, match="expected an http:// or https:// URL"):
        add(config={"url": "ftp://x.test/"})
    with pytest.raises(InputError, match="a secret is required"):
        add(secret=None)
    with pytest.raises(InputError, match="at least 16 characters"):
        add(secret="short")
    with pytest.raises(InputError, match="unknown setting 'host'"):
        add(config={"url": "https://x.test/", "host": "x"})
    with pytest.raises(InputError, match="event kind 'alerts'"):
        add(events=["alerts"])
    with pytest.raises(InputError, match=r"'host' .* is required"):
        add(kind="email", config={"sender": "a@b.test"}, secret=None)
    with pytest.raises(InputError, match="not an e-mail address"):
        add(kind="email", config={"host": "smtp", "sender": "nobody"}, secret=None)
    with pytest.raises(InputError, match="channel name"):
        add(name="bad name")
    add()
    with pytest.raises(ConflictError, match="exists already"):
        add()
    with db.transaction() as s:
        with pytest.raises(PermissionDenied):
            list_channels(s, reg.get_user(s, "audrey"))
        with pytest.raises(PermissionDenied):
            update_channel(s, reg.get_user(s, "rita"), "c1", enabled=False)
        ch = update_channel(s, reg.get_user(s, "ada"), "c1", enabled=False, events=["*"])
        assert ch.enabled is False
    with db.transaction() as s, pytest.raises(PermissionDenied):
        remove_channel(s, reg.get_user(s, "victor"), "c1")
    with db.transaction() as s:
        assert [c.name for c in list_channels(s, reg.get_user(s, "ada"))] == ["c1"]
        remove_channel(s, reg.get_user(s, "ada"), "c1")
        assert list_channels(s, reg.get_user(s, "ada")) == []
    assert _actions(db)[-3:] == ["notify.channel_add", "notify.channel_update",
                                 "notify.channel_remove"]


def test_removing_a_channel_fails_its_pending_deliveries(db: Store, people: dict) -> None:
    _hook(db, "https://x.test/")
    did = _queue(db).deliveries[0].id
    with db.transaction() as s:
        assert remove_channel(s, reg.get_user(s, "ada"), "ops")["pending_abandoned"] == 1
    [d] = _deliveries(db)
    assert (d["id"], d["state"], d["channel"]) == (did, "failed", "ops")
    assert "removed before delivery" in d["last_error"]
    with db.transaction() as s, pytest.raises(ConflictError, match="no longer exists"):
        retry(s, reg.get_user(s, "ada"), did)


def test_channel_test_message(db: Store, people: dict) -> None:
    with db.transaction() as s:
        reg.add_user(s, reg.get_user(s, "ada"), "adm2", email="adm2@bank.test",
                     roles=["admin"])
    with smtp_server() as box:
        _mail(db, box.port)
        with db.transaction() as s:
            with pytest.raises(InputError, match="nobody to send a test to"):
                send_test(s, reg.get_user(s, "ada"), "mail")  # ada has no address
            note = send_test(s, reg.get_user(s, "adm2"), "mail")
        assert dispatch_due(db, ids=[d.id for d in note.deliveries]).delivered
        [msg] = box.to("adm2@bank.test")
        assert "Test message" in msg["Subject"]


def test_two_dispatchers_at_once_send_each_delivery_once(db: Store, people: dict) -> None:
    with webhook_receiver(SECRET) as hook:
        _hook(db, hook.url)
        with db.transaction() as s:
            victor = reg.get_user(s, "victor")
            for i in range(12):
                notify(s, victor, "monitor.alert", f"alert {i}", {"i": i})
        results = []
        barrier = threading.Barrier(2)

        def run() -> None:
            barrier.wait()
            results.append(dispatch_due(db, limit=5))
            results.append(dispatch_due(db, limit=5))
            results.append(dispatch_due(db, limit=5))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        delivered = [i for r in results for i in r.delivered]
        assert sorted(delivered) == sorted(set(delivered)) and len(delivered) == 12
        ids = sorted(a["delivery"] for a in hook.accepted)
        assert ids == sorted(set(ids)) and len(ids) == 12


POLICY = """\
name: t
version: "1"
tiers:
  high:
    checks:
    - id: performance.roc_auc
      threshold: {min: 0.5}
    monitoring:
      notify: %s
      rules:
      - id: volume.rows
        threshold: {min: 100}
      - id: quality.schema
        notify: {channels: [ops-hook], roles: [compliance]}
"""


@pytest.mark.parametrize("notify_entry, error", [
    ("{roles: [validator, risk_oficer]}",
     r"p\.yaml:9:\d+: tiers\.high\.monitoring\.notify\.roles: unknown role 'risk_oficer' "
     r"\(expected one of data_scientist, validator"),
    ("[validator]", r"p\.yaml:9:\d+: tiers\.high\.monitoring\.notify: expected a mapping "
                    r"with 'roles' and/or 'channels'"),
    ("{channels: [bad name]}", r"p\.yaml:9:\d+: .*channel name 'bad name'"),
    ("{rols: [validator]}", r"p\.yaml:9:\d+: .*rols.*did you mean 'roles'"),
])
def test_policy_notify_errors_name_the_line(tmp_path, notify_entry: str, error: str) -> None:
    from assay.errors import PolicyError
    from assay.policy import load_policy

    path = tmp_path / "p.yaml"
    path.write_text(POLICY % notify_entry)
    with pytest.raises(PolicyError, match=error):
        load_policy(path)


def test_a_rule_notify_replaces_the_tier_notify(tmp_path) -> None:
    from assay.policy import load_policy

    path = tmp_path / "p.yaml"
    path.write_text(POLICY % "{roles: [validator, risk_officer]}")
    plan = load_policy(path).tier("high").monitoring
    assert plan.notify.roles == ("validator", "risk_officer")
    assert plan.rule("volume.rows").notify == plan.notify
    assert plan.rule("quality.schema").notify.roles == ("compliance",)
    assert plan.rule("quality.schema").notify.channels == ("ops-hook",)


@pytest.mark.parametrize("name", ["default", "credit-lending"])
def test_shipped_policies_say_who_hears_of_alerts(name: str) -> None:
    from assay.policy import load_policy

    pol = load_policy(name)
    for tier in ("low", "medium", "high"):
        plan = pol.tier(tier).monitoring
        assert "validator" in plan.notify.roles
        for rule in plan.rules:
            if rule.action == "recertify":
                assert "compliance" in rule.notify.roles


def test_a_claim_left_by_a_dead_dispatcher_is_taken_over_when_its_lease_ends(
        db: Store, people: dict) -> None:
    from sqlalchemy import update

    with webhook_receiver(SECRET) as hook:
        _hook(db, hook.url)
        did = _queue(db, now=T0).deliveries[0].id
        with db.transaction() as s:  # a dispatcher claimed it, then died before sending
            s.execute(update(NotifyDelivery).values(claim="dead", claimed_until=T0 + timedelta(
                seconds=300)))
        assert dispatch_due(db, now=T0 + timedelta(seconds=299)).delivered == []
        assert hook.requests == []
        assert dispatch_due(db, now=T0 + timedelta(seconds=301)).delivered == [did]
        assert len(hook.accepted) == 1


def test_the_services_periodic_job_delivers_what_is_due(db: Store, people: dict,
                                                         tmp_path) -> None:
    from assay.api.scheduler import run_job, service_jobs
    from assay.config import Settings

    jobs = {j.name: j for j in service_jobs(Settings(home=tmp_path, database_url="sqlite://",
                                                     notify_interval=5))}
    assert set(jobs) == {"notify.dispatch"}
    with webhook_receiver(SECRET) as hook:
        _hook(db, hook.url)
        note = _queue(db)
        record = run_job(db, jobs["notify.dispatch"])
        assert record.outcome == "ran", record.error
        assert record.result.delivered == [note.deliveries[0].id]
        assert len(hook.accepted) == 1
    [d] = _deliveries(db)
    assert d["state"] == "delivered"
    with db.transaction() as s:
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert last.action == "notify.delivered" and last.actor == "assay-dispatcher"
