"""``assay incident`` end to end, in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from assay.cli import main
from assay.store import Store
from test_incidents import PM, _snapshot, model  # noqa: F401 (fixture)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_an_incident_from_open_to_close_on_the_command_line(
        db: Store, model: str, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from assay.cli.monitor import console

    # wide enough that no playbook step wraps, whatever width another test left it at
    monkeypatch.setattr(console, "width", 200)
    berlin = timezone(timedelta(hours=2))
    aware = (datetime.now(UTC) - timedelta(hours=3)).astimezone(berlin).replace(microsecond=0)
    code, out, err = cli(capsys, "incident", "open", "pd", "1", "--title", "Income drift",
                         "--severity", "SEV1", "--kind", "drift", "--aware-at",
                         aware.isoformat(), "--group", "applicants over 60", "--owner", "cora",
                         "--format", "json", "--as", "victor")
    assert code == 0, err
    opened = json.loads(out)
    iid = opened["id"]
    assert opened["aware_zone"] == "+02:00" and opened["owner"] == "cora"
    assert opened["deadlines"][0]["due_local"] == (aware + timedelta(hours=1)).isoformat(
        timespec="minutes")
    assert opened["overdue"] == ["acknowledge"]

    code, out, err = cli(capsys, "incident", "show", str(iid))
    assert code == 0, err
    assert "OVERDUE" in out and "(zone +02:00)" in out
    assert "Playbook (drift): 0 of 2 done" in out
    assert "Confirm the drift on the monitoring windows" in out
    assert "post-mortem: none yet (required to close)" in out
    code, out, _ = cli(capsys, "incident", "list", "--overdue", "--format", "json")
    assert [i["id"] for i in json.loads(out)] == [iid]

    # out of order, unknown, in the future: one line, exit 2, nothing written
    before = _snapshot(db)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for args, message in (
            (("resolve", str(iid), "--as", "rita"),
             f"incident #{iid} is open: acknowledge it first (`assay incident ack {iid}`), "
             "then resolve it"),
            (("ack", "4242", "--as", "victor"), "unknown incident #4242"),
            (("open", "pd", "1", "--title", "x", "--severity", "SEV2", "--aware-at", future,
              "--as", "victor"), "--aware-at: "),
            (("open", "pd", "1", "--title", "x", "--severity", "SEV7", "--as", "victor"),
             "--severity: expected one of 'SEV1', 'SEV2', 'SEV3', 'SEV4', got 'SEV7'"),
            (("list", "--state", "opne"), "--state: expected one of"),
            (("ack", str(iid), "--as", "audrey"), "may not acknowledge incidents")):
        code, out, err = cli(capsys, "incident", *args)
        assert code == 2, (args, out, err)
        assert message in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
    assert "is in the future" in cli(capsys, "incident", "open", "pd", "1", "--title", "x",
                                     "--severity", "SEV2", "--aware-at", future, "--as",
                                     "victor")[2]
    assert _snapshot(db) == before

    code, out, err = cli(capsys, "incident", "ack", str(iid), "--note", "looking", "--as",
                         "victor")
    assert code == 0 and f"incident #{iid} acknowledged" in out, err
    report = tmp_path / "psi.csv"
    report.write_text("feature,psi\nincome,0.31\n")
    code, out, err = cli(capsys, "incident", "update", str(iid), "--step", "1", "--done",
                         "--evidence", str(report), "--link-release", "rel-7", "--as",
                         "victor")
    assert code == 0, err
    assert "step 1 (Confirm the drift" in out and "done, 1 evidence file(s)" in out
    code, _, err = cli(capsys, "incident", "update", str(iid), "--step", "9", "--done",
                       "--as", "victor")
    assert code == 2 and "--step: expected 1 to 2" in err
    for args in (("mitigate", str(iid), "--as", "victor"), ("resolve", str(iid), "--as", "rita")):
        code, _, err = cli(capsys, "incident", *args)
        assert code == 0, err
    code, _, err = cli(capsys, "incident", "close", str(iid), "--as", "rita")
    assert code == 2 and f"incident #{iid} (SEV1) needs a post-mortem" in err

    bad = tmp_path / "pm.yaml"
    bad.write_text(PM.replace("root_cause: The bureau feed changed the unit of income to "
                              "thousands\n", "root_cause:\n"))
    code, _, err = cli(capsys, "incident", "postmortem", str(iid), "--file", str(bad), "--as",
                       "victor")
    assert code == 2 and "pm.yaml:6: root_cause: required" in err
    good = tmp_path / "good.yaml"
    good.write_text(PM)
    code, out, err = cli(capsys, "incident", "postmortem", str(iid), "--file", str(good),
                         "--as", "victor")
    assert code == 0 and "post-mortem recorded (sha256:" in out, err

    code, out, err = cli(capsys, "incident", "close", str(iid), "--as", "rita")
    assert code == 0 and "close requested by rita; a second person" in out, err
    code, _, err = cli(capsys, "incident", "close", str(iid), "--as", "cora")
    assert code == 2 and "user 'cora' owns the incident" in err
    code, out, err = cli(capsys, "incident", "close", str(iid), "--as", "ada")
    assert code == 0 and f"incident #{iid} closed" in out, err

    code, out, _ = cli(capsys, "incident", "show", str(iid))
    assert "root cause: The bureau feed changed the unit" in out
    assert "yes" in out and "psi.csv (sha256:" in out and "linked release rel-7" in out
    assert "closed" in out and "by ada" in out


def test_escalate_from_cron(db: Store, model: str,  # noqa: F811
                            capsys: pytest.CaptureFixture[str]) -> None:
    aware = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    code, out, err = cli(capsys, "incident", "open", "pd", "1", "--title", "Outage",
                         "--severity", "SEV2", "--kind", "outage", "--aware-at", aware,
                         "--as", "victor")
    assert code == 0, err
    code, out, err = cli(capsys, "incident", "escalate", "--format", "json", "--as", "victor")
    assert code == 0, err
    made = json.loads(out)
    assert [(e["step"], e["role"]) for e in made] == [("acknowledge", "validator"),
                                                     ("mitigate", "risk_officer")]
    code, out, _ = cli(capsys, "incident", "escalate", "--as", "victor")
    assert code == 0 and "no overdue step to escalate" in out
    code, _, err = cli(capsys, "incident", "escalate", "--as", "audrey")
    assert code == 2 and "may not escalate overdue incidents" in err
