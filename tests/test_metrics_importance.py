"""Permutation importance with intervals, against scikit-learn's permutation_importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance as sk_permutation_importance
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from assay.data import ModelAdapter
from assay.datasets import load_adult
from assay.errors import InputError
from assay.metrics.importance_loss import permutation_importance


class SklearnOrder:
    """The permutations scikit-learn applies for ``random_state=seed``: per feature a
    ``RandomState`` seeded alike shuffles one index array again for every repeat, and each
    repeat permutes the column as the previous repeat left it."""

    def __init__(self, seed: int, n_repeats: int) -> None:
        self.seed = np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1)
        self.n_repeats, self.calls = n_repeats, 0

    def permutation(self, n: int) -> np.ndarray:
        if self.calls % self.n_repeats == 0:
            self.state, self.idx = np.random.RandomState(self.seed), np.arange(n)
            self.order = np.arange(n)
        self.calls += 1
        self.state.shuffle(self.idx)
        self.order = self.order[self.idx]
        return self.order.copy()


def _synthetic(n: int = 1500, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"strong": rng.normal(size=n), "weak": rng.normal(size=n),
                      "noise": rng.normal(size=n)})
    y = ((2 * X.strong + 0.5 * X.weak + rng.normal(size=n)) > 0).astype(int)
    return X, y


@pytest.mark.parametrize(("loss", "scoring"), [("accuracy", "accuracy"),
                                                ("log_loss", "neg_log_loss"),
                                                ("brier", "neg_brier_score")])
def test_point_values_equal_scikit_learn_for_the_same_permutations(loss, scoring) -> None:
    X, y = _synthetic()
    model = LogisticRegression().fit(X, y)
    ours = permutation_importance(model, X, y, loss, 7, SklearnOrder(3, 7))
    ref = sk_permutation_importance(model, X, y, scoring=scoring, n_repeats=7, random_state=3)
    np.testing.assert_allclose([i.mean for i in ours], ref.importances_mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose([i.std for i in ours], ref.importances_std, rtol=0, atol=1e-12)


def test_regression_losses_equal_scikit_learn() -> None:
    X, _ = _synthetic()
    rng = np.random.default_rng(1)
    y = 3 * X.strong - X.weak + rng.normal(size=len(X))
    model = LinearRegression().fit(X, y)
    for loss, scoring in (("squared_error", "neg_mean_squared_error"),
                          ("absolute_error", "neg_mean_absolute_error")):
        ours = permutation_importance(model, X, y, loss, 4, SklearnOrder(0, 4))
        ref = sk_permutation_importance(model, X, y, scoring=scoring, n_repeats=4,
                                        random_state=0)
        np.testing.assert_allclose([i.mean for i in ours], ref.importances_mean, atol=1e-9)


def test_intervals_separate_used_from_unused_features() -> None:
    X, y = _synthetic(3000)
    # a model that never reads 'noise' (fitted on the other two): its interval is [0, 0]
    blind = LogisticRegression().fit(X[["strong", "weak"]], y)

    class Blind:
        classes_ = blind.classes_

        def predict(self, df):
            return blind.predict(df[["strong", "weak"]])

        def predict_proba(self, df):
            return blind.predict_proba(df[["strong", "weak"]])

    imp = {i.feature: i for i in permutation_importance(Blind(), X, y, "accuracy", 5, 0)}
    assert imp["noise"].mean == 0 and imp["noise"].ci == (0.0, 0.0)
    assert imp["noise"].indistinguishable_from_zero
    assert imp["strong"].ci[0] > 0.1 and imp["weak"].ci[0] > 0
    assert not imp["strong"].indistinguishable_from_zero


def test_seeded_and_on_real_data() -> None:
    train, test = load_adult(missing_as_nan=True)
    cols = ["age", "education_num", "capital_gain", "hours_per_week"]
    model = DecisionTreeClassifier(max_depth=5, random_state=0).fit(train[cols], train["income"])
    X, y = test[cols].head(2000), test["income"].head(2000)
    a = permutation_importance(ModelAdapter.from_estimator(model), X, y, "accuracy", 3, 5)
    b = permutation_importance(model, X, y, "accuracy", 3, np.random.default_rng(5))
    assert a == b
    by = {i.feature: i for i in a}
    assert by["capital_gain"].ci[0] > 0 and by["education_num"].ci[0] > 0
    ref = sk_permutation_importance(model, X, y, scoring="accuracy", n_repeats=3,
                                    random_state=2)
    ours = permutation_importance(model, X, y, "accuracy", 3, SklearnOrder(2, 3))
    np.testing.assert_allclose([i.mean for i in ours], ref.importances_mean, atol=1e-12)


def test_bad_arguments_are_clear_errors() -> None:
    X, y = _synthetic(50)
    model = LogisticRegression().fit(X, y)
    with pytest.raises(InputError, match="metric: expected one of accuracy"):
        permutation_importance(model, X, y, "f1")
    with pytest.raises(InputError, match="n_repeats"):
        permutation_importance(model, X, y, n_repeats=0)
    with pytest.raises(InputError, match="as many labels as rows"):
        permutation_importance(model, X, y[:10])
    with pytest.raises(InputError, match="features: age not among the columns"):
        permutation_importance(model, X, y, features=["age"])
