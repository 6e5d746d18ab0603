"""``assay monitor`` and ``assay alert`` end to end, in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from assay.cli import main
from assay.store import Store
from test_monitor import DAY0, TARGET, _day, _setup, credit  # noqa: F401 (fixture)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_run_status_and_alerts_from_the_command_line(
        db: Store, people: dict, credit: dict, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    policy = _setup(db, credit, tmp_path)
    monkeypatch.setenv("ASSAY_USER", "dana")
    for i in range(2):
        frame = _day(credit, i)
        if i == 1:
            frame["AGE"] = frame["AGE"] * 2
        path = tmp_path / f"day{i}.csv"
        frame.drop(columns=[TARGET]).to_csv(path, index=False)
        code, out, err = cli(capsys, "monitor", "ingest", "pd", "1", "--data", str(path),
                             "--time-column", "ts", "--id-column", "row", "--score", "p",
                             "--sensitive", "sex")
        assert code == 0, err
        assert f"2500 rows of {path}" in out and (DAY0 + timedelta(days=i)).isoformat() in out

    # bad input: exit 2 with the file and column named, no traceback
    code, out, err = cli(capsys, "monitor", "ingest", "pd", "1", "--data", str(path),
                         "--time-column", "when", "--score", "p")
    assert code == 2 and f"{path}: time column 'when' is not in the data" in err
    assert "Traceback" not in err
    code, _, err = cli(capsys, "monitor", "run", "pd", "1", "--as", "victor")
    assert code == 2 and "has no certification" in err and "--policy" in err

    code, out, err = cli(capsys, "monitor", "run", "pd", "1", "--policy", str(policy),
                         "--tier", "high", "--as", "victor")
    assert code == 1, err
    assert "2 window(s) evaluated, 1 alert(s) raised" in out and "AGE" in out
    code, out, err = cli(capsys, "monitor", "run", "--policy", str(policy), "--tier", "high",
                         "--as", "victor")
    assert code == 0 and "0 window(s) evaluated, 0 alert(s) raised" in out

    code, out, _ = cli(capsys, "monitor", "status", "pd", "1", "--format", "json")
    st = json.loads(out)
    drift = [e for e in st["evaluations"] if e["rule"] == "drift.feature"
             and e["label"] == "AGE"]
    assert [e["state"] for e in drift] == ["pass", "fail"]
    assert drift[1]["ci"][0] > 0.1 and drift[1]["threshold"] == {"max": 0.1}
    code, out, _ = cli(capsys, "monitor", "status", "pd", "1")
    assert code == 0 and "fail" in out and "1 alert(s) not resolved" in out

    code, out, _ = cli(capsys, "alert", "list", "--model", "pd", "--state", "open",
                       "--format", "json")
    alerts = json.loads(out)
    assert [(a["rule"], a["label"], a["severity"]) for a in alerts] == [
        ("drift.feature", "AGE", "block")]
    aid = str(alerts[0]["id"])
    code, _, err = cli(capsys, "alert", "list", "--state", "closed")
    assert code == 2 and "expected one of open, acknowledged, resolved" in err
    code, _, err = cli(capsys, "alert", "ack", aid, "--as", "audrey")
    assert code == 2 and "may not acknowledge alerts" in err
    code, out, _ = cli(capsys, "alert", "ack", aid, "--as", "rita")
    assert code == 0 and "acknowledged" in out
    code, _, err = cli(capsys, "alert", "resolve", aid)  # dana registered the version
    assert code == 2 and "may not resolve alerts" in err
    code, out, _ = cli(capsys, "alert", "resolve", aid, "--as", "victor", "--note", "checked")
    assert code == 0 and "resolved" in out
    code, out, _ = cli(capsys, "alert", "list", "--state", "open")
    assert "no alerts" in out


def test_the_command_module_imports_nothing_heavy_at_its_top_level() -> None:
    """``assay --help`` loads the module: numpy, pandas, SQLAlchemy and the domain wait."""
    import ast

    import assay.cli.monitor as mod

    tree = ast.parse(Path(mod.__file__).read_text())
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            top.add(node.module)
    assert top == {"__future__", "json", "os", "pathlib", "typing", "typer", "rich.console",
                   "rich.markup", "rich.table", "assay.errors"}
