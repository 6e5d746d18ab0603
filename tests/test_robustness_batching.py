"""Perturbed copies of the robustness sample are predicted together, with the same results.

A model's fixed cost per call (input validation, column transformers, one
pass per tree) outweighs its cost per row at the robustness checks' 2,000-row
samples, and most perturbations change few rows, so the checks predict only
the changed rows of all copies in one call. These tests hold that to giving
exactly what one call per copy gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import assay.checks.robustness as robustness
from assay.checks.base import Threshold
from assay.data import ModelAdapter, open_dataset
from test_checks_robustness import CAT, NUM, ROLES, Ctx, adult, logreg, run  # noqa: F401


class Counted:
    """A fitted estimator that records the number of rows of every call."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.calls: list[int] = []
        self.classes_ = estimator.classes_
        self.feature_names_in_ = estimator.feature_names_in_

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        self.calls.append(len(X))
        return self.estimator.predict(X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self.calls.append(len(X))
        return self.estimator.predict_proba(X)


class BatchMedian:
    """Not a row-wise model: a row is positive when its age is above its batch's median."""

    classes_ = np.array(["<=50K", ">50K"])
    feature_names_in_ = np.array(NUM + CAT, dtype=object)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        age = X["age"].astype(float)
        return np.where(age > age.median(), ">50K", "<=50K")


def _measurements(model: Any, adult, check: str, **params: Any) -> list[tuple]:  # noqa: F811
    ctx = Ctx(open_dataset(adult[1], ROLES), None, ModelAdapter.from_estimator(model), ROLES)
    r = run(ctx, check, Threshold(max=0.5), **params)
    return [(m.label, m.value, m.n, m.note, m.judged) for m in r.measurements]


@pytest.mark.parametrize(("check", "params"), [
    ("robustness.missing_injection", {"rate": 0.2, "features": ["workclass", "occupation",
                                                               "relationship", "sex"]}),
    ("robustness.category_swap", {"rate": 0.5}),
    ("robustness.counterfactual_flip", {}),
])
def test_stacked_predictions_give_what_one_call_per_copy_gives(adult, logreg, monkeypatch,  # noqa: F811
                                                               check, params):
    together = Counted(logreg)
    joint = _measurements(together, adult, check, **params)
    monkeypatch.setattr(robustness, "JOINT_ROWS", 0)  # one call per perturbed copy
    alone = Counted(logreg)
    separate = _measurements(alone, adult, check, **params)
    assert joint == separate
    copies = len(alone.calls) - 1  # the baseline's own prediction
    assert copies >= 4
    # per protected attribute for the flips: the changed rows of every copy in one call,
    # and the first copy alone, which checks that rows do not depend on each other
    assert len(together.calls) - 1 <= 4 < len(alone.calls)
    assert sum(together.calls) <= sum(alone.calls) + 2_000
    if check == "robustness.missing_injection":  # 20 % of the rows change in each copy
        assert sum(together.calls) < 0.6 * sum(alone.calls)


def test_a_model_that_is_not_row_wise_is_predicted_copy_by_copy(adult, monkeypatch):  # noqa: F811
    params = {"rate": 0.3, "features": ["age", "workclass", "occupation"]}
    joint = _measurements(BatchMedian(), adult, "robustness.missing_injection", **params)
    monkeypatch.setattr(robustness, "JOINT_ROWS", 0)
    separate = _measurements(BatchMedian(), adult, "robustness.missing_injection", **params)
    assert joint == separate


def test_a_failure_is_attributed_to_the_copy_that_caused_it(adult, logreg):  # noqa: F811
    # the logistic regression cannot take a missing age; it handles a missing category
    ms = _measurements(Counted(logreg), adult, "robustness.missing_injection", rate=0.2,
                       features=["occupation", "age", "workclass"])
    notes = {label: note for label, _, _, note, judged in ms if judged}
    assert "the model failed" in notes["age: changed decisions"]
    assert notes["occupation: changed decisions"] is None
    assert notes["workclass: changed decisions"] is None


def test_rows_are_checked_independent_once_per_model(adult, logreg):  # noqa: F811
    """The first joint call also predicts its first copy alone; the next joint calls of
    the same certification, by the same or another check, rely on that check."""
    model = Counted(logreg)
    ctx = Ctx(open_dataset(adult[1], ROLES), None, ModelAdapter.from_estimator(model), ROLES)
    run(ctx, "robustness.missing_injection", Threshold(max=0.5), rate=0.2,
        features=["workclass", "occupation", "relationship", "sex"])
    baseline, joint, alone = model.calls
    assert baseline == alone == 2_000 and 0 < joint < 4 * 2_000
    model.calls.clear()
    flips = run(ctx, "robustness.counterfactual_flip", Threshold(max=0.5))
    # one joint call per protected attribute (sex, race) and no copy predicted alone
    # (each flip of sex changes the rows of the other sex: 2,000 rows in all)
    assert model.calls == [2_000, 8_000]
    # the same measurements as a certification that checks every joint call
    fresh = Ctx(open_dataset(adult[1], ROLES), None, ModelAdapter.from_estimator(logreg), ROLES)
    again = run(fresh, "robustness.counterfactual_flip", Threshold(max=0.5))
    assert [(m.label, m.value, m.n) for m in flips.measurements] == \
        [(m.label, m.value, m.n) for m in again.measurements]


def test_a_failed_independence_check_is_repeated(adult):  # noqa: F811
    """A model whose rows depend on each other never passes the check: every check
    predicts its copies one by one, with the results of one call per copy."""
    ctx = Ctx(open_dataset(adult[1], ROLES), None, ModelAdapter.from_estimator(BatchMedian()),
              ROLES)
    params = {"rate": 0.3, "features": ["age", "workclass", "occupation"]}
    first = run(ctx, "robustness.missing_injection", Threshold(max=0.5), **params)
    second = run(ctx, "robustness.missing_injection", Threshold(max=0.5), seed=7, **params)
    assert not ctx._cache["robustness.row_independence"]
    alone = _measurements(BatchMedian(), adult, "robustness.missing_injection", seed=7,
                          **params)
    assert [(m.label, m.value, m.n, m.note, m.judged) for m in second.measurements] == alone
    assert first.measurements
