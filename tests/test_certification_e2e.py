"""End-to-end certifications of real scikit-learn models on real data with the shipped policies.

* UCI Adult: trained on ``adult.data`` (sampled), evaluated on ``adult.test``
  (sampled), ``default`` policy, sex and race as protected attributes.
* Statlog German credit: a stratified train / test split, ``credit-lending``
  policy, sex (from the status_sex code) and an age band as protected attributes.

The numbers in results.json are cross-checked against scikit-learn on the
same predictions; the exit status of ``assay certify`` follows the verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from _datasets import DATASETS
from assay import certify
from assay.checks.base import Status
from assay.cli import main
from assay.policy import load_check_modules, load_policy

ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
                 "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
                 "hours_per_week", "native_country", "income"]
ADULT_CAT = ["workclass", "education", "marital_status", "occupation", "relationship", "race",
             "sex", "native_country"]
ADULT_NUM = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]

GERMAN_COLUMNS = ["status", "duration", "credit_history", "purpose", "credit_amount", "savings",
                  "present_employment", "installment_rate", "status_sex", "other_debtors",
                  "present_residence_since", "property", "age", "installment_plans", "housing",
                  "number_of_existing_credits", "job", "number_of_people_liable_for",
                  "telephone", "foreign_worker", "credit"]

RESULT_KEYS = {"schema_version", "assay_version", "created_at", "status", "policy", "model",
               "data", "roles", "settings", "environment", "summary", "checks", "metrics"}


def read_adult(name: str) -> pd.DataFrame:
    df = pd.read_csv(DATASETS / "adult" / name, header=None, names=ADULT_COLUMNS,
                     sep=r",\s*", engine="python", skiprows=1 if name == "adult.test" else 0,
                     skip_blank_lines=True)
    df["income"] = df["income"].str.rstrip(".")
    return df.dropna(subset=["income"]).reset_index(drop=True)


def pipeline(cat: list[str], num: list[str]) -> Any:
    return make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), cat),
                                (StandardScaler(), num)),
        LogisticRegression(max_iter=1000))


@pytest.fixture(scope="module")
def adult(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    train = read_adult("adult.data").sample(n=6000, random_state=0).reset_index(drop=True)
    test = read_adult("adult.test").sample(n=4000, random_state=1).reset_index(drop=True)
    model = pipeline(ADULT_CAT, ADULT_NUM).fit(train[ADULT_CAT + ADULT_NUM], train["income"])
    root = tmp_path_factory.mktemp("adult")
    paths = {"train": root / "train.parquet", "test": root / "test.parquet",
             "model": root / "model.joblib"}
    train.to_parquet(paths["train"])
    test.to_parquet(paths["test"])
    joblib.dump(model, paths["model"])
    return {"train": train, "test": test, "model": model, "paths": paths}


@pytest.fixture(scope="module")
def german(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    df = pd.read_csv(DATASETS / "german_credit" / "german.data", sep=" ", header=None,
                     names=GERMAN_COLUMNS)
    # A92 and A95 are the female codes of status_sex (codes.json); keep the attribute,
    # drop the mixed code from the inputs.
    df["sex"] = np.where(df["status_sex"].isin(["A92", "A95"]), "female", "male")
    df["age_band"] = np.where(df["age"] < 25, "under_25", "25_and_over")
    df = df.drop(columns=["status_sex"])
    df["credit"] = (df["credit"] == 1).astype(int)  # 1 = good credit, the favourable outcome
    train, test = train_test_split(df, test_size=0.4, random_state=0, stratify=df["credit"])
    cat = [c for c in df.columns
           if not pd.api.types.is_numeric_dtype(df[c]) and c not in ("sex", "age_band")]
    num = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and c != "credit"]
    model = pipeline(cat, num).fit(train[cat + num], train["credit"])
    root = tmp_path_factory.mktemp("german")
    paths = {"train": root / "train.csv", "test": root / "test.csv", "model": root / "m.joblib"}
    train.to_csv(paths["train"], index=False)
    test.to_csv(paths["test"], index=False)
    joblib.dump(model, paths["model"])
    return {"train": train.reset_index(drop=True), "test": test.reset_index(drop=True),
            "model": model, "features": cat + num, "paths": paths}


def assert_consistent(results: dict[str, Any]) -> None:
    """The verdict, the summary and the checks of a results.json agree."""
    assert set(results) >= RESULT_KEYS
    checks = results["checks"]
    counts = {s: sum(c["status"] == s for c in checks)
              for s in ("pass", "warn", "fail", "skip", "error")}
    assert results["summary"] == counts
    blocking = [c for c in checks if c["status"] == "fail"
                or (c["status"] == "error" and c["severity"] == "block")]
    if blocking:
        assert results["status"] == "blocked"
    elif counts["pass"] == len(checks):
        assert results["status"] == "passed"
    else:
        assert results["status"] == "passed_with_warnings"
    for c in checks:
        assert c["status"] != "error", f"{c['id']} errored: {c['message']}"
        if c["status"] == "skip":
            assert c["message"], f"{c['id']} was skipped without a reason"
        if c["status"] in ("pass", "warn", "fail"):
            assert c["measurements"], c["id"]
        assert c["rationale"], c["id"]
    json.dumps(results, allow_nan=False)
    import jsonschema

    from assay.certification import results_schema

    jsonschema.Draft202012Validator(results_schema()).validate(results)


# --------------------------------------------------------------------------- Adult


def test_adult_default_policy_high_tier(adult: dict[str, Any]) -> None:
    p = adult["paths"]
    cert = certify(data=p["test"], reference=p["train"], model=p["model"], policy="default",
                   tier="high", target="income", positive_label=">50K",
                   sensitive=["sex", "race"])
    results = cert.to_dict()
    assert_consistent(results)
    high = load_policy("default").tier("high")
    assert [c["id"] for c in results["checks"]] == [s.id for s in high.checks]

    # numbers agree with scikit-learn on the same predictions
    test, model = adult["test"], adult["model"]
    X = test[ADULT_CAT + ADULT_NUM]
    y_pred = model.predict(X)
    pos = list(model.classes_).index(">50K")
    score = model.predict_proba(X)[:, pos]
    overall = results["metrics"]["overall"]
    assert overall["accuracy"]["value"] == pytest.approx(accuracy_score(test["income"], y_pred),
                                                         abs=1e-12)
    auc = roc_auc_score(test["income"] == ">50K", score)
    assert overall["roc_auc"]["value"] == pytest.approx(auc, abs=1e-3)
    auc_check = next(c for c in results["checks"] if c["id"] == "performance.roc_auc")
    assert auc_check["value"] == pytest.approx(auc, abs=1e-3)
    lo, hi = auc_check["ci"]
    assert lo < auc < hi
    # per-group selection rates, against pandas
    groups = (results["metrics"].get("groups") or results["metrics"]["by_group"])["sex"]
    for g in ("Female", "Male"):
        mask = (test["sex"] == g).to_numpy()
        rate = float((y_pred[mask] == ">50K").mean())
        entry = groups[g]
        value = entry["metrics"]["selection_rate"]
        value = value["value"] if isinstance(value, dict) else value
        assert value == pytest.approx(rate, abs=1e-12)

    # evidence: digests of what was judged
    import hashlib

    assert results["model"]["sha256"] == hashlib.sha256(p["model"].read_bytes()).hexdigest()
    assert results["data"]["evaluation"]["sha256"] == \
        hashlib.sha256(p["test"].read_bytes()).hexdigest()
    assert results["data"]["evaluation"]["rows"] == len(test)
    assert results["data"]["reference"]["rows"] == len(adult["train"])
    assert results["policy"]["sha256"] == load_policy("default").sha256
    assert results["drift"]["n_reference"] == len(adult["train"])

    # a model with a large gender and race gap is not approved under the high tier
    di = next(c for c in results["checks"] if c["id"] == "fairness.disparate_impact_ratio")
    assert di["status"] == "fail" and di["judge_on"] == "interval"
    assert cert.status == "blocked"


def test_adult_without_model_and_reference_skips_with_reasons(adult: dict[str, Any]) -> None:
    test = adult["test"].copy()
    model = adult["model"]
    X = test[ADULT_CAT + ADULT_NUM]
    test["pred"] = model.predict(X)
    test["score"] = model.predict_proba(X)[:, list(model.classes_).index(">50K")]
    cert = certify(data=test, policy="default", tier="medium", target="income",
                   positive_label=">50K", prediction="pred", score="score",
                   sensitive=["sex"])
    results = cert.to_dict()
    assert_consistent(results)
    by_id = {c["id"]: c for c in results["checks"]}
    assert by_id["drift.psi"]["status"] == "skip"
    assert "reference" in by_id["drift.psi"]["message"]
    assert by_id["robustness.gaussian_noise"]["status"] == "skip"
    assert "model" in by_id["robustness.gaussian_noise"]["message"]
    assert results["model"] is None and results["data"]["reference"] is None
    assert results["drift"] is None
    assert cert.status in ("passed_with_warnings", "blocked")  # skips are never a clean pass
    assert results["metrics"]["overall"]["accuracy"]["value"] == pytest.approx(
        accuracy_score(test["income"], test["pred"]), abs=1e-12)


class CrashingScorer(ClassifierMixin, BaseEstimator):
    """A real estimator whose scoring breaks on large batches, as a model behind a
    size-limited scoring service would (small probes of the first rows succeed)."""

    def fit(self, X: pd.DataFrame, y: pd.Series) -> CrashingScorer:
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), self.classes_[0])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if len(X) > 100:
            raise MemoryError("scoring backend out of memory")
        return np.tile([0.7, 0.3], (len(X), 1))


def test_errored_metric_checks_block_the_model(adult: dict[str, Any]) -> None:
    test = adult["test"].head(500)
    model = CrashingScorer().fit(test[ADULT_NUM], test["income"])
    cert = certify(data=test, policy="default", tier="low", target="income",
                   positive_label=">50K", model=model, features=ADULT_NUM, sensitive=["sex"])
    errored = [c for c in cert.checks if c.status is Status.ERROR]
    assert errored, [(c.id, c.status) for c in cert.checks]
    assert all("scoring backend out of memory" in c.message for c in errored)
    assert any(c.severity == "block" for c in errored)
    assert cert.status == "blocked"
    assert any("metrics summary not computed" in n for n in cert.notes)


# --------------------------------------------------------------------------- German credit


def test_german_credit_lending_high_tier(german: dict[str, Any], tmp_path: Path) -> None:
    p = german["paths"]
    cert = certify(data=p["test"], reference=p["train"], model=p["model"],
                   policy="credit-lending", tier="high", target="credit",
                   sensitive=["sex", "age_band"])
    results = cert.to_dict()
    assert_consistent(results)
    assert results["policy"]["name"] == "credit-lending"
    assert results["policy"]["review_interval_days"] == 180
    assert results["settings"]["min_group_size"] == 50

    test, model = german["test"], german["model"]
    X = test[german["features"]]
    y_pred = model.predict(X)
    score = model.predict_proba(X)[:, list(model.classes_).index(1)]
    overall = results["metrics"]["overall"]
    assert overall["accuracy"]["value"] == pytest.approx(accuracy_score(test["credit"], y_pred),
                                                         abs=1e-12)
    assert overall["roc_auc"]["value"] == pytest.approx(roc_auc_score(test["credit"], score),
                                                        abs=1e-3)

    by_id = {c["id"]: c for c in results["checks"]}
    di = by_id["fairness.disparate_impact_ratio"]
    assert di["judge_on"] == "interval" and di["threshold"] == {"min": 0.8}
    assert any("ECOA" in r for r in di["regulations"])
    # each group against the reference group, with its own interval
    judged = [m for m in di["measurements"] if m["judged"]]
    assert judged and all(m["ci"] is not None for m in judged)
    rates = {g: float((y_pred[(test["sex"] == g).to_numpy()] == 1).mean())
             for g in ("female", "male")}
    female = next(m for m in judged if "female" in m["label"])
    assert female["value"] == pytest.approx(rates["female"] / rates["male"], abs=1e-12)
    for cid in ("fairness.equal_opportunity_difference", "fairness.calibration_gap",
                "integrity.proxy_features", "robustness.monotonicity"):
        assert cid in by_id
    # the model does not use the protected attributes: the counterfactual test says so
    assert by_id["robustness.counterfactual_flip"]["status"] == "skip"
    assert by_id["robustness.counterfactual_flip"]["message"]

    # the one end-to-end test that also renders the HTML report (the slow part)
    written = cert.write(tmp_path)
    on_disk = json.loads(written["results.json"].read_text(encoding="utf-8"))
    assert on_disk["status"] == cert.status and on_disk["checks"] == results["checks"]
    html = written["report.html"].read_text(encoding="utf-8")
    assert "credit-lending" in html and "Four-fifths rule" in html


def test_cli_exit_status_follows_the_verdict(german: dict[str, Any], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    p = german["paths"]
    common = ["certify", "--data", str(p["test"]), "--target", "credit",
              "--model", str(p["model"]), "--no-progress"]

    def run(args: list[str]) -> int:
        try:
            main(args)
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    lenient = tmp_path / "lenient.yaml"
    lenient.write_text(
        "name: lenient\nversion: 1\ntiers:\n  low:\n    checks:\n"
        "      - id: performance.roc_auc\n        threshold: {min: 0.5}\n"
        "        rationale: better than chance\n", encoding="utf-8")
    assert run([*common, "--policy", str(lenient), "--tier", "low", "--out",
                str(tmp_path / "ok")]) == 0
    assert json.loads((tmp_path / "ok" / "results.json").read_text())["status"] == "passed"
    strict = tmp_path / "strict.yaml"
    strict.write_text(lenient.read_text().replace("min: 0.5", "min: 0.99"), encoding="utf-8")
    assert run([*common, "--policy", str(strict), "--tier", "low", "--out",
                str(tmp_path / "no")]) == 1
    assert json.loads((tmp_path / "no" / "results.json").read_text())["status"] == "blocked"
    capsys.readouterr()
    assert run([*common, "--policy", str(strict), "--tier", "medium", "--out",
                str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "unknown tier 'medium'" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()  # bad input writes nothing


def test_every_shipped_check_id_is_registered() -> None:
    registry = load_check_modules()
    for name in ("default", "credit-lending"):
        for tier in load_policy(name).tiers.values():
            assert all(s.id in registry for s in tier.checks)


def test_point_and_interval_judging_of_a_real_metric(german: dict[str, Any]) -> None:
    """The same AUC, the same threshold: the point estimate passes, the interval warns."""
    p = german["paths"]
    test, model = german["test"], german["model"]
    auc = roc_auc_score(test["credit"],
                        model.predict_proba(test[german["features"]])[:, 1])
    bound = round(auc - 0.01, 3)  # just below the estimate, inside its 95% interval
    text = ("name: judge\nversion: 1\ntiers:\n  high:\n    checks:\n"
            f"      - {{id: performance.roc_auc, threshold: {{min: {bound}}}, judge: point}}\n"
            f"      - {{id: performance.roc_auc, name: on the interval, "
            f"threshold: {{min: {bound}}}, judge: interval}}\n"
            f"      - {{id: performance.roc_auc, name: far below, "
            f"threshold: {{min: {round(auc + 0.2, 3)}}}, judge: interval}}\n")
    from assay.policy import parse_policy

    cert = certify(data=p["test"], model=p["model"], policy=parse_policy(text), tier="high",
                   target="credit")
    point, interval, far = cert.checks
    assert point.measurements[0].value == pytest.approx(auc, abs=1e-3)
    lo, hi = interval.measurements[0].ci
    assert lo < bound < hi
    assert (point.status, interval.status, far.status) == (Status.PASS, Status.WARN,
                                                           Status.FAIL)
    assert cert.status == "blocked"
