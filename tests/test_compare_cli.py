"""``assay compare`` and ``assay mitigate`` through assay's own entry point: tables, JSON,
one-line errors, written weights and reports, and ``--record MODEL@VERSION`` kept as
audited evidence for validators and editors only (SQLite and PostgreSQL through the
``db`` fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from assay.evidence import digest_file
from assay.impact.analyses import latest_analysis
from assay.impact.tables import ImpactAnalysis
from assay.store import Store
from assay.store.audit import AuditEvent
from test_impact_analyses import MODEL, VERSION, _fast_hashes  # noqa: F401
from test_impact_analyses import data as scored  # noqa: F401


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    import assay.cli as cli_mod

    code = 0
    try:
        cli_mod.main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def two(tmp_path: Path) -> Path:
    rng = np.random.default_rng(11)
    n = 1500
    sex = rng.choice(["female", "male"], n)
    y = rng.binomial(1, np.where(sex == "male", 0.6, 0.45))
    old = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    new = np.clip(0.45 * y + rng.uniform(0, 0.55, n), 0, 1)
    path = tmp_path / "scored.csv"
    pd.DataFrame({"y": y, "old": old, "new": new, "sex": sex,
                  "old_pred": (old >= 0.5).astype(int)}).to_csv(path, index=False)
    return path


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from assay.cli import compare, monitor

    wide = Console(highlight=False, soft_wrap=True, width=200)
    monkeypatch.setattr(monitor, "console", wide)
    monkeypatch.setattr(compare, "console", wide)


def test_paired_compare_prints_a_table_and_json(two: Path, capsys):
    args = ["compare", "--data", str(two), "--target", "y", "--old-score", "old",
            "--new-score", "new", "--sensitive", "sex", "--replicates", "300"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "Paired comparison on 1500 rows" in out
    assert "roc_auc" in out and "sex=female" in out and "new" in out
    code, out, err = run(capsys, *args, "--format", "json")
    r = json.loads(out)
    assert r["overall"]["roc_auc"]["better"] == "new"
    assert r["overall"]["roc_auc"]["method"].startswith("DeLong")
    assert set(r["groups"]) == {"female", "male"}
    # a prediction column for the old model: no AUC, and the note says why
    code, out, err = run(capsys, "compare", "--data", str(two), "--target", "y",
                         "--old-prediction", "old_pred", "--new-score", "new", "--format",
                         "json", "--replicates", "200")
    assert code == 0, err
    r = json.loads(out)
    assert "roc_auc" not in r["overall"] and "AUC and Brier are not compared" in r["notes"][0]


def test_compare_results_and_the_paired_refusal(tmp_path: Path, capsys):
    from _results import frame, genuine_results

    a = genuine_results(tmp_path / "a", data=frame(seed=1))
    b = genuine_results(tmp_path / "b", data=frame(seed=2))
    code, out, err = run(capsys, "compare", str(a), str(b))
    assert code == 0, err
    assert "Independent evaluations" in out and "accuracy" in out and "sex=f" in out
    code, out, err = run(capsys, "compare", str(a), str(b), "--paired")
    assert code == 2 and out == ""
    assert "a paired comparison needs both results on the same evaluation data" in err
    assert "Traceback" not in err
    code, out, err = run(capsys, "compare", str(a), str(a), "--paired", "--format", "json")
    assert code == 0 and json.loads(out)["same_data"] is True
    code, out, err = run(capsys, "compare", str(a))
    assert code == 2 and "give two results.json files" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out, err = run(capsys, "compare", str(a), str(bad))
    assert code == 2 and f"{bad}: not a JSON file" in err


def test_mitigate_thresholds_and_reweigh_write_their_files(two: Path, tmp_path: Path, capsys):
    html, svg = tmp_path / "m.html", tmp_path / "m.svg"
    code, out, err = run(capsys, "mitigate", "thresholds", "--data", str(two), "--target", "y",
                         "--score", "old", "--sensitive", "sex", "--max-gap", "0.02",
                         "--html", str(html), "--svg", str(svg))
    assert code == 0, err
    assert "demographic_parity_difference <= 0.02" in out and "->" in out
    assert "no model, threshold or policy was changed" in out
    assert "<svg" in html.read_text() and svg.read_text().startswith("<svg")
    code, out, err = run(capsys, "mitigate", "thresholds", "--data", str(two), "--target", "y",
                         "--score", "old", "--sensitive", "sex", "--constraint", "parity")
    assert code == 2 and "unknown fairness target 'parity'" in err
    weights, cells = tmp_path / "w.parquet", tmp_path / "cells.csv"
    code, out, err = run(capsys, "mitigate", "reweigh", "--data", str(two), "--target", "y",
                         "--sensitive", "sex", "--out", str(weights), "--cells", str(cells),
                         "--format", "json")
    assert code == 0, err
    w = pq.read_table(weights).column("weight").to_numpy()
    df = pd.read_csv(two)
    assert len(w) == len(df)
    for (sex, y), rows in df.groupby(["sex", "y"]):
        expected = (df.sex == sex).mean() * (df.y == y).mean() / len(rows) * len(df)
        assert np.allclose(w[rows.index], expected, rtol=1e-12)
    assert pd.read_csv(cells).shape == (4, 5)
    code, out, err = run(capsys, "mitigate", "reweigh", "--data", str(two), "--target", "y",
                         "--sensitive", "sex", "--out", str(tmp_path / "w.txt"))
    assert code == 2 and "expected a .csv or .parquet file name" in err


def test_recording_is_audited_evidence_for_validators_only(db: Store, scored: Path,  # noqa: F811
                                                           tmp_path: Path, capsys):
    args = ["mitigate", "thresholds", "--data", str(scored), "--target", "credit",
            "--score", "score", "--sensitive", "sex", "--format", "json"]
    code, out, err = run(capsys, *args, "--record", f"{MODEL}@{VERSION}", "--as", "aud")
    assert code == 2 and "may not record impact analyses" in err
    code, out, err = run(capsys, *args, "--record", f"{MODEL}@9.9", "--as", "vic")
    assert code == 2 and "has no version '9.9'" in err
    code, out, err = run(capsys, *args, "--record", MODEL, "--as", "vic")
    assert code == 2 and "expected MODEL@VERSION" in err
    with db.transaction() as s:
        assert s.query(ImpactAnalysis).count() == 0
    code, out, err = run(capsys, *args, "--record", f"{MODEL}@{VERSION}", "--as", "vic")
    assert code == 0, err
    assert "recorded as mitigation analysis" in err
    proposal = json.loads(out)
    rng = np.random.default_rng(0)
    df = pd.read_csv(scored)
    df["new"] = np.clip(df.score + rng.normal(0, 0.05, len(df)), 0, 1)
    both = tmp_path / "both.csv"
    df.to_csv(both, index=False)
    code, out, err = run(capsys, "compare", "--data", str(both), "--target", "credit",
                         "--old-score", "score", "--new-score", "new", "--replicates", "200",
                         "--format", "json", "--record", f"{MODEL}@{VERSION}", "--as", "vic")
    assert code == 0, err
    comparison = json.loads(out)
    with db.transaction() as s:
        m = latest_analysis(s, MODEL, VERSION, "mitigation")
        assert m["result"] == json.loads(json.dumps(proposal))
        assert m["inputs"]["data"] == digest_file(scored) and m["svg"].startswith("<svg")
        c = latest_analysis(s, MODEL, VERSION, "comparison")
        assert c["result"]["overall"]["roc_auc"] == comparison["overall"]["roc_auc"]
        events = s.query(AuditEvent).filter(AuditEvent.action == "impact.analysis").all()
        assert sorted(e.payload["kind"] for e in events) == ["comparison", "mitigation"]
        assert {e.actor for e in events} == {"vic"}
    page = tmp_path / "impact.html"
    code, _, err = run(capsys, "impact", "report", MODEL, VERSION, "--out", str(page))
    assert code == 0, err
    html = page.read_text()
    assert "Mitigation proposal" in html and "Model comparison" in html
    assert f"on data {digest_file(scored)}" in html and "by vic" in html


def test_two_model_files_on_the_same_rows(tmp_path: Path, capsys):
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    n = 800
    df = pd.DataFrame(rng.normal(size=(n, 2)), columns=["a", "b"])
    df["y"] = (df.a + 0.7 * df.b + rng.normal(0, 1, n) > 0).astype(int)
    old = LogisticRegression().fit(df[["a"]], df.y)
    new = LogisticRegression().fit(df[["a", "b"]], df.y)
    joblib.dump(old, tmp_path / "old.joblib")
    joblib.dump(new, tmp_path / "new.joblib")
    df.to_csv(tmp_path / "rows.csv", index=False)
    code, out, err = run(capsys, "compare", "--data", str(tmp_path / "rows.csv"), "--target",
                         "y", "--old-model", str(tmp_path / "old.joblib"), "--new-model",
                         str(tmp_path / "new.joblib"), "--replicates", "200", "--format",
                         "json")
    assert code == 0, err
    auc = json.loads(out)["overall"]["roc_auc"]
    assert auc["old"] == pytest.approx(roc_auc_score(df.y, old.predict_proba(df[["a"]])[:, 1]))
    assert auc["new"] == pytest.approx(
        roc_auc_score(df.y, new.predict_proba(df[["a", "b"]])[:, 1]))
    assert auc["better"] == "new"
    code, out, err = run(capsys, "compare", "--data", str(tmp_path / "rows.csv"), "--target",
                         "y", "--old-model", str(tmp_path / "old.joblib"), "--old-score", "a",
                         "--new-score", "b")
    assert code == 2 and "give a model file or columns for the old model, not both" in err
