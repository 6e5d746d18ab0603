"""Scenarios and sensitivity on German credit, checked against row-level code here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from _datasets import DATASETS
from assay.data.model import ModelAdapter
from assay.errors import InputError
from assay.impact import parse_value_model
from assay.impact.scenarios import ScoredData, parse_scenarios, run_scenarios
from assay.impact.sensitivity import feature_sensitivity, value_tornado

GERMAN_COLUMNS = ["status", "duration", "credit_history", "purpose", "amount", "savings",
                  "employment", "installment_rate", "status_sex", "debtors", "residence",
                  "property", "age", "other_plans", "housing", "existing_credits", "job",
                  "dependents", "telephone", "foreign", "credit"]
COST_5_1 = "tp=0,fp=-5,tn=0,fn=-1"
VALUE = parse_value_model(COST_5_1)


@pytest.fixture(scope="module")
def german(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    df = pd.read_csv(DATASETS / "german_credit" / "german.data", sep=" ", header=None,
                     names=GERMAN_COLUMNS)
    df["age_band"] = np.where(df["age"] < 25, "young", "older")
    df["credit"] = (df["credit"] == 1).astype(int)
    df = df.drop(columns=["status_sex"])
    numeric = pd.api.types.is_numeric_dtype
    cat = [c for c in df.columns if not numeric(df[c]) and c != "age_band"]
    num = [c for c in df.columns if numeric(df[c]) and c != "credit"]
    pre = ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), cat),
                             ("n", StandardScaler(), num)])
    model = make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(df[cat + num],
                                                                     df["credit"])
    root = tmp_path_factory.mktemp("german_sc")
    paths = {"data": root / "g.csv", "model": root / "m.joblib"}
    df.to_csv(paths["data"], index=False)
    joblib.dump(model, paths["model"])
    sd = ScoredData(paths["data"], ModelAdapter.from_estimator(model), target="credit",
                    positive_label=1, model=VALUE, sensitive=["age_band"])
    return {"df": df, "model": model, "features": cat + num, "paths": paths, "sd": sd}


def row_metrics(y: np.ndarray, d: np.ndarray, w: np.ndarray | None = None) -> dict[str, float]:
    w = np.ones(len(y)) if w is None else w
    v = np.where(d & (y == 0), -5.0, 0.0) + np.where(~d & (y == 1), -1.0, 0.0)
    return {"value_per_decision": float((w * v).sum() / w.sum()),
            "selection_rate": float((w * d).sum() / w.sum()),
            "true_positive_rate": float((w * (d & (y == 1))).sum() / (w * (y == 1)).sum())}


SCENARIOS = """\
scenarios:
  - name: as today
  - name: same prevalence
    prevalence: {prevalence}
  - name: same mix
    group_mix: {{young: {young}, older: {older}}}
  - name: unchanged amount
    features: {{amount: {{scale: 1, shift: 0}}}}
  - name: downturn
    prevalence: 0.55
  - name: inflation
    features: {{amount: {{scale: 1.2}}}}
  - name: cap
    limit: {{max_selection_rate: 0.3}}
  - name: regulator
    limit: {{demographic_parity_ratio: 0.9}}
"""


def _doc(df: pd.DataFrame) -> str:
    young = float((df["age_band"] == "young").mean())
    return SCENARIOS.format(prevalence=repr(float(df["credit"].mean())), young=repr(young),
                            older=repr(1 - young))


def test_scenarios_against_row_level_and_identity(german: dict[str, Any]) -> None:
    df, sd = german["df"], german["sd"]
    items = parse_scenarios(_doc(df), "s.yaml", features=sd.features, groups=["older", "young"])
    res = run_scenarios(sd.stats(), VALUE, items, rescore=sd.rescore, n_boot=300, seed=3)
    base = res.baseline
    by = {r["name"]: r for r in res.scenarios}
    # a scenario that changes nothing reproduces the baseline exactly, intervals included
    keep = {k: v for k, v in by["as today"].items() if k in base}
    assert keep == base
    assert by["unchanged amount"]["value_per_decision"] == base["value_per_decision"]
    assert by["unchanged amount"]["value_per_decision_ci"] == base["value_per_decision_ci"]
    for name in ("same prevalence", "same mix"):  # reweighting by 1 (up to rounding)
        for k, v in base.items():
            if isinstance(v, float):
                assert by[name][k] == pytest.approx(v, abs=1e-12), (name, k)
    # against row-level code: the baseline threshold, a prevalence shift, a feature shift
    y = df["credit"].to_numpy()
    s = german["model"].predict_proba(df[german["features"]])[:, 1]
    t = res.settings["baseline_threshold"]
    expect = row_metrics(y, s >= t)
    for k, v in expect.items():
        assert base[k] == pytest.approx(v, abs=1e-12)
    p = y.mean()
    w = np.where(y == 1, 0.55 / p, 0.45 / (1 - p))
    for k, v in row_metrics(y, s >= t, w).items():
        assert by["downturn"][k] == pytest.approx(v, abs=1e-12), k
    shifted = df.copy()
    shifted["amount"] = shifted["amount"] * 1.2
    s2 = german["model"].predict_proba(shifted[german["features"]])[:, 1]
    for k, v in row_metrics(y, s2 >= t).items():
        assert by["inflation"][k] == pytest.approx(v, abs=1e-12), k
    # a cap on the selection rate: the best threshold that meets it, by brute force
    best = max((row_metrics(y, s >= c)["value_per_decision"], -c) for c in np.unique(s)
                if (s >= c).mean() <= 0.3)
    assert by["cap"]["selection_rate"] <= 0.3
    assert by["cap"]["value_per_decision"] == pytest.approx(best[0], abs=1e-12)
    assert by["regulator"]["demographic_parity_ratio"] >= 0.9
    lo, hi = by["downturn"]["value_per_decision_ci"]
    assert lo < by["downturn"]["value_per_decision"] < hi


@pytest.mark.parametrize("doc,message", [
    ("scenarios:\n  - name: a\n    features: {amont: {scale: 2}}\n",
     "s.yaml:3: scenario 'a': unknown feature 'amont'; did you mean 'amount'?"),
    ("scenarios:\n  - name: a\n  - name: b\n    prevalance: 0.4\n",
     "s.yaml:4: scenarios[1]: unknown key 'prevalance'"),
    ("scenarios:\n  - name: a\n    prevalence: 1.5\n",
     "s.yaml:3: scenario 'a': prevalence: expected a number between 0 and 1"),
    ("scenarios:\n  - name: a\n    group_mix: {young: 0.5, older: 0.6}\n",
     "s.yaml:3: scenario 'a': group_mix: the shares sum to 1.1, not 1"),
    ("scenarios:\n  - name: a\n    group_mix: {young: 1}\n",
     "missing older"),
    ("scenarios:\n  - name: a\n    limit: {parity: 0.9}\n",
     "s.yaml:3: scenario 'a': limit: unknown limit 'parity'"),
    ("scenarios:\n  - name: a\n  - name: a\n", "s.yaml:3: scenario 'a': the name is used twice"),
    ("scenarios: [\n", "s.yaml:2"),
])
def test_bad_scenarios_name_file_and_line(doc: str, message: str) -> None:
    from assay.errors import AssayError

    with pytest.raises(AssayError) as info:
        parse_scenarios(doc, "s.yaml", features=["amount", "age"], groups=["older", "young"])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def run(argv: list[str]) -> int:
    from assay.cli import main

    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_scenarios(german: dict[str, Any], tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    p = german["paths"]
    doc = tmp_path / "s.yaml"
    doc.write_text(_doc(german["df"]))
    common = ["impact", "scenarios", "--data", str(p["data"]), "--target", "credit",
              "--positive-label", "1", "--value", COST_5_1, "--sensitive", "age_band",
              "--scenarios", str(doc), "--replicates", "100"]
    assert run([*common, "--model", str(p["model"]), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in out["scenarios"]][:2] == ["as today", "same prevalence"]
    assert out["scenarios"][0]["value_per_decision"] == out["baseline"]["value_per_decision"]
    # a feature scenario without the model: one line, exit 2
    df = german["df"].assign(score=german["sd"].scores())
    data = tmp_path / "scored.csv"
    df.to_csv(data, index=False)
    common[3] = str(data)
    assert run([*common, "--score", "score"]) == 2
    err = capsys.readouterr().err
    assert "scenario 'unchanged amount' (line 7): changing features needs the model" in err
    assert "--model" in err and err.count("\n") == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios:\n  - name: x\n    features: {salary: {shift: 1}}\n")
    common[3] = str(p["data"])
    common[common.index(str(doc))] = str(bad)
    assert run([*common, "--model", str(p["model"])]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3: scenario 'x': unknown feature 'salary'" in err and err.count("\n") == 1


def test_feature_sensitivity_finds_the_driver(tmp_path: Path) -> None:
    """A model that reads only x: giving group b the x of group a closes the gap
    (share near 0); swapping z, which the model ignores, leaves it whole (share 1)."""
    rng = np.random.default_rng(0)
    n = 4000
    g = np.where(rng.random(n) < 0.5, "a", "b")
    x = rng.normal(np.where(g == "a", 1.0, 0.0), 1.0)
    z = rng.normal(size=n)
    kind = rng.choice(["p", "q"], size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    df = pd.DataFrame({"x": x, "z": z, "kind": kind, "g": g, "y": y})
    model = LogisticRegression().fit(df[["x", "z"]].assign(z=0.0), y)
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    sd = ScoredData(path, ModelAdapter.from_estimator(model), target="y", positive_label=1,
                    model=parse_value_model("tp=1,fp=-1,tn=0,fn=0"), sensitive=["g"])
    res = feature_sensitivity(sd, group="b", reference="a", features=["x", "z"],
                              threshold=0.5, n_boot=500, seed=1)
    by = {r["feature"]: r for r in res["features"]}
    assert res["gap"] < -0.2
    assert abs(by["x"]["remaining_share"]) < 0.05
    assert by["z"]["remaining_share"] == pytest.approx(1.0, abs=0.02)
    lo, hi = by["x"]["remaining_share_ci"]
    assert lo <= by["x"]["remaining_share"] <= hi and hi - lo < 0.2
    # the quantile mapping, row by row: group b's k-th smallest x takes a's quantile
    xb = df.loc[g == "b", "x"].to_numpy()
    q = (pd.Series(xb).rank().to_numpy() - 0.5) / len(xb)
    mapped = np.quantile(df.loc[g == "a", "x"].to_numpy(), q)
    sb = model.predict_proba(pd.DataFrame({"x": mapped, "z": df.loc[g == "b", "z"]}))[:, 1]
    sa = model.predict_proba(df.loc[g == "a", ["x", "z"]])[:, 1]
    assert by["x"]["gap_after"] == pytest.approx((sb >= 0.5).mean() - (sa >= 0.5).mean(),
                                                 abs=1e-12)
    with pytest.raises(InputError, match="unknown feature 'w'"):
        feature_sensitivity(sd, group="b", reference="a", features=["w"], threshold=0.5)
    with pytest.raises(InputError, match="unknown group 'c'"):
        feature_sensitivity(sd, group="c", reference="a", threshold=0.5)


def test_value_tornado_and_chart(german: dict[str, Any], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    sd = german["sd"]
    stats = sd.stats()
    torn = value_tornado(stats, VALUE, spread=0.5)
    y = german["df"]["credit"].to_numpy()
    s = sd.scores()
    d = s >= torn["baseline_threshold"]
    by = {r["outcome"]: r for r in torn["rows"]}
    # fp = -5 moved to -7.5 and -2.5, at the baseline threshold, row by row
    for side, fp in (("low", -7.5), ("high", -2.5)):
        v = np.where(d & (y == 0), fp, 0.0) + np.where(~d & (y == 1), -1.0, 0.0)
        assert by["fp"][side]["value_per_decision_at_baseline_threshold"] == pytest.approx(
            v.mean(), abs=1e-12)
    swings = [r["swing"] for r in torn["rows"]]
    assert swings == sorted(swings, reverse=True)
    chart = tmp_path / "t.svg"
    p = german["paths"]
    assert run(["impact", "sensitivity", "--data", str(p["data"]), "--target", "credit",
                "--positive-label", "1", "--value", COST_5_1, "--model", str(p["model"]),
                "--chart", str(chart), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tornado"]["rows"][0]["outcome"] == torn["rows"][0]["outcome"]
    root = ElementTree.fromstring(chart.read_text())
    assert root.tag.endswith("svg") and "baseline" in chart.read_text()


@pytest.mark.parametrize("extra,message", [
    (["--group", "young", "--reference", "older"], "--group: swapping features needs --model"),
    (["--group", "young"], "give both --group and --reference"),
    (["--spread", "0"], "--spread: expected a number above 0"),
    (["--model", "MODEL", "--sensitive", "age_band", "--group", "yung", "--reference", "older"],
     "--group: unknown group 'yung'; did you mean 'young'?"),
    (["--model", "MODEL", "--sensitive", "age_band", "--group", "young", "--reference",
      "older", "--features", "amont"], "--features: unknown feature 'amont'"),
])
def test_cli_sensitivity_bad_input(german: dict[str, Any], tmp_path: Path, extra: list[str],
                                   message: str, capsys: pytest.CaptureFixture[str]) -> None:
    p = german["paths"]
    df = german["df"].assign(score=german["sd"].scores())
    data = tmp_path / "scored.csv"
    df.to_csv(data, index=False)
    argv = ["impact", "sensitivity", "--data", str(data), "--target", "credit",
            "--positive-label", "1", "--value", COST_5_1]
    extra = [str(p["model"]) if e == "MODEL" else e for e in extra]
    if "--model" not in extra:
        argv += ["--score", "score"]
    assert run(argv + extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
