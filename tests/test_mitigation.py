"""Bias mitigation proposals (assay.impact.mitigation).

Group thresholds: the exact optimum of an exhaustive search over every pair of
thresholds on small synthetic data; a known answer (groups that are copies of each
other); Fairlearn's ThresholdOptimizer on Adult and German credit (its randomised
rule's expected accuracy and gap, from its per-row probabilities). Reweighing: the
Kamiran-Calders formula, and group and label exactly independent after weighting."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from assay.errors import InputError
from assay.impact.mitigation import (
    ACCURACY,
    propose_reweighing,
    propose_thresholds,
    render_html,
    reweighing,
    tradeoff_svg,
)
from assay.impact.value import ValueModel, score_stats

GAP = {"demographic_parity_difference": lambda sr, tpr, fpr: np.ptp(sr),
       "equal_opportunity_difference": lambda sr, tpr, fpr: np.ptp(tpr),
       "equalized_odds_difference": lambda sr, tpr, fpr: max(np.ptp(tpr), np.ptp(fpr))}


def _small(seed: int, groups: int = 2, n: int = 90) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray]:
    rng = np.random.default_rng(seed)
    g = rng.choice([f"g{i}" for i in range(groups)], n)
    shift = np.array([int(x[1:]) for x in g]) * 0.15
    y = rng.binomial(1, 0.35 + shift)
    s = np.round(np.clip(0.3 * y + rng.uniform(0, 0.7, n) - shift / 3, 0, 1), 1)
    return y, s, g


def _brute(y, s, g, constraint, max_gap, value=(1.0, 0.0, 1.0, 0.0)):
    tp_v, fp_v, tn_v, fn_v = value
    names = np.unique(g)
    cands = [*np.unique(s), np.inf]
    best = None
    for ts in itertools.product(cands, repeat=len(names)):
        sr, tpr, fpr, total = [], [], [], 0.0
        for name, t in zip(names, ts, strict=True):
            m = g == name
            d = s[m] >= t
            yy = y[m]
            tp, fp = (d & (yy == 1)).sum(), (d & (yy == 0)).sum()
            fn, tn = ((~d) & (yy == 1)).sum(), ((~d) & (yy == 0)).sum()
            sr.append(d.mean())
            tpr.append(tp / max(yy.sum(), 1))
            fpr.append(fp / max((yy == 0).sum(), 1))
            total += tp * tp_v + fp * fp_v + tn * tn_v + fn * fn_v
        if GAP[constraint](sr, tpr, fpr) <= max_gap + 1e-12 and (best is None
                                                                or total > best):
            best = total
    return best


@pytest.mark.parametrize("constraint", list(GAP))
@pytest.mark.parametrize("seed,groups,max_gap", [(0, 2, 0.05), (1, 3, 0.1), (2, 2, 0.0)])
def test_thresholds_reach_the_exhaustive_optimum(constraint, seed, groups, max_gap):
    y, s, g = _small(seed, groups)
    r = propose_thresholds(score_stats(y, s, g), constraint=constraint, max_gap=max_gap,
                           curve_targets=())
    best = _brute(y, s, g, constraint, max_gap)
    if best is None:
        assert not r["feasible"]
        return
    assert r["feasible"] and r["search"] == "exact over every distinct score"
    assert r["after"]["accuracy"] * len(y) == pytest.approx(best, abs=1e-9)
    assert r["after"]["gaps"][constraint] <= max_gap + 1e-12
    # the thresholds reproduce the numbers when applied row by row
    t = np.array([np.inf if r["thresholds"][x] is None else r["thresholds"][x] for x in g])
    assert ((s >= t) == y).mean() == pytest.approx(r["after"]["accuracy"], abs=1e-12)


def test_thresholds_maximise_a_value_model_too():
    y, s, g = _small(4)
    vm = ValueModel(tp=2.0, fp=-3.0, tn=0.5, fn=-1.0)
    r = propose_thresholds(score_stats(y, s, g), constraint="equal_opportunity_difference",
                           max_gap=0.1, value=vm)
    assert r["objective"] == "value"
    assert r["after"]["value"] == pytest.approx(
        _brute(y, s, g, "equal_opportunity_difference", 0.1, (2.0, -3.0, 0.5, -1.0)))


def test_groups_that_are_copies_of_each_other_cost_nothing():
    rng = np.random.default_rng(8)
    n = 500
    y = rng.integers(0, 2, n)
    s = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    yy, ss = np.r_[y, y], np.r_[s, s]
    g = np.r_[["a"] * n, ["b"] * n]
    st = score_stats(yy, ss, g)
    best_single = max(((ss >= t) == yy).mean() for t in np.unique(ss))
    for constraint in GAP:
        r = propose_thresholds(st, constraint=constraint, max_gap=0.0)
        assert r["after"]["gaps"][constraint] == 0.0
        assert r["after"]["accuracy"] == pytest.approx(best_single, abs=1e-12)
        assert r["thresholds"]["a"] == r["thresholds"]["b"]


def _threshold_optimizer(y, s, g, constraints):
    from fairlearn.postprocessing import ThresholdOptimizer
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Scores(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            self.classes_ = np.array([0, 1])
            return self

        def predict(self, X):
            return np.asarray(X)[:, 0]

    X = s.reshape(-1, 1)
    to = ThresholdOptimizer(estimator=Scores().fit(X, y), constraints=constraints,
                            objective="accuracy_score", prefit=True, predict_method="predict",
                            grid_size=1000)
    to.fit(X, y, sensitive_features=g)
    # its rule is randomised: the expected numbers from each row's probability of a yes
    p = to._pmf_predict(X, sensitive_features=g)[:, 1]
    rate = {k: [p[g == k].mean(), p[(g == k) & (y == 1)].mean(), p[(g == k) & (y == 0)].mean()]
            for k in np.unique(g)}
    sr, tpr, fpr = (np.array([v[i] for v in rate.values()]) for i in range(3))
    return float(np.mean(p * y + (1 - p) * (1 - y))), sr, tpr, fpr


@pytest.mark.parametrize("dataset", ["adult", "german"])
@pytest.mark.parametrize("constraint,fairlearn_name", [
    ("demographic_parity_difference", "demographic_parity"),
    ("equal_opportunity_difference", "true_positive_rate_parity"),
    ("equalized_odds_difference", "equalized_odds")])
def test_thresholds_match_fairlearns_threshold_optimizer(dataset, constraint, fairlearn_name):
    """Fairlearn mixes two thresholds per group at random to reach a gap of ~0; one
    deterministic threshold per group cannot always, so the target is Fairlearn's expected
    gap + 0.005 and the accuracy must be at least Fairlearn's expected accuracy - 0.005."""
    from test_metrics_realdata import _adult, _german

    y, s, sens, _ = {"adult": _adult, "german": _german}[dataset]()
    g = np.asarray(sens["sex"]).astype(str)
    acc, sr, tpr, fpr = _threshold_optimizer(y, s, g, fairlearn_name)
    gap = GAP[constraint](sr, tpr, fpr)
    r = propose_thresholds(score_stats(y, s, g), constraint=constraint, max_gap=gap + 0.005)
    assert r["feasible"]
    assert r["after"]["gaps"][constraint] <= gap + 0.005 + 1e-12
    assert r["after"]["accuracy"] >= acc - 0.005
    # the reported numbers are the thresholds' numbers, row by row
    t = np.array([np.inf if r["thresholds"][x] is None else r["thresholds"][x] for x in g])
    d = s >= t
    assert (d == y).mean() == pytest.approx(r["after"]["accuracy"], abs=1e-12)
    for k, row in r["after"]["groups"].items():
        m = g == k
        assert row["selection_rate"] == pytest.approx(d[m].mean(), abs=1e-12)
        assert row["tpr"] == pytest.approx(d[m & (y == 1)].mean(), abs=1e-12)


def test_proposal_has_before_after_cost_curve_chart_and_report():
    from test_metrics_realdata import _german

    y, s, sens, _ = _german()
    r = propose_thresholds(score_stats(y, s, sens["sex"], grouping="sex"), max_gap=0.01)
    b, a = r["before"], r["after"]
    assert set(b["groups"]) == set(a["groups"]) == {"female", "male"}
    assert r["cost"]["accuracy"] == pytest.approx(b["accuracy"] - a["accuracy"])
    assert r["cost"]["gap_after"] <= 0.01 < r["cost"]["gap_before"]
    assert [p["target"] for p in r["curve"]] == [0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2]
    accs = [p["accuracy"] for p in r["curve"] if p["feasible"]]
    assert accs == sorted(accs)  # a looser target never costs more
    svg = tradeoff_svg(r)
    assert svg.startswith("<svg") and "proposal" in svg and "current rule" in svg
    page = render_html(r)
    assert "no model, threshold or policy was changed" in page and "<svg" in page
    assert "female" in page


def test_bad_targets_and_groups_are_named():
    y, s, g = _small(0)
    st = score_stats(y, s, g)
    with pytest.raises(InputError, match="unknown fairness target 'parity'"):
        propose_thresholds(st, constraint="parity")
    with pytest.raises(InputError, match=r"between 0 and 1, got 1\.5"):
        propose_thresholds(st, max_gap=1.5)
    with pytest.raises(InputError, match="at least two groups"):
        propose_thresholds(score_stats(y, s))
    y2 = np.where(g == "g0", 0, y)
    with pytest.raises(InputError, match="group 'g0' has no rows of the positive label"):
        propose_thresholds(score_stats(y2, s, g), constraint="equal_opportunity_difference")


def test_reweighing_makes_group_and_label_independent_on_adult():
    from assay.datasets import load_adult

    _, test = load_adult()
    y = (test["income"] == ">50K").to_numpy().astype(int)
    g = (test["sex"] + " x " + test["race"]).to_numpy()
    w, table = reweighing(y, g)
    n = len(y)
    for name in np.unique(g):
        for lab in (0, 1):
            m = (g == name) & (y == lab)
            if not m.any():
                continue
            expected = (g == name).mean() * (y == lab).mean() / m.mean()  # P(g)P(y)/P(g,y)
            assert np.allclose(w[m], expected, rtol=1e-12)
            # weighted P(g, y) = P(g) P(y), exactly
            assert w[m].sum() / n == pytest.approx((g == name).mean() * (y == lab).mean(),
                                                   rel=1e-12)
    assert w.sum() == pytest.approx(n, rel=1e-12)
    _, doc = propose_reweighing(y, g)
    for row in doc["groups"].values():
        assert row["label_rate_after"] == pytest.approx(y.mean(), rel=1e-12)
    assert len(table) == 2 * len(np.unique(g))
    with pytest.raises(InputError, match="labels: expected 0/1"):
        reweighing(np.array([0, 2]), np.array(["a", "b"]))


def test_accuracy_model_counts_right_decisions():
    assert ACCURACY.as_dict() == {"tp": 1.0, "fp": 0.0, "tn": 1.0, "fn": 0.0}


def test_the_tradeoff_chart_is_well_formed_and_escapes_its_text():
    import xml.etree.ElementTree as ET

    from assay.report.charts import tradeoff

    svg = tradeoff([(0.0, 0.7), (0.05, 0.75), (0.1, 0.76)], before=(0.2, 0.77),
                   proposal=(0.05, 0.75), title="a <b> & c", xlabel="gap", ylabel="accuracy")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "a &lt;b&gt; &amp; c" in svg and "<b>" not in svg
    assert svg.count("<circle") == 5  # three points, the current rule and the proposal
    assert tradeoff([], title="t", xlabel="x", ylabel="y") is None
