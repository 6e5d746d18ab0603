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
from assay.metrics.importance import permutation_importance, row_losses


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
    ours = permutation_importance(model, X, y, loss, 7, SklearnOrder(3, 7), n_boot=0)
    ref = sk_permutation_importance(model, X, y, scoring=scoring, n_repeats=7, random_state=3)
    np.testing.assert_allclose([ours.mean[f] for f in X], ref.importances_mean, rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose([ours.std[f] for f in X], ref.importances_std, rtol=0,
                               atol=1e-12)


def test_regression_losses_equal_scikit_learn() -> None:
    X, _ = _synthetic()
    rng = np.random.default_rng(1)
    y = 3 * X.strong - X.weak + rng.normal(size=len(X))
    model = LinearRegression().fit(X, y)
    for loss, scoring in (("squared_error", "neg_mean_squared_error"),
                          ("absolute_error", "neg_mean_absolute_error"),
                          ("mse", "neg_mean_squared_error"), ("mae", "neg_mean_absolute_error")):
        ours = permutation_importance(model, X, y, loss, 4, SklearnOrder(0, 4), n_boot=0)
        ref = sk_permutation_importance(model, X, y, scoring=scoring, n_repeats=4,
                                        random_state=0)
        np.testing.assert_allclose([ours.mean[f] for f in X], ref.importances_mean, atol=1e-9)
        assert ours.metric == {"squared_error": "mse", "absolute_error": "mae"}.get(loss, loss)


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

    imp = permutation_importance(Blind(), X, y, "accuracy", 5, 0)
    assert imp.mean["noise"] == 0 and imp.ci["noise"] == (0.0, 0.0)
    assert imp.indistinguishable_from_zero("noise") and imp.unused() == ["noise"]
    assert imp.ci["strong"][0] > 0.1 and imp.ci["weak"][0] > 0
    assert not imp.indistinguishable_from_zero("strong")
    # the same with log loss: a probability of the row's own label, no positive label needed
    imp = permutation_importance(Blind(), X, y, "log_loss", 5, 0, positive_label=None)
    assert imp.ci["noise"] == (0.0, 0.0) and imp.ci["weak"][0] > 0
    # without an interval nothing is said about zero
    bare = permutation_importance(Blind(), X, y, "accuracy", 2, 0, n_boot=0)
    assert bare.ci["noise"] is None and bare.indistinguishable_from_zero("noise") is None
    assert bare.unused() == []


def test_seeded_and_on_real_data() -> None:
    train, test = load_adult(missing_as_nan=True)
    cols = ["age", "education_num", "capital_gain", "hours_per_week"]
    model = DecisionTreeClassifier(max_depth=5, random_state=0).fit(train[cols], train["income"])
    X, y = test[cols].head(2000), test["income"].head(2000)
    a = permutation_importance(ModelAdapter.from_estimator(model), X, y, "accuracy", 3, 5)
    b = permutation_importance(model, X, y, "accuracy", 3, np.random.default_rng(5))
    assert a.to_dict() == b.to_dict()
    np.testing.assert_array_equal(a.replicates, b.replicates)
    assert a.ci["capital_gain"][0] > 0 and a.ci["education_num"][0] > 0
    ref = sk_permutation_importance(model, X, y, scoring="accuracy", n_repeats=3,
                                    random_state=2)
    ours = permutation_importance(model, X, y, "accuracy", 3, SklearnOrder(2, 3), n_boot=0)
    np.testing.assert_allclose([ours.mean[f] for f in cols], ref.importances_mean, atol=1e-12)


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


def test_multiclass_log_loss_reads_each_rows_own_label() -> None:
    rng = np.random.default_rng(4)
    n = 1200
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                      "c": rng.normal(size=n)})
    y = np.array(["low", "mid", "high"])[np.digitize(X.a + 0.5 * X.b + rng.normal(size=n),
                                                     [-0.7, 0.7])]
    model = LogisticRegression(max_iter=1000).fit(X, y)
    ours = permutation_importance(model, X, y, "log_loss", 4, SklearnOrder(1, 4), n_boot=0)
    ref = sk_permutation_importance(model, X, y, scoring="neg_log_loss", n_repeats=4,
                                    random_state=1)
    np.testing.assert_allclose([ours.mean[f] for f in X], ref.importances_mean, atol=1e-12)
    proba = model.predict_proba(X)
    own = proba[np.arange(n), np.searchsorted(model.classes_, y)]
    np.testing.assert_allclose(row_losses(model, X, y, "log_loss"), -np.log(own), atol=1e-12)
    np.testing.assert_array_equal(row_losses(model, X, y, "accuracy"),
                                  (model.predict(X) != y).astype(float))
    with pytest.raises(InputError, match="metric 'brier': expected a binary classifier"):
        permutation_importance(model, X, y, "brier", 2, 0)
    with pytest.raises(InputError, match="metric: expected one of accuracy"):
        row_losses(model, X, y, "roc_auc")


def test_bootstrap_interval_of_a_mean_loss_agrees_with_the_t_interval_over_rows() -> None:
    X, y = _synthetic(3000, seed=2)
    model = LogisticRegression().fit(X, y)
    rng = np.random.default_rng(7)
    imp = permutation_importance(model, X, y, "log_loss", 5, rng, n_boot=2000)
    # the rows' differences d_i for the same permutations (drawn after the bootstrap counts)
    rng = np.random.default_rng(7)
    rng.multinomial(len(X), np.full(len(X), 1 / len(X)), size=2000)
    base = row_losses(model, X, y, "log_loss")
    for f in X:
        d = np.mean([row_losses(model, X.assign(**{f: X[f].to_numpy()[rng.permutation(len(X))]}),
                                y, "log_loss") - base for _ in range(5)], axis=0)
        assert imp.mean[f] == pytest.approx(d.mean(), abs=1e-12)
        half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
        lo, hi = imp.ci[f]
        assert lo == pytest.approx(d.mean() - half, abs=0.15 * half + 1e-12), f
        assert hi == pytest.approx(d.mean() + half, abs=0.15 * half + 1e-12), f


def test_the_bootstrap_needs_a_random_generator() -> None:
    X, y = _synthetic(50)
    model = LogisticRegression().fit(X, y)
    with pytest.raises(InputError, match=r"rng: the bootstrap draws with rng\.multinomial"):
        permutation_importance(model, X, y, "accuracy", 2, SklearnOrder(0, 2))
    with pytest.raises(InputError, match="confidence"):
        permutation_importance(model, X, y, "accuracy", confidence=1.5)


def test_group_importances_come_from_the_overall_shuffles() -> None:
    from assay.metrics.importance import permutation_importance_by_group

    X, y = _synthetic(2000)
    model = LogisticRegression().fit(X, y)
    left = (X["weak"] < 0).to_numpy()
    groups = {"all": np.ones(len(X), bool), "left": left, "right": ~left}
    overall, by = permutation_importance_by_group(model, X, y, "accuracy", 3, 7,
                                                  groups=groups)
    # the overall result is permutation_importance's, draw for draw
    alone = permutation_importance(model, X, y, "accuracy", 3, 7)
    assert overall.mean == alone.mean and overall.ci == alone.ci
    # a group of every row gives the overall point values (its own bootstrap)
    assert by["all"].mean == pytest.approx(overall.mean, abs=1e-12)
    # a group's value is the drop in accuracy on its rows under the shared shuffles
    rng = np.random.default_rng(7)
    rng.multinomial(len(X), np.full(len(X), 1 / len(X)), size=200)  # the overall bootstrap
    base = model.predict(X) == y
    drops = []
    for _ in range(3):
        Xp = X.copy()
        Xp["strong"] = X["strong"].to_numpy()[rng.permutation(len(X))]
        drops.append(base[left].mean() - (model.predict(Xp) == y)[left].mean())
    assert by["left"].mean["strong"] == pytest.approx(np.mean(drops), abs=1e-12)
    assert by["left"].n == int(left.sum()) and by["left"].ci["strong"][0] > 0
