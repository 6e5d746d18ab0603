"""The HTML report shows the security checks readably: the model file's scan, the evasion
attack's budget with a chart, suspect labels per class, the red-team findings (escaped)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from assay.certification import certify

POLICY = textwrap.dedent("""\
    name: sec
    version: "1"
    tiers:
      high:
        checks:
          - id: security.model_file
            threshold: {max: 0}
            rationale: scanned
          - id: security.evasion
            params: {sample_rows: 60, max_change: 1.0}
            threshold: {max: 0.5}
            judge: interval
            severity: warn
            rationale: evasion
          - id: security.label_noise
            params: {sample_rows: 800}
            threshold: {max: 0.1}
            judge: interval
            severity: warn
            rationale: labels
          - id: security.red_team
            threshold: {max: 0}
            rationale: attacked
    """)
XSS = '<script>alert("x")</script>'


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x0": rng.normal(5, 1, n), "x1": rng.normal(0, 1, n)})
    df["y"] = (df["x0"] + rng.normal(0, 0.3, n) > 5).astype(int)
    return df


def test_the_report_shows_the_security_family(tmp_path: Path) -> None:
    train, test = _frame(1000, 0), _frame(500, 1)
    model = LogisticRegression().fit(train[["x0", "x1"]], train["y"])
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    policy = tmp_path / "sec.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    findings = [{"id": 1, "technique": f"evasion {XSS}", "severity": "high",
                 "outcome": "succeeded", "status": "open", "recorded_by": "sean",
                 "recorded_at": "2026-11-29T10:00:00Z", "note": "flip", "evidence_digest": None}]
    cert = certify(data=test, reference=train, policy=policy, tier="high", target="y",
                   model=path, red_team=findings, out_dir=tmp_path / "out")
    by_id = {c.id: c for c in cert.checks}
    assert by_id["security.model_file"].status == "pass"
    assert by_id["security.evasion"].status in ("fail", "warn")
    assert by_id["security.red_team"].status == "fail"
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert 'id="family-security"' in html
    assert "sklearn.linear_model._logistic.LogisticRegression" in html  # the imports table
    assert by_id["security.model_file"].details["sha256"] in html
    assert "Successful attacks by number of features changed" in html  # the chart
    assert "Share of suspect labels per class" in html
    assert "Class threshold" in html
    assert "#1 (blocks)" in html
    assert XSS not in html and "&lt;script&gt;" in html
