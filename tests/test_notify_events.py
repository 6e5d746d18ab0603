"""What raises notifications: an alert of ``monitor.run`` and a stage that starts
awaiting sign-off, delivered to real receivers (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from _receivers import smtp_server, webhook_receiver
from assay import registry as reg
from assay.notify import add_channel, dispatch_due
from assay.notify.tables import NotifyDelivery
from assay.store import Store
from assay.store.audit import AuditEvent
from test_monitor import NOW, TARGET, _day, _ingest, _setup, credit  # noqa: F401 (fixture)
from test_workflow import doc, make_env, submit
from test_workflow import wf as workflow

SECRET = "s3cret-hmac-key-0123456789"
POLICY = """\
name: monitor-notify
version: "1"
settings: {min_group_size: 50, bootstrap: {replicates: 200, seed: 0}}
tiers:
  high:
    checks:
    - id: performance.roc_auc
      threshold: {min: 0.5}
    monitoring:
      window: daily
      notify: {roles: [validator]}
      rules:
      - id: drift.feature
        params: {metric: psi, against: training}
        threshold: {max: 0.1}
        judge: interval
        notify: {roles: [risk_officer], channels: [ops]}
      - id: volume.rows
        threshold: {min: 100}
"""


def test_a_drift_alert_of_monitor_run_is_delivered(
        db: Store, people: dict, credit: dict, tmp_path: Path,  # noqa: F811
) -> None:
    from assay.monitor import run

    _setup(db, credit, tmp_path)
    policy = tmp_path / "monitor-notify.yaml"
    policy.write_text(POLICY)
    with db.transaction() as s:
        ada = reg.get_user(s, "ada")
        reg.add_user(s, ada, "rhea", email="rhea@bank.test", roles=["risk_officer"])
        reg.add_user(s, ada, "vera", email="vera@bank.test", roles=["validator"])
    days = [_day(credit, i) for i in range(2)]
    days[1]["LIMIT_BAL"] = days[1]["LIMIT_BAL"] * 3  # drift on day 1
    for i, frame in enumerate(days):
        _ingest(db, frame.drop(columns=[TARGET]), tmp_path, f"day{i}")
    with webhook_receiver(SECRET) as hook, smtp_server() as box:
        with db.transaction() as s:
            ada = reg.get_user(s, "ada")
            add_channel(s, ada, "ops", kind="webhook", config={"url": hook.url}, secret=SECRET,
                        events=["approval.awaiting"])  # takes alerts only when named
            add_channel(s, ada, "mail", kind="email", config={
                "host": "127.0.0.1", "port": box.port, "sender": "assay@bank.test"})
        with db.transaction() as s:
            res = run(s, reg.get_user(s, "victor"), "pd", "1", policy=str(policy),
                      tier="high", now=NOW)
        [alert] = res.alerts
        assert alert["rule"] == "drift.feature" and alert["label"] == "LIMIT_BAL"
        with db.transaction() as s:
            rows = s.scalars(select(NotifyDelivery).order_by(NotifyDelivery.id)).all()
            # the rule's own notify: risk officers (rhea by e-mail; rita has no address)
            assert sorted((d.channel_name, d.recipient) for d in rows) == [
                ("mail", "rhea@bank.test"), ("ops", "")]
            mail = next(d for d in rows if d.channel_name == "mail")
            assert mail.note == "1 user(s) to notify have no e-mail address: rita"
            queued = s.scalars(select(AuditEvent).where(
                AuditEvent.action == "notify.queued")).one()
            assert queued.payload["roles"] == ["risk_officer"]
            assert queued.payload["event_kind"] == "monitor.alert"
        res = dispatch_due(db)
        with db.transaction() as s:
            errors = [d.last_error for d in s.scalars(select(NotifyDelivery))]
        assert len(res.delivered) == 2, errors
        [body] = hook.accepted
        assert body["event"] == "monitor.alert" and body["payload"]["id"] == alert["id"]
        assert body["payload"]["label"] == "LIMIT_BAL" and body["subject"].startswith("pd@1: ")
        [msg] = box.to("rhea@bank.test")
        assert "drift.feature" in msg["Subject"] and box.to("vera@bank.test") == []


def test_approvers_are_emailed_when_a_stage_awaits_them(db: Store, tmp_path: Path) -> None:
    env = make_env(db, tmp_path)
    with db.transaction() as s:
        root = reg.get_user(s, "root")
        reg.add_user(s, root, "bella", email="bella@bank.test", roles=["business_owner"])
        reg.add_user(s, root, "vic", email="vic@bank.test", roles=["validator"])
        reg.add_user(s, root, "ron", email="ron@bank.test", roles=["risk_officer"])
        reg.add_user(s, root, "root2", roles=["admin"])
    with smtp_server() as box:
        with db.transaction() as s:
            add_channel(s, reg.get_user(s, "root2"), "mail", kind="email",
                        events=["approval.awaiting"], backoff_seconds=0, config={
                            "host": "127.0.0.1", "port": box.port,
                            "sender": "assay@bank.test"})
        env.certify("1")
        submit(env)
        assert len(dispatch_due(db).delivered) == 1
        [msg] = box.to("bella@bank.test")
        assert msg["Subject"] == ("[assay] scorer@1: stage 'Scope' awaits sign-off by "
                                  "business_owner")
        assert "assay review scorer 1" in msg.get_payload()
        env.run("bea", workflow.approve, "1", stage="scope", documents=doc())
        dispatch_due(db)
        [msg] = box.to("vic@bank.test")  # alice, val and val2 have no address
        assert "stage 'Validation' awaits sign-off by validator" in msg["Subject"]
        assert [r for rcpts, _ in box.messages for r in rcpts] == ["bella@bank.test",
                                                                  "vic@bank.test"]
        assert box.to("ron@bank.test") == []
    with db.transaction() as s:
        d = s.scalars(select(NotifyDelivery).where(
            NotifyDelivery.recipient == "vic@bank.test")).one()
        assert d.event_kind == "approval.awaiting" and d.state == "delivered"
        assert d.payload["stage"] == "validation" and d.payload["roles"] == ["validator"]
        assert "alice, val, val2" in d.note
