"""Fairness metrics: both conventions, cross-checked against Fairlearn and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fairlearn import metrics as flm
from scipy import stats as sps

from assay.errors import InputError
from assay.metrics import ClassificationStats, bootstrap, fairness_report, two_proportion_p

Y_TRUE = [1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1]
Y_PRED = [1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1]
GROUPS = ["a"] * 6 + ["b"] * 5 + ["c"] * 5


def test_design_test_vector_matches_fairlearn():
    stats = ClassificationStats.from_arrays(Y_TRUE, Y_PRED, sensitive={"g": GROUPS})
    r = fairness_report(stats, "g")
    assert r["demographic_parity_difference"]["value"] == pytest.approx(0.10, abs=1e-9)
    assert r["demographic_parity_ratio"]["value"] == pytest.approx(5 / 6, abs=1e-9)
    assert r["equalized_odds_difference"]["value"] == pytest.approx(1 / 3, abs=1e-9)
    assert r["equalized_odds_ratio"]["value"] == pytest.approx(2 / 3, abs=1e-9)
    kw = dict(sensitive_features=GROUPS)
    assert r["demographic_parity_difference"]["value"] == pytest.approx(
        flm.demographic_parity_difference(Y_TRUE, Y_PRED, **kw), abs=1e-12)
    assert r["equalized_odds_ratio"]["value"] == pytest.approx(
        flm.equalized_odds_ratio(Y_TRUE, Y_PRED, **kw), abs=1e-12)
    for name in ("demographic_parity_difference", "equalized_odds_difference"):
        assert r[name]["convention"] == "fairlearn" and r[name]["reference"] is None


def test_aif360_convention_is_signed_against_reference():
    stats = ClassificationStats.from_arrays(Y_TRUE, Y_PRED, sensitive={"g": GROUPS})
    r = fairness_report(stats, "g", reference="a")
    sr = {"a": 3 / 6, "b": 3 / 5, "c": 3 / 5}
    spd = r["statistical_parity_difference"]
    assert spd["convention"] == "aif360" and spd["reference"] == "a"
    assert spd["groups"]["b"]["value"] == pytest.approx(sr["b"] - sr["a"])
    di = r["disparate_impact_ratio"]
    assert di["groups"]["c"]["value"] == pytest.approx(sr["c"] / sr["a"])
    # the same metric under the other convention
    r2 = fairness_report(stats, "g", reference="b", convention="aif360",
                         metrics=["demographic_parity_difference", "equal_opportunity_difference"])
    tpr = {"a": 2 / 3, "b": 2 / 3, "c": 1.0}
    eo = r2["equal_opportunity_difference"]
    assert eo["value"] == pytest.approx(tpr["c"] - tpr["b"])
    assert eo["worst_group"] == "c"
    # p-value: two-proportion z-test on the group counts (a: 3 of 6, b: 3 of 5)
    z_p = r2["demographic_parity_difference"]["groups"]["a"]["p_value"]
    p = 6 / 11
    z = (3 / 6 - 3 / 5) / math.sqrt(p * (1 - p) * (1 / 6 + 1 / 5))
    assert z_p == pytest.approx(2 * sps.norm.sf(abs(z)))


def _model_like(n, seed=3):
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n, p=[0.35, 0.65])
    race = rng.choice(["W", "B", "A", "O"], n, p=[0.7, 0.15, 0.1, 0.05])
    s = np.clip(rng.beta(2, 5, n) + 0.1 * (sex == "M") + 0.05 * (race == "W"), 0, 1)
    y = (rng.random(n) < s).astype(int)
    return y, (s > 0.3).astype(int), s, sex, race, rng.uniform(0.5, 2, n)


@pytest.mark.parametrize("weighted", [False, True])
def test_intersections_and_weights_match_fairlearn(weighted):
    y, yp, s, sex, race, w = _model_like(5000)
    sw = w if weighted else None
    stats = ClassificationStats.from_arrays(y, yp, score=s, sensitive={"sex": sex, "race": race},
                                            weight=sw)
    sf = {"sex": sex, "race": race}
    import pandas as pd

    sf_df = pd.DataFrame(sf)
    r = fairness_report(stats, ["sex", "race"])
    kw = dict(sensitive_features=sf_df, sample_weight=sw)
    assert r["demographic_parity_difference"]["value"] == pytest.approx(
        flm.demographic_parity_difference(y, yp, **kw), abs=1e-9)
    assert r["demographic_parity_ratio"]["value"] == pytest.approx(
        flm.demographic_parity_ratio(y, yp, **kw), abs=1e-9)
    assert r["equalized_odds_difference"]["value"] == pytest.approx(
        flm.equalized_odds_difference(y, yp, **kw), abs=1e-9)
    assert r["equalized_odds_ratio"]["value"] == pytest.approx(
        flm.equalized_odds_ratio(y, yp, **kw), abs=1e-9)
    params = {"precision": {"sample_weight": sw}, "fpr": {"sample_weight": sw}} if weighted \
        else None
    mf = flm.MetricFrame(metrics={"precision": _precision,
                                  "fpr": flm.false_positive_rate}, y_true=y, y_pred=yp,
                         sensitive_features=sf_df, sample_params=params)
    ours = stats.frame(["precision", "fpr"], by=["sex", "race"])
    for (a, b), row in mf.by_group.iterrows():
        assert ours.by_group[f"{a} x {b}"]["precision"] == pytest.approx(row["precision"],
                                                                         abs=1e-12)
        assert ours.by_group[f"{a} x {b}"]["fpr"] == pytest.approx(row["fpr"], abs=1e-12)
    assert r["predictive_parity_difference"]["value"] == pytest.approx(
        mf.difference()["precision"], abs=1e-12)
    assert r["fpr_difference"]["value"] == pytest.approx(mf.difference()["fpr"], abs=1e-12)


def _precision(y_true, y_pred, sample_weight=None):
    from sklearn.metrics import precision_score

    return precision_score(y_true, y_pred, sample_weight=sample_weight, zero_division=np.nan)


def test_small_groups_take_no_part_and_are_reported():
    y, yp, _s, _sex, race, _w = _model_like(3000)
    stats = ClassificationStats.from_arrays(y, yp, sensitive={"race": race})
    n_o = int((race == "O").sum())
    r = fairness_report(stats, "race", min_group_size=n_o + 1,
                        metrics=["demographic_parity_difference", "disparate_impact_ratio"])
    assert r["_groups"]["O"] == {"n": n_o, "judged": False}
    rates = {g: yp[race == g].mean() for g in "WBA"}
    assert r["demographic_parity_difference"]["value"] == pytest.approx(
        max(rates.values()) - min(rates.values()))
    assert "O" not in r["disparate_impact_ratio"]["groups"]
    assert r["disparate_impact_ratio"]["reference"] == "W"  # the largest group
    only_one = fairness_report(stats, "race", min_group_size=10**6,
                               metrics=["demographic_parity_difference"])
    assert math.isnan(only_one["demographic_parity_difference"]["value"])
    assert "fewer than two groups" in only_one["demographic_parity_difference"]["note"]


def test_calibration_gap_definition():
    y, yp, s, sex, _race, _w = _model_like(4000)
    stats = ClassificationStats.from_arrays(y, yp, score=s, sensitive={"sex": sex})
    r = fairness_report(stats, "sex", metrics=["calibration_gap", "roc_auc_difference"])
    citl = {g: s[sex == g].mean() - y[sex == g].mean() for g in "FM"}
    assert r["calibration_gap"]["value"] == pytest.approx(abs(citl["F"] - citl["M"]), abs=1e-12)


def test_intervals_and_p_values_with_bootstrap():
    y, yp, s, sex, _race, _w = _model_like(4000)
    stats = ClassificationStats.from_arrays(y, yp, score=s, sensitive={"sex": sex})
    boot = bootstrap(stats, n_boot=400, seed=1)
    r = fairness_report(stats, "sex", boot=boot, reference="M")
    for name, e in r.items():
        if name == "_groups":
            continue
        lo, hi = e["ci"]
        assert lo <= hi, name
        if e["convention"] == "aif360":  # gaps to a reference: no max-min bias
            assert lo <= e["value"] <= hi, name
    spd = r["statistical_parity_difference"]
    assert spd["ci"][0] <= spd["value"] <= spd["ci"][1]
    assert spd["p_value"] < 1e-6  # the model selects men far more often
    assert r["calibration_gap"]["p_value"] is None  # no test for a max - min of scores
    r2 = fairness_report(stats, "sex", boot=boot, reference="M", convention="aif360",
                         metrics=["calibration_gap"])
    assert 0 <= r2["calibration_gap"]["p_value"] <= 1  # bootstrap p-value


def test_two_proportion_edge_cases_and_bad_names():
    assert math.isnan(two_proportion_p(1, 0, 1, 2))
    assert two_proportion_p(0, 5, 0, 5) == 1.0
    stats = ClassificationStats.from_arrays(Y_TRUE, Y_PRED, sensitive={"g": GROUPS})
    with pytest.raises(InputError, match="unknown fairness metric 'dp'"):
        fairness_report(stats, "g", metrics=["dp"])
    with pytest.raises(InputError, match="convention 'eeoc'"):
        fairness_report(stats, "g", convention="eeoc")
    with pytest.raises(InputError, match="reference group 'z'"):
        fairness_report(stats, "g", reference="z")
    with pytest.raises(InputError, match="needs a score column"):
        fairness_report(stats, "g", metrics=["calibration_gap"])


def test_a_group_never_selected_is_the_worst_disparate_impact():
    y = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    yp = [1, 1, 1, 0, 0, 0, 0, 0, 1, 1]
    g = ["a"] * 4 + ["b"] * 3 + ["c"] * 3
    stats = ClassificationStats.from_arrays(y, yp, sensitive={"g": g})
    r = fairness_report(stats, "g", reference="a", metrics=["disparate_impact_ratio"])
    di = r["disparate_impact_ratio"]
    assert di["groups"]["b"]["value"] == 0.0
    assert di["worst_group"] == "b" and di["value"] == 0.0


def test_equalized_odds_ratio_to_reference_picks_the_rate_furthest_from_parity():
    y = [1, 1, 0, 0, 1, 1, 0, 0]
    yp = [1, 1, 1, 0, 0, 0, 1, 0]
    g = ["a"] * 4 + ["b"] * 4
    stats = ClassificationStats.from_arrays(y, yp, sensitive={"g": g})
    r = fairness_report(stats, "g", reference="a", convention="aif360",
                        metrics=["equalized_odds_ratio", "equalized_odds_difference"])
    assert r["equalized_odds_ratio"]["groups"]["b"]["value"] == 0.0  # TPR 0 vs 1; FPR equal
    assert r["equalized_odds_difference"]["groups"]["b"]["value"] == -1.0
