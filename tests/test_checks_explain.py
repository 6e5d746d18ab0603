"""The explain.* checks: permutation importance, group dependence, reason codes.

Real models (scikit-learn), real data (German credit), synthetic cases whose
right answer is known, and scikit-learn as the oracle where one exists.
"""

from __future__ import annotations

import contextlib
import csv
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance as sk_permutation_importance
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score

import assay
from _datasets import DATASETS
from assay.checks.base import CheckSpec, JudgeOn, Status, Threshold, run_check
from assay.cli import main
from assay.data import ColumnRoles, ModelAdapter, open_dataset
from assay.errors import InputError, PolicyError
from assay.metrics.importance import permutation_importance, score
from assay.policy import load_check_modules, load_policy

GERMAN = DATASETS / "german_credit" / "german.data"
GERMAN_COLS = ["status", "duration", "credit_history", "purpose", "credit_amount", "savings",
               "present_employment", "installment_rate", "status_sex", "other_debtors",
               "present_residence_since", "property", "age", "installment_plans", "housing",
               "number_of_existing_credits", "job", "number_of_people_liable_for", "telephone",
               "foreign_worker", "credit"]
NUMERIC = ["duration", "credit_amount", "installment_rate", "present_residence_since", "age",
           "number_of_existing_credits", "number_of_people_liable_for"]


@dataclass
class Settings:
    @dataclass
    class Boot:
        seed: int = 3
        confidence: float = 0.95

    bootstrap: Any = field(default_factory=Boot)
    min_group_size: int = 30


@dataclass
class Ctx:
    evaluation: Any
    reference: Any | None
    model: Any | None
    roles: ColumnRoles
    settings: Any = field(default_factory=Settings)
    _cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key, fn):
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def progress(self, description, total=None):
        return None


def run(ctx: Ctx, cid: str, threshold: Threshold | None = None, judge: str = "point",
        **params: Any):
    defn = load_check_modules()[cid]
    return run_check(defn, ctx, CheckSpec(id=cid, threshold=threshold, params=params,
                                          judge_on=JudgeOn(judge), source="p.yaml:7"))


@pytest.fixture(scope="module")
def german() -> pd.DataFrame:
    return pd.read_csv(GERMAN, sep=" ", header=None, names=GERMAN_COLS)


@pytest.fixture(scope="module")
def german_lr(german: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression(max_iter=5000).fit(german[NUMERIC], german["credit"])


# --------------------------------------------------------------------------- importance


def test_weighted_scores_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.random(500), 2)  # ties, which count one half
    w = rng.integers(0, 4, size=(3, 500)).astype(float)
    for i in range(3):
        assert score("roc_auc", y, s, w[i:i + 1])[0] == pytest.approx(
            roc_auc_score(y, s, sample_weight=w[i]), abs=1e-12)
        d = (s > 0.5).astype(int)
        assert score("accuracy", y, d, w[i:i + 1])[0] == pytest.approx(
            accuracy_score(y, d, sample_weight=w[i]), abs=1e-12)


def test_permutation_importance_matches_scikit_learn(german: pd.DataFrame,
                                                     german_lr: LogisticRegression) -> None:
    X, y = german[NUMERIC], german["credit"]
    for metric, scoring in (("roc_auc", "roc_auc"), ("accuracy", "accuracy")):
        ours = permutation_importance(german_lr, X, y, metric, n_repeats=40, rng=1, n_boot=0)
        ref = sk_permutation_importance(german_lr, X, y, scoring=scoring, n_repeats=40,
                                        random_state=1)
        for j, f in enumerate(NUMERIC):
            # the two draw different shuffles: the means agree within their noise
            tol = 4 * np.hypot(ours.std[f], ref.importances_std[j]) / np.sqrt(40) + 1e-6
            assert ours.mean[f] == pytest.approx(ref.importances_mean[j], abs=tol), (metric, f)
    # one shuffle, scored by scikit-learn: the same number exactly
    one = permutation_importance(german_lr, X, y, "roc_auc", n_repeats=1,
                                 rng=np.random.default_rng(5), n_boot=0, features=["duration"])
    perm = np.random.default_rng(5).permutation(len(X))
    Xp = X.assign(duration=X["duration"].to_numpy()[perm])
    p1 = german_lr.predict_proba(X)[:, 0]
    p2 = german_lr.predict_proba(Xp)[:, 0]
    expected = roc_auc_score(y == 1, p1) - roc_auc_score(y == 1, p2)
    assert one.mean["duration"] == pytest.approx(expected, abs=1e-12)


def test_importance_intervals_cover_and_noise_features_sit_at_zero() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["signal", "weak", "noise"])
    y = (2 * X.signal + 0.5 * X.weak + rng.logistic(size=n) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    imp = permutation_importance(model, X, y, "roc_auc", n_repeats=5, rng=0, n_boot=300)
    assert imp.ranked() == ["signal", "weak", "noise"]
    for f in imp.features:
        lo, hi = imp.ci[f]
        assert lo <= imp.mean[f] <= hi
    assert imp.ci["signal"][0] > 0.2
    assert abs(imp.mean["noise"]) < 2e-3 and imp.ci["noise"][0] < 2e-3


def test_importance_check_on_german_credit(german: pd.DataFrame,
                                           german_lr: LogisticRegression) -> None:
    roles = ColumnRoles(target="credit", positive_label=1, features=NUMERIC,
                        sensitive=["status_sex"])
    ds = open_dataset(german, roles)
    ctx = Ctx(ds, ds, ModelAdapter.from_estimator(german_lr), roles)
    r = run(ctx, "explain.importance", Threshold(min=0.5), "interval", top_k=3,
            sample_rows=600)
    share = r.measurements[0]
    assert share.label == "share of importance in the top 3" and share.n == 600
    assert 0 < share.value <= 1 and share.ci[0] <= share.value <= share.ci[1]
    assert "600 rows" in share.note and "600 rows" in r.message
    feats = [m for m in r.measurements[1:] if m.label in NUMERIC]
    assert [m.label for m in feats] == sorted(NUMERIC, key=lambda f: -next(
        m.value for m in feats if m.label == f))
    assert feats[0].label == "duration"  # the strongest numeric driver of German credit
    by = r.details["by_group"]["status_sex"]
    assert set(by) == {"A91", "A92", "A93", "A94"}
    assert all(gi["n"] >= 30 for gi in by.values())
    big = Ctx(ds, ds, ctx.model, roles, settings=Settings(min_group_size=100))
    r100 = run(big, "explain.importance", Threshold(min=0.5), top_k=3, sample_rows=600)
    assert set(r100.details["by_group"]["status_sex"]) == {"A92", "A93"}
    assert set(r100.details["small_groups"]["status_sex"]) == {"A91", "A94"}
    # reported only: without a threshold the share passes unconditionally
    assert run(ctx, "explain.importance", None, sample_rows=600).status is Status.PASS
    # a seeded sample: the same numbers twice
    again = run(Ctx(ds, ds, ctx.model, roles), "explain.importance", Threshold(min=0.5),
                "interval", top_k=3, sample_rows=600)
    assert again.measurements[0].value == share.value


def test_importance_skips_and_rejects_bad_params(german: pd.DataFrame,
                                                 german_lr: LogisticRegression) -> None:
    roles = ColumnRoles(target="credit", positive_label=1, features=NUMERIC)
    ds = open_dataset(german, roles)
    r = run(Ctx(ds, None, None, roles), "explain.importance", Threshold(min=0.5))
    assert r.status is Status.SKIP and "no model" in r.message
    no_target = ColumnRoles(positive_label=1, features=NUMERIC)
    ds2 = open_dataset(german[NUMERIC], no_target)
    r = run(Ctx(ds2, None, ModelAdapter.from_estimator(german_lr), no_target),
            "explain.importance", Threshold(min=0.5))
    assert r.status is Status.SKIP and "target" in r.message
    ctx = Ctx(ds, None, ModelAdapter.from_estimator(german_lr), roles)
    with pytest.raises(PolicyError, match=r"explain.importance \(p.yaml:7\): parameter "
                                          r"'metric'.*got 'mse'"):
        run(ctx, "explain.importance", metric="mse")
    with pytest.raises(PolicyError, match="'sample_rows': expected an integer >= 1"):
        run(ctx, "explain.importance", sample_rows=0)
    with pytest.raises(InputError, match="feature 'salary' is not a model input"):
        run(ctx, "explain.importance", features=["salary"])


# --------------------------------------------------------------------------- group dependence


class Scorer:
    """A fitted, scikit-learn style classifier with a fixed logistic score."""

    def __init__(self, fn):
        self.fn = fn
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-self.fn(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def _synthetic(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                       "x3": rng.normal(size=n),
                       "sex": rng.choice(["F", "M"], size=n)})
    return df


def _outcomes(df: pd.DataFrame, model: Scorer, seed: int = 1) -> pd.DataFrame:
    p = model.predict_proba(df)[:, 1]
    return df.assign(y=(np.random.default_rng(seed).random(len(df)) < p).astype(int))


def _dependence(df: pd.DataFrame, model: Scorer):
    roles = ColumnRoles(target="y", positive_label=1, sensitive=["sex"],
                        features=["x1", "x2", "x3", "sex"])
    ds = open_dataset(df, roles)
    ctx = Ctx(ds, None, ModelAdapter.from_estimator(model), roles)
    return run(ctx, "explain.group_dependence", Threshold(max=0.2), "interval",
               sample_rows=3000)


def test_a_model_that_uses_the_protected_attribute_fails() -> None:
    uses = Scorer(lambda X: 1.5 * X["x1"] + 0.5 * X["x2"] + 2.5 * (X["sex"] == "M") - 1.25)
    r = _dependence(_outcomes(_synthetic(), uses), uses)
    share = next(m for m in r.measurements if m.label == "sex: importance share")
    assert share.status is Status.FAIL and share.ci[0] > 0.2
    assert r.status is Status.FAIL


def test_a_model_that_ignores_the_protected_attribute_passes() -> None:
    fair = Scorer(lambda X: 1.5 * X["x1"] + 0.5 * X["x2"])
    r = _dependence(_outcomes(_synthetic(), fair), fair)
    share = next(m for m in r.measurements if m.label == "sex: importance share")
    assert share.value == pytest.approx(0.0, abs=1e-12)  # shuffling sex changes no score
    dist = next(m for m in r.measurements if "profile distance" in m.label)
    assert dist.label in ("sex=F vs M: profile distance", "sex=M vs F: profile distance")
    assert dist.value < 0.1
    assert r.status is Status.PASS, r.message


def test_an_explanation_that_differs_by_group_fails() -> None:
    # the same inputs, but x1 drives the score for women and x2 for men
    split = Scorer(lambda X: np.where(X["sex"] == "F", 2 * X["x1"], 2 * X["x2"]))
    r = _dependence(_outcomes(_synthetic(), split), split)
    dist = next(m for m in r.measurements if "profile distance" in m.label)
    # women's profile is x1 and sex, men's x2 and sex (sex, shuffled across everyone,
    # switches each row's branch): half of each profile differs
    assert dist.value > 0.5 and dist.ci[0] > 0.2 and dist.status is Status.FAIL
    assert "Spearman" in dist.note


def test_proxies_of_the_protected_attribute_are_found() -> None:
    df = _synthetic()
    rng = np.random.default_rng(2)
    df["zip"] = np.where(rng.random(len(df)) < 0.9, df["sex"], "X")  # a 90% proxy
    proxy = Scorer(lambda X: 2.0 * (X["zip"] == "M") + X["x1"] - 1)
    df = _outcomes(df, proxy)
    roles = ColumnRoles(target="y", positive_label=1, sensitive=["sex"],
                        features=["x1", "x2", "x3", "zip", "sex"])
    ds = open_dataset(df, roles)
    r = run(Ctx(ds, None, ModelAdapter.from_estimator(proxy), roles),
            "explain.group_dependence", Threshold(max=0.2), "interval", sample_rows=3000)
    alone = next(m for m in r.measurements if m.label == "sex: importance share")
    both = next(m for m in r.measurements if m.label.startswith("sex and its proxies"))
    assert alone.value == pytest.approx(0.0, abs=1e-12)
    assert "zip" in both.note and both.status is Status.FAIL
    assert r.details["proxies"]["sex"][0]["feature"] == "zip"


def test_cramers_v_matches_scipy() -> None:
    from scipy.stats.contingency import association

    from assay.checks.explain import cramers_v

    rng = np.random.default_rng(4)
    a = pd.Series(rng.choice(list("abc"), 800))
    b = pd.Series(np.where(rng.random(800) < 0.6, a, rng.choice(list("xyzw"), 800)))
    table = pd.crosstab(a, b).to_numpy()
    assert cramers_v(a, b) == pytest.approx(association(table, method="cramer"), abs=1e-12)


# --------------------------------------------------------------------------- reason codes


def _german_ctx(german, model, features=NUMERIC, reference=True):
    roles = ColumnRoles(target="credit", positive_label=1, features=features,
                        sensitive=["status_sex"])
    ds = open_dataset(german, roles)
    return Ctx(ds, ds if reference else None, ModelAdapter.from_estimator(model), roles)


def test_reason_codes_of_a_linear_model_rank_as_coef_times_distance(
        german: pd.DataFrame, german_lr: LogisticRegression) -> None:
    """For logistic regression the reasons rank as coef_j * (ref_j - x_j) on the log-odds."""
    ctx = _german_ctx(german, german_lr)
    r = run(ctx, "explain.reason_coverage", Threshold(min=0.5), k=3, min_contribution=0.0)
    table = r.details["reason_codes"]
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]
    X = german[NUMERIC]
    pred = german_lr.predict(X)
    declined = np.flatnonzero(pred != 1)
    assert [row["row"] for row in rows] == declined.tolist()  # every declined row
    approved = X[pred == 1]
    ref = approved.median().round()  # integer columns keep integer medians
    assert table["reference"] == {f: int(ref[f]) for f in NUMERIC}
    # the positive class is 1 (good credit): the first column of classes_ [1, 2]
    coef = -german_lr.coef_[0]
    for row in rows:
        x = X.iloc[row["row"]]
        lift = coef * (ref.to_numpy() - x.to_numpy())
        order = [NUMERIC[j] for j in np.argsort(-lift, kind="stable") if lift[j] > 1e-12][:3]
        got = [row[f"reason_{i}"] for i in (1, 2, 3) if row[f"reason_{i}"]]
        assert got == order, row
        assert row["score"] == pytest.approx(german_lr.predict_proba(X.iloc[[row["row"]]])[0, 0])
    n = len(rows)
    full = sum(1 for row in rows if row["reason_3"])
    assert r.measurements[0].value == pytest.approx(full / n)
    lo, hi = r.measurements[0].ci
    assert lo < full / n < hi


def test_python_api_gives_the_same_reason_codes(german: pd.DataFrame,
                                                german_lr: LogisticRegression) -> None:
    codes = assay.explain.reason_codes(german_lr, german[[*NUMERIC, "credit"]],
                                       target="credit", positive_label=1, k=3)
    ctx = _german_ctx(german, german_lr)
    table = run(ctx, "explain.reason_coverage", Threshold(min=0.5), k=3).details["reason_codes"]
    assert codes["row"].tolist() == [row[0] for row in table["rows"]]
    assert codes["reason_1"].tolist() == [row[2] for row in table["rows"]]
    with pytest.raises(InputError, match="k: expected an integer >= 1"):
        assay.explain.reason_codes(german_lr, german, k=0)
    with pytest.raises(InputError, match=r"feature column .salary. not found"):
        assay.explain.reason_codes(german_lr, german, target="credit", features=["salary"])


def test_reason_coverage_and_stability_known_answers(german: pd.DataFrame) -> None:
    one = LogisticRegression(max_iter=1000).fit(german[["duration"]], german["credit"])
    ctx = _german_ctx(german, one, features=["duration"])
    # one input: no declined row can get two distinct reasons, every one gets one
    two = run(ctx, "explain.reason_coverage", Threshold(min=0.9), "interval", k=2)
    assert two.measurements[0].value == 0.0 and two.status is Status.FAIL
    single = run(ctx, "explain.reason_coverage", Threshold(min=0.9), "interval", k=1)
    assert single.measurements[0].value == 1.0 and single.status is Status.PASS
    # no noise: the reasons cannot change
    still = run(ctx, "explain.reason_stability", Threshold(min=0.9), "interval", k=1,
                noise=0.0)
    assert still.measurements[0].value == 1.0


def test_reason_stability_on_german_credit(german: pd.DataFrame,
                                           german_lr: LogisticRegression) -> None:
    ctx = _german_ctx(german, german_lr)
    r = run(ctx, "explain.reason_stability", Threshold(min=0.9), "interval", k=4, noise=0.01)
    m = r.measurements[0]
    assert m.value > 0.9 and m.ci[0] <= m.value <= m.ci[1]
    assert "1,000 rows" in m.note
    loud = run(ctx, "explain.reason_stability", Threshold(min=0.9), "interval", k=4, noise=1.0)
    assert loud.measurements[0].value < m.value  # more noise, fewer stable reasons


def test_reason_checks_skip_with_the_reason(german: pd.DataFrame,
                                            german_lr: LogisticRegression) -> None:
    r = run(_german_ctx(german, german_lr, reference=False), "explain.reason_coverage",
            Threshold(min=0.9))
    assert r.status is Status.SKIP and "training data" in r.message
    roles = ColumnRoles(target="duration", task="regression", features=["age", "credit_amount"])
    ds = open_dataset(german, roles)
    reg = LinearRegression().fit(german[["age", "credit_amount"]], german["duration"])
    r = run(Ctx(ds, ds, ModelAdapter.from_estimator(reg), roles), "explain.reason_stability",
            Threshold(min=0.9))
    assert r.status is Status.SKIP and "regression" in r.message


# --------------------------------------------------------------------------- end to end


def test_certify_writes_reason_codes_and_the_report_shows_the_family(
        german: pd.DataFrame, german_lr: LogisticRegression, tmp_path: Path) -> None:
    data = german[[*NUMERIC, "status_sex", "credit"]]
    cert = assay.certify(data=data, reference=data, model=german_lr, policy="credit-lending",
                         tier="high", target="credit", positive_label=1,
                         sensitive=["status_sex"], out_dir=tmp_path)
    ids = {c.id: c for c in cert.checks if c.family == "explain"}
    assert set(ids) == {"explain.importance", "explain.group_dependence",
                        "explain.reason_coverage", "explain.reason_stability"}
    assert all(c.status is not Status.ERROR for c in ids.values()), \
        [(c.id, c.message) for c in ids.values()]
    with open(tmp_path / "reason_codes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["row", "score", *[f"{w}_{i}" for i in (1, 2, 3, 4)
                                               for w in ("reason", "contribution")]]
    declined = np.flatnonzero(german_lr.predict(german[NUMERIC]) != 1)
    assert [int(r["row"]) for r in rows] == declined.tolist()
    assert all(r["reason_1"] in NUMERIC and float(r["contribution_1"]) > 0 for r in rows)
    html = (tmp_path / "report.html").read_text()
    assert 'id="family-explain"' in html and "<h2>Explainability</h2>" in html
    assert "Permutation importance (overall)" in html
    assert "Permutation importance by status_sex" in html
    results = json.loads((tmp_path / "results.json").read_text())
    cov = next(c for c in results["checks"] if c["id"] == "explain.reason_coverage")
    assert cov["details"]["declined"] == len(rows) and "1,000 rows" in cov["message"]


def test_no_reason_codes_file_without_the_check(german: pd.DataFrame,
                                                german_lr: LogisticRegression,
                                                tmp_path: Path) -> None:
    data = german[[*NUMERIC, "credit"]]
    assay.certify(data=data, model=german_lr, policy="default", tier="low", target="credit",
                  positive_label=1, out_dir=tmp_path)
    assert not (tmp_path / "reason_codes.csv").exists()


def test_policy_errors_name_the_line(german: pd.DataFrame, german_lr: LogisticRegression,
                                     tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent("""\
        name: p
        version: "1"
        tiers:
          t:
            checks:
              - id: explain.reason_coverage
                params: {k: 4, top: 3}
                threshold: {min: 0.9}
        """))
    with pytest.raises(PolicyError, match=r"p.yaml:7.*top"):
        load_policy(path)
    path.write_text(path.read_text().replace("top: 3", "seed: 1").replace(
        "k: 4", "k: 0"))
    data = german[[*NUMERIC, "credit"]]
    cert = assay.certify(data=data, reference=data, model=german_lr, policy=path, tier="t",
                         target="credit", positive_label=1)
    c = cert.checks[0]
    assert c.status is Status.ERROR and "p.yaml:6" in c.message and "'k'" in c.message


def test_checks_command_lists_the_family(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        main(["checks", "--family", "explain"])
    except SystemExit as exc:
        assert not exc.code
    out = capsys.readouterr().out
    for cid in ("importance", "group_dependence", "reason_coverage", "reason_stability"):
        assert cid in out
    for p in ("sample_rows", "top_k", "proxy_threshold", "noise", "repeats"):
        assert p in out
    assert "fairness." not in out


def test_notice_names_the_reasons_most_often_given(german: pd.DataFrame,
                                                   german_lr: LogisticRegression) -> None:
    from assay.registry.cards import notice_document

    r = run(_german_ctx(german, german_lr), "explain.reason_coverage", Threshold(min=0.9), k=4)
    results = {"checks": [r.to_dict()]}
    reasons = assay.explain.principal_reasons(results)
    first = [m.label.removeprefix("principal reason: ") for m in r.measurements
             if m.label.startswith("principal reason: ")]
    assert reasons == {"k": 4, "features": first[:4], "declined": r.details["declined"]}
    card = {"model_details": {"name": "credit", "version": {"name": "1"}, "assay": {
        "certification": {"status": "passed", "policy": "credit-lending",
                          "adverse_reasons": reasons}}}}
    text = " ".join(notice_document(card)["safeguards"])
    assert "told its main reasons (up to 4)" in text and first[0] in text
    assert assay.explain.principal_reasons({"checks": []}) is None
    card["model_details"]["assay"]["certification"]["adverse_reasons"] = None
    assert "main reasons" not in " ".join(notice_document(card)["safeguards"])


def test_cli_certify_writes_and_names_reason_codes(german: pd.DataFrame,
                                                    german_lr: LogisticRegression,
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import joblib

    monkeypatch.setenv("COLUMNS", "200")
    data = german[[*NUMERIC, "status_sex", "credit"]]
    data.to_parquet(tmp_path / "data.parquet")
    joblib.dump(german_lr, tmp_path / "model.joblib")
    with contextlib.suppress(SystemExit):  # exits 1 when the policy blocks the model
        main(["certify", "--policy", "credit-lending", "--tier", "low", "--model",
              str(tmp_path / "model.joblib"), "--train", str(tmp_path / "data.parquet"),
              "--data", str(tmp_path / "data.parquet"), "--target", "credit",
              "--positive-label", "1", "--sensitive", "status_sex", "--out",
              str(tmp_path / "out"), "--no-progress"])
    out = " ".join(capsys.readouterr().out.split())
    assert "reason_codes.csv" in out and "explain.reason_coverage" in out
    assert (tmp_path / "out" / "reason_codes.csv").read_text().startswith("row,score,reason_1")


def test_wilson_interval_matches_statsmodels() -> None:
    from statsmodels.stats.proportion import proportion_confint

    from assay.metrics._formulas import wilson_interval

    for k, n in ((0, 10), (3, 10), (195, 213), (213, 213), (1, 2000)):
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert wilson_interval(k, n, 0.95) == pytest.approx((lo, hi), abs=1e-12)
    assert wilson_interval(0, 0) is None


def test_importance_chart_draws_bars_and_whiskers() -> None:
    from assay.report.explain_charts import explain_charts, importance_bars

    imp = {"features": [{"feature": "income", "mean": 0.12, "ci": [0.09, 0.15]},
                        {"feature": "<b>age</b>", "mean": 0.01, "ci": [-0.01, 0.03]},
                        {"feature": "zip", "mean": 0.02, "ci": None}]}
    svg = importance_bars([("overall", imp)], title="Permutation importance (overall)")
    assert svg.startswith("<svg") and svg.count("<rect") == 3
    assert "&lt;b&gt;age&lt;/b&gt;" in svg and "<b>" not in svg  # labels are escaped
    assert "income: 0.12 [0.09, 0.15]" in svg  # the bar's tooltip gives the interval
    two = importance_bars([("sex=F", imp), ("sex=M", imp)], title="by sex")
    assert two.count("<rect") == 6 and "sex=M" in two
    check = {"id": "explain.group_dependence", "details": {
        "metric": "roc_auc", "importance": imp, "by_group": {"sex": {"F": imp, "M": imp}}}}
    drawn = explain_charts(check)
    assert "Permutation importance by sex" in drawn and "(overall)" not in drawn
    assert "(overall)" in explain_charts(check | {"id": "explain.importance"})
    assert explain_charts({"id": "explain.reason_coverage", "details": {}}) is None
