"""Comparisons of two models (assay.metrics.compare) against references.

DeLong's fast test against the O(m n) definition, scikit-learn's and SciPy's
Mann-Whitney AUC and a hand-worked example; McNemar against statsmodels; the paired
bootstrap over joint cells against a row-level paired bootstrap; results.json
comparisons on the same and on different data; German credit as real data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from assay.errors import InputError
from assay.metrics.compare import (
    MCNEMAR_EXACT_BELOW,
    compare_data,
    compare_paired,
    compare_results,
    delong,
    delong_direct,
    paired_bootstrap,
)


def _pair(seed: int, n: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2], y[2:4] = 1, 0
    a = y * 0.7 + rng.normal(size=n)
    b = 0.5 * a + y * 0.6 + rng.normal(size=n)
    if ties:
        a, b = np.round(a, 0), np.round(b * 2, 0) / 2
    return y, a, b


@pytest.mark.parametrize("seed,n,ties", [(0, 50, False), (1, 500, True), (2, 31, True)])
def test_fast_delong_equals_the_direct_structural_components(seed, n, ties):
    y, a, b = _pair(seed, n, ties)
    fast, slow = delong(y, a, b), delong_direct(y, a, b)
    assert fast["auc_a"] == pytest.approx(slow["auc_a"], abs=1e-12)
    assert fast["auc_b"] == pytest.approx(slow["auc_b"], abs=1e-12)
    np.testing.assert_allclose(fast["covariance"], slow["covariance"], rtol=1e-9, atol=1e-15)
    assert fast["p_value"] == pytest.approx(slow["p_value"], rel=1e-9)
    # the AUC is the Mann-Whitney U over m n (SciPy) and scikit-learn's AUC
    u = sps.mannwhitneyu(a[y == 1], a[y == 0]).statistic
    assert fast["auc_a"] == pytest.approx(u / (y.sum() * (n - y.sum())), abs=1e-12)
    assert fast["auc_b"] == pytest.approx(roc_auc_score(y, b), abs=1e-12)


def test_delong_on_a_worked_example():
    # 3 positives, 3 negatives. By counting pairs: AUC(a) = 8/9, AUC(b) = 5/9.
    # Structural components: V10(a) = (1, 1, 2/3), V01(a) = (2/3, 1, 1);
    # V10(b) = (2/3, 1/3, 2/3), V01(b) = (2/3, 0, 1). Sample (co)variances:
    # S10 = [[1/27, -1/54], [-1/54, 1/27]], S01 = [[1/27, -1/54], [-1/54, 7/27]], so
    # Var(AUC(b) - AUC(a)) = (3/27) / 3 + (9/27) / 3 = 4/27 and z = (-1/3) / sqrt(4/27).
    y = np.array([1, 1, 1, 0, 0, 0])
    a = np.array([0.9, 0.8, 0.4, 0.5, 0.2, 0.1])
    b = np.array([0.6, 0.3, 0.7, 0.5, 0.8, 0.2])
    d = delong(y, a, b)
    assert (d["auc_a"], d["auc_b"]) == (pytest.approx(8 / 9), pytest.approx(5 / 9))
    np.testing.assert_allclose(d["covariance"], [[1 / 27 / 3 + 1 / 27 / 3,
                                                  -1 / 54 / 3 - 1 / 54 / 3],
                                                 [-1 / 54 / 3 - 1 / 54 / 3,
                                                  1 / 27 / 3 + 7 / 27 / 3]], rtol=1e-12)
    assert d["se"] == pytest.approx(np.sqrt(4 / 27), rel=1e-12)
    z = (-1 / 3) / np.sqrt(4 / 27)
    assert d["z"] == pytest.approx(z, rel=1e-12)
    assert d["p_value"] == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-12)


@pytest.mark.parametrize("flip", [3, 40])
def test_paired_accuracy_is_mcnemar_as_statsmodels_computes_it(flip):
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    rng = np.random.default_rng(flip)
    n = 600
    y = rng.integers(0, 2, n)
    pa = np.where(rng.random(n) < 0.8, y, 1 - y)
    pb = pa.copy()
    idx = rng.choice(n, flip, replace=False)
    pb[idx] = 1 - pb[idx]
    r = compare_paired(y, pred_old=pa, pred_new=pb, n_boot=200)["overall"]["accuracy"]
    ra, rb = pa == y, pb == y
    table = np.array([[(ra & rb).sum(), (ra & ~rb).sum()], [(~ra & rb).sum(), (~ra & ~rb).sum()]])
    exact = flip < MCNEMAR_EXACT_BELOW
    ref = sm_mcnemar(table, exact=exact, correction=True)
    assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert r["test"]["method"] == ("exact binomial" if exact
                                   else "chi-squared with continuity correction")
    assert r["old"] == accuracy_score(y, pa) and r["new"] == accuracy_score(y, pb)


def test_the_cell_bootstrap_is_the_row_bootstrap_and_is_seeded():
    rng = np.random.default_rng(5)
    n = 3000
    y = rng.integers(0, 2, n)
    s = y + rng.normal(0, 1.2, n)
    pa = s > 0.5
    pb = (s + rng.normal(0, 0.4, n)) > 0.4
    cells = paired_bootstrap(y, pa, pb, ("f1", "tpr", "accuracy"), n_boot=4000, seed=1)
    assert cells == paired_bootstrap(y, pa, pb, ("f1", "tpr", "accuracy"), n_boot=4000,
                                     seed=1)
    assert cells["f1"]["old"] == pytest.approx(f1_score(y, pa), abs=1e-12)
    # the row bootstrap: the same resampled rows for both models
    idx = rng.integers(0, n, (1500, n))
    rows = np.array([f1_score(y[i], pb[i]) - f1_score(y[i], pa[i]) for i in idx[:400]])
    assert cells["f1"]["se"] == pytest.approx(rows.std(ddof=1), rel=0.12)
    # for accuracy it is the Wald standard error of a paired difference
    wald = compare_paired(y, pred_old=pa, pred_new=pb, n_boot=200)["overall"]["accuracy"]["se"]
    assert cells["accuracy"]["se"] == pytest.approx(wald, rel=0.06)


def test_a_model_against_itself_differs_by_nothing_and_a_better_one_wins():
    y, a, _ = _pair(3, 800)
    same = compare_paired(y, score_old=a, score_new=a, n_boot=300)
    for name, r in same["overall"].items():
        assert r["difference"] == 0, name
        assert r["better"] == "no significant difference", name
    assert same["overall"]["accuracy"]["p_value"] == 1.0
    assert same["overall"]["tpr"]["ci"] == [0.0, 0.0]
    rng = np.random.default_rng(0)
    better = y * 3 + rng.normal(size=len(y))
    r = compare_paired(y, score_old=a, score_new=better, n_boot=300, threshold=0.5)
    assert r["overall"]["roc_auc"]["better"] == "new"
    assert r["overall"]["roc_auc"]["p_value"] < 1e-6


def test_bad_input_is_named():
    y = np.array([0, 1, 0, 1])
    with pytest.raises(InputError, match="old score: 3 rows, but the labels have 4"):
        compare_paired(y, score_old=[0.1, 0.2, 0.3], score_new=[0.1, 0.2, 0.3, 0.4])
    with pytest.raises(InputError, match="new prediction: expected decisions 0/1"):
        compare_paired(y, pred_old=[0, 1, 0, 1], pred_new=[0, 2, 0, 1])
    with pytest.raises(InputError, match="the new model has neither"):
        compare_paired(y, pred_old=[0, 1, 0, 1])
    with pytest.raises(InputError, match="confidence"):
        compare_paired(y, pred_old=[0, 1, 0, 1], pred_new=[0, 1, 0, 1], confidence=1.5)


def _doc(sha: str, acc: float, ci: tuple[float, float], group_acc: float) -> dict:
    m = {"value": acc, "ci": list(ci)}
    return {"data": {"evaluation": {"sha256": sha}}, "model": {"sha256": "m"},
            "metrics": {"overall": {"accuracy": m, "fpr": {"value": 0.1, "ci": None}},
                        "groups": {"sex": {"f": {"metrics": {"accuracy": {
                            "value": group_acc, "ci": [group_acc - 0.05,
                                                       group_acc + 0.05]}}}}}},
            "checks": [{"id": "performance.accuracy", "value": acc, "ci": list(ci),
                        "status": "pass"}]}


def test_results_on_different_data_are_independent_and_refused_for_a_paired_test():
    z = sps.norm.ppf(0.975)
    old, new = _doc("a" * 64, 0.80, (0.78, 0.82), 0.7), _doc("b" * 64, 0.85, (0.82, 0.88), 0.8)
    r = compare_results(old, new)
    acc = r["overall"]["accuracy"]
    half = z * np.hypot(0.02 / z, 0.03 / z)
    assert acc["difference"] == pytest.approx(0.05)
    assert acc["ci"] == pytest.approx([0.05 - half, 0.05 + half])
    assert acc["better"] == "new" and not r["same_data"]
    assert r["groups"]["sex=f"]["accuracy"]["difference"] == pytest.approx(0.1)
    assert r["overall"]["fpr"]["ci"] is None  # no interval on one side: none on the difference
    assert r["checks"]["performance.accuracy"]["new_status"] == "pass"
    with pytest.raises(InputError, match="a paired comparison needs both results on the same "
                                         "evaluation data"):
        compare_results(old, new, paired=True)


def test_results_on_the_same_data_get_the_conservative_interval():
    old, new = _doc("a" * 64, 0.80, (0.78, 0.82), 0.7), _doc("a" * 64, 0.81, (0.79, 0.83), 0.7)
    r = compare_results(old, new, paired=True)
    assert r["same_data"]
    acc = r["overall"]["accuracy"]
    assert acc["ci"] == pytest.approx([0.01 - 0.04, 0.01 + 0.04])  # z (se_a + se_b)
    assert acc["better"] == "no significant difference"
    assert "assay compare --data" in r["notes"][0]
    with pytest.raises(InputError, match=r"not a results\.json"):
        compare_results({"x": 1}, new)


def test_german_credit_two_models_on_the_same_rows(tmp_path):
    from test_metrics_realdata import _german

    y, s_old, sens, _ = _german()
    import pandas as pd

    from _datasets import DATASETS

    df = pd.read_csv(DATASETS / "german_credit" / "german.data", sep=" ", header=None)
    X = df[[1, 4, 7, 10, 12, 15, 17]].to_numpy(float)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    s_new = LogisticRegression(max_iter=300).fit(X[:, :3], y).predict_proba(X[:, :3])[:, 1]
    path = tmp_path / "german.csv"
    pd.DataFrame({"good": y, "old": s_old, "new": s_new, "sex": sens["sex"]}).to_csv(
        path, index=False)
    r = compare_data(path, target="good", positive_label=1, old_score="old", new_score="new",
                     sensitive=["sex"], n_boot=500)
    o = r["overall"]
    assert o["roc_auc"]["old"] == pytest.approx(roc_auc_score(y, s_old), abs=1e-9)
    assert o["roc_auc"]["new"] == pytest.approx(roc_auc_score(y, s_new), abs=1e-9)
    assert o["accuracy"]["old"] == pytest.approx(accuracy_score(y, s_old >= 0.5))
    assert o["roc_auc"]["se"] == pytest.approx(delong_direct(y, s_old, s_new)["se"],
                                               rel=1e-9)
    assert set(r["groups"]) == {"female", "male"} and r["rows"] == 1000
    m = sens["sex"] == "female"
    assert r["groups"]["female"]["roc_auc"]["new"] == pytest.approx(
        roc_auc_score(y[m], s_new[m]), abs=1e-9)
    with pytest.raises(InputError, match="give --new-score, --new-prediction or --new-model"):
        compare_data(path, target="good", old_score="old")
