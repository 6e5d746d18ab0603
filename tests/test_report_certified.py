"""The report rendered from a real certification of a model on Adult data."""

from __future__ import annotations

import json
import re
import textwrap
from html.parser import HTMLParser

import pytest

from assay.report import render_report

POLICY = """\
name: report-test
version: "1"
settings:
  min_group_size: 30
  bootstrap: {replicates: 200, confidence: 0.9, seed: 1}
tiers:
  high:
    checks:
      - id: integrity.missing_values
        threshold: {max: 0.1}
      - id: integrity.group_representation
        threshold: {min: 0.01}
        severity: warn
      - id: performance.roc_auc
        threshold: {min: 0.75}
        judge: interval
        params: {by: [sex, race]}
        rationale: "The model must rank applicants well in every group."
        regulations: ["SR 26-2 (2026): outcomes analysis"]
      - id: fairness.equalized_odds_difference
        threshold: {max: 0.1}
        judge: interval
      - id: drift.psi
        threshold: {max: 0.25}
        severity: warn
      - id: robustness.gaussian_noise
        threshold: {max: 0.05}
        severity: warn
"""


@pytest.fixture(scope="module")
def certified(tmp_path_factory):
    import assay
    from assay.datasets import load_adult
    from assay.demo import build_model

    train, test = load_adult(missing_as_nan=True)
    train = train.sample(5000, random_state=0).reset_index(drop=True)
    test = test.sample(4000, random_state=0).reset_index(drop=True)
    d = tmp_path_factory.mktemp("certified")
    (d / "policy.yaml").write_text(textwrap.dedent(POLICY))
    cert = assay.certify(data=test, reference=train, model=build_model(train, max_iter=30),
                         policy=d / "policy.yaml", tier="high", target="income",
                         positive_label=">50K", sensitive=["sex", "race"])
    written = cert.write(d / "out")
    return cert, written


def test_the_written_report_is_the_rendered_results(certified):
    _, written = certified
    html = written["report.html"].read_text(encoding="utf-8")
    results = json.loads(written["results.json"].read_text(encoding="utf-8"))
    strip = re.compile(r'assay-chart-\d+|id="[^"]*"|#[0-9a-z]{10,}|url\(#[^)]*\)')
    assert strip.sub("", render_report(results)) == strip.sub("", html)


def test_every_check_and_block_is_shown(certified):
    cert, written = certified
    results = cert.to_dict()
    html = written["report.html"].read_text(encoding="utf-8")
    for c in results["checks"]:
        assert c["id"] in html
        assert c["status"] in ("pass", "warn", "fail", "skip", "error")
    assert 'id="metrics"' in html and 'id="drift"' in html
    assert "ROC curve" in html and "Reliability (calibration)" in html
    assert 'aria-label="Metrics by sex"' in html and 'aria-label="Metrics by race"' in html
    assert "By sex" in html and "By race" in html
    assert "SR 26-2 (2026): outcomes analysis" in html
    assert "The model must rank applicants well in every group." in html
    assert results["model"]["sha256"] in html
    assert results["data"]["evaluation"]["sha256"] in html


def test_numbers_in_the_report_match_the_results(certified):
    cert, written = certified
    results = cert.to_dict()
    html = written["report.html"].read_text(encoding="utf-8")
    auc = results["metrics"]["overall"]["roc_auc"]["value"]
    assert f"AUC {auc:.3f}" in html
    roc_check = next(c for c in results["checks"] if c["id"] == "performance.roc_auc")
    assert f"{roc_check['value']:.4g}" in html
    lo, hi = roc_check["ci"]
    assert f"[{lo:.4g}, {hi:.4g}]" in html


def test_report_is_well_formed(certified):
    _, written = certified
    html = written["report.html"].read_text(encoding="utf-8")

    ids: list[str] = []

    class Ids(HTMLParser):
        def handle_starttag(self, tag, attrs):
            ids.extend(v for k, v in attrs if k == "id")

    Ids().feed(html)
    assert len(ids) == len(set(ids))
    assert html.count("<svg") >= 8
    assert "<script" not in html
