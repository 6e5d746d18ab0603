"""The results.json ``metrics`` block: shape, nulls, small groups, options."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from assay.errors import InputError
from assay.metrics import ClassificationStats, classification_summary, groupings


def _stats(score=True, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.random(n)
    y = (rng.random(n) < s).astype(int)
    sex = rng.choice(["F", "M"], n)
    race = rng.choice(["A", "B", "C"], n, p=[0.7, 0.295, 0.005])
    return ClassificationStats.from_arrays(y, (s > 0.5).astype(int), score=s if score else None,
                                           sensitive={"sex": sex, "race": race})


def test_shape_and_json():
    out = classification_summary(_stats(), sensitive=["sex", "race"], n_boot=100)
    assert list(out) == ["task", "n", "overall", "groups", "fairness", "calibration", "roc",
                         "notes"]
    assert out["n"] == 3000
    for entry in out["overall"].values():
        assert set(entry) == {"value", "ci"}
    g = out["groups"]["race"]["C"]
    assert set(g) == {"n", "judged", "metrics"} and g["judged"] is False and g["n"] < 30
    for key in ("sex", "race", "sex x race"):
        for e in out["fairness"][key].values():
            assert {"value", "ci", "convention", "reference", "p_value"} <= set(e)
            assert e["convention"] in ("fairlearn", "aif360")
    assert out["fairness"]["race"]["disparate_impact_ratio"]["reference"] == "A"
    eo = out["fairness"]["race"]["equalized_odds_difference"]
    assert eo["convention"] == "fairlearn" and eo["reference"] is None
    pair = eo["gaps_to_reference"]
    assert pair["reference"] == "A" and pair["convention"] == "aif360"
    assert set(pair["groups"]) == {"B"}  # C is below the minimum group size
    lo, hi = pair["groups"]["B"]["ci"]
    assert lo <= pair["groups"]["B"]["value"] <= hi
    assert "C" not in out["fairness"]["race"]["disparate_impact_ratio"]["groups"]
    assert any("not judged" in n and "race" in n for n in out["notes"])
    assert set(out["calibration"]) == {"bin_edges", "mean_predicted", "fraction_positive",
                                       "count"}
    json.dumps(out, allow_nan=False)


def test_without_scores_or_intersections_and_nan_becomes_null():
    stats = ClassificationStats.from_arrays([0, 0, 1, 1], [0, 0, 0, 0],
                                            sensitive={"g": ["a", "a", "b", "b"]})
    out = classification_summary(stats, sensitive=["g"], intersections=False, n_boot=0,
                                 min_group_size=1)
    assert out["calibration"] is None and out["roc"] is None
    assert "roc_auc" not in out["overall"]
    assert out["overall"]["precision"] == {"value": None, "ci": None}  # 0 / 0
    assert set(out["groups"]) == {"g"}
    assert not math.isnan(out["overall"]["accuracy"]["value"])


def test_reference_and_errors():
    stats = _stats(score=False)
    out = classification_summary(stats, sensitive=["race"], n_boot=50,
                                 reference={"race": "B"})
    spd = out["fairness"]["race"]["statistical_parity_difference"]
    assert spd["reference"] == "B" and set(spd["groups"]) == {"A"}
    with pytest.raises(InputError, match="sensitive feature 'age'"):
        classification_summary(stats, sensitive=["age"])
    with pytest.raises(InputError, match="reference group 'Z'"):
        classification_summary(stats, sensitive=["race"], reference={"race": "Z"}, n_boot=0)


def test_groupings():
    assert groupings(["a"]) == [["a"]]
    assert groupings(["a", "b", "c"]) == [["a"], ["b"], ["c"], ["a", "b"], ["a", "c"],
                                          ["b", "c"], ["a", "b", "c"]]
    assert groupings(["a", "b"], intersections=False) == [["a"], ["b"]]


@pytest.mark.parametrize("fn, expected", [("classification_summary", "ClassificationStats"),
                                          ("regression_summary", "RegressionStats")])
def test_summary_refuses_what_is_neither_a_statistic_nor_a_context(fn: str, expected: str):
    import assay.metrics as m

    with pytest.raises(TypeError, match=f"expected {expected} or a certification context, "
                                        "got object"):
        getattr(m, fn)(object())
