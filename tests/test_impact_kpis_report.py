"""KPIs computed from the monitoring windows (selection rate by group per week, the same
numbers as recomputing them from the ingested rows), their guardrail alerting through the
monitoring alerts, and the record through the command line and the impact report. On
SQLite and PostgreSQL (the ``db`` fixture)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from argon2 import PasswordHasher, profiles

from _monitored import DAY0, monitored_version
from assay import impact, monitor
from assay import registry as reg
from assay.api.sample import populate
from assay.store import Store
from test_impact_causal import cli, panel
from test_impact_record import THEORY

PASSWORD = "impact kpis password"
MODEL, VERSION = "credit-scoring", "2.0"


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def monitored(db: Store, tmp_path: Path) -> Path:
    populate(db, password=PASSWORD, models=1, reports=False)
    monitored_version(db, tmp_path / "mon", days=9, drift_day=None)
    return tmp_path / "mon"


def as_user(db: Store, user: str, fn, *args, **kw):
    with db.transaction() as s:
        return fn(s, reg.get_user(s, user), MODEL, VERSION, *args, **kw)


def test_selection_rate_by_group_per_week_from_the_windows(db: Store, monitored: Path):
    as_user(db, "dana", impact.add_kpi, name="approval_rate", direction="increase",
            source="monitoring", metric="selection_rate", by="sex", cadence="weekly",
            guardrail=0.0)
    with db.transaction() as s:
        got = impact.series(s, MODEL, VERSION, "approval_rate")["points"]
    rows = pd.concat([pd.read_parquet(monitored / f"{MODEL}-{VERSION}-day{i}.parquet")
                      .assign(day=DAY0 + timedelta(days=i)) for i in range(9)])
    rows["week"] = [d - timedelta(days=d.weekday()) for d in rows.day]
    rows["pred"] = (rows.score >= 0.5).astype(int)
    want = rows.groupby(["week", "sex"]).pred.mean()
    assert len(got) == len(want) == 4  # two weeks x two groups
    for p in got:
        week = date.fromisoformat(p["start"][:10])
        assert p["value"] == pytest.approx(want[(week, p["group"])], abs=1e-12)
        assert p["n"] == int(((rows.week == week) & (rows.sex == p["group"])).sum())
    # a guardrail above every rate: the latest week breaches for both groups, once each
    with db.transaction() as s:
        from assay.impact.tables import ImpactKpi

        s.query(ImpactKpi).update({ImpactKpi.guardrail: 0.9})
    first = as_user(db, "dana", lambda s, u, m, v: impact.evaluate(s, u, m, v))
    assert sorted(b["group"] for b in first) == ["female", "male"]
    assert all(b["alert"] for b in first)
    as_user(db, "dana", lambda s, u, m, v: impact.evaluate(s, u, m, v))
    with db.transaction() as s:
        alerts = [a for a in monitor.list_alerts(s, model=MODEL)
                  if a["rule"].startswith("impact.kpi_guardrail")]
    assert len(alerts) == 2


def test_record_through_the_command_line_and_the_report(db: Store, monitored: Path,
                                                        tmp_path: Path, monkeypatch, capsys):
    theory = tmp_path / "theory.yaml"
    theory.write_text(THEORY.replace("  - the model scores", "  - - the model scores"))
    code, _, err = cli(monkeypatch, capsys, "assess", MODEL, VERSION, "--file", str(theory),
                       "--as", "dana")
    assert code == 2
    assert err.strip() == "error: theory.yaml:7:5: pathway[0]: expected text, got a list"
    theory.write_text(THEORY)
    code, _, err = cli(monkeypatch, capsys, "assess", MODEL, VERSION, "--file", str(theory),
                       "--as", "vic")
    assert code == 2 and "may not edit the impact assessment" in err
    code, out, err = cli(monkeypatch, capsys, "assess", MODEL, VERSION, "--file", str(theory),
                         "--as", "dana", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["revision"] == 1
    steps = [
        ("kpi", "add", MODEL, VERSION, "--name", "default_rate", "--direction", "decrease",
         "--unit", "%", "--baseline", "4", "--target", "3", "--guardrail", "5"),
        ("kpi", "observe", MODEL, VERSION, "default_rate", "4.2", "--at", "2026-03-02"),
        ("kpi", "observe", MODEL, VERSION, "default_rate", "5.5", "--at", "2026-04-01"),
        ("register", "add", MODEL, VERSION, "--title", "thin-file applicants denied",
         "--kind", "negative", "--likelihood", "3", "--severity", "4", "--group", "thin file"),
        ("register", "link", MODEL, VERSION, "1", "--kpi", "default_rate", "--risk", "R-1"),
        ("feedback", "add", MODEL, VERSION, "--channel", "complaint", "--category", "denied",
         "--register", "1", "--received", "2026-03-03"),
    ]
    for step in steps:
        code, out, err = cli(monkeypatch, capsys, *step, "--as", "dana")
        assert code == 0, (step, err)
    code, out, _ = cli(monkeypatch, capsys, "show", MODEL, VERSION, "--format", "json")
    rec = json.loads(out)
    assert rec["assessment"]["revision"] == 1 and len(rec["kpis"]) == 1
    assert rec["register"][0]["links"]["kpis"] == ["default_rate"]
    assert rec["register"][0]["feedback"] == 1
    code, _, err = cli(monkeypatch, capsys, "kpi", "observe", MODEL, VERSION, "default_rate",
                       "high", "--as", "dana")
    assert code == 2 and "\n" not in err.strip()
    data = tmp_path / "panel.csv"
    panel().to_csv(data, index=False)
    html = tmp_path / "impact.html"
    code, _, err = cli(monkeypatch, capsys, "report", MODEL, VERSION, "--out", str(html),
                       "--did-data", str(data), "--did", "y,unit,t,treated,post", "--keep",
                       "--as", "rita")
    assert code == 0, err
    page = html.read_text()
    for text in ("Theory of impact", "fewer defaults on increased lines", "default_rate",
                 "guardrail breached", "difference-in-differences", "parallel trends",
                 "thin-file applicants denied", "R-1", "1 record(s): denied 1"):
        assert text in page, text
    assert page.count("<svg") >= 2 and "<script" not in page
    from assay.evidence import digest_bytes
    from assay.store.audit import AuditEvent

    with db.transaction() as s:
        ev = s.query(AuditEvent).filter(AuditEvent.action == "impact.report").one()
        assert ev.evidence["impact_report"] == digest_bytes(page.encode())
        assert ev.actor == "rita"
    with db.transaction() as s:
        alerts = monitor.list_alerts(s, model=MODEL)
    assert [a["rule"] for a in alerts if a["rule"].startswith("impact")] == [
        "impact.kpi_guardrail:default_rate"]
