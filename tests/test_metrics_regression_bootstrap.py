"""Regression bootstrap: the fine (cell, error bin, target bin) table merges exactly, and its
multinomial resampling matches a plain row-level bootstrap on real and synthetic data.

Tolerances: each side has 2,000 replicates, so a percentile end carries Monte-Carlo noise
of a few percent of the interval's width; the ends must agree to 12 % of the width and the
replicate standard deviations to 8 %. Measured (4,000 replicates each, Taiwan credit,
LIMIT_BAL, by age band): ends within 3 % of the width, standard deviations within 3 %.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_squared_error

from _datasets import DATASETS
from assay.checks.base import REGISTRY as CHECKS
from assay.checks.base import CheckSpec, JudgeOn, Status, Threshold, run_check
from assay.data import ColumnRoles, open_dataset
from assay.errors import InputError
from assay.metrics import RegressionStats, regression_summary
from assay.metrics import regression as rg
from assay.metrics.bootstrap import RegressionBootstrap, bootstrap
from assay.metrics.fairness import regression_fairness_report
from assay.policy import load_check_modules
from assay.policy.schema import Settings

load_check_modules()
TAIWAN = DATASETS / "taiwan_credit" / "credit_default.csv"
METRICS = ["mae", "rmse", "mse", "r2", "mean_error"]
R = 2000
END_TOL = 0.12  # of the interval width
SD_TOL = 0.08


def row_bootstrap(y: np.ndarray, p: np.ndarray, group: np.ndarray, n_boot: int, seed: int
                  ) -> dict[str, np.ndarray]:
    """Plain bootstrap: draw n rows with replacement, recompute every metric per group."""
    rng = np.random.default_rng(seed)
    n = len(y)
    codes = np.unique(group, return_inverse=True)[1]
    g = int(codes.max()) + 1
    e = p - y
    out: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
    for _ in range(n_boot):
        cnt = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        w = np.bincount(codes, cnt, g)
        mse = np.bincount(codes, cnt * e * e, g) / w
        my = np.bincount(codes, cnt * y, g) / w
        sst = np.bincount(codes, cnt * (y - my[codes]) ** 2, g)
        out["mae"].append(np.bincount(codes, cnt * np.abs(e), g) / w)
        out["mse"].append(mse)
        out["rmse"].append(np.sqrt(mse))
        out["r2"].append(1 - mse * w / sst)
        out["mean_error"].append(np.bincount(codes, cnt * e, g) / w)
    return {m: np.array(v) for m, v in out.items()}


def assert_matches_row_bootstrap(stats: RegressionStats, y, p, group, by: str) -> None:
    boot = RegressionBootstrap(stats, n_boot=R, seed=11)
    fine = boot.replicates(METRICS, by)
    rows = row_bootstrap(y, p, group, R, seed=5)
    for m in METRICS:
        want = np.quantile(rows[m], [0.025, 0.975], axis=0).T
        got = boot.interval(fine[m])
        width = want[:, 1] - want[:, 0]
        np.testing.assert_array_less(np.abs(got - want).max(axis=1), END_TOL * width,
                                     err_msg=f"{m}: {got} vs row-level {want}")
        ratio = fine[m].std(axis=0) / rows[m].std(axis=0)
        np.testing.assert_allclose(ratio, 1.0, atol=SD_TOL, err_msg=m)


# ------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def taiwan() -> dict[str, np.ndarray]:
    df = pd.read_csv(TAIWAN)
    feats = ["AGE", "PAY_0", "PAY_2", "BILL_AMT1", "BILL_AMT2", "PAY_AMT1", "PAY_AMT2",
             "EDUCATION_1", "EDUCATION_2", "MARRIAGE_1"]
    train = df.sample(frac=0.5, random_state=0)
    test = df.drop(train.index).iloc[:8000]
    model = HistGradientBoostingRegressor(max_iter=40, random_state=0)
    model.fit(train[feats], train["LIMIT_BAL"])
    age = test["AGE"].to_numpy()
    return {"y": test["LIMIT_BAL"].to_numpy(np.float64), "p": model.predict(test[feats]),
            "sex": test["SEX"].astype(str).to_numpy(),  # coded 0 / 1 in this file
            "age": np.where(age < 30, "<30", np.where(age < 45, "30-44", "45+"))}


def test_taiwan_limit_intervals_match_row_level_bootstrap(taiwan):
    y, p = taiwan["y"], taiwan["p"]
    stats = RegressionStats.from_arrays(y, p, sensitive={"sex": taiwan["sex"],
                                                         "age": taiwan["age"]})
    assert stats.compute("rmse") == pytest.approx(np.sqrt(mean_squared_error(y, p)), rel=1e-9)
    assert_matches_row_bootstrap(stats, y, p, taiwan["age"], "age")
    assert_matches_row_bootstrap(stats, y, p, np.zeros(len(y)), None)


def test_taiwan_gap_p_value_agrees_with_welch_t_test(taiwan):
    """The mean error gap to the reference group: bootstrap p-value vs SciPy's Welch test."""
    y, p, sex = taiwan["y"], taiwan["p"], taiwan["sex"]
    stats = RegressionStats.from_arrays(y, p, sensitive={"sex": sex})
    boot = RegressionBootstrap(stats, n_boot=R, seed=2)
    rep = regression_fairness_report(stats, "sex", metrics=["mean_error_difference"],
                                     convention="aif360", reference="1", boot=boot)
    gap = rep["mean_error_difference"]["groups"]["0"]
    e = p - y
    assert gap["value"] == pytest.approx(e[sex == "0"].mean() - e[sex == "1"].mean(), rel=1e-9)
    welch = sps.ttest_ind(e[sex == "0"], e[sex == "1"], equal_var=False).pvalue
    assert gap["p_value"] == pytest.approx(welch, abs=0.04)
    lo, hi = gap["ci"]
    se = np.sqrt(e[sex == "0"].var(ddof=1) / (sex == "0").sum()
                 + e[sex == "1"].var(ddof=1) / (sex == "1").sum())
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.1)


# ------------------------------------------------------------------------- synthetic


def _synthetic(n=6000, seed=3):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1])
    y = rng.lognormal(3, 1, n)
    noise = rng.standard_t(6, n) * np.where(g == "c", 6.0, 3.0)
    p = y * rng.lognormal(0, 0.25, n) + noise + np.where(g == "b", 2.0, 0.0)
    return y, p, g


def test_synthetic_intervals_match_row_level_bootstrap():
    y, p, g = _synthetic()
    stats = RegressionStats.from_arrays(y, p, sensitive={"g": g})
    assert_matches_row_bootstrap(stats, y, p, g, "g")


def test_coarsened_table_still_matches_for_error_metrics(monkeypatch):
    """Forced to a coarse grid (MAE, RMSE and mean error keep their spread; R2 is the
    metric most sensitive to coarse target bins and is only checked loosely)."""
    monkeypatch.setattr(rg, "MAX_FINE_CELLS", 1500)
    y, p, g = _synthetic(seed=8)
    stats = RegressionStats.from_arrays(y, p, sensitive={"g": g})
    assert stats.fine_level >= 3 and len(stats.fine_key) <= 1500
    boot = RegressionBootstrap(stats, n_boot=R, seed=1)
    fine = boot.replicates(METRICS, "g")
    rows = row_bootstrap(y, p, g, R, seed=4)
    for m in ("mae", "rmse", "mean_error"):
        np.testing.assert_allclose(fine[m].std(axis=0) / rows[m].std(axis=0), 1.0, atol=SD_TOL)
    np.testing.assert_allclose(fine["r2"].std(axis=0) / rows["r2"].std(axis=0), 1.0, atol=0.25)
    # point estimates stay exact however coarse the table
    assert stats.compute("mae") == pytest.approx(np.abs(p - y).mean(), rel=1e-12)


def test_exact_when_fine_cells_hold_equal_rows():
    """Few distinct (target, prediction) pairs: the fine table is the table of distinct
    rows, so the replicate mean of every sum is the full-data value."""
    rng = np.random.default_rng(0)
    y = rng.choice([10.0, 20.0, 40.0], 3000)
    p = y + rng.choice([-3.0, 0.0, 1.0, 5.0], 3000)
    stats = RegressionStats.from_arrays(y, p)
    assert len(stats.fine_key) == len({(a, b) for a, b in zip(y, p, strict=True)})
    boot = bootstrap(stats, n_boot=4000, seed=0)
    assert isinstance(boot, RegressionBootstrap)
    reps = boot.replicates(["mae", "mean_error", "mse"])
    for m in ("mae", "mean_error", "mse"):
        mc = reps[m][:, 0].std() / np.sqrt(4000)
        assert reps[m][:, 0].mean() == pytest.approx(stats.compute(m), abs=4 * mc)
    assert_matches_row_bootstrap(stats, y, p, np.zeros(len(y)), None)


def test_weighted_interval_contains_the_weighted_estimate():
    y, p, g = _synthetic(n=3000, seed=5)
    w = np.random.default_rng(1).uniform(0.5, 2, len(y))
    stats = RegressionStats.from_arrays(y, p, sensitive={"g": g}, weight=w)
    out = regression_summary(stats, n_boot=300, min_group_size=30)
    for m in METRICS:
        e = out["overall"][m]
        assert e["ci"][0] < e["value"] < e["ci"][1], m
    assert np.average(np.abs(p - y), weights=w) == pytest.approx(
        out["overall"]["mae"]["value"], rel=1e-9)
    assert any("weights" in n for n in out["notes"])


# ------------------------------------------------------------------------- the fine table


def test_bin_grid_is_a_function_of_the_value():
    v = np.array([0.0, 1e-300, 1.0, 1.01, 1.012, -1.0, 3e8, -2.5])
    code = rg.bin_code(v)
    assert code[0] == 0 and (code[1:5] > 0).all() and code[5] < 0
    assert code[2] == -code[5]  # symmetric in sign
    # bins are at most 2**(1/64) - 1 (about 1.1 %) wide
    x = np.geomspace(1e-6, 1e9, 20000)
    c = rg.bin_code(x)
    for b in np.unique(c)[1:-1]:
        inside = x[c == b]
        assert inside.max() / inside.min() < 2 ** (1 / 64)
    for level in (1, 3, 7):
        np.testing.assert_array_equal(rg._coarsen_code(rg.bin_code(x), level),
                                      rg.bin_code(x, level))
        np.testing.assert_array_equal(rg._coarsen_code(rg.bin_code(-x), level),
                                      rg.bin_code(-x, level))


def _parts(y, p, a, b, cuts, names=("a", "b")):
    out = []
    for lo, hi in itertools.pairwise(cuts):
        sens = {"a": a[lo:hi], "b": b[lo:hi]}
        out.append(RegressionStats.from_arrays(y[lo:hi], p[lo:hi],
                                               sensitive={k: sens[k] for k in names}))
    return out


def _same_table(x: RegressionStats, z: RegressionStats) -> None:
    assert x.fine_level == z.fine_level
    np.testing.assert_array_equal(x.fine_key, z.fine_key)
    np.testing.assert_allclose(x.fine, z.fine, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("cap", [20_000, 400])
def test_fine_table_merges_exactly_in_any_order(monkeypatch, cap):
    monkeypatch.setattr(rg, "MAX_FINE_CELLS", cap)
    rng = np.random.default_rng(2)
    n = 3000
    y = rng.gamma(2, 50, n)
    p = y + rng.normal(0, 10, n)
    a = np.where(np.arange(n) < 1000, "x", rng.choice(["x", "y"], n))  # first part: x only
    b = rng.choice(["u", "v", "w"], n)
    one = RegressionStats.from_arrays(y, p, sensitive={"a": a, "b": b})
    x, m, z = _parts(y, p, a, b, [0, 1000, 1900, n])
    _, m_swapped, _ = _parts(y, p, a, b, [0, 1000, 1900, n], names=("b", "a"))
    for merged in (x.merge(m).merge(z), x.merge(m.merge(z)), z.merge(x).merge(m),
                   x.merge(m_swapped).merge(z)):
        _same_table(merged, one)
    if cap == 400:
        assert one.fine_level > 0


def test_state_round_trip_keeps_the_table_and_old_states_still_load():
    y, p, g = _synthetic(n=800)
    stats = RegressionStats.from_arrays(y, p, sensitive={"g": g})
    back = RegressionStats.from_state(json.loads(json.dumps(stats.to_state())))
    _same_table(back, stats)
    a = RegressionBootstrap(stats, n_boot=50, seed=3).replicates(["rmse"], "g")["rmse"]
    b = RegressionBootstrap(back, n_boot=50, seed=3).replicates(["rmse"], "g")["rmse"]
    np.testing.assert_array_equal(a, b)
    old = {k: v for k, v in stats.to_state().items()
           if k not in ("fine_key", "fine", "fine_level")} | {"version": 1}
    legacy = RegressionStats.from_state(old)
    assert legacy.compute("r2") == stats.compute("r2")
    with pytest.raises(InputError, match="no fine error table"):
        RegressionBootstrap(legacy, n_boot=50)
    bad = stats.to_state() | {"fine": stats.to_state()["fine"][:-1]}
    with pytest.raises(InputError, match="one fine-table row per key"):
        RegressionStats.from_state(bad)
    with pytest.raises(InputError, match="fine table is malformed"):
        RegressionStats.from_state(stats.to_state() | {"fine": [[1.0, 2.0]] * 3})
    out = regression_summary(legacy, n_boot=100)  # falls back to the normal approximation
    assert out["overall"]["rmse"]["ci"] is None and out["overall"]["mae"]["ci"] is not None


def test_replicates_are_seeded_and_shared_between_groupings():
    y, p, g = _synthetic(n=1500)
    stats = RegressionStats.from_arrays(y, p, sensitive={"g": g})
    b1 = RegressionBootstrap(stats, n_boot=120, seed=9)
    b2 = RegressionBootstrap(stats, n_boot=120, seed=9)
    np.testing.assert_array_equal(b1.replicates(["r2"], "g")["r2"],
                                  b2.replicates(["r2"], "g")["r2"])
    np.testing.assert_array_equal(b1.replicates(["bias"], "g")["bias"],
                                  b2.replicates(["mean_error"], "g")["mean_error"])
    other = RegressionBootstrap(stats, n_boot=120, seed=10).replicates(["r2"], "g")["r2"]
    assert not np.array_equal(other, b1.replicates(["r2"], "g")["r2"])
    # the overall MAE of each replicate is the row-weighted mean of its group MAEs
    groups = b1.replicates(["mae"], "g")["mae"]
    sizes = np.array([(g == k).sum() for k in ("a", "b", "c")])
    assert groups.shape == (120, 3)
    overall = b1.replicates(["mae"])["mae"][:, 0]
    assert np.corrcoef(overall, groups @ sizes / sizes.sum())[0, 1] > 0.9
    with pytest.raises(InputError, match="unknown regression metric"):
        b1.replicates(["auc"])


# ------------------------------------------------------------------------- summary and checks


def _biased(n=4000, seed=6):
    rng = np.random.default_rng(seed)
    g = rng.choice(["ref", "same", "off"], n, p=[0.5, 0.3, 0.2])
    y = rng.normal(100, 20, n)
    p = y + rng.normal(0, 5, n) + np.where(g == "off", 4.0, 0.0)
    return y, p, g


def test_summary_gaps_have_intervals_and_p_values():
    y, p, g = _biased()
    stats = RegressionStats.from_arrays(y, p, sensitive={"g": g})
    out = regression_summary(stats, n_boot=500, reference={"g": "ref"})
    fair = out["fairness"]["g"]
    gap = fair["mean_error_gap"]
    assert gap["convention"] == "aif360" and gap["reference"] == "ref"
    off, same = gap["groups"]["off"], gap["groups"]["same"]
    assert off["value"] == pytest.approx((p - y)[g == "off"].mean() - (p - y)[g == "ref"].mean())
    assert off["ci"][0] > 0 and off["p_value"] < 0.01
    assert same["ci"][0] < 0 < same["ci"][1] and same["p_value"] > 0.05
    assert gap["value"] == off["value"] and gap["p_value"] == off["p_value"]
    diff = fair["mean_error_difference"]
    values = [out["groups"]["g"][k]["metrics"]["mean_error"]["value"] for k in ("ref", "same",
                                                                              "off")]
    assert diff["value"] == pytest.approx(max(values) - min(values))
    assert diff["ci"][0] <= diff["value"] <= diff["ci"][1]
    assert diff["gaps_to_reference"]["groups"]["off"] == off
    for name in ("mae", "rmse", "mse", "r2"):
        assert fair[f"{name}_difference"]["ci"] is not None
        assert fair[f"{name}_gap"]["groups"]["off"]["p_value"] is not None
    for m in METRICS:
        assert out["groups"]["g"]["off"]["metrics"][m]["ci"] is not None


def test_fairness_report_refuses_unknown_metric_and_reference():
    y, p, g = _biased(n=600)
    stats = RegressionStats.from_arrays(y, p, sensitive={"g": g})
    with pytest.raises(InputError, match="unknown regression fairness metric"):
        regression_fairness_report(stats, "g", metrics=["auc_difference"])
    with pytest.raises(InputError, match="reference group 'nobody'"):
        regression_fairness_report(stats, "g", reference="nobody")
    small = regression_fairness_report(stats, "g", min_group_size=10_000)
    assert "fewer than two groups" in small["mae_difference"]["note"]


@dataclass
class Ctx:
    evaluation: Any
    roles: Any
    settings: Any = field(default_factory=lambda: Settings(
        min_group_size=30, bootstrap={"replicates": 300, "confidence": 0.95, "seed": 3}))
    model: Any = None
    reference: Any = None
    _cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key, fn):
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def progress(self, description, total=None):
        return None


def _run(ctx, check_id, threshold, judge="interval", **params):
    spec = CheckSpec(id=check_id, threshold=Threshold(**threshold), judge_on=JudgeOn(judge),
                     params=params)
    return run_check(CHECKS[check_id], ctx, spec)


def test_checks_judge_regression_intervals():
    y, p, g = _biased()
    df = pd.DataFrame({"y": y, "p": p, "g": g})
    roles = ColumnRoles(target="y", prediction="p", sensitive=["g"], task="regression")
    ctx = Ctx(evaluation=open_dataset(df, roles), roles=roles)
    rmse = float(np.sqrt(mean_squared_error(y, p)))
    res = _run(ctx, "performance.rmse", {"max": rmse + 3}, by="g")
    overall = res.measurements[0]
    assert overall.value == pytest.approx(rmse, rel=1e-9)
    assert overall.ci[0] < rmse < overall.ci[1] < rmse + 3
    assert [m.label for m in res.measurements] == ["overall", "g=off", "g=ref", "g=same"]
    assert all(m.ci[0] < m.value < m.ci[1] for m in res.measurements)
    assert res.status is Status.PASS
    # a bound inside the interval warns; below the whole interval, fails
    inside = float(overall.ci[1]) - 1e-6
    assert _run(ctx, "performance.rmse", {"max": inside}).status is Status.WARN
    assert _run(ctx, "performance.rmse", {"max": float(overall.ci[0]) - 1e-6}).status is \
        Status.FAIL
    assert _run(ctx, "performance.r2", {"min": 0.5}).measurements[0].ci is not None
    gaps = _run(ctx, "fairness.mean_error_difference", {"min": -2, "max": 2},
                convention="aif360", reference="ref")
    by_label = {m.label: m for m in gaps.measurements}
    assert by_label["g=off vs ref"].ci[0] > 2 and "p = " in by_label["g=off vs ref"].note
    assert gaps.status is Status.FAIL
    between = _run(ctx, "fairness.mae_difference", {"max": 10})
    assert between.measurements[0].ci is not None and between.status is Status.PASS
    # the shared statistic and replicates serve every check
    assert sum(k.startswith("metrics.regression") for k in ctx._cache) == 2
    binary = pd.DataFrame({"y": (y > 100).astype(int), "p": (p > 100).astype(int), "g": g})
    clf = ColumnRoles(target="y", prediction="p", sensitive=["g"])
    skipped = _run(Ctx(evaluation=open_dataset(binary, clf), roles=clf),
                   "fairness.mae_difference", {"max": 1})
    assert skipped.status is Status.SKIP and "regression task" in skipped.message


def test_uncached_replicates_equal_cached(monkeypatch):
    """Large cell tables redraw the same seeded replicates for each grouping."""
    import importlib

    bs = importlib.import_module("assay.metrics.bootstrap")
    rng = np.random.default_rng(4)
    n = 2000
    y = rng.gamma(3, 10, n)
    p = y + rng.normal(0, 4, n)
    sens = {"a": rng.choice(list("pqr"), n), "b": rng.choice(list("uv"), n)}
    stats = RegressionStats.from_arrays(y, p, sensitive=sens)
    groupings = (None, "a", ["b", "a"])
    cached = RegressionBootstrap(stats, n_boot=130, seed=2)
    wanted = [cached.replicates(METRICS, by) for by in groupings]
    monkeypatch.setattr(bs, "_REG_CACHE_LIMIT", 0)
    redrawn = RegressionBootstrap(stats, n_boot=130, seed=2)
    for by, want in zip(groupings, wanted, strict=True):
        got = redrawn.replicates(METRICS, by)
        for m in METRICS:
            np.testing.assert_allclose(got[m], want[m], rtol=1e-12, err_msg=f"{m} by {by}")
    assert redrawn._cell_reps is None and cached._cell_reps is not None


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(1, 599), min_size=1, max_size=4, unique=True),
       cap=st.sampled_from([50, 200, 20_000]), seed=st.integers(0, 10_000))
def test_any_split_merges_to_the_same_table(cuts, cap, seed):
    rng = np.random.default_rng(seed)
    n = 600
    y = rng.normal(0, 1, n) * 10.0 ** rng.integers(-3, 4, n)
    p = y + rng.standard_t(3, n)
    g = rng.choice(["a", "b", "c"], n)
    old = rg.MAX_FINE_CELLS
    rg.MAX_FINE_CELLS = cap
    try:
        whole = RegressionStats.from_arrays(y, p, sensitive={"g": g})
        bounds = [0, *sorted(cuts), n]
        parts = [RegressionStats.from_arrays(y[lo:hi], p[lo:hi], sensitive={"g": g[lo:hi]})
                 for lo, hi in itertools.pairwise(bounds)]
        merged = parts[0]
        for part in parts[1:]:
            merged = part.merge(merged) if seed % 2 else merged.merge(part)
    finally:
        rg.MAX_FINE_CELLS = old
    _same_table(merged, whole)
    assert merged.fine[:, rg.F_N].sum() == n


def test_summary_warns_when_the_target_bins_hide_its_spread():
    rng = np.random.default_rng(0)
    y = 1e6 + rng.normal(0, 3, 2000)  # far from 0 relative to its spread: few target bins
    p = y + rng.normal(0, 2, 2000)
    stats = RegressionStats.from_arrays(y, p)
    assert stats.target_spread_in_bins() > 0.5
    out = regression_summary(stats, n_boot=50)
    assert any("R2 intervals are too narrow" in n for n in out["notes"])
    df = pd.DataFrame({"y": y, "p": p})
    roles = ColumnRoles(target="y", prediction="p", task="regression")
    res = _run(Ctx(evaluation=open_dataset(df, roles), roles=roles), "performance.r2",
               {"min": 0.1})
    assert "too narrow" in res.details["interval_note"]
    y, p, _ = _synthetic(n=2000)
    stats = RegressionStats.from_arrays(y, p)
    assert stats.target_spread_in_bins() < 0.01
    out = regression_summary(stats, n_boot=50)
    assert not any("too narrow" in n for n in out["notes"])
