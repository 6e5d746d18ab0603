"""performance.* checks on the UCI Adult test split, through the real data layer.

The context is a small test double for the certification orchestration
(``cached``, ``evaluation``, ``roles``, ``settings``, ``model``); the data set,
column roles, policy settings, model adapter and metrics are the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, mean_absolute_error, roc_auc_score

from assay.checks.base import REGISTRY as CHECKS
from assay.checks.base import CheckSpec, JudgeOn, Status, Threshold, run_check
from assay.checks.performance import clf_stats, parse_by
from assay.data import ColumnRoles, ModelAdapter, open_dataset
from assay.datasets import load_adult
from assay.errors import PolicyError
from assay.policy.schema import Settings

NUM = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]


@dataclass
class Ctx:
    evaluation: Any
    roles: Any
    settings: Any = field(default_factory=lambda: Settings(
        min_group_size=30, bootstrap={"replicates": 200, "confidence": 0.9, "seed": 3}))
    model: Any = None
    reference: Any = None
    calls: dict[str, int] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key, fn):
        if key not in self._cache:
            self.calls[key] = self.calls.get(key, 0) + 1
            self._cache[key] = fn()
        return self._cache[key]

    def progress(self, description, total=None):
        return None


@pytest.fixture(scope="module")
def adult():
    train, test = load_adult()
    model = LogisticRegression(max_iter=500).fit(train[NUM], train["income"])
    test = test.copy()
    test["score"] = model.predict_proba(test[NUM])[:, 1]
    test["pred"] = model.predict(test[NUM])
    return model, test


def _ctx(test, **roles):
    r = ColumnRoles(target="income", positive_label=">50K", sensitive=["sex", "race"], **roles)
    return Ctx(evaluation=open_dataset(test, r), roles=r)


def _run(ctx, check_id, threshold=None, judge="point", **params):
    spec = CheckSpec(id=check_id, threshold=Threshold(**threshold) if threshold else None,
                     judge_on=JudgeOn(judge), params=params)
    return run_check(CHECKS[check_id], ctx, spec)


def test_roc_auc_overall_and_by_group_with_intervals(adult):
    _, test = adult
    ctx = _ctx(test, prediction="pred", score="score")
    res = _run(ctx, "performance.roc_auc", {"min": 0.75}, "interval", by=["sex"])
    y = (test["income"] == ">50K").to_numpy()
    overall = res.measurements[0]
    assert overall.label == "overall" and overall.n == len(test)
    stats = clf_stats(ctx)
    assert abs(overall.value - roc_auc_score(y, test["score"])) <= stats.auc_error_bound()
    lo, hi = overall.ci
    assert lo < overall.value < hi
    labels = [m.label for m in res.measurements]
    assert labels == ["overall", "sex=Female", "sex=Male"]
    female = test["sex"] == "Female"
    assert abs(res.measurements[1].value - roc_auc_score(y[female], test["score"][female])) < 2e-3
    assert res.status in (Status.PASS, Status.WARN, Status.FAIL)
    assert res.details["interval"].startswith("bootstrap percentile, 200 replicates")


def test_statistic_is_computed_once_and_shared(adult):
    _, test = adult
    ctx = _ctx(test, prediction="pred", score="score")
    acc = _run(ctx, "performance.accuracy", {"min": 0.5})
    _run(ctx, "performance.ece", {"max": 0.1}, by="race")
    _run(ctx, "performance.metric", {"min": 0.5}, metric="balanced_accuracy")
    assert ctx.calls == {"metrics.classification_stats": 1, "metrics.bootstrap": 1}
    y = test["income"] == ">50K"
    assert acc.measurements[0].value == pytest.approx(
        accuracy_score(y, test["pred"] == ">50K"), abs=1e-12)
    assert acc.status is Status.PASS


def test_small_groups_reported_not_judged(adult):
    _, test = adult
    ctx = _ctx(test, prediction="pred")
    ctx.settings = Settings(min_group_size=200, bootstrap={"replicates": 0})
    res = _run(ctx, "performance.recall", {"min": 0.99}, by=[["sex", "race"]])
    small = [m for m in res.measurements if not m.judged]
    assert small and all(m.n < 200 and m.status is None for m in small)
    assert all("not judged" in m.note for m in small)
    assert all(m.ci is None for m in res.measurements)  # 0 replicates: no intervals
    assert res.status is Status.FAIL  # the judged groups fail a recall of 0.99


def test_model_outputs_are_added_when_no_prediction_column(adult):
    model, test = adult
    data = test.drop(columns=["score", "pred"])
    r = ColumnRoles(target="income", positive_label=">50K", sensitive=["sex"])
    ctx = Ctx(evaluation=open_dataset(data, r), roles=r, model=ModelAdapter(model))
    res = _run(ctx, "performance.brier", {"max": 0.3})
    p = model.predict_proba(test[NUM])[:, 1]
    y = (test["income"] == ">50K").to_numpy()
    assert res.measurements[0].value == pytest.approx(np.mean((p - y) ** 2), rel=1e-9)


def test_skips_and_policy_errors(adult):
    _, test = adult
    ctx = _ctx(test, prediction="pred")
    assert _run(ctx, "performance.roc_auc", {"min": 0.7}).status is Status.SKIP
    assert _run(ctx, "performance.mae", {"max": 1}).status is Status.SKIP
    with pytest.raises(PolicyError, match="'age' is not a sensitive feature"):
        _run(ctx, "performance.accuracy", {"min": 0.7}, by="age")
    with pytest.raises(PolicyError, match=r"params\.metric"):
        _run(ctx, "performance.metric", {"min": 0.7}, metric="acuracy")


def test_parse_by_forms():
    spec = CheckSpec(id="performance.accuracy", params={"by": "sex x race"})
    assert parse_by(spec, ["sex", "race"]) == [["sex", "race"]]
    spec.params["by"] = ["sex", "race"]
    assert parse_by(spec, ["sex", "race"]) == [["sex", "race"]]
    spec.params["by"] = [["sex"], ["race"]]
    assert parse_by(spec, ["sex", "race"]) == [["sex"], ["race"]]
    spec.params["by"] = None
    assert parse_by(spec, ["sex", "race"], default_each=True) == [["sex"], ["race"]]


def test_regression_metrics():
    rng = np.random.default_rng(0)
    n = 3000
    import pandas as pd

    df = pd.DataFrame({"y": rng.normal(50, 10, n), "g": rng.choice(["a", "b"], n)})
    df["p"] = df["y"] + rng.normal(1, 3, n)
    r = ColumnRoles(target="y", prediction="p", sensitive=["g"], task="regression")
    ctx = Ctx(evaluation=open_dataset(df, r), roles=r)
    res = _run(ctx, "performance.mae", {"max": 5}, "interval", by="g")
    assert res.measurements[0].value == pytest.approx(mean_absolute_error(df["y"], df["p"]),
                                                      rel=1e-9)
    assert res.measurements[0].ci[0] < res.measurements[0].value < res.measurements[0].ci[1]
    assert res.status is Status.PASS
    assert _run(ctx, "performance.accuracy", {"min": 0.5}).status is Status.SKIP


POLICY = """\
name: metrics-e2e
version: "1"
settings:
  min_group_size: 30
  bootstrap: {replicates: 100, confidence: 0.95, seed: 0}
tiers:
  high:
    checks:
      - id: performance.roc_auc
        threshold: {min: 0.7}
        judge: interval
        params: {by: sex}
      - id: performance.metric
        params: {metric: accuracy}
        threshold: {min: 0.7}
      - id: fairness.disparate_impact_ratio
        threshold: {min: 0.8}
        params: {by: race, reference: White}
"""


def test_certify_end_to_end_with_a_model(adult, tmp_path):
    from assay.certification import certify

    model, test = adult
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    cert = certify(data=test.drop(columns=["score", "pred"]), policy=str(policy), tier="high",
                   target="income", model=model, sensitive=["sex", "race"],
                   positive_label=">50K", out_dir=tmp_path / "out")
    d = cert.to_dict()
    report = (tmp_path / "out" / "report.html").read_text()
    assert "sex x race" in report and "disparate_impact_ratio" in report
    by_id = {c["id"]: c for c in d["checks"]}
    assert by_id["performance.roc_auc"]["status"] == "pass"
    assert by_id["fairness.disparate_impact_ratio"]["status"] == "fail"
    assert d["status"] == "blocked"
    m = d["metrics"]
    assert m["task"] == "classification" and m["n"] == len(test)
    assert m["overall"]["roc_auc"]["value"] == pytest.approx(
        by_id["performance.roc_auc"]["measurements"][0]["value"])
    assert m["fairness"]["race"]["disparate_impact_ratio"]["reference"] == "White"
