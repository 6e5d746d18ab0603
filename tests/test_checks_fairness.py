"""fairness.* checks on the UCI Adult test split, cross-checked against Fairlearn."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from fairlearn import metrics as flm
from sklearn.linear_model import LogisticRegression

from assay.checks.base import REGISTRY as CHECKS
from assay.checks.base import CheckSpec, JudgeOn, Status, Threshold, run_check
from assay.checks.fairness import disparate_impact
from assay.data import ColumnRoles, open_dataset
from assay.datasets import load_adult
from assay.errors import PolicyError
from assay.policy.schema import Settings

NUM = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]


@dataclass
class Ctx:
    evaluation: Any
    roles: Any
    settings: Any = field(default_factory=lambda: Settings(
        min_group_size=30, bootstrap={"replicates": 200, "seed": 1}))
    model: Any = None
    reference: Any = None
    _cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key, fn):
        if key not in self._cache:
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
    r = ColumnRoles(target="income", prediction="pred", score="score", positive_label=">50K",
                    sensitive=["sex", "race"], weight="fnlwgt")
    return test, Ctx(evaluation=open_dataset(test, r), roles=r)


def _run(ctx, check_id, threshold=None, judge="point", **params):
    spec = CheckSpec(id=check_id, threshold=Threshold(**threshold) if threshold else None,
                     judge_on=JudgeOn(judge), params=params)
    return run_check(CHECKS[check_id], ctx, spec)


def test_fairlearn_convention_one_measurement_per_feature(adult):
    test, ctx = adult
    res = _run(ctx, "fairness.equalized_odds_difference", {"max": 0.1})
    assert [m.label for m in res.measurements] == ["sex", "race"]
    y = test["income"] == ">50K"
    yp = test["pred"] == ">50K"
    w = test["fnlwgt"]
    sex = res.measurements[0]
    assert sex.value == pytest.approx(flm.equalized_odds_difference(
        y, yp, sensitive_features=test["sex"], sample_weight=w), abs=1e-9)
    assert sex.ci[0] <= sex.ci[1]
    assert "fairlearn convention" in sex.note
    race = res.measurements[1]  # every Adult race group has >= 30 rows
    assert race.value == pytest.approx(flm.equalized_odds_difference(
        y, yp, sensitive_features=test["race"], sample_weight=w), abs=1e-9)
    json.dumps(res.to_dict(), allow_nan=False)


def test_aif360_convention_one_measurement_per_group(adult):
    test, ctx = adult
    res = _run(ctx, "fairness.disparate_impact_ratio", {"min": 0.8}, "interval",
               by="race", reference="White")
    labels = {m.label for m in res.measurements}
    assert labels == {f"race={g} vs White" for g in set(test["race"]) - {"White"}}
    w = test["fnlwgt"]
    yp = test["pred"] == ">50K"
    white = test["race"] == "White"
    black = test["race"] == "Black"
    sr_w = (w[white] * yp[white]).sum() / w[white].sum()
    sr_b = (w[black] * yp[black]).sum() / w[black].sum()
    m = next(m for m in res.measurements if m.label == "race=Black vs White")
    assert m.value == pytest.approx(sr_b / sr_w, rel=1e-12)
    assert m.ci[0] <= m.value <= m.ci[1]
    assert m.status is Status.FAIL  # the model selects Black applicants far less often
    assert res.status is Status.FAIL
    assert "p = " in m.note


def test_intersection_small_groups_listed(adult):
    test, ctx = adult
    strict = Ctx(evaluation=ctx.evaluation, roles=ctx.roles,
                 settings=Settings(min_group_size=150, bootstrap={"replicates": 0}))
    res = _run(strict, "fairness.demographic_parity_difference", {"max": 0.2},
               by=[["sex", "race"]])
    (m,) = res.measurements
    assert m.label == "sex x race"
    groups = res.details["groupings"]["sex x race"]["group_sizes"]
    small = sorted(g for g, v in groups.items() if not v["judged"])
    assert "Female x Other" in small and "not judged" in m.note and small[0] in m.note
    judged = [g for g in groups if g not in small]
    yp = test["pred"] == ">50K"
    w = test["fnlwgt"]
    keys = test["sex"] + " x " + test["race"]
    rates = [(w[keys == g] * yp[keys == g]).sum() / w[keys == g].sum() for g in judged]
    assert m.value == pytest.approx(max(rates) - min(rates), abs=1e-12)


def test_score_based_and_alias_checks(adult):
    assert CHECKS["fairness.disparate_impact"].fn is disparate_impact
    _, ctx = adult
    cal = _run(ctx, "fairness.calibration_gap", {"max": 0.05}, by="sex")
    assert cal.measurements[0].value >= 0
    alias = _run(ctx, "fairness.disparate_impact", {"min": 0.8}, by="sex", reference="Male")
    generic = _run(ctx, "fairness.metric", {"min": 0.8}, metric="disparate_impact_ratio",
                   by="sex", reference={"sex": "Male"})
    assert alias.measurements[0].value == generic.measurements[0].value
    assert alias.measurements[0].label == "sex=Female vs Male"


def test_policy_errors_and_skips(adult):
    test, ctx = adult
    with pytest.raises(PolicyError, match="convention"):
        _run(ctx, "fairness.demographic_parity_ratio", {"min": 0.8}, convention="eeoc")
    with pytest.raises(PolicyError, match=r"params\.metric"):
        _run(ctx, "fairness.metric", {"min": 0.8}, metric="parity")
    r = ColumnRoles(target="income", prediction="pred", positive_label=">50K")
    no_sens = Ctx(evaluation=open_dataset(test, r), roles=r)
    assert _run(no_sens, "fairness.demographic_parity_ratio", {"min": 0.8}).status \
        is Status.SKIP
    r2 = ColumnRoles(target="income", prediction="pred", positive_label=">50K",
                     sensitive=["sex"])
    no_score = Ctx(evaluation=open_dataset(test, r2), roles=r2)
    assert _run(no_score, "fairness.ece_difference", {"max": 0.1}).status is Status.SKIP
