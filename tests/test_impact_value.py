"""Value curves and the value-fairness frontier on German credit (its 5:1 cost matrix).

Every number is checked against independent row-level code written here: a brute
force sweep over the distinct scores, a row-level bootstrap, an exhaustive search
over pairs of group thresholds, and Fairlearn's ThresholdOptimizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from _datasets import DATASETS
from assay.errors import InputError
from assay.impact import (
    parse_value_model,
    score_stats,
    value_curve,
    value_fairness_frontier,
)
from assay.impact.value import stats_from_data

GERMAN_COLUMNS = ["status", "duration", "credit_history", "purpose", "amount", "savings",
                  "employment", "installment_rate", "status_sex", "debtors", "residence",
                  "property", "age", "other_plans", "housing", "existing_credits", "job",
                  "dependents", "telephone", "foreign", "credit"]
# The German credit cost matrix: granting credit to a bad risk costs 5, refusing a
# good one costs 1. Positive label = good credit, positive decision = grant.
COST_5_1 = "tp=0,fp=-5,tn=0,fn=-1"


@pytest.fixture(scope="module")
def german(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    df = pd.read_csv(DATASETS / "german_credit" / "german.data", sep=" ", header=None,
                     names=GERMAN_COLUMNS)
    df["sex"] = np.where(df["status_sex"].isin(["A92", "A95"]), "female", "male")
    df["credit"] = (df["credit"] == 1).astype(int)
    df = df.drop(columns=["status_sex"])
    train, test = train_test_split(df, test_size=0.5, random_state=0, stratify=df["credit"])
    numeric = pd.api.types.is_numeric_dtype
    cat = [c for c in df.columns if not numeric(df[c]) and c != "sex"]
    num = [c for c in df.columns if numeric(df[c]) and c != "credit"]
    pre = ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), cat),
                             ("n", StandardScaler(), num)])
    model = make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(train[cat + num],
                                                                     train["credit"])
    test = test.reset_index(drop=True)
    test["score"] = model.predict_proba(test[cat + num])[:, 1]
    path = tmp_path_factory.mktemp("german") / "test.csv"
    test.to_csv(path, index=False)
    return {"df": test, "path": path}


def brute_values(y: np.ndarray, s: np.ndarray, tp: Any, fp: Any, tn: Any, fn: Any
                 ) -> tuple[list[float | None], np.ndarray]:
    """Row by row: the total value of score >= t at every distinct score and above all."""
    thresholds: list[float | None] = [*map(float, np.unique(s)), None]
    out = []
    for t in thresholds:
        d = s >= t if t is not None else np.zeros(len(s), bool)
        v = np.where(d & (y == 1), tp, 0) + np.where(d & (y == 0), fp, 0) \
            + np.where(~d & (y == 0), tn, 0) + np.where(~d & (y == 1), fn, 0)
        out.append(float(np.sum(v)))
    return thresholds, np.array(out)


def test_best_threshold_matches_a_brute_force_sweep(german: dict[str, Any]) -> None:
    df = german["df"]
    y, s = df["credit"].to_numpy(), df["score"].to_numpy()
    stats = score_stats(y, s, df["sex"].to_numpy(), grouping="sex")
    res = value_curve(stats, parse_value_model(COST_5_1), points=10_000, n_boot=0)
    thresholds, values = brute_values(y, s, 0, -5, 0, -1)
    top = values.max()
    best_t = [t for t, v in zip(thresholds, values, strict=True) if v == top][-1]
    assert res.best["threshold"] == best_t
    assert res.best["total_value"] == pytest.approx(top, abs=1e-9)
    assert res.best["value_per_decision"] == pytest.approx(top / len(y), abs=1e-12)
    # every distinct score is on the curve (points >= distinct scores + 1), exactly
    assert [c["threshold"] for c in res.curve] == thresholds
    np.testing.assert_allclose([c["total_value"] for c in res.curve], values, atol=1e-9)
    # refusing everybody costs every good applicant 1: the best rule must beat it
    assert top > values[-1]
    # per group, at the best threshold
    for g in ("female", "male"):
        m = df["sex"].to_numpy() == g
        _, vg = brute_values(y[m], s[m], 0, -5, 0, -1)
        gt = [*map(float, np.unique(s[m])), None]
        d = s[m] >= best_t
        expect = (-5 * (d & (y[m] == 0)) - 1 * (~d & (y[m] == 1))).sum() / m.sum()
        assert res.groups[g]["value_per_decision_at_best"] == pytest.approx(expect, abs=1e-12)
        assert res.groups[g]["own_best_value_per_decision"] == pytest.approx(
            vg.max() / m.sum(), abs=1e-12)
        assert res.groups[g]["own_best_threshold"] in gt


def test_per_row_value_columns_are_exact(german: dict[str, Any]) -> None:
    """Loan amount x margin for a good loan granted; loss given default for a bad one."""
    df = german["df"].copy()
    df["gain"] = df["amount"] * 0.08
    df["loss"] = -df["amount"] * 0.45
    y, s = df["credit"].to_numpy(), df["score"].to_numpy()
    model = parse_value_model("tp=gain,fp=loss,tn=0,fn=0")
    assert model.columns == ["gain", "loss"]
    stats = score_stats(y, s, values={"gain": df["gain"], "loss": df["loss"]})
    res = value_curve(stats, model, points=100_000, n_boot=0)
    _, values = brute_values(y, s, df["gain"].to_numpy(), df["loss"].to_numpy(), 0, 0)
    np.testing.assert_allclose([c["total_value"] for c in res.curve], values,
                               rtol=1e-12, atol=1e-6)
    assert res.best["total_value"] == pytest.approx(values.max(), abs=1e-6)


def test_bootstrap_interval_matches_a_row_level_bootstrap(german: dict[str, Any]) -> None:
    df = german["df"]
    y, s = df["credit"].to_numpy(), df["score"].to_numpy()
    res = value_curve(score_stats(y, s), parse_value_model(COST_5_1), n_boot=4000, seed=1)
    t = res.best["threshold"]
    rng = np.random.default_rng(7)
    reps = []
    for _ in range(4000):
        i = rng.integers(0, len(y), len(y))
        d = s[i] >= t
        reps.append((-5 * (d & (y[i] == 0)) - (~d & (y[i] == 1))).mean())
    lo, hi = np.quantile(reps, [0.025, 0.975])
    got = res.best["value_per_decision_ci"]
    # both are Monte Carlo estimates of the same distribution's quantiles: the standard
    # error of a 2.5% quantile with 4,000 replicates is about 0.005 here
    assert got[0] == pytest.approx(lo, abs=0.02)
    assert got[1] == pytest.approx(hi, abs=0.02)
    assert got[0] < res.best["value_per_decision"] < got[1]


def _pair_search(y: np.ndarray, s: np.ndarray, g: np.ndarray, constraint: str,
                 level: float, costs: tuple[float, float, float, float]) -> float:
    """Exhaustive search over every pair of group thresholds (two groups)."""
    tp, fp, tn, fn = costs
    per = []
    for name in np.unique(g):
        m = g == name
        ys, ss = y[m], s[m]
        ts = [*np.unique(ss), np.inf]
        rates, vals = [], []
        for t in ts:
            d = ss >= t
            v = (tp * (d & (ys == 1)) + fp * (d & (ys == 0)) + tn * (~d & (ys == 0))
                 + fn * (~d & (ys == 1))).sum()
            rates.append(d.mean() if constraint == "demographic_parity_ratio"
                         else d[ys == 1].mean())
            vals.append(v)
        per.append((np.array(rates), np.array(vals, float)))
    (r1, v1), (r2, v2) = per
    R1, R2 = np.meshgrid(r1, r2, indexing="ij")
    if constraint == "demographic_parity_ratio":
        hi = np.maximum(R1, R2)
        ok = np.where(hi > 0, np.minimum(R1, R2) / np.where(hi > 0, hi, 1), 1.0) >= level - 1e-12
    else:
        ok = np.abs(R1 - R2) <= level + 1e-12
    tot = v1[:, None] + v2[None, :]
    return float(tot[ok].max())


@pytest.mark.parametrize("constraint,levels", [
    ("demographic_parity_ratio", [0.5, 0.8, 0.9, 0.95, 1.0]),
    ("equal_opportunity_difference", [0.2, 0.05, 0.01, 0.0]),
])
def test_deterministic_frontier_matches_an_exhaustive_search(
        german: dict[str, Any], constraint: str, levels: list[float]) -> None:
    df = german["df"]
    y, s, g = df["credit"].to_numpy(), df["score"].to_numpy(), df["sex"].to_numpy()
    stats = score_stats(y, s, g, grouping="sex")
    res = value_fairness_frontier(stats, parse_value_model(COST_5_1), constraint=constraint,
                                  levels=levels)
    for row in res.levels:
        expect = _pair_search(y, s, g, constraint, row["level"], (0, -5, 0, -1))
        assert row["feasible"]
        assert row["total_value"] == pytest.approx(expect, abs=1e-9), row["level"]
        # the thresholds reported give the value and meet the constraint, row by row
        total, rates = 0.0, []
        for name, info in row["groups"].items():
            m = g == name
            t = info["threshold"]
            d = s[m] >= t if t is not None else np.zeros(m.sum(), bool)
            total += (-5 * (d & (y[m] == 0)) - (~d & (y[m] == 1))).sum()
            rates.append(d.mean() if constraint == "demographic_parity_ratio"
                         else d[y[m] == 1].mean())
        assert total == pytest.approx(row["total_value"], abs=1e-9)
        if constraint == "demographic_parity_ratio":
            assert min(rates) / max(rates) >= row["level"] - 1e-12
        else:
            assert max(rates) - min(rates) <= row["level"] + 1e-12
    assert res.levels[0]["total_value"] >= res.levels[-1]["total_value"]
    assert res.unconstrained["total_value"] >= res.single_threshold["total_value"]


class _Scores(ClassifierMixin, BaseEstimator):
    """A fitted 'model' whose probability is the score column (for Fairlearn)."""

    def fit(self, X: Any, y: Any) -> _Scores:
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        p = np.asarray(X)[:, 0]
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return (np.asarray(X)[:, 0] >= 0.5).astype(int)


@pytest.mark.parametrize("constraint,fairlearn_name", [
    ("demographic_parity_ratio", "demographic_parity"),
    ("equal_opportunity_difference", "true_positive_rate_parity"),
])
def test_randomised_frontier_at_least_as_good_as_fairlearn(
        german: dict[str, Any], constraint: str, fairlearn_name: str) -> None:
    """At exact parity (ratio 1, difference 0) with accuracy as the value (tp = tn = 1),
    assay's randomised thresholds reach at least the expected accuracy of Fairlearn's
    ThresholdOptimizer (which searches a grid of 1,000 rates), at the same constraint."""
    from fairlearn.postprocessing import ThresholdOptimizer

    df = german["df"]
    y, s, g = df["credit"].to_numpy(), df["score"].to_numpy(), df["sex"].to_numpy()
    X = s.reshape(-1, 1)
    to = ThresholdOptimizer(estimator=_Scores().fit(X, y), constraints=fairlearn_name,
                            objective="accuracy_score", prefit=True,
                            predict_method="predict_proba")
    to.fit(X, y, sensitive_features=g)
    p = to._pmf_predict(X, sensitive_features=g)[:, 1]
    fl_accuracy = float(np.mean(p * y + (1 - p) * (1 - y)))
    fl_rates = [p[(g == name) & ((y == 1) if fairlearn_name != "demographic_parity"
                                 else True)].mean() for name in ("female", "male")]
    assert fl_rates[0] == pytest.approx(fl_rates[1], abs=2e-3)  # Fairlearn's own constraint

    stats = score_stats(y, s, g, grouping="sex")
    level = 1.0 if constraint == "demographic_parity_ratio" else 0.0
    accuracy = parse_value_model("tp=1,fp=0,tn=1,fn=0")
    rnd = value_fairness_frontier(stats, accuracy, constraint=constraint, levels=[level],
                                  randomized=True).levels[0]
    det = value_fairness_frontier(stats, accuracy, constraint=constraint,
                                  levels=[level]).levels[0]
    assert rnd["value_per_decision"] >= fl_accuracy - 1e-9
    assert rnd["value_per_decision"] == pytest.approx(fl_accuracy, abs=0.01)
    assert rnd["achieved"] == pytest.approx(level, abs=1e-9)
    assert rnd["value_per_decision"] >= det["value_per_decision"] - 1e-12
    # the randomised rule, applied row by row in expectation, gives the value it reports
    expected = 0.0
    rates = []
    for name, info in rnd["groups"].items():
        m = g == name
        hi_t, lo_t, ph = info["threshold_high"], info["threshold_low"], info["probability_high"]
        d_hi = s[m] >= hi_t if hi_t is not None else np.zeros(m.sum(), bool)
        d_lo = s[m] >= lo_t if lo_t is not None else np.zeros(m.sum(), bool)
        pm = ph * d_hi + (1 - ph) * d_lo
        expected += (pm * y[m] + (1 - pm) * (1 - y[m])).sum()
        rates.append(pm.mean() if constraint == "demographic_parity_ratio"
                     else pm[y[m] == 1].mean())
    assert expected / len(y) == pytest.approx(rnd["value_per_decision"], abs=1e-9)
    assert rates[0] == pytest.approx(rates[1], abs=1e-9)


def test_stats_from_a_file_equal_stats_from_arrays(german: dict[str, Any]) -> None:
    df = german["df"]
    a = stats_from_data(german["path"], target="credit", positive_label="1", score="score",
                        model=parse_value_model(COST_5_1), sensitive=["sex"])
    b = score_stats(df["credit"], df["score"], df["sex"], grouping="sex")
    assert a.groups == b.groups
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.scores, b.scores)


@pytest.mark.parametrize("spec,message", [
    ("tp=0,fp=-5,tn=0", "missing fn"),
    ("tp=0,fp=-5,tn=0,fn=-1,tp=2", "'tp' is given twice"),
    ("tp=0,fp=-5,tn=0,fx=-1", "unknown outcome 'fx'"),
    ("tp=0,fp=nan,tn=0,fn=-1", "not a finite number"),
    ("tp 0", "expected OUTCOME=VALUE"),
])
def test_bad_value_models_are_refused(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_value_model(spec)


def run(argv: list[str]) -> int:
    from assay.cli import main

    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def base(path: Path) -> list[str]:
    return ["impact", "value", "--data", str(path), "--target", "credit",
            "--positive-label", "1", "--score", "score"]


def test_cli_value_json(german: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*base(german["path"]), "--value", COST_5_1, "--sensitive", "sex",
                "--format", "json", "--replicates", "200"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["best"]) >= {"threshold", "value_per_decision"}
    assert out["curve"] and set(out["curve"][0]) >= {"threshold", "value_per_decision"}
    assert set(out["groups"]) == {"female", "male"}
    assert "exact" in out["settings"]["exactness"]
    df = german["df"]
    _, values = brute_values(df["credit"].to_numpy(), df["score"].to_numpy(), 0, -5, 0, -1)
    assert out["best"]["value_per_decision"] == pytest.approx(values.max() / len(df))


def test_cli_frontier_table(german: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*base(german["path"]), "--value", COST_5_1, "--sensitive", "sex",
            "--levels", "0.8,1"]
    argv[1] = "frontier"
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "Frontier: demographic_parity_ratio" in out and "female" in out


@pytest.mark.parametrize("extra,message", [
    (["--value", "tp=0,fp=-5,tn=0"], "--value: the value model is missing fn"),
    (["--value", COST_5_1, "--target", "purpose", "--positive-label", "A40"],
     "column 'purpose': expected two classes"),
    (["--value", COST_5_1, "--score", "scor"], "no column 'scor'; did you mean 'score'?"),
    (["--value", "tp=gain,fp=-5,tn=0,fn=-1"], "no column 'gain'"),
    (["--value", COST_5_1, "--positive-label", "7"], "positive label '7'"),
    (["--value", COST_5_1, "--score", "purpose"], "expected numeric scores"),
    (["--value", COST_5_1, "--format", "jsn"], "did you mean 'json'"),
    (["--value", COST_5_1, "--replicates", "-5"], "--replicates: expected 0 or more"),
    (["--value", COST_5_1, "--points", "0"], "--points: expected a positive number"),
])
def test_cli_bad_input_one_line_exit_2(german: dict[str, Any], extra: list[str], message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    argv = base(german["path"])
    for i in range(0, len(extra), 2):  # later options replace earlier ones
        if extra[i] in argv:
            argv[argv.index(extra[i]) + 1] = extra[i + 1]
        else:
            argv += extra[i:i + 2]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and err.strip().count("\n") == 0, err


def test_cli_frontier_needs_two_groups(german: dict[str, Any],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    df = german["df"].assign(one="all")
    path = german["path"].with_name("one_group.csv")
    df.to_csv(path, index=False)
    argv = [*base(path), "--value", COST_5_1, "--sensitive", "one"]
    argv[1] = "frontier"
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert "--sensitive: the frontier needs at least two groups" in err


def test_group_intervals_on_the_curve_match_a_row_level_bootstrap(
        german: dict[str, Any]) -> None:
    df = german["df"]
    y, s, g = df["credit"].to_numpy(), df["score"].to_numpy(), df["sex"].to_numpy()
    res = value_curve(score_stats(y, s, g, grouping="sex"), parse_value_model(COST_5_1),
                      points=20, n_boot=4000, seed=2)
    row = res.curve[len(res.curve) // 2]
    t = row["threshold"]
    rng = np.random.default_rng(5)
    reps = []
    for _ in range(4000):
        i = rng.integers(0, len(y), len(y))
        m = g[i] == "female"
        d = s[i][m] >= t
        yy = y[i][m]
        reps.append((-5 * (d & (yy == 0)) - (~d & (yy == 1))).mean())
    lo, hi = np.quantile(reps, [0.025, 0.975])
    got = row["groups_ci"]["female"]
    assert got[0] == pytest.approx(lo, abs=0.03) and got[1] == pytest.approx(hi, abs=0.03)
    assert got[0] <= row["groups"]["female"] <= got[1]
