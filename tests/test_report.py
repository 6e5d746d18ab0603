"""The HTML validation report rendered from a results.json dictionary."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser

import pytest

from assay.errors import InputError
from assay.report import charts, render_report, write_report
from assay.report.html import fmt_ci, fmt_num, fmt_threshold

EVIL = "<script>alert('x')</script>"


def _m(label, value, ci=None, n=None, status="pass", judged=True, note=None):
    return {"label": label, "value": value, "ci": ci, "n": n, "judged": judged,
            "note": note, "status": status if judged else None}


def _check(id, family, title, status, measurements, *, threshold, severity="block",
           judge_on="point", message="", rationale="", regulations=(), source=None):
    judged = [m for m in measurements if m["judged"] and m["status"]]
    order = {"fail": 0, "warn": 1, "pass": 2}
    worst = min(judged, key=lambda m: order[m["status"]]) if judged else None
    return {
        "id": id, "family": family, "title": title, "status": status, "severity": severity,
        "judge_on": judge_on, "threshold": threshold,
        "value": worst["value"] if worst else None, "ci": worst["ci"] if worst else None,
        "worst": worst["label"] if worst else None, "measurements": measurements,
        "message": message, "rationale": rationale, "regulations": list(regulations),
        "details": {}, "source": source,
    }


def sample_results() -> dict:
    """A results.json for a credit model on Adult-like data, written by hand."""
    checks = [
        _check("integrity.missing_values", "integrity", "Missing values", "pass",
               [_m("workclass", 0.056, n=16281), _m("occupation", 0.057, n=16281),
                _m("native_country", 0.017, n=16281)],
               threshold={"max": 0.1}, source="default.yaml:12",
               rationale="Silent gaps in the inputs bias every later measurement."),
        _check("performance.auc", "performance", "ROC AUC by group", "pass",
               [_m("overall", 0.912, [0.907, 0.917], 16281),
                _m("sex=Female", 0.925, [0.915, 0.934], 5421),
                _m("sex=Male", 0.897, [0.891, 0.903], 10860)],
               threshold={"min": 0.7}, judge_on="interval", source="default.yaml:20",
               regulations=["SR 26-2 (2026), model performance testing"]),
        _check("fairness.equalized_odds_difference", "fairness",
               "Equalized odds difference", "fail",
               [_m("sex", 0.142, [0.118, 0.166], 16281, status="fail"),
                _m("race", 0.231, [0.05, 0.41], 16281, status="warn"),
                _m("race=" + EVIL, 0.5, None, 12, judged=False,
                   note="12 rows, below the minimum group size 30")],
               threshold={"max": 0.1}, judge_on="interval", source="default.yaml:31",
               message="sex: 0.142 (CI 0.118 to 0.166), required <= 0.1",
               rationale="Error rates should not depend on the protected attribute.",
               regulations=["EU AI Act Art. 10(2)(f)", "ECOA / Regulation B"]),
        _check("fairness.demographic_parity_ratio", "fairness", "Demographic parity ratio",
               "warn",
               [_m("sex", 0.36, [0.33, 0.39], 16281, status="fail"),
                _m("race", 0.61, [0.5, 0.7], 16281, status="fail")],
               threshold={"min": 0.8}, severity="warn", source="default.yaml:40"),
        _check("calibration.ece", "calibration", "Expected calibration error", "warn",
               [_m("overall", 0.031, [0.027, 0.036], 16281, status="warn")],
               threshold={"max": 0.03}, judge_on="interval", source="default.yaml:48"),
        _check("drift.psi", "drift", "Population stability index", "pass",
               [_m("age", 0.004, n=16281), _m("capital_gain", 0.012, n=16281),
                _m("hours_per_week", 0.002, n=16281)],
               threshold={"max": 0.25}, severity="warn", source="default.yaml:55"),
        _check("robustness.perturbation", "robustness", "Prediction stability under noise",
               "skip", [], threshold={"max": 0.05},
               message="needs a model file (--model); predictions were given as a column"),
    ]
    groups = {
        "sex": {
            "Female": {"n": 5421, "judged": True, "metrics": {
                "selection_rate": {"value": 0.078, "ci": [0.071, 0.085]},
                "true_positive_rate": {"value": 0.52, "ci": [0.48, 0.56]},
                "false_positive_rate": {"value": 0.012, "ci": [0.009, 0.015]},
                "accuracy": {"value": 0.93, "ci": [0.923, 0.936]}}},
            "Male": {"n": 10860, "judged": True, "metrics": {
                "selection_rate": {"value": 0.214, "ci": [0.206, 0.222]},
                "true_positive_rate": {"value": 0.66, "ci": [0.64, 0.68]},
                "false_positive_rate": {"value": 0.078, "ci": [0.072, 0.084]},
                "accuracy": {"value": 0.843, "ci": [0.836, 0.85]}}},
        },
        "race": {
            "White": {"n": 13946, "judged": True, "metrics": {
                "selection_rate": {"value": 0.17, "ci": [0.163, 0.177]}}},
            "Black": {"n": 1561, "judged": True, "metrics": {
                "selection_rate": {"value": 0.09, "ci": [0.076, 0.105]}}},
            EVIL: {"n": 12, "judged": False, "metrics": {
                "selection_rate": {"value": 0.25, "ci": [0.0, 0.5]}}},
        },
    }
    edges = [i / 10 for i in range(11)]
    return {
        "schema_version": "1.0",
        "assay_version": "0.1.0",
        "created_at": "2026-11-25T10:00:00Z",
        "status": "blocked",
        "policy": {"name": "default", "version": "1", "tier": "high",
                   "path": "default", "sha256": "ab" * 32},
        "model": {"path": "models/<b>credit</b>.joblib", "sha256": "cd" * 32,
                  "kind": "sklearn.pipeline.Pipeline"},
        "data": {"evaluation": {"name": "adult-test.csv", "sha256": "ef" * 32, "rows": 16281},
                 "reference": {"name": "adult-train.csv", "sha256": "01" * 32, "rows": 32561}},
        "roles": {"target": "income", "prediction": None, "score": None,
                  "sensitive": ["sex", "race"], "features": None, "weight": None,
                  "positive_label": ">50K", "task": "classification"},
        "settings": {"min_group_size": 30,
                     "bootstrap": {"replicates": 1000, "confidence": 0.95, "seed": 0}},
        "environment": {"python": "3.11.9", "platform": "Linux-x86_64",
                        "packages": {"numpy": "2.1.0", "scikit-learn": "1.5.2"}},
        "summary": {"pass": 3, "warn": 2, "fail": 1, "skip": 1, "error": 0},
        "checks": checks,
        "metrics": {
            "overall": {"accuracy": {"value": 0.871, "ci": [0.866, 0.876]},
                        "auc": {"value": 0.912, "ci": [0.907, 0.917]}},
            "groups": groups,
            "fairness": {
                "sex": {
                    "demographic_parity_difference": {
                        "value": -0.136, "ci": [-0.147, -0.125],
                        "convention": "unprivileged - privileged",
                        "reference": "Male", "p_value": 1e-40},
                    "statistical_parity_difference": {
                        "value": -0.136, "ci": [-0.147, -0.125], "convention": "aif360",
                        "reference": "Male", "p_value": 1e-40,
                        "groups": {"Female": {"value": -0.136, "ci": [-0.147, -0.125],
                                              "p_value": 1e-40}}},
                    "equal_opportunity_difference": {
                        "value": 0.14, "ci": [0.1, 0.18], "convention": "fairlearn",
                        "reference": None, "p_value": 0.001,
                        "gaps_to_reference": {
                            "reference": "Male", "convention": "aif360",
                            "groups": {"Female": {"value": -0.1432, "ci": [-0.18, -0.1],
                                                  "p_value": 0.00123}}}},
                    "demographic_parity_ratio": {
                        "value": 0.36, "ci": [0.33, 0.39],
                        "convention": "unprivileged / privileged",
                        "reference": "Male", "p_value": 1e-40},
                },
            },
            "calibration": {"bin_edges": edges,
                            "mean_predicted": [0.03, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75,
                                               0.85, 0.95],
                            "fraction_positive": [0.02, 0.12, 0.22, 0.38, 0.49, 0.6, 0.7, 0.8,
                                                  0.9, 0.97],
                            "count": [9000, 2000, 1200, 900, 700, 600, 500, 500, 480, 401]},
            "roc": {"fpr": [0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 1.0],
                    "tpr": [0.0, 0.4, 0.6, 0.75, 0.87, 0.95, 1.0]},
        },
        "drift": {
            "features": {
                "age": {"psi": 0.004, "js": 0.01, "ks": 0.012, "chi2_p": 0.3, "drifted": False},
                "capital_gain": {"psi": 0.012, "js": 0.02, "ks": 0.01, "chi2_p": 0.2,
                                 "drifted": False},
                "hours_per_week": {"psi": 0.16, "js": 0.05, "ks": 0.04, "chi2_p": 1e-9,
                                   "drifted": True},
                EVIL: {"psi": 0.31, "js": 0.2, "ks": 0.2, "chi2_p": 0.0, "drifted": True},
            },
            "drifted_share": 0.5,
        },
    }


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.ids: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            self.attrs.append((tag, k, v))
            if k == "id":
                self.ids.append(v)


@pytest.fixture(scope="module")
def html() -> str:
    return render_report(sample_results())


def test_title_block_and_verdict(html):
    assert html.startswith("<!DOCTYPE html>")
    assert "Blocked by the policy" in html
    assert "adult-test.csv" in html and "adult-train.csv" in html
    assert "tier <b>high</b>" in html
    assert "2026-11-25T10:00:00Z" in html
    for digest in ("ab" * 32, "cd" * 32, "ef" * 32, "01" * 32):
        assert digest in html


def test_every_check_has_a_section_with_its_facts(html):
    for cid in ("integrity.missing_values", "performance.auc",
                "fairness.equalized_odds_difference", "calibration.ece", "drift.psi",
                "robustness.perturbation"):
        assert f'id="check-{cid.replace(".", "-").replace("_", "-")}"' in html
    assert "EU AI Act Art. 10(2)(f)" in html
    assert "Error rates should not depend on the protected attribute." in html
    assert "default.yaml:31" in html
    assert "[0.118, 0.166]" in html  # value with its interval


def test_blocking_findings_come_first(html):
    summary = html[html.index('id="summary"'):html.index("All checks")]
    blocking = summary.index("Equalized odds difference")
    warning = summary.index("Demographic parity ratio")
    calib = summary.index("Expected calibration error")
    assert blocking < warning and blocking < calib
    assert "Missing values" not in summary  # passed checks are not findings


def test_user_text_is_escaped(html):
    assert EVIL not in html
    assert "<b>credit</b>" not in html
    assert "&lt;b&gt;credit&lt;/b&gt;" in html
    p = _Collect()
    p.feed(html)
    assert "script" not in p.tags
    assert "b" in p.tags  # the template's own markup survives


def test_self_contained_and_offline(html):
    p = _Collect()
    p.feed(html)
    assert "link" not in p.tags and "script" not in p.tags and "img" not in p.tags
    for tag, attr, value in p.attrs:
        if attr in ("src", "href") and value:
            assert not re.match(r"(https?:)?//", value), (tag, attr, value)
    assert "@import" not in html


def test_charts_are_inline_svg_with_unique_ids(html):
    p = _Collect()
    p.feed(html)
    # forest plots for 4 checks with >= 2 values, 2 group-metric panels, fairness
    # differences and ratios, ROC, reliability, PSI.
    assert p.tags.count("svg") >= 11
    assert len(p.ids) == len(set(p.ids)), [i for i in p.ids if p.ids.count(i) > 1]


def test_charts_follow_the_data():
    svg = charts.psi_bars({"age": 0.05, "income_band": 0.4})
    assert svg is not None and "income_band" in svg and "0.25 major shift" in svg
    assert charts.psi_bars({"x": float("nan")}) is None
    auc_svg = charts.roc([0, 0.5, 1], [0, 0.8, 1], auc=0.8123)
    assert "AUC 0.812" in auc_svg
    assert charts.roc([0], [0]) is None
    rows = [charts.Row("a$b", 0.5, 0.4, 0.6, "fail"), charts.Row("c", None)]
    svg = charts.forest(rows, threshold={"max": 0.3})
    assert "a$b" in svg and "threshold max 0.3" in svg
    assert charts.forest([charts.Row("c", None)]) is None


def test_small_groups_and_skips_are_explained(html):
    notes = html[html.index('id="notes"'):html.index('id="reproduce"')]
    assert "below the minimum group size 30" in notes
    assert "needs a model file (--model)" in notes
    assert "&lt;script&gt;" in notes


def test_metrics_drift_and_reproducibility_sections(html):
    assert 'id="metrics"' in html and 'id="drift"' in html
    assert "unprivileged - privileged" in html
    drift = html[html.index('id="drift"'):html.index('id="notes"')]
    # features sorted by PSI, largest first
    assert drift.index("hours_per_week") < drift.index("capital_gain") < drift.index(">age<")
    repro = html[html.index('id="reproduce"'):]
    assert "assay certify --policy default --tier high" in repro
    assert "--train adult-train.csv --data adult-test.csv --target income" in repro
    assert "--sensitive sex,race" in repro and "--positive-label" in repro
    assert "scikit-learn" in repro and "1.5.2" in repro
    assert "1,000 replicates" in repro


def test_optional_blocks_missing():
    r = sample_results()
    for key in ("metrics", "drift", "model", "environment", "settings", "summary", "roles"):
        r.pop(key)
    r["data"]["reference"] = None
    r["checks"] = [c for c in r["checks"] if c["family"] != "drift"]
    html = render_report(r)
    assert "no model file" in html
    assert "no metrics block" in html
    assert "no reference data was given" in html
    assert 'id="metrics"' not in html and 'id="drift"' not in html
    # counts are recomputed from the checks when the summary is absent
    assert re.search(r'<b class="st-fail">1</b>', html)


def test_minimal_results_render():
    html = render_report({"status": "passed", "checks": []})
    assert "Passed" in html and "No check failed or warned." in html


def test_statuses_and_verdict_variants():
    r = sample_results()
    r["status"] = "passed_with_warnings"
    assert "Passed with warnings" in render_report(r)


@pytest.mark.parametrize("bad", [None, [], {"status": "passed"}, {"checks": "x"}])
def test_bad_results_are_a_clear_error(bad):
    with pytest.raises(InputError, match="results"):
        render_report(bad)


def test_write_report(tmp_path):
    out = write_report(sample_results(), tmp_path / "report.html")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "✗" in text


def test_rendering_is_deterministic():
    a = render_report(sample_results())
    b = render_report(copy.deepcopy(sample_results()))
    strip = re.compile(r'assay-chart-\d+|id="[^"]*"|#[0-9a-z]{10,}|url\(#[^)]*\)')
    assert strip.sub("", a) == strip.sub("", b)


def test_number_formatting():
    assert fmt_num(None) == "—"
    assert fmt_num(float("nan")) == "—"
    assert fmt_num(0.123456) == "0.1235"
    assert fmt_num(16281) == "16,281"
    assert fmt_num(1e-40) == "1.000e-40"
    assert fmt_ci([0.1, 0.2]) == "[0.1, 0.2]"
    assert fmt_ci(None) == ""
    assert fmt_threshold({"min": 0.8}) == "≥ 0.8"
    assert fmt_threshold({"min": 0.8, "max": 1.25}) == "0.8 to 1.25"
    assert fmt_threshold(None) == "—"


def test_fairness_ratio_and_difference_panels():
    from assay.report.html import _is_ratio

    assert _is_ratio("demographic_parity_ratio") and _is_ratio("disparate_impact_ratio")
    assert not _is_ratio("calibration_gap") and not _is_ratio("equalized_odds_difference")


def test_worst_measurement_is_the_nearest_to_the_threshold():
    """The value a report shows for a passing check is the one with the least margin."""
    from assay.checks.base import (
        CheckResult,
        JudgeOn,
        Measurement,
        Severity,
        Status,
        Threshold,
        judge,
    )

    def worst(threshold: Threshold, values: dict[str, float]) -> str:
        ms = [Measurement(k, v) for k, v in values.items()]
        for m in ms:
            m.status = judge(m, threshold, JudgeOn.POINT)
        r = CheckResult(id="x.y", family="x", title="t", status=Status.PASS,
                        severity=Severity.BLOCK, judge_on=JudgeOn.POINT, threshold=threshold,
                        measurements=ms)
        return r.worst.label

    assert worst(Threshold(max=0.1), {"age": 0.001, "hours": 0.09, "sex": 0.05}) == "hours"
    assert worst(Threshold(min=0.8), {"a": 0.95, "b": 0.81, "c": 0.9}) == "b"
    assert worst(Threshold(max=0.1), {"a": 0.3, "b": 0.5, "c": 0.05}) == "b"
    assert worst(Threshold(min=0.8, max=1.25), {"a": 1.2, "b": 0.9}) == "a"


def test_informational_measurements_are_not_called_small_groups():
    r = sample_results()
    r["checks"][5]["measurements"].append(
        _m("age: metric drop", 0.02, n=2000, judged=False, note="accuracy drop"))
    html = render_report(r)
    notes = html[html.index('id="notes"'):html.index('id="reproduce"')]
    assert "age: metric drop" not in notes
    assert "below the minimum group size 30" in notes  # the real small group stays
    assert "age: metric drop" in html  # still shown in its check's table


def test_regression_results():
    r = sample_results()
    r["roles"].update(task="regression", positive_label=1, target="hours")
    html = render_report(r)
    assert "--target hours" in html and "--task regression" in html
    assert "positive:" not in html


def test_long_forest_plots_keep_the_failures():
    rows = [charts.Row(f"feature_{i:02d}", i / 100, status="pass") for i in range(60)]
    rows[55].status = "fail"
    svg = charts.forest(rows, title="PSI")
    assert "feature_55" in svg and "feature_00" in svg
    assert "feature_39" not in svg
    assert "40 of 60 rows" in svg


def test_a_chart_that_cannot_be_drawn_is_a_note():
    svg = charts.roc(["<b>", 0.5, 1], [0, object(), 1])  # nonsense points are skipped
    assert svg is None
    note = charts.reliability({"mean_predicted": [0.1, 0.2], "fraction_positive": [0.1, 0.2],
                               "bin_edges": [0, 0.5, 1], "count": ["<x>", 2]})
    assert note is not None and "chart not drawn" in note and "<x>" not in note


def test_gaps_to_the_reference_group(html):
    fair = html[html.index("Fairness gaps by sex"):html.index('id="drift"')]
    assert "Gap of each group to Male" in fair
    assert "reference group <b>Male</b>" in fair
    assert "-0.1432" in fair and "[-0.18, -0.1]" in fair and "p 0.00123" in fair
    header = fair[fair.index("<th>sex</th>"):]
    header = header[:header.index("</tr>")]
    assert "statistical_parity" in header and "equal_opportunity" in header


def test_charts_are_labelled_for_screen_readers():
    svg = charts.forest([charts.Row("a", 0.1), charts.Row("b", 0.2)], title='AUC <"x">')
    assert 'role="img" aria-label="AUC &lt;&quot;x&quot;&gt;"' in svg
    assert 'aria-label="ROC curve"' in charts.roc([0, 0.5, 1], [0, 0.7, 1])
