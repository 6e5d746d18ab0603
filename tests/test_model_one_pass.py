"""Decisions and scores from one pass of the model, the same as ``predict`` and
``predict_proba`` called apart.

A certification with a model needs both on every evaluation row. For the
classifiers whose ``predict`` scikit-learn defines as the class of highest
probability, ``ModelAdapter.predict_and_proba`` runs the model once (a
pipeline's transformers once, the classifier's ``predict_proba`` once) and
takes the decisions from the probabilities. These tests hold it to giving
exactly the arrays of the two separate calls, on real data, for every such
classifier, and to calling ``predict`` whenever it cannot be sure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from assay.data import MODEL_PREDICTION, MODEL_SCORE, ColumnRoles, ModelAdapter, open_dataset
from assay.data.model import DECIDES_BY_PROBA
from assay.datasets import load_adult
from assay.demo import build_model
from assay.errors import ModelLoadError

NUM = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
CAT = ["workclass", "marital_status", "occupation", "relationship", "race", "sex"]
CLASSIFIERS = {
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(max_iter=40, random_state=0),
    "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=20, random_state=0),
    "random_forest": lambda: RandomForestClassifier(n_estimators=15, max_depth=8,
                                                    random_state=0),
    "extra_trees": lambda: ExtraTreesClassifier(n_estimators=15, max_depth=8, random_state=0),
    "decision_tree": lambda: DecisionTreeClassifier(max_depth=6, random_state=0),
    "logistic_regression": lambda: LogisticRegression(max_iter=300),
}


@pytest.fixture(scope="module")
def adult() -> tuple[pd.DataFrame, pd.DataFrame]:
    return load_adult(missing_as_nan=True)


def _pipeline(clf: Any) -> Pipeline:
    return Pipeline([
        ("prep", ColumnTransformer([
            ("num", StandardScaler(), NUM),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CAT)])),
        ("clf", clf),
    ])


def _train(adult, clf: Any, target: Any = None) -> Pipeline:
    train = adult[0].dropna().head(6_000)
    y = train["income"] if target is None else target(train)
    return _pipeline(clf).fit(train[NUM + CAT], y)


def _same(adapter: ModelAdapter, X: pd.DataFrame, positive_label: Any) -> None:
    pred, score = adapter.predict_and_proba(X, positive_label=positive_label, rows=(0, len(X)))
    apart = adapter.predict(X), adapter.predict_proba(X, positive_label=positive_label)
    assert pred.dtype == apart[0].dtype and score.dtype == apart[1].dtype
    assert np.array_equal(pred, apart[0]) and np.array_equal(score, apart[1])


def test_the_list_names_real_classes() -> None:
    found = {f"{type(make()).__module__}.{type(make()).__qualname__}"
             for make in CLASSIFIERS.values()}
    assert found == DECIDES_BY_PROBA


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_binary_decisions_equal_predict(adult, name: str) -> None:
    model = _train(adult, CLASSIFIERS[name]())
    test = adult[1].dropna().head(4_000)[NUM + CAT]
    _same(ModelAdapter.from_estimator(model), test, ">50K")
    _same(ModelAdapter.from_estimator(model[-1]), model[:-1].transform(test), ">50K")


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_multiclass_decisions_equal_predict(adult, name: str) -> None:
    model = _train(adult, CLASSIFIERS[name](), target=lambda d: d["race"])
    test = adult[1].dropna().head(4_000)[NUM + CAT]
    _same(ModelAdapter.from_estimator(model), test, "White")


def test_the_certification_model_on_the_adult_test_data(adult) -> None:
    """The demo's (and the benchmark's) gradient-boosting pipeline, every test row."""
    model = build_model(adult[0], max_iter=60)
    test = adult[1][list(model.feature_names_in_)]
    _same(ModelAdapter.from_estimator(model), test, ">50K")


class _Watched:
    """Counts the calls of a fitted estimator's predict (an attribute of the instance,
    so the estimator keeps its class)."""

    def __init__(self, estimator: Any) -> None:
        self.calls = 0
        original = estimator.predict

        def predict(X: Any) -> Any:
            self.calls += 1
            return original(X)

        estimator.predict = predict


def test_one_pass_does_not_call_predict(adult) -> None:
    model = _train(adult, HistGradientBoostingClassifier(max_iter=30, random_state=0))
    watched = _Watched(model[-1])
    test = adult[1].head(3_000)[NUM + CAT]
    pred, _ = ModelAdapter.from_estimator(model).predict_and_proba(test, positive_label=">50K")
    assert watched.calls == 0
    del model[-1].predict
    assert np.array_equal(pred, model.predict(test))


def test_a_tie_is_decided_by_predict(adult) -> None:
    """A logistic regression with no coefficients gives every row 0.5 and 0.5: the
    decision is predict's (the negative class, as its ``decision > 0`` says)."""
    model = _train(adult, LogisticRegression(max_iter=300))
    model[-1].coef_ = np.zeros_like(model[-1].coef_)
    model[-1].intercept_ = np.zeros_like(model[-1].intercept_)
    watched = _Watched(model[-1])
    test = adult[1].head(500)[NUM + CAT]
    pred, score = ModelAdapter.from_estimator(model).predict_and_proba(test,
                                                                      positive_label=">50K")
    assert watched.calls == 1
    assert set(score) == {0.5} and set(pred) == {"<=50K"}


class _Inverted(LogisticRegression):
    """A subclass whose predict is not the class of highest probability."""

    def predict(self, X: Any) -> Any:
        return self.classes_[(self.decision_function(X) <= 0).astype(int)]


@pytest.mark.parametrize("clf", [_Inverted(max_iter=300), GaussianNB()],
                         ids=["subclass", "not_listed"])
def test_other_models_are_called_twice(adult, clf: Any) -> None:
    train = adult[0].dropna().head(1_500)
    model = _pipeline(clf).fit(train[NUM + CAT], train["income"])
    test = adult[1].dropna().head(1_000)[NUM + CAT]
    watched = _Watched(model[-1])
    _same(ModelAdapter.from_estimator(model), test, ">50K")
    assert watched.calls == 2  # predict_and_proba's own call, then the comparison's


def test_a_failure_is_reported_as_the_separate_calls_report_it(adult) -> None:
    """The logistic regression cannot take a missing age: the error names predict(), the
    first of the two calls, and the rows, as before."""
    train = adult[0].dropna().head(2_000)
    model = _pipeline(LogisticRegression(max_iter=300)).fit(train[NUM + CAT], train["income"])
    test = adult[1].head(200)[NUM + CAT].copy()
    test.loc[5, "age"] = np.nan
    adapter = ModelAdapter.from_estimator(model)
    with pytest.raises(ModelLoadError) as one:
        adapter.predict_and_proba(test, positive_label=">50K", rows=(100, 300))
    with pytest.raises(ModelLoadError) as apart:
        adapter.predict(test, rows=(100, 300))
    assert str(one.value) == str(apart.value)
    assert "predict() failed on rows 100..299" in str(one.value)


def test_streamed_model_outputs_are_unchanged(adult, tmp_path) -> None:
    """``Dataset.with_model`` (what the metric checks read) adds the same columns as
    calling predict and predict_proba on each batch."""
    model = build_model(adult[0], max_iter=40)
    path = tmp_path / "test.parquet"
    adult[1].to_parquet(path, index=False)
    roles = ColumnRoles(target="income", positive_label=">50K", sensitive=["sex", "race"])
    ds = open_dataset(path, roles)
    adapter = ModelAdapter.from_estimator(model)
    got = [b.to_pandas() for b in ds.with_model(adapter, roles, batch_size=5_000)]
    frame = pd.concat(got, ignore_index=True)
    X = adult[1][list(model.feature_names_in_)]
    assert np.array_equal(frame[MODEL_PREDICTION].to_numpy(), model.predict(X))
    assert np.array_equal(frame[MODEL_SCORE].to_numpy(), model.predict_proba(X)[:, 1])


def test_a_multi_output_classifier_is_called_twice(adult) -> None:
    """Two targets with different class counts: ``classes_`` is a list of arrays; the
    adapter does not decide from the probabilities, it calls the model twice, which
    reports what it reported before (one score per row cannot come from this model)."""
    train = adult[0].dropna().head(1_000)
    X = train[NUM]
    y = np.column_stack([train["income"], train["race"]])
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    adapter = ModelAdapter.from_estimator(model)
    assert adapter._one_pass(X) is None
    watched = _Watched(model)
    with pytest.raises(ModelLoadError) as one:
        adapter.predict_and_proba(X.head(50))
    with pytest.raises(ModelLoadError) as apart:
        adapter.predict_proba(X.head(50))
    assert watched.calls == 1 and str(one.value) == str(apart.value)
