"""Champion–challenger statistics against references: DeLong's test against a plain
O(n^2) implementation of the paper's variance (and scikit-learn's AUC), McNemar's test
against statsmodels, and the release rule's decisions on both sides of its margin."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from assay.errors import InputError
from assay.operate.compare import (
    MCNEMAR_EXACT_BELOW,
    Comparison,
    MetricComparison,
    delong,
    judge_release,
    mcnemar,
)
from assay.policy.release import PromoteIf, ReleasePlan


def delong_reference(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """DeLong, DeLong & Clarke-Pearson (1988), written out as in the paper: the kernel
    psi over every (positive, negative) pair, the structural components V10 and V01,
    and the variance of AUC(b) - AUC(a). O(m n): a reference, not an implementation."""
    y = y.astype(bool)

    def components(s: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        x, z = s[y], s[~y]
        psi = (x[:, None] > z[None, :]).astype(float) + 0.5 * (x[:, None] == z[None, :])
        return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)

    auc_a, v10a, v01a = components(a)
    auc_b, v10b, v01b = components(b)
    m, n = len(v10a), len(v01a)

    def cov(u: np.ndarray, w: np.ndarray) -> float:
        return float(((u - u.mean()) * (w - w.mean())).sum() / (len(u) - 1))

    s10 = np.array([[cov(v10a, v10a), cov(v10a, v10b)], [cov(v10b, v10a), cov(v10b, v10b)]])
    s01 = np.array([[cov(v01a, v01a), cov(v01a, v01b)], [cov(v01b, v01a), cov(v01b, v01b)]])
    s = s10 / m + s01 / n
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    return auc_a, auc_b, var


@pytest.mark.parametrize("seed,n,ties", [(0, 60, False), (1, 400, False), (2, 300, True),
                                         (3, 25, True)])
def test_delong_matches_the_papers_variance_and_sklearns_auc(seed, n, ties):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2], y[2:4] = 1, 0
    a = y * 0.8 + rng.normal(size=n)
    b = a * 0.5 + y * 0.6 + rng.normal(size=n)
    if ties:  # scores on a coarse grid: many tied pairs, within and across classes
        a, b = np.round(a, 0), np.round(b * 2, 0) / 2
    got = delong(y, a, b)
    ref_a, ref_b, ref_var = delong_reference(y, a, b)
    assert got["auc_a"] == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert got["auc_b"] == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    assert got["auc_a"] == pytest.approx(ref_a, abs=1e-12)
    assert got["se"] ** 2 == pytest.approx(ref_var, rel=1e-9, abs=1e-15)
    z = (ref_b - ref_a) / np.sqrt(ref_var)
    assert got["z"] == pytest.approx(z, rel=1e-9)
    assert got["p_value"] == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)


def test_delong_on_a_hand_computed_example():
    # 3 positives, 3 negatives; AUC(a) = 8/9, AUC(b) = 5/9 (by counting pairs)
    y = np.array([1, 1, 1, 0, 0, 0])
    a = np.array([0.9, 0.8, 0.4, 0.5, 0.2, 0.1])
    b = np.array([0.6, 0.3, 0.7, 0.5, 0.8, 0.2])
    got = delong(y, a, b)
    assert got["auc_a"] == pytest.approx(8 / 9)
    assert got["auc_b"] == pytest.approx(5 / 9)
    _, _, var = delong_reference(y, a, b)
    assert got["se"] == pytest.approx(np.sqrt(var))


def test_delong_of_identical_scores_is_no_difference_and_needs_both_classes():
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    s = np.linspace(0, 1, 8)
    d = delong(y, s, s)
    assert d["difference"] == 0 and d["p_value"] == 1.0
    with pytest.raises(InputError, match="at least 2 positive and 2 negative"):
        delong(np.array([1, 0, 0, 0]), s[:4], s[:4])


@pytest.mark.parametrize("b01,b10", [(3, 9), (0, 5), (7, 7), (30, 12), (100, 80), (12, 13)])
def test_mcnemar_matches_statsmodels(b01, b10):
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    both, neither = 40, 11
    a = np.array([1] * b01 + [0] * b10 + [1] * both + [0] * neither, bool)
    b = np.array([0] * b01 + [1] * b10 + [1] * both + [0] * neither, bool)
    got = mcnemar(a, b)
    exact = b01 + b10 < MCNEMAR_EXACT_BELOW
    ref = sm_mcnemar(np.array([[both, b01], [b10, neither]]), exact=exact, correction=True)
    assert got["method"] == ("exact binomial" if exact else
                             "chi-squared with continuity correction")
    assert got["statistic"] == pytest.approx(ref.statistic)
    assert got["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert (got["a_right_b_wrong"], got["a_wrong_b_right"]) == (b01, b10)


def _comparison(metric: str, champion: float, challenger: float, se: float, n: int = 1000,
                method: str = "paired: DeLong") -> Comparison:
    mc = MetricComparison(metric, champion, challenger, challenger - champion,
                          [challenger - champion - 1.96 * se, challenger - champion + 1.96 * se],
                          method, se=se)
    return Comparison(model="m", champion="1", challenger="2", since="2026-01-01",
                      until="2026-01-31", confidence=0.95,
                      rows={"champion": n, "challenger": n, "paired": n}, paired=True,
                      metrics=[mc], groups=[], tests={})


def _plan(test: str = "non_inferiority", margin: float = 0.01, min_rows: int = 100
          ) -> ReleasePlan:
    return ReleasePlan(min_rows=min_rows, test=test,
                       promote_if=(PromoteIf("roc_auc", margin, 0.05),))


def test_rule_refuses_a_challenger_significantly_worse_and_allows_one_not_worse():
    worse = judge_release(_comparison("roc_auc", 0.85, 0.80, se=0.01), _plan())
    assert not worse.allowed
    assert "roc_auc: champion 0.85, challenger 0.8, difference -0.05" in worse.reasons[0]
    assert "not shown non-inferior" in worse.reasons[0]
    same = judge_release(_comparison("roc_auc", 0.85, 0.851, se=0.004), _plan())
    assert same.allowed, same.reasons
    assert same.results[0].bound < 0.01
    # lenient reading: refused only when shown worse by more than the margin
    plan = _plan("significant_worsening")
    assert not judge_release(_comparison("roc_auc", 0.85, 0.80, se=0.01), plan).allowed
    noisy = judge_release(_comparison("roc_auc", 0.85, 0.83, se=0.02), plan)
    assert noisy.allowed, noisy.reasons
    assert not judge_release(_comparison("roc_auc", 0.85, 0.83, se=0.02), _plan()).allowed


def test_rule_needs_enough_rows_and_the_metric():
    few = judge_release(_comparison("roc_auc", 0.85, 0.86, se=0.001, n=50), _plan())
    assert not few.allowed and "too few labelled rows to compare: 50" in few.reasons[0]
    missing = judge_release(_comparison("accuracy", 0.85, 0.86, se=0.001), _plan())
    assert not missing.allowed and "roc_auc: cannot be compared" in missing.reasons[0]


def test_a_lower_is_better_metric_is_judged_the_other_way():
    plan = ReleasePlan(min_rows=10, promote_if=(PromoteIf("brier", 0.01, 0.05),))
    better = _comparison("brier", 0.20, 0.15, se=0.005, method="paired: x")
    assert judge_release(better, plan).allowed
    worse = _comparison("brier", 0.15, 0.20, se=0.005, method="paired: x")
    assert not judge_release(worse, plan).allowed
