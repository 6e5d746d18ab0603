"""Cross-checks on the real data sets with trained scikit-learn models.

Adult (with its census weights ``fnlwgt`` as sample weights), German credit
and Taiwan credit default: every count metric and fairness metric matches
scikit-learn / Fairlearn to 1e-9, log loss and Brier exactly, and the binned
ROC AUC and average precision within their stated tolerance.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as flm
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from _datasets import DATASETS
from assay.datasets import load_adult
from assay.metrics import ClassificationStats, classification_summary

DATA = DATASETS


def _fit(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-12)
    model = LogisticRegression(max_iter=300).fit(X, y)
    return model.predict_proba(X)[:, 1]


def _adult():
    _, test = load_adult()
    y = (test["income"] == ">50K").to_numpy().astype(int)
    num = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
    X = np.column_stack([test[num].to_numpy(float), (test["sex"] == "Male").to_numpy(float)])
    s = _fit(X, y)
    sens = {"sex": test["sex"].to_numpy(), "race": test["race"].to_numpy()}
    return y, s, sens, test["fnlwgt"].to_numpy(float)


def _german():
    path = DATA / "german_credit" / "german.data"
    if not path.exists():
        pytest.skip(f"{path} not available")
    df = pd.read_csv(path, sep=" ", header=None)
    y = (df[20] == 1).to_numpy().astype(int)  # 1 = good credit
    X = df[[1, 4, 7, 10, 12, 15, 17]].to_numpy(float)
    s = _fit(X, y)
    sex = np.where(df[8].isin(["A92", "A95"]), "female", "male")
    age = np.where(df[12] < 25, "<25", np.where(df[12] < 50, "25-49", "50+"))
    return y, s, {"sex": sex, "age": age}, None


def _taiwan():
    path = DATA / "taiwan_credit" / "credit_default.csv"
    if not path.exists():
        pytest.skip(f"{path} not available")
    df = pd.read_csv(path)
    y = df["default-payment-next-month"].to_numpy().astype(int)
    X = df[["LIMIT_BAL", "AGE", "PAY_0", "PAY_2", "BILL_AMT1", "PAY_AMT1"]].to_numpy(float)
    s = _fit(X, y)
    sex = np.where(df["SEX"] == 1, "male", "female")
    age = pd.cut(df["AGE"], [0, 29, 39, 49, 200], labels=["<30", "30s", "40s", "50+"])
    return y, s, {"sex": sex, "age": age.astype(str).to_numpy()}, None


@pytest.fixture(scope="module", params=["adult", "german", "taiwan"])
def real(request):
    return request.param, {"adult": _adult, "german": _german, "taiwan": _taiwan}[request.param]()


@pytest.mark.parametrize("use_weight", [False, True])
def test_metrics_match_sklearn_and_fairlearn(real, use_weight):
    _name, (y, s, sens, w) = real
    if use_weight and w is None:
        w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    sw = w if use_weight else None
    yp = (s >= 0.5).astype(int)
    # built batch by batch, as from a streamed file
    stats = None
    for lo in range(0, len(y), 4096):
        sl = slice(lo, lo + 4096)
        part = ClassificationStats.from_arrays(
            y[sl], yp[sl], score=s[sl], sensitive={k: v[sl] for k, v in sens.items()},
            weight=None if sw is None else sw[sl])
        stats = part if stats is None else stats.merge(part)
    assert stats.compute("accuracy") == pytest.approx(skm.accuracy_score(y, yp, sample_weight=sw),
                                                      abs=1e-9)
    assert stats.compute("f1") == pytest.approx(skm.f1_score(y, yp, sample_weight=sw), abs=1e-9)
    assert stats.compute("balanced_accuracy") == pytest.approx(
        skm.balanced_accuracy_score(y, yp, sample_weight=sw), abs=1e-9)
    assert stats.compute("log_loss") == pytest.approx(skm.log_loss(y, s, sample_weight=sw),
                                                      rel=1e-9)
    assert stats.compute("brier") == pytest.approx(skm.brier_score_loss(y, s, sample_weight=sw),
                                                   rel=1e-9)
    exact_auc = skm.roc_auc_score(y, s, sample_weight=sw)
    assert abs(stats.compute("roc_auc") - exact_auc) <= stats.auc_error_bound() + 1e-12
    assert stats.auc_error_bound() < 2e-3
    assert stats.compute("average_precision") == pytest.approx(
        skm.average_precision_score(y, s, sample_weight=sw), abs=2e-3)

    feats = list(sens)
    sf = pd.DataFrame(sens)
    r = stats.fairness(feats[:1])
    kw = dict(sensitive_features=sf[feats[0]], sample_weight=sw)
    for ours, theirs in [("demographic_parity_difference", flm.demographic_parity_difference),
                         ("demographic_parity_ratio", flm.demographic_parity_ratio),
                         ("equalized_odds_difference", flm.equalized_odds_difference),
                         ("equalized_odds_ratio", flm.equalized_odds_ratio)]:
        assert r[ours]["value"] == pytest.approx(theirs(y, yp, **kw), abs=1e-9), ours
    both = stats.fairness(feats)
    kw = dict(sensitive_features=sf, sample_weight=sw)
    assert both["equalized_odds_difference"]["value"] == pytest.approx(
        flm.equalized_odds_difference(y, yp, **kw), abs=1e-9)
    mf = flm.MetricFrame(metrics={"tpr": flm.true_positive_rate,
                                  "sr": flm.selection_rate},
                         y_true=y, y_pred=yp, sensitive_features=sf,
                         sample_params={"tpr": {"sample_weight": sw},
                                        "sr": {"sample_weight": sw}} if use_weight else None)
    ours = stats.frame(["tpr", "selection_rate"], by=feats)
    for key, row in mf.by_group.dropna().iterrows():
        g = " x ".join(str(k) for k in key)
        assert ours.by_group[g]["tpr"] == pytest.approx(row["tpr"], abs=1e-9)
        assert ours.by_group[g]["selection_rate"] == pytest.approx(row["sr"], abs=1e-9)


def test_summary_on_adult_is_json_ready():
    y, s, sens, w = _adult()
    stats = ClassificationStats.from_arrays(y, (s >= 0.5).astype(int), score=s, sensitive=sens,
                                            weight=w)
    out = classification_summary(stats, sensitive=["sex", "race"], n_boot=200,
                                 reference={"race": "White"})
    json.dumps(out, allow_nan=False)
    assert out["task"] == "classification" and out["n"] == len(y)
    assert set(out["groups"]) == {"sex", "race", "sex x race"}
    amer = out["groups"]["sex x race"]["Female x Other"]
    assert amer["judged"] is (amer["n"] >= 30)
    di = out["fairness"]["race"]["disparate_impact_ratio"]
    assert di["reference"] == "White" and di["convention"] == "aif360"
    assert set(di["groups"]) == {g for g, v in out["groups"]["race"].items()
                                 if v["judged"] and g != "White"}
    lo, hi = out["overall"]["roc_auc"]["ci"]
    assert lo < out["overall"]["roc_auc"]["value"] < hi
    assert len(out["roc"]["fpr"]) <= 200
    assert len(out["calibration"]["count"]) == 10
    assert sum(out["calibration"]["count"]) == len(y)
    assert any("weights" in n for n in out["notes"])
