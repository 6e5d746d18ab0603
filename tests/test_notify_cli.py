"""``assay channel`` and ``assay notify`` end to end, in-process, against real receivers
(SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from _receivers import smtp_server, webhook_receiver
from assay import registry as reg
from assay.notify import notify
from assay.store import Store
from test_monitor import TARGET, _day, _setup, credit  # noqa: F401 (fixture)
from test_monitor_cli import cli

SECRET = "s3cret-hmac-key-0123456789"


def _queue(db: Store, n: int = 1) -> None:
    with db.transaction() as s:
        for i in range(n):
            notify(s, reg.get_user(s, "victor"), "monitor.alert", f"alert {i}", {"i": i})


def test_channels_from_the_command_line(db: Store, people: dict, capsys,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_KEY", SECRET)
    code, _, err = cli(capsys, "channel", "add", "ops", "--kind", "webhook", "--url",
                       "https://hooks.example.test/a", "--secret-env", "HOOK_KEY", "--as",
                       "rita")
    assert code != 0 and "may not set up notification channels" in err.replace("\n", " ")
    assert "Traceback" not in err
    code, _, err = cli(capsys, "channel", "add", "ops", "--kind", "webhook", "--url",
                       "file:///etc/passwd", "--secret-env", "HOOK_KEY", "--as", "ada")
    assert code == 2 and "expected an http:// or https:// URL" in err
    code, _, err = cli(capsys, "channel", "add", "ops", "--kind", "webhook", "--url",
                       "https://hooks.example.test/a", "--host", "smtp", "--secret-env",
                       "HOOK_KEY", "--as", "ada")
    assert code == 2 and "--host: an e-mail setting" in err
    code, _, err = cli(capsys, "channel", "add", "ops", "--kind", "webhook", "--url",
                       "https://hooks.example.test/a", "--secret-env", "NOPE", "--as", "ada")
    assert code == 2 and "--secret-env NOPE" in err
    code, out, err = cli(capsys, "channel", "add", "ops", "--kind", "webhook", "--url",
                         "https://hooks.example.test/a", "--secret-env", "HOOK_KEY",
                         "--events", "monitor.*", "--as", "ada")
    assert code == 0, err
    assert "channel ops (webhook) added; takes monitor.*" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("smtp-password\n"))
    code, out, err = cli(capsys, "channel", "add", "mail", "--kind", "email", "--host",
                         "smtp.bank.test", "--port", "587", "--starttls", "--sender",
                         "assay@bank.test", "--username", "assay", "--secret-stdin",
                         "--as", "ada")
    assert code == 0, err
    code, out, _ = cli(capsys, "channel", "list", "--format", "json", "--as", "ada")
    rows = json.loads(out)
    assert [(r["name"], r["has_secret"]) for r in rows] == [("mail", True), ("ops", True)]
    assert rows[0]["config"]["starttls"] is True and rows[0]["config"]["port"] == 587
    assert SECRET not in out and "smtp-password" not in out
    code, out, _ = cli(capsys, "channel", "list", "--as", "ada")
    assert code == 0 and "ops" in out and "webhook" in out and SECRET not in out
    code, _, err = cli(capsys, "channel", "list", "--as", "audrey")
    assert code != 0 and "may not see notification channels" in err.replace("\n", " ")
    code, out, err = cli(capsys, "channel", "update", "ops", "--disable", "--as", "ada")
    assert code == 0, err
    code, out, _ = cli(capsys, "channel", "list", "--format", "json", "--as", "ada")
    assert [r["enabled"] for r in json.loads(out)] == [True, False]
    code, out, err = cli(capsys, "channel", "remove", "ops", "--as", "ada")
    assert code == 0 and "channel ops removed" in out


def test_test_dispatch_list_show_and_retry(db: Store, people: dict, capsys,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_KEY", SECRET)
    with webhook_receiver(SECRET, always_fail=True) as hook:
        code, _, err = cli(capsys, "channel", "add", "ops", "--kind", "webhook", "--url",
                           hook.url, "--secret-env", "HOOK_KEY", "--max-attempts", "2",
                           "--backoff", "0", "--as", "ada")
        assert code == 0, err
        code, out, _ = cli(capsys, "channel", "test", "ops", "--as", "ada")
        assert code == 1 and "pending: HTTP 500" in out
        _queue(db, 2)
        code, out, _ = cli(capsys, "notify", "dispatch")  # the test's 2nd and last attempt
        assert code == 1 and "0 delivered, 2 to retry, 1 failed" in out
        code, out, _ = cli(capsys, "notify", "dispatch")
        assert code == 1 and "0 delivered, 0 to retry, 2 failed" in out
        code, out, _ = cli(capsys, "notify", "dispatch")
        assert code == 0 and "0 delivered, 0 to retry, 0 failed" in out
        code, out, _ = cli(capsys, "notify", "list", "--state", "failed", "--format", "json",
                           "--as", "audrey")
        failed = json.loads(out)
        assert code == 0 and len(failed) == 3
        assert {f["last_error"] for f in failed} == {"HTTP 500 Internal Server Error"}
        code, out, _ = cli(capsys, "notify", "list", "--as", "victor")
        assert code == 0 and "failed" in out and "HTTP 500" in out
        code, _, err = cli(capsys, "notify", "list", "--as", "sean")
        assert code != 0 and "may not read the notification log" in err.replace("\n", " ")
        did = failed[0]["id"]
        code, out, _ = cli(capsys, "notify", "show", str(did), "--as", "audrey")
        assert code == 0 and "attempt 1" in out and "attempt 2" in out and "(500)" in out
        code, _, err = cli(capsys, "notify", "retry", str(did), "--as", "victor")
        assert code != 0 and "may not retry notifications" in err.replace("\n", " ")
        hook.always_fail = False
        code, out, err = cli(capsys, "notify", "retry", str(did), "--as", "ada")
        assert code == 0 and f"delivery #{did} is pending again" in out
        assert "notifications: 1 delivered" in err  # sent right away
        code, out, _ = cli(capsys, "notify", "list", "--state", "delivered", "--format",
                           "json", "--as", "ada")
        assert [d["id"] for d in json.loads(out)] == [did]
        code, out, _ = cli(capsys, "notify", "list", "--state", "gone", "--as", "ada")
        assert code == 2


def test_monitor_run_sends_its_alerts_right_after_the_commit(
        db: Store, people: dict, credit: dict, tmp_path: Path,  # noqa: F811
        capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = _setup(db, credit, tmp_path)
    monkeypatch.setenv("ASSAY_USER", "dana")
    for i in range(2):
        frame = _day(credit, i)
        if i == 1:
            frame["AGE"] = frame["AGE"] * 2
        path = tmp_path / f"day{i}.csv"
        frame.drop(columns=[TARGET]).to_csv(path, index=False)
        code, _, err = cli(capsys, "monitor", "ingest", "pd", "1", "--data", str(path),
                           "--time-column", "ts", "--id-column", "row", "--score", "p",
                           "--sensitive", "sex")
        assert code == 0, err
    monkeypatch.setenv("HOOK_KEY", SECRET)
    with webhook_receiver(SECRET) as hook, smtp_server() as box:
        cli(capsys, "channel", "add", "ops", "--kind", "webhook", "--url", hook.url,
            "--secret-env", "HOOK_KEY", "--as", "ada")
        # an SMTP server that is not there: the command still succeeds, the failure shows
        cli(capsys, "channel", "add", "mail", "--kind", "email", "--host", "127.0.0.1",
            "--port", str(box.port + 1 if box.port < 65535 else 1), "--sender",
            "assay@bank.test", "--to", "oncall@bank.test", "--backoff", "0",
            "--max-attempts", "1", "--as", "ada")
        code, out, err = cli(capsys, "monitor", "run", "pd", "1", "--policy", str(policy),
                             "--tier", "high", "--as", "victor")
        assert code == 1 and "1 alert(s) raised" in out  # the alert, as before
        assert "notifications: 1 delivered, 0 to retry, 1 failed (see `assay notify list`)" \
            in err.replace("\n", " ")
        [body] = hook.accepted
        assert body["event"] == "monitor.alert" and body["payload"]["label"] == "AGE"
    code, out, _ = cli(capsys, "alert", "list", "--format", "json")
    assert len(json.loads(out)) == 1  # the alert is committed whatever the delivery did
    code, out, _ = cli(capsys, "notify", "list", "--state", "failed", "--format", "json",
                       "--as", "victor")
    [failed] = json.loads(out)
    assert failed["recipient"] == "oncall@bank.test" and "Connection refused" in \
        failed["last_error"]
