"""Recording the impact numbers (value, frontier, scenarios, sensitivity) as evidence of a
model version, and showing the latest of each kind in the impact report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from argon2 import PasswordHasher, profiles

from assay import impact
from assay import registry as reg
from assay.api.sample import populate
from assay.evidence import digest_file, open_artifact
from assay.impact.tables import ImpactAnalysis
from assay.store import Store
from assay.store.audit import AuditEvent
from test_impact_causal import cli

PASSWORD = "impact analyses password"
MODEL, VERSION = "credit-scoring", "1.0"
VALUE = "tp=0,fp=-5,tn=0,fn=-1"


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def data(db: Store, tmp_path: Path) -> Path:
    populate(db, password=PASSWORD, models=1, reports=False)
    rng = np.random.default_rng(3)
    n = 2000
    sex = rng.choice(["female", "male"], n)
    y = rng.binomial(1, np.where(sex == "male", 0.75, 0.65))
    score = np.clip(0.4 * y + rng.uniform(0, 0.7, n), 0, 1).round(3)
    path = tmp_path / "scored.csv"
    pd.DataFrame({"credit": y, "score": score, "sex": sex}).to_csv(path, index=False)
    return path


def _common(path: Path) -> list[str]:
    return ["--data", str(path), "--target", "credit", "--positive-label", "1",
            "--score", "score", "--value", VALUE]


def _report(monkeypatch, capsys, tmp_path: Path) -> str:
    out = tmp_path / "impact.html"
    code, _, err = cli(monkeypatch, capsys, "report", MODEL, VERSION, "--out", str(out))
    assert code == 0, err
    return out.read_text()


def test_recorded_numbers_show_in_the_impact_report(db: Store, data: Path, tmp_path: Path,
                                                    monkeypatch, capsys):
    page = _report(monkeypatch, capsys, tmp_path)
    for kind in ("value", "frontier", "scenarios", "sensitivity"):
        assert f"No {kind} analysis is recorded for this version" in page
    scen = tmp_path / "scenarios.yaml"
    scen.write_text("scenarios:\n  - name: stricter\n    threshold: 0.6\n")
    runs = [("value", "--replicates", "50"),
            ("frontier", "--sensitive", "sex", "--levels", "0.8,0.9,1"),
            ("scenarios", "--scenarios", str(scen), "--replicates", "0"),
            ("sensitivity", "--replicates", "0")]
    results = {}
    for kind, *extra in runs:
        code, out, err = cli(monkeypatch, capsys, kind, *_common(data), *extra,
                             "--format", "json", "--record", MODEL, VERSION, "--as", "dana")
        assert code == 0, (kind, err)
        results[kind] = json.loads(out)
        assert f"recorded as {kind} analysis" in err
    page = _report(monkeypatch, capsys, tmp_path)
    assert "analysis is recorded for this version" not in page
    data_digest = digest_file(data)
    for title in ("Value of decisions", "Value-fairness frontier", "Scenarios", "Sensitivity"):
        assert title in page
    assert page.count(f"on data {data_digest}") == 4 and "by dana" in page
    assert "stricter" in page and page.count("<svg") >= 4 and "<script" not in page
    with db.transaction() as s:
        rows = s.query(ImpactAnalysis).order_by(ImpactAnalysis.id).all()
        assert [r.kind for r in rows] == ["value", "frontier", "scenarios", "sensitivity"]
        assert rows[2].inputs == {"data": data_digest, "scenarios": digest_file(scen)}
        assert rows[1].parameters["levels"] == [0.8, 0.9, 1.0]
        # the stored result is the command's JSON, byte for byte as canonical JSON
        from assay.config import load_settings

        stored = json.loads(open_artifact(load_settings(), rows[0].result_digest))
        assert stored == results["value"]
        events = s.query(AuditEvent).filter(AuditEvent.action == "impact.analysis").all()
        assert len(events) == 4 and {e.actor for e in events} == {"dana"}
        assert events[1].evidence["impact_frontier"] == rows[1].result_digest
        assert events[1].evidence["impact_frontier_chart"] == rows[1].chart_digest
        latest = impact.latest_analysis(s, MODEL, VERSION, "frontier")
        assert latest["result"] == results["frontier"] and latest["svg"].startswith("<svg")


def test_recording_needs_an_editor_and_a_known_version(db: Store, data: Path,
                                                       monkeypatch, capsys):
    code, out, err = cli(monkeypatch, capsys, "value", *_common(data), "--replicates", "0",
                         "--record", MODEL, VERSION, "--as", "vic")
    assert code == 2 and "may not record impact analyses" in err and out == ""
    code, _, err = cli(monkeypatch, capsys, "value", *_common(data), "--replicates", "0",
                       "--record", MODEL, "9.9", "--as", "dana")
    assert code == 2 and "has no version '9.9'" in err and "\n" not in err.strip()
    with db.transaction() as s:
        assert s.query(ImpactAnalysis).count() == 0
        with pytest.raises(Exception, match="unknown kind 'curve'"):
            impact.record_analysis(s, reg.get_user(s, "dana"), MODEL, VERSION, "curve", {})


def test_impact_analyses_table_matches_the_migration(db: Store) -> None:
    from _schema import schema_diffs

    assert schema_diffs(db.engine, {"impact_analyses"}) == []
