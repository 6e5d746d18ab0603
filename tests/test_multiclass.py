"""Multiclass classification, certified end to end.

Cross-checks against scikit-learn (precision_recall_fscore_support, accuracy,
balanced accuracy, log loss, ROC AUC ovr/ovo, confusion_matrix) and Fairlearn
(MetricFrame one-vs-rest per class) to 1e-9, on a multiclass target derived
from the shipped Taiwan credit data (EDUCATION: graduate school, university,
high school, other) and on synthetic data; known answers on hand-made cases;
the skips, errors and the report.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as flm
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from _datasets import DATASETS
from assay import certify
from assay.errors import InputError, PolicyError
from assay.metrics.multiclass import (
    MulticlassBootstrap,
    MulticlassStats,
    ScoreSample,
    score_point,
)
from assay.policy import load_policy

TOL = 1e-9
FEATURES = ["LIMIT_BAL", "AGE", "PAY_0", "BILL_AMT1", "PAY_AMT1", "PAY_AMT2"]
EDUCATION = {1: "graduate", 2: "university", 3: "high_school"}


@pytest.fixture(scope="module")
def taiwan():
    """Taiwan credit with ``education`` (4 classes from the one-hot EDUCATION_* columns),
    ``sex`` and a logistic model of education fitted on the first half."""
    df = pd.read_csv(DATASETS / "taiwan_credit" / "credit_default.csv")
    edu = df[[f"EDUCATION_{i}" for i in range(7)]].to_numpy().argmax(axis=1)
    df["education"] = [EDUCATION.get(int(e), "other") for e in edu]
    df["sex"] = np.where(df["SEX"] == 1, "male", "female")
    df = df[[*FEATURES, "sex", "education"]]
    train, test = df.iloc[:15000].reset_index(drop=True), df.iloc[15000:].reset_index(drop=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(train[FEATURES], train["education"])
    return train, test, model


def _synthetic(n: int = 3000, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    p = rng.dirichlet(np.ones(k), n)
    p[np.arange(n), y] += 0.4
    p /= p.sum(axis=1, keepdims=True)
    pred = p.argmax(axis=1)
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    return y, pred, p, group


def _check_against_sklearn(y, pred, proba, classes):
    """MulticlassStats / ScoreSample against scikit-learn on the same arrays."""
    st = MulticlassStats.from_arrays(y, pred)
    labels = [str(c) for c in classes]
    assert st.classes == sorted(labels)
    order = [labels.index(c) for c in st.classes]
    ys = np.asarray([str(v) for v in y])
    ps = np.asarray([str(v) for v in pred])
    cm = skm.confusion_matrix(ys, ps, labels=st.classes)
    assert np.array_equal(st.table()[0][0], cm)
    m = {k: float(v[0]) for k, v in st.metrics().items()}
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(ys, ps), abs=TOL)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(ys, ps), abs=TOL)
    for avg in ("macro", "micro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(ys, ps, average=avg, zero_division=0)
        assert m[f"{avg}_precision"] == pytest.approx(p, abs=TOL)
        assert m[f"{avg}_recall"] == pytest.approx(r, abs=TOL)
        assert m[f"{avg}_f1"] == pytest.approx(f, abs=TOL)
    p, r, f, s = skm.precision_recall_fscore_support(ys, ps, labels=st.classes, zero_division=0)
    from assay.metrics.multiclass import class_table

    t = class_table(st.table()[0][0])
    np.testing.assert_allclose(t["precision"], p, atol=TOL)
    np.testing.assert_allclose(t["recall"], r, atol=TOL)
    np.testing.assert_allclose(t["f1"], f, atol=TOL)
    np.testing.assert_array_equal(t["support"], s)
    if proba is not None:
        pos = {c: i for i, c in enumerate(st.classes)}
        sample = ScoreSample(classes=st.classes, y=np.array([pos[v] for v in ys]),
                             proba=np.asarray(proba)[:, order], cell=np.zeros(len(ys), int),
                             names=[], categories=[], total=len(ys))
        sk_proba = np.asarray(proba)[:, order]
        assert score_point(sample, "log_loss") == pytest.approx(
            skm.log_loss(ys, sk_proba, labels=st.classes), abs=TOL)
        for mc in ("ovr", "ovo"):
            assert score_point(sample, f"roc_auc_{mc}") == pytest.approx(
                skm.roc_auc_score(ys, sk_proba, multi_class=mc, labels=st.classes), abs=TOL)
    return st


def test_synthetic_metrics_match_scikit_learn():
    y, pred, p, _ = _synthetic()
    _check_against_sklearn(y, pred, p, classes=[0, 1, 2, 3])


def test_taiwan_education_metrics_match_scikit_learn(taiwan):
    _, test, model = taiwan
    proba = model.predict_proba(test[FEATURES])
    pred = model.predict(test[FEATURES])
    _check_against_sklearn(test["education"].to_numpy(), pred, proba, list(model.classes_))


def test_a_class_never_predicted_follows_scikit_learn_conventions():
    y = np.array([0, 0, 1, 1, 2, 2, 2, 3])
    pred = np.array([0, 1, 1, 1, 2, 0, 2, 0])  # class 3 never predicted, its recall is 0
    _check_against_sklearn(y, pred, None, classes=[0, 1, 2, 3])
    # a class predicted but absent from the truth: precision 0, out of balanced accuracy
    _check_against_sklearn(np.array([0, 1, 2, 2, 0]), np.array([0, 1, 2, 3, 3]), None,
                           classes=[0, 1, 2, 3])


def test_known_answers():
    # a perfect classifier, and a known confusion matrix
    st = MulticlassStats.from_arrays(["a", "b", "c"] * 10, ["a", "b", "c"] * 10)
    assert st.metrics()["macro_f1"][0] == 1.0 and st.metrics()["accuracy"][0] == 1.0
    y = ["a"] * 10 + ["b"] * 10 + ["c"] * 20
    pred = ["a"] * 8 + ["b"] * 2 + ["b"] * 5 + ["c"] * 5 + ["c"] * 20
    m = MulticlassStats.from_arrays(y, pred).metrics()
    assert m["accuracy"][0] == pytest.approx(33 / 40)
    assert m["balanced_accuracy"][0] == pytest.approx((0.8 + 0.5 + 1.0) / 3)
    # uniform probabilities 1/3 on balanced classes: top-label confidence 1/3, accuracy of
    # argmax (class 0 always) 1/3 -> ECE 0; classwise ECE: each class's p = 1/3, frequency 1/3
    n = 300
    yy = np.repeat([0, 1, 2], n // 3)
    sample = ScoreSample(classes=["0", "1", "2"], y=yy, proba=np.full((n, 3), 1 / 3),
                         cell=np.zeros(n, int), names=[], categories=[], total=n)
    assert score_point(sample, "top_label_ece") == pytest.approx(0, abs=1e-12)
    assert score_point(sample, "classwise_ece") == pytest.approx(0, abs=1e-12)
    # always 0.9 on the true class of half the rows, wrong otherwise: confidence 0.9,
    # accuracy 0.5 -> top-label ECE 0.4
    proba = np.full((n, 3), 0.05)
    wrong = np.arange(n) % 2 == 1
    top = np.where(wrong, (yy + 1) % 3, yy)
    proba[np.arange(n), top] = 0.9
    sample.proba = proba
    assert score_point(sample, "top_label_ece") == pytest.approx(0.4, abs=1e-12)
    assert score_point(sample, "log_loss") == pytest.approx(
        skm.log_loss(yy, proba), abs=TOL)


def test_the_statistic_merges_exactly_and_the_bootstrap_brackets_the_value():
    y, pred, _, group = _synthetic(n=5000)
    whole = MulticlassStats.from_arrays(y, pred, sensitive={"g": group})
    parts = [MulticlassStats.from_arrays(y[i:i + 1234], pred[i:i + 1234],
                                         sensitive={"g": group[i:i + 1234]})
             for i in range(0, 5000, 1234)]
    merged = parts[3].merge(parts[0]).merge(parts[2].merge(parts[1])).merge(parts[4])
    assert merged.classes == whole.classes and merged.categories == whole.categories
    assert np.array_equal(merged.counts, whole.counts)
    # a batch missing a class and a group still lines up
    small = MulticlassStats.from_arrays([0, 1], [0, 0], sensitive={"g": ["a", "a"]})
    assert np.array_equal(small.merge(whole).counts.sum(axis=0)[:2, :2] -
                          whole.counts.sum(axis=0)[:2, :2], [[1, 0], [1, 0]])
    # merge order does not matter, and the state round-trips through JSON
    assert np.array_equal(parts[0].merge(parts[1]).counts, parts[1].merge(parts[0]).counts)
    state = json.loads(json.dumps(whole.to_state()))
    back = MulticlassStats.from_state(state)
    assert back.classes == whole.classes and np.array_equal(back.counts, whole.counts)
    boot = MulticlassBootstrap(whole, n_boot=400, seed=1)
    for by in (None, "g"):
        value = whole.metrics(by)["macro_f1"]
        ci = boot.interval(boot.replicates(by)["macro_f1"])
        assert np.all(ci[:, 0] < value) and np.all(value < ci[:, 1])
    # the same seed gives the same interval
    again = MulticlassBootstrap(whole, n_boot=400, seed=1)
    assert np.array_equal(again.replicates()["accuracy"], boot.replicates()["accuracy"])


def _measurements(cert, check_id):
    (r,) = [c for c in cert.checks if c.id == check_id]
    return r, {m.label: m for m in r.measurements}


def test_certify_taiwan_education_end_to_end(taiwan, tmp_path):
    train, test, model = taiwan
    cert = certify(data=test, reference=train, policy="default", tier="high",
                   target="education", model=model, sensitive=["sex"], features=FEATURES)
    assert cert.roles.task == "multiclass"
    assert any("certified as multiclass" in n for n in cert.notes)
    statuses = {c.id: c for c in cert.checks}
    assert not [c for c in cert.checks if str(c.status) == "error"], \
        [(c.id, c.message) for c in cert.checks if str(c.status) == "error"]
    # the binary performance checks judge their multiclass counterpart
    r, ms = _measurements(cert, "performance.roc_auc")
    proba = model.predict_proba(test[FEATURES])
    assert ms["overall"].value == pytest.approx(
        skm.roc_auc_score(test["education"], proba, multi_class="ovr"), abs=TOL)
    assert r.details["binary_check_on_multiclass"].endswith("multiclass.roc_auc_ovr")
    r, ms = _measurements(cert, "performance.balanced_accuracy")
    pred = model.predict(test[FEATURES])
    assert ms["overall"].value == pytest.approx(
        skm.balanced_accuracy_score(test["education"], pred), abs=TOL)
    # one-vs-rest fairness per class, against Fairlearn's MetricFrame on each class
    r, ms = _measurements(cert, "fairness.demographic_parity_ratio")
    assert r.details["judged"].startswith("one-vs-rest")
    for c in model.classes_:
        yt = (test["education"] == c).to_numpy().astype(int)
        yp = (pred == c).astype(int)
        mf = flm.MetricFrame(metrics=flm.selection_rate, y_true=yt, y_pred=yp,
                             sensitive_features=test["sex"])
        m = ms[f"class={c} x sex"]
        if np.isnan(mf.ratio()):  # a class the model never predicts: 0 / 0
            assert m.value is None and not m.judged and "undefined" in m.note
        else:
            assert m.value == pytest.approx(mf.ratio(), abs=TOL)
    r, ms = _measurements(cert, "fairness.equalized_odds_difference")
    for c in model.classes_:
        yt = (test["education"] == c).to_numpy().astype(int)
        yp = (pred == c).astype(int)
        mf = flm.MetricFrame(metrics={"tpr": flm.true_positive_rate,
                                      "fpr": flm.false_positive_rate},
                             y_true=yt, y_pred=yp, sensitive_features=test["sex"])
        expected = float(mf.difference().max())
        assert expected == pytest.approx(
            flm.equalized_odds_difference(yt, yp, sensitive_features=test["sex"]), abs=TOL)
        assert ms[f"class={c} x sex"].value == pytest.approx(expected, abs=TOL)
    # the worst class decides
    worst = r.worst
    assert worst is not None and worst.value == max(m.value for m in r.measurements
                                                    if m.judged and m.value is not None)
    # threshold-based binary checks and binary-score fairness skip with the reason
    assert str(statuses["fairness.roc_auc_difference"].status) == "skip"
    assert "multiclass" in statuses["fairness.roc_auc_difference"].message
    # drift and robustness still run on the features
    assert str(statuses["drift.psi"].status) in ("pass", "warn", "fail")
    assert str(statuses["robustness.gaussian_noise"].status) in ("pass", "warn", "fail")
    # results.json: the metrics block and the report
    written = cert.write(tmp_path)
    doc = json.loads(written["results.json"].read_text())
    met = doc["metrics"]
    assert met["task"] == "multiclass" and met["classes"] == sorted(model.classes_)
    assert np.array_equal(met["confusion_matrix"], skm.confusion_matrix(
        test["education"], pred, labels=met["classes"]))
    assert met["overall"]["log_loss"]["value"] == pytest.approx(
        skm.log_loss(test["education"], proba, labels=list(model.classes_)), abs=TOL)
    lo, hi = met["overall"]["macro_f1"]["ci"]
    assert lo < met["overall"]["macro_f1"]["value"] < hi
    html = written["report.html"].read_text()
    assert "Confusion matrix" in html and "university" in html
    assert doc["roles"]["task"] == "multiclass"
    import jsonschema

    from assay.certification import results_schema

    jsonschema.Draft202012Validator(results_schema()).validate(doc)
    assert ">Multiclass<" in html  # the family's section of the report
    # one-vs-rest fairness per class in results.json, against Fairlearn, and in the report
    fb = met["fairness_by_class"]["sex"]
    for c in model.classes_:
        yt = (test["education"] == c).to_numpy().astype(int)
        yp = (pred == c).astype(int)
        mf = flm.MetricFrame(metrics={"selection_rate": flm.selection_rate,
                                      "tpr": flm.true_positive_rate,
                                      "fpr": flm.false_positive_rate},
                             y_true=yt, y_pred=yp, sensitive_features=test["sex"])
        for g in ("female", "male"):
            for m in ("selection_rate", "tpr", "fpr"):
                assert fb[c]["groups"][g][m]["value"] == pytest.approx(
                    mf.by_group.loc[g, m], abs=TOL)
        assert fb[c]["gaps"]["demographic_parity_difference"]["value"] == pytest.approx(
            mf.difference()["selection_rate"], abs=TOL)
    assert "One-vs-rest fairness by sex" in html
    cal = met["calibration"]  # top-label reliability, drawn by the report's chart
    assert sum(cal["count"]) == len(test) and cal["kind"] == "top-label"
    assert html.count("<svg") >= 2


def test_class_score_columns_and_the_sample(taiwan):
    _, test, model = taiwan
    proba = model.predict_proba(test[FEATURES])
    df = test.copy()
    cols = {c: f"p_{c}" for c in model.classes_}
    for j, c in enumerate(model.classes_):
        df[cols[c]] = proba[:, j]
    df["pred"] = model.predict(test[FEATURES])
    policy = load_policy("default")
    cert = certify(data=df, policy=policy, tier="high", target="education", prediction="pred",
                   class_scores=",".join(f"{k}={v}" for k, v in cols.items()),
                   sensitive=["sex"], features=FEATURES)
    r, ms = _measurements(cert, "performance.ece")
    assert r.details["binary_check_on_multiclass"].endswith("top_label_ece")
    assert ms["overall"].note == f"on all {len(df):,} rows"
    # a sample smaller than the data: stated, seeded, and the value is the sample's
    from assay.certification import CertificationContext
    from assay.checks.base import CheckSpec, Threshold
    from assay.checks.multiclass import score_check

    ctx = CertificationContext(evaluation=cert_dataset(df, cert), reference=None, model=None,
                               roles=cert.roles, settings=policy.settings)
    spec = CheckSpec(id="multiclass.log_loss", threshold=Threshold(max=2.0),
                     params={"sample_rows": 1000})
    out = score_check(ctx, spec, "log_loss")
    assert out.measurements[0].note == f"on a seeded sample of 1,000 of {len(df):,} rows"
    assert out.details["sample_rows"] == 1000 and out.details["exact"] is False
    assert score_check(ctx, spec, "log_loss").measurements[0].value == \
        out.measurements[0].value
    # per group: exact on each group's rows when the sample is every row
    spec_by = CheckSpec(id="multiclass.roc_auc_ovo", threshold=Threshold(min=0.5),
                        params={"by": "sex", "replicates": 50})
    by_sex = {m.label: m for m in score_check(ctx, spec_by, "roc_auc_ovo").measurements}
    assert set(by_sex) == {"overall", "sex=female", "sex=male"}
    for g in ("female", "male"):
        rows = (df["sex"] == g).to_numpy()
        assert by_sex[f"sex={g}"].value == pytest.approx(skm.roc_auc_score(
            df["education"][rows], proba[rows], multi_class="ovo",
            labels=list(model.classes_)), abs=TOL)
        assert by_sex[f"sex={g}"].n == rows.sum()
        lo, hi = by_sex[f"sex={g}"].ci
        assert lo < by_sex[f"sex={g}"].value < hi
    full = skm.log_loss(df["education"], proba, labels=list(model.classes_))
    assert out.measurements[0].value == pytest.approx(full, rel=0.1)
    lo, hi = out.measurements[0].ci
    assert lo < out.measurements[0].value < hi


def cert_dataset(df, cert):
    from assay.data import open_dataset

    return open_dataset(df, cert.roles)


def test_multiclass_checks_skip_on_binary_and_without_scores(taiwan):
    _, test, model = taiwan
    df = test.copy()
    df["pred"] = model.predict(test[FEATURES])
    pol = {"name": "mc", "version": "1", "tiers": {"t": {"checks": [
        {"id": "multiclass.macro_f1", "threshold": {"min": 0.1}},
        {"id": "multiclass.class_recall", "threshold": {"min": 0.0}},
        {"id": "multiclass.log_loss", "threshold": {"max": 5}},
        {"id": "performance.tpr", "threshold": {"min": 0.1}},
    ]}}}
    cert = certify(data=df, policy=_policy(pol), tier="t", target="education",
                   prediction="pred", features=FEATURES)
    s = {c.id: c for c in cert.checks}
    assert str(s["multiclass.macro_f1"].status) == "pass"
    assert "needs scores" in s["multiclass.log_loss"].message
    assert str(s["performance.tpr"].status) == "skip"
    assert "two classes" in s["performance.tpr"].message
    # class recall: one measurement per class, class 'other' included
    labels = {m.label for m in s["multiclass.class_recall"].measurements}
    assert labels == {f"class={c}" for c in model.classes_}
    # on a binary task the multiclass checks skip
    df["bin"] = (df["education"] == "university").astype(int)
    df["bin_pred"] = (df["pred"] == "university").astype(int)
    df["bin_score"] = model.predict_proba(test[FEATURES])[:, list(model.classes_).index(
        "university")]
    cert = certify(data=df, policy=_policy(pol), tier="t", target="bin", prediction="bin_pred",
                   score="bin_score", features=FEATURES)
    s = {c.id: c for c in cert.checks}
    assert cert.roles.task == "classification"
    # on a binary task the count checks read the binary table as two classes
    yt, yp = df["bin"].to_numpy(), df["bin_pred"].to_numpy()
    assert s["multiclass.macro_f1"].measurements[0].value == pytest.approx(
        skm.f1_score(yt, yp, average="macro"), abs=TOL)
    recall = {m.label: m.value for m in s["multiclass.class_recall"].measurements}
    assert recall == pytest.approx({"class=1": skm.recall_score(yt, yp),
                                    "class=not 1": skm.recall_score(1 - yt, 1 - yp)}, abs=TOL)
    assert str(s["multiclass.log_loss"].status) == "skip"
    assert "performance.log_loss" in s["multiclass.log_loss"].message


def _policy(doc):
    import tempfile
    from pathlib import Path

    import yaml

    path = Path(tempfile.mkdtemp()) / "multiclass.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_policy(path)


def test_bad_input_is_a_clear_error(taiwan):
    _, test, model = taiwan
    df = test.copy()
    proba = model.predict_proba(test[FEATURES])
    for j, c in enumerate(model.classes_):
        df[f"p_{c}"] = proba[:, j] / 2  # rows summing to 0.5
    df["pred"] = model.predict(test[FEATURES])
    scores = ",".join(f"{c}=p_{c}" for c in model.classes_)
    with pytest.raises(InputError, match="CLASS=COLUMN"):
        certify(data=df, policy="default", tier="high", target="education", prediction="pred",
                class_scores="graduate:p_graduate")
    with pytest.raises(InputError, match="score column 'p_nope' of class 'x' not found"):
        certify(data=df, policy="default", tier="high", target="education", prediction="pred",
                class_scores="x=p_nope,graduate=p_graduate,other=p_other")
    with pytest.raises(InputError, match=r"columns p_graduate, .*: expected per-class "
                                         r"probabilities summing to 1 in each row, got 0\.5 "):
        certify(data=df, policy="default", tier="high", target="education", prediction="pred",
                class_scores=scores, features=FEATURES)
    with pytest.raises(InputError, match="expected a probability for every class, none for "
                                         "university"):
        certify(data=df, policy="default", tier="high", target="education", prediction="pred",
                class_scores=scores.replace(",university=p_university", ""), features=FEATURES)
    # one score column for a multiclass target
    with pytest.raises(InputError, match="score column 'p_graduate' cannot hold the "
                                         "probabilities of every class"):
        certify(data=df, policy="default", tier="high", target="education", prediction="pred",
                score="p_graduate", features=FEATURES)
    # a two-class target named multiclass
    df["two"] = np.where(df["education"] == "university", "u", "n")
    with pytest.raises(InputError, match="at least three classes, got n, u"):
        certify(data=df, policy="default", tier="high", target="two", prediction="two",
                task="multiclass")
    # a bad parameter value names the check and the policy line
    pol = _policy({"name": "mc", "version": "1", "tiers": {"t": {"checks": [
        {"id": "multiclass.log_loss", "threshold": {"max": 5}, "params": {"sample_rows": 5}}]}}})
    cert = certify(data=df, policy=pol, tier="t", target="education", model=model,
                   features=FEATURES)
    (r,) = cert.checks
    assert str(r.status) == "error"
    assert "multiclass.log_loss (" in r.message and ".yaml:" in r.message
    assert "parameter 'sample_rows': expected an integer >= 100, got 5" in r.message
    pol = _policy({"name": "mc", "version": "1", "tiers": {"t": {"checks": [
        {"id": "multiclass.classwise_ece", "threshold": {"max": 0.1}, "params": {"n_bins": 7}}]}}})
    (r,) = certify(data=df, policy=pol, tier="t", target="education", model=model,
                   features=FEATURES).checks
    assert str(r.status) == "error" and "parameter 'n_bins': expected a divisor of 1000" in \
        r.message and "multiclass.yaml:" in r.message
    with pytest.raises(PolicyError, match=r"multiclass\.yaml:10: .*has no parameter "
                                          r".sample_rows. \(accepted: .by.\)"):
        _policy({"name": "mc", "version": "1", "tiers": {"t": {"checks": [
            {"id": "multiclass.macro_f1", "threshold": {"min": 0.1},
             "params": {"sample_rows": 5}}]}}})


def test_robustness_and_drift_checks_on_a_multiclass_model(taiwan):
    train, test, model = taiwan
    pol = _policy({"name": "mc", "version": "1", "tiers": {"t": {"checks": [
        {"id": "drift.prediction", "threshold": {"max": 0.25}},
        {"id": "robustness.gaussian_noise", "params": {"scale": 0.1},
         "threshold": {"max": 0.2}},
        {"id": "robustness.monotonicity", "params": {"constraints": {"LIMIT_BAL": "decreasing"}},
         "threshold": {"max": 0.0}},
        {"id": "integrity.label_balance", "threshold": {"min": 0.001}},
        {"id": "integrity.target_leakage", "threshold": {"max": 0.95}},
    ]}}})
    cert = certify(data=test, reference=train, policy=pol, tier="t", target="education",
                   model=model, features=FEATURES)
    s = {c.id: c for c in cert.checks}
    # the model's decisions (classes) are compared between the data sets
    assert str(s["drift.prediction"].status) == "pass", s["drift.prediction"].message
    assert s["drift.prediction"].measurements[0].label == "model output (__prediction__)"
    assert str(s["robustness.gaussian_noise"].status) in ("pass", "warn", "fail")
    assert str(s["robustness.monotonicity"].status) == "skip"
    assert "one probability per class" in s["robustness.monotonicity"].message
    counts = test["education"].value_counts()
    assert s["integrity.label_balance"].measurements[0].value == pytest.approx(
        counts.min() / len(test), abs=TOL)
    assert str(s["integrity.target_leakage"].status) == "skip"
    assert "binary" in s["integrity.target_leakage"].message


def test_command_line_with_class_score_columns(taiwan, tmp_path, capsys):
    from assay.cli import main

    _, test, model = taiwan
    df = test.copy()
    proba = model.predict_proba(test[FEATURES])
    for j, c in enumerate(model.classes_):
        df[f"p_{c}"] = proba[:, j]
    path = tmp_path / "test.csv"
    df.to_csv(path, index=False)
    scores = ",".join(f"{c}=p_{c}" for c in model.classes_)

    def run(args):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return code, *capsys.readouterr()

    code, _, err = run(["certify", "--policy", "default", "--tier", "high", "--data", path,
                        "--target", "education", "--class-scores", scores, "--sensitive", "sex",
                        "--features", ",".join(FEATURES), "--out", tmp_path / "out",
                        "--no-progress"])
    assert code in (0, 1), err
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["roles"]["task"] == "multiclass"
    assert doc["roles"]["class_scores"] == {c: f"p_{c}" for c in model.classes_}
    pred = np.asarray(model.classes_)[proba.argmax(axis=1)]  # decisions from the scores
    assert doc["metrics"]["overall"]["accuracy"]["value"] == pytest.approx(
        skm.accuracy_score(test["education"], pred), abs=TOL)
    assert doc["metrics"]["overall"]["roc_auc_ovo"]["value"] == pytest.approx(
        skm.roc_auc_score(test["education"], proba, multi_class="ovo"), abs=TOL)
    # a malformed --class-scores names the flag, exit 2
    code, _, err = run(["certify", "--policy", "default", "--tier", "high", "--data", path,
                        "--target", "education", "--class-scores", "graduate", "--out",
                        tmp_path / "out2", "--no-progress"])
    assert code == 2
    assert "--class-scores: expected CLASS=COLUMN pairs" in " ".join(err.split())


def test_rest_api_runs_a_multiclass_certification(db, taiwan, monkeypatch):
    from argon2 import PasswordHasher, profiles
    from fastapi.testclient import TestClient

    import assay.auth.secrets as sec
    from assay.api.app import create_app
    from assay.api.sample import populate
    from assay.auth import service as auth
    from assay.registry import get_user

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    populate(db, password="correct horse battery staple", models=1, reports=False)
    with db.transaction() as s:
        admin = get_user(s, "admin")
        tokens = {n: auth.create_token(s, admin, n, "tests")[1] for n in ("dana", "vic", "bob")}
    client = TestClient(create_app(db.settings, store=db))

    def h(who):
        return {"Authorization": f"Bearer {tokens[who]}"}

    _, test, model = taiwan
    df = test.iloc[:1500].copy()
    proba = model.predict_proba(df[FEATURES])
    for j, c in enumerate(model.classes_):
        df[f"p_{c}"] = proba[:, j]
    up = client.post("/api/evidence", headers=h("dana"),
                     files={"file": ("eval.csv", df.to_csv(index=False).encode())})
    assert up.status_code == 201, up.text
    assert client.post("/api/models/credit-scoring/versions", headers=h("dana"),
                       json={"version": "9.0", "evaluation_data_digest": up.json()["digest"]}
                       ).status_code == 201
    url = "/api/models/credit-scoring/versions/9.0/certifications/run"
    body = {"policy": "default", "tier": "high", "target": "education", "task": "multiclass",
            "class_scores": {c: f"p_{c}" for c in model.classes_}, "sensitive": ["sex"],
            "features": FEATURES}
    assert client.post(url, headers=h("bob"), json=body).status_code == 403
    bad = client.post(url, headers=h("vic"), json={**body, "task": "ordinal"})
    assert bad.status_code == 422 and "task" in bad.text
    resp = client.post(url, headers=h("vic"), json=body)
    assert resp.status_code == 201, resp.text
    cert = resp.json()
    results = client.get(f"/api/models/credit-scoring/versions/9.0/certifications/{cert['id']}",
                         headers=h("vic")).json()
    assert results["roles"]["task"] == "multiclass"
    assert results["metrics"]["classes"] == sorted(model.classes_)
    pred = np.asarray(model.classes_)[proba.argmax(axis=1)]
    assert results["metrics"]["overall"]["macro_f1"]["value"] == pytest.approx(
        skm.f1_score(df["education"], pred, average="macro"), abs=TOL)


def test_score_bootstrap_is_centred_seeded_and_shared():
    from assay.metrics.multiclass import score_replicates

    y, _, p, group = _synthetic(n=4000, k=3, seed=3)
    sample = ScoreSample(classes=["0", "1", "2"], y=y, proba=p, cell=np.zeros(len(y), int),
                         names=[], categories=[], total=len(y))
    for metric in ("roc_auc_ovr", "roc_auc_ovo", "log_loss", "top_label_ece", "classwise_ece"):
        point = score_point(sample, metric)
        rep = score_replicates(sample, metric, [None, group == "a"], n_boot=200, seed=7)
        lo, hi = np.nanpercentile(rep[:, 0], [2.5, 97.5])
        assert lo <= point <= hi, metric
        if metric.startswith("roc_auc"):  # binned replicates shifted onto the exact value
            assert abs(np.median(rep[:, 0]) - point) < 0.01
        # the same seed, the same replicates; the overall column is kept for the summary
        again = score_replicates(sample, metric, [None], n_boot=200, seed=7)
        assert np.array_equal(again[:, 0], rep[:, 0])
    assert ("log_loss", 200, 7, 10) in sample.__dict__["_replicates"]
    # a group's replicates differ from the overall ones (its own rows)
    assert not np.array_equal(rep[:, 0], rep[:, 1])
