"""Robustness checks with real scikit-learn models trained on Adult and German credit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

import assay.checks.robustness  # noqa: F401 - registers the checks
from _datasets import DATASETS
from assay.checks.base import REGISTRY, CheckSpec, Status, Threshold, run_check
from assay.data import ColumnRoles, ModelAdapter, open_dataset
from assay.datasets import load_adult
from assay.errors import InputError, PolicyError

GERMAN = DATASETS / "german_credit" / "german.data"
GERMAN_COLS = ["status", "duration", "credit_history", "purpose", "credit_amount", "savings",
               "present_employment", "installment_rate", "status_sex", "other_debtors",
               "present_residence_since", "property", "age", "installment_plans", "housing",
               "number_of_existing_credits", "job", "number_of_people_liable_for", "telephone",
               "foreign_worker", "credit"]
NUM = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
CAT = ["workclass", "marital_status", "occupation", "relationship", "race", "sex"]
ROLES = ColumnRoles(target="income", positive_label=">50K", sensitive=["sex", "race"],
                    features=NUM + CAT)


@dataclass
class Settings:
    @dataclass
    class Boot:
        seed: int = 7
        confidence: float = 0.95

    bootstrap: Any = field(default_factory=Boot)
    min_group_size: int = 30


@dataclass
class Ctx:
    evaluation: Any
    reference: Any | None
    model: Any | None
    roles: ColumnRoles
    settings: Any = field(default_factory=Settings)
    red_team: list[dict[str, Any]] | None = None  # the findings security.red_team reads
    _cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def progress(self, description: str, total: int | None = None) -> Any:
        return None


def run(ctx: Ctx, check_id: str, threshold: Threshold | None = None, **params: Any):
    return run_check(REGISTRY[check_id], ctx, CheckSpec(id=check_id, threshold=threshold,
                                                        params=params))


def _m(result, label):
    return next(m for m in result.measurements if m.label == label)


@pytest.fixture(scope="module")
def adult():
    return load_adult(missing_as_nan=True)


@pytest.fixture(scope="module")
def logreg(adult) -> Pipeline:
    train = adult[0]
    pipe = Pipeline([
        ("prep", ColumnTransformer([
            ("num", StandardScaler(), NUM),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CAT)])),
        ("clf", LogisticRegression(max_iter=300)),
    ])
    return pipe.fit(train[NUM + CAT], train["income"])


@pytest.fixture(scope="module")
def ctx(adult, logreg) -> Ctx:
    return Ctx(open_dataset(adult[1], ROLES), None, ModelAdapter.from_estimator(logreg), ROLES)


def test_gaussian_noise(ctx: Ctx) -> None:
    zero = run(ctx, "robustness.gaussian_noise", Threshold(max=0.05), scale=0.0)
    assert _m(zero, "noise 0 sd on 5 feature(s): changed decisions").value == 0.0
    small = run(ctx, "robustness.gaussian_noise", Threshold(max=0.05), scale=0.1)
    large = run(ctx, "robustness.gaussian_noise", Threshold(max=0.05), scale=2.0)
    s = small.measurements[0].value
    big = large.measurements[0].value
    assert 0 < s < 0.05 < big
    assert small.status is Status.PASS and large.status is Status.FAIL
    assert large.measurements[1].value > 0  # accuracy drops under heavy noise
    assert not large.measurements[1].judged
    by_drop = run(ctx, "robustness.gaussian_noise", Threshold(max=0.01), scale=2.0,
                  measure="metric_drop")
    assert by_drop.measurements[1].judged and not by_drop.measurements[0].judged


def test_counterfactual_flip_matches_a_direct_computation(ctx: Ctx, logreg) -> None:
    r = run(ctx, "robustness.counterfactual_flip", Threshold(max=0.05), sample=1500, seed=3)
    df = ctx.evaluation.sample(1500, seed=3, columns=NUM + CAT + ["income"])
    X = df[NUM + CAT].reset_index(drop=True)
    base = logreg.predict(X)
    flipped = X.copy()
    flipped["sex"] = np.where(X["sex"] == "Male", "Female", "Male")
    expected = float(np.mean(logreg.predict(flipped) != base))
    assert _m(r, "sex").value == pytest.approx(expected, abs=1e-12)
    to_female = _m(r, "sex -> Female")
    assert not to_female.judged and to_female.n == int((X["sex"] != "Female").sum())
    assert 0 <= _m(r, "race").value <= 1


def test_counterfactual_skips_when_protected_attribute_is_not_an_input(adult) -> None:
    feats = ["age", "education_num", "hours_per_week"]
    model = LogisticRegression(max_iter=200).fit(adult[0][feats], adult[0]["income"])
    roles = ColumnRoles(target="income", positive_label=">50K", sensitive=["sex"],
                        features=feats)
    c = Ctx(open_dataset(adult[1], roles), None, ModelAdapter.from_estimator(model), roles)
    r = run(c, "robustness.counterfactual_flip", Threshold(max=0.05))
    assert r.status is Status.SKIP and "not among its inputs" in r.message
    no_model = Ctx(c.evaluation, None, None, roles)
    assert run(no_model, "robustness.gaussian_noise", Threshold(max=0.05)).message == \
        "no model was given"


def test_missing_injection_failure_is_a_finding(ctx: Ctx) -> None:
    r = run(ctx, "robustness.missing_injection", Threshold(max=0.05), rate=0.2,
            features=["age", "occupation"])
    age = _m(r, "age: changed decisions")
    assert age.value == 1.0 and "the model failed" in age.note and "NaN" in age.note
    assert r.status is Status.FAIL and "the model failed" in r.message
    assert r.message.endswith("(perturbed: age)")
    occ = _m(r, "occupation: changed decisions")
    assert occ.note is None and 0 <= occ.value < 0.5


def test_missing_injection_with_a_model_that_handles_missing(adult) -> None:
    feats = ["age", "education_num", "hours_per_week", "capital_gain"]
    train = adult[0].head(6000)
    roles = ColumnRoles(target="income", positive_label=">50K", features=feats)
    with threadpool_limits(1):  # OpenMP threads only contend on a small shared machine
        model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(
            train[feats], train["income"])
        c = Ctx(open_dataset(adult[1], roles), None, ModelAdapter.from_estimator(model), roles)
        r = run(c, "robustness.missing_injection", Threshold(max=0.5), rate=0.3)
    assert all(m.note is None for m in r.measurements if m.judged)
    assert r.status is Status.PASS


def test_category_swap(ctx: Ctx) -> None:
    r = run(ctx, "robustness.category_swap", Threshold(max=0.3), rate=0.5)
    labels = [m.label for m in r.measurements if m.judged]
    assert labels == [f"{c}: changed decisions" for c in CAT]
    rel = _m(r, "relationship: changed decisions")
    assert 0 < rel.value < 1 and rel.n == pytest.approx(0.5 * 2000, rel=0.15)


def test_monotonicity(ctx: Ctx, logreg) -> None:
    coef = dict(zip(logreg[:-1].get_feature_names_out(), logreg[-1].coef_[0], strict=True))
    assert coef["num__education_num"] > 0
    ok = run(ctx, "robustness.monotonicity", Threshold(max=0.0),
             constraints={"education_num": "increasing"})
    assert ok.measurements[0].value == 0.0 and ok.status is Status.PASS
    wrong = run(ctx, "robustness.monotonicity", Threshold(max=0.0),
                constraints={"education_num": "decreasing"})
    assert wrong.measurements[0].value > 0.95 and wrong.status is Status.FAIL
    with pytest.raises(PolicyError, match="'increasing' or 'decreasing'"):
        REGISTRY["robustness.monotonicity"].fn(
            ctx, CheckSpec(id="robustness.monotonicity", params={"constraints": {"age": "up"}}))


def test_german_credit_regression_and_sampling_is_seeded() -> None:
    roles = ColumnRoles(target="duration", task="regression",
                        features=["credit_amount", "age", "installment_rate"])
    ds = open_dataset(GERMAN, roles, csv={"delimiter": " ", "header": False,
                                          "column_names": GERMAN_COLS})
    df = ds.to_pandas()
    model = LinearRegression().fit(df[roles.features], df["duration"])
    c = Ctx(ds, None, ModelAdapter.from_estimator(model), roles)
    a = run(c, "robustness.gaussian_noise", Threshold(max=0.1), scale=0.5)
    b = run(Ctx(ds, None, c.model, roles), "robustness.gaussian_noise", Threshold(max=0.1),
            scale=0.5)
    assert a.measurements[0].value == b.measurements[0].value
    assert a.measurements[0].n == 1000  # the sample holds every row of a small file
    assert "MAE increase" in a.measurements[1].note
    assert run(c, "robustness.gaussian_noise", Threshold(max=0.1), scale=0.0
               ).measurements[0].value == 0.0


def test_german_credit_classifier_flips_and_swaps() -> None:
    roles = ColumnRoles(target="credit", positive_label=1, sensitive=["status_sex", "age"],
                        features=["status", "duration", "credit_amount", "purpose",
                                  "status_sex", "age", "savings"])
    ds = open_dataset(GERMAN, roles, csv={"delimiter": " ", "header": False,
                                          "column_names": GERMAN_COLS})
    df = ds.to_pandas()
    cats = ["status", "purpose", "status_sex", "savings"]
    nums = ["duration", "credit_amount", "age"]
    model = Pipeline([
        ("prep", ColumnTransformer([("num", StandardScaler(), nums),
                                    ("cat", OneHotEncoder(handle_unknown="ignore"), cats)])),
        ("clf", LogisticRegression(max_iter=500)),
    ]).fit(df[roles.features], df["credit"])
    c = Ctx(ds, None, ModelAdapter.from_estimator(model), roles)
    r = run(c, "robustness.counterfactual_flip", Threshold(max=0.05))
    ages = [m for m in r.measurements if m.label.startswith("age -> ")]
    assert len(ages) == 5  # a numeric attribute is flipped to five quantiles
    X = df[roles.features]
    base = model.predict(X)
    expected = np.zeros(len(X), bool)
    for v in sorted(df["status_sex"].unique()):
        other = X.assign(status_sex=v)
        expected |= (model.predict(other) != base) & (X["status_sex"] != v).to_numpy()
    assert _m(r, "status_sex").value == pytest.approx(expected.mean(), abs=1e-12)
    # coef_ is for classes_[1] = 2 ("bad"); the score is the probability of 1 ("good")
    coef = dict(zip(model[:-1].get_feature_names_out(), model[-1].coef_[0], strict=True))
    assert coef["num__duration"] > 0  # a longer loan is riskier
    direction = "decreasing"
    mono = run(c, "robustness.monotonicity", Threshold(max=0.0),
               constraints={"duration": direction})
    assert mono.status is Status.PASS
    wrong = run(c, "robustness.monotonicity", Threshold(max=0.0),
                constraints={"duration": "increasing"})
    assert wrong.measurements[0].value == 1.0
    swap = run(c, "robustness.category_swap", Threshold(max=0.5))
    assert _m(swap, "status: changed decisions").value > 0


def test_bad_parameters_are_policy_errors(ctx: Ctx) -> None:
    for params, fragment in [({"sample": "many"}, "'sample': expected an integer"),
                             ({"scale": -1}, "'scale': expected a number"),
                             ({"measure": "auc"}, "'measure'"),
                             ({"features": ["salary"]}, None)]:
        spec = CheckSpec(id="robustness.gaussian_noise", params=params, source="p.yaml:3")
        with pytest.raises((PolicyError, InputError)) as err:
            REGISTRY["robustness.gaussian_noise"].fn(ctx, spec)
        assert "p.yaml:3" in str(err.value)
        if fragment:
            assert fragment in str(err.value)
