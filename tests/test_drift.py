"""Feature profiles and drift measures, cross-checked against SciPy and direct NumPy."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from _datasets import DATASETS
from assay.data import open_dataset
from assay.datasets import load_adult
from assay.errors import InputError
from assay.metrics.drift import (
    PSI_EPSILON,
    chi2_homogeneity,
    drift_summary,
    ks_binned,
    psi,
)
from assay.metrics.profile import OTHER, Profile, fit_bins, profile

TAIWAN = DATASETS / "taiwan_credit" / "credit_default.csv"
NUMERIC = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]


@pytest.fixture(scope="module")
def adult():
    return load_adult(missing_as_nan=True)


@pytest.fixture(scope="module")
def adult_drift(adult):
    ref = profile(adult[0])
    cur = profile(adult[1], ref.bins)
    return ref, cur, drift_summary(ref, cur)


def _hist(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.histogram(x, np.concatenate([[-np.inf], edges, [np.inf]]))[0]


def test_psi_and_js_match_direct_numpy_and_scipy(adult, adult_drift) -> None:
    ref_p, _, summary = adult_drift
    train, test = adult
    for col in NUMERIC:
        edges = ref_p.features[col].bins.edges
        r = _hist(train[col].to_numpy(float), edges) / len(train)
        c = _hist(test[col].to_numpy(float), edges) / len(test)
        rr, cc = np.maximum(r, PSI_EPSILON), np.maximum(c, PSI_EPSILON)
        direct = float(np.sum((cc - rr) * np.log(cc / rr)))
        got = summary["features"][col]
        assert got["psi"] == pytest.approx(direct, abs=1e-9)
        assert got["js"] == pytest.approx(jensenshannon(r, c, base=2), abs=1e-9)
        assert got["reference"]["fractions"] == pytest.approx(r.tolist(), abs=1e-12)
    # categorical: categories of the reference, then "other"
    wc = summary["features"]["native_country"]
    assert wc["kind"] == "categorical" and wc["reference"]["bins"][-1] == OTHER
    vc_r = train["native_country"].value_counts()
    vc_c = test["native_country"].value_counts()
    cats = wc["reference"]["bins"][:-1]
    r = vc_r.reindex(cats).to_numpy(float)
    c = vc_c.reindex(cats).fillna(0).to_numpy(float)
    c = np.append(c, vc_c.drop(cats, errors="ignore").sum())
    r = np.append(r, vc_r.drop(cats, errors="ignore").sum())
    assert wc["js"] == pytest.approx(jensenshannon(r / r.sum(), c / c.sum(), base=2), abs=1e-9)
    table = np.vstack([r, c])[:, (r + c) > 0]
    assert wc["chi2_p"] == pytest.approx(
        stats.chi2_contingency(table, correction=False).pvalue, rel=1e-9)
    # the same test as a goodness of fit to the margins' expected counts
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    gof = stats.chisquare(table.ravel(), expected.ravel(), ddof=table.shape[1])
    assert wc["chi2"] == pytest.approx(gof.statistic, rel=1e-9)
    assert wc["chi2_p"] == pytest.approx(gof.pvalue, rel=1e-9)


def test_ks_is_exact_on_discrete_features(adult, adult_drift) -> None:
    _, _, summary = adult_drift
    train, test = adult
    # each of these has fewer distinct values than fine bins: the binning is exact
    for col in ["age", "education_num", "hours_per_week", "capital_loss"]:
        ref = scipy_ks = stats.ks_2samp(train[col], test[col], method="asymp")
        got = summary["features"][col]
        assert got["ks"] == pytest.approx(scipy_ks.statistic, abs=1e-12), col
        assert got["ks_p"] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12), col
    # continuous: the binned statistic never exceeds the exact one, and is close
    exact = stats.ks_2samp(train["fnlwgt"], test["fnlwgt"]).statistic
    assert summary["features"]["fnlwgt"]["ks"] <= exact + 1e-12
    assert summary["features"]["fnlwgt"]["ks"] == pytest.approx(exact, abs=0.01)


def test_wasserstein_within_its_stated_bound(adult, adult_drift) -> None:
    _, _, summary = adult_drift
    train, test = adult
    for col in NUMERIC:
        got = summary["features"][col]
        exact = stats.wasserstein_distance(train[col], test[col])
        assert abs(got["wasserstein"] - exact) <= got["wasserstein_bound"] + 1e-9, col
        assert got["wasserstein_norm"] == pytest.approx(
            got["wasserstein"] / train[col].std(ddof=0), rel=1e-9)
    # age has one bin per distinct value: the distance is exact
    assert summary["features"]["age"]["wasserstein"] == pytest.approx(
        stats.wasserstein_distance(train["age"], test["age"]), abs=1e-9)


def test_adult_train_and_test_do_not_drift(adult_drift) -> None:
    _, _, summary = adult_drift
    assert summary["drifted_share"] == 0.0
    assert summary["n_reference"] == 32_561 and summary["n_current"] == 16_281
    assert all(f["severity"] == "none" for f in summary["features"].values())
    import json

    json.dumps(summary)  # JSON-ready


def test_taiwan_split_by_credit_limit_drifts() -> None:
    df = pd.read_csv(TAIWAN)
    low = df[df["LIMIT_BAL"] <= df["LIMIT_BAL"].median()]
    high = df[df["LIMIT_BAL"] > df["LIMIT_BAL"].median()]
    cols = ["LIMIT_BAL", "AGE", "PAY_0", "PAY_2", "BILL_AMT1", "PAY_AMT1", "SEX"]
    ref = profile(low, columns=cols)
    cur = profile(high, ref.bins)
    s = drift_summary(ref, cur)
    f = s["features"]
    assert f["LIMIT_BAL"]["drifted"] and f["LIMIT_BAL"]["severity"] == "major"
    assert f["LIMIT_BAL"]["psi"] > 5
    assert "LIMIT_BAL" in s["drifted"] and 0 < s["drifted_share"] < 1
    assert not f["SEX"]["drifted"]
    for col in ["PAY_0", "PAY_2", "SEX"]:  # few distinct values: exact KS
        assert f[col]["ks"] == pytest.approx(stats.ks_2samp(low[col], high[col]).statistic,
                                             abs=1e-12)
    for col in ["AGE", "BILL_AMT1", "PAY_AMT1"]:
        exact = stats.wasserstein_distance(low[col], high[col])
        assert abs(f[col]["wasserstein"] - exact) <= f[col]["wasserstein_bound"] + 1e-9


def test_values_outside_a_discrete_reference_are_seen() -> None:
    ref = pd.DataFrame({"x": [1.0] * 500, "k": [3] * 500})
    cur = pd.DataFrame({"x": [1.0] * 250 + [2.0] * 250, "k": [3] * 400 + [0] * 100})
    p = profile(ref)
    s = drift_summary(p, profile(cur, p.bins))["features"]
    assert s["x"]["current"]["fractions"] == [0.0, 0.5, 0.5]
    assert s["k"]["current"]["fractions"] == [0.2, 0.8, 0.0]
    assert s["x"]["drifted"] and s["k"]["drifted"]


def test_effect_size_first_pvalue_second() -> None:
    rng = np.random.default_rng(0)
    # huge n, trivial shift: the test is significant, the effect is negligible
    a = pd.DataFrame({"x": rng.normal(0, 1, 400_000)})
    b = pd.DataFrame({"x": rng.normal(0.03, 1, 400_000)})
    s = drift_summary(profile(a), profile(b, profile(a).bins))["features"]["x"]
    assert s["ks_p"] < 1e-6 and s["psi"] < 0.01 and not s["drifted"]
    # small n, large apparent effect that is not significant
    c = pd.DataFrame({"x": rng.normal(0, 1, 12)})
    d = pd.DataFrame({"x": rng.normal(0.4, 1, 12)})
    rc = profile(c)
    s2 = drift_summary(rc, profile(d, rc.bins))["features"]["x"]
    assert s2["psi"] > 0.25 and s2["ks_p"] > 0.05 and not s2["drifted"]
    # a real shift: both
    e = pd.DataFrame({"x": rng.normal(1.0, 1, 5000)})
    s3 = drift_summary(profile(a), profile(e, profile(a).bins))["features"]["x"]
    assert s3["drifted"] and s3["wasserstein_norm"] == pytest.approx(1.0, abs=0.05)


def test_profiles_merge_exactly_in_any_order(adult) -> None:
    train = adult[0]
    bins = fit_bins(open_dataset(train), list(train.columns))
    whole = profile(train, bins)
    parts = [profile(train.iloc[i:i + 7000], bins) for i in range(0, len(train), 7000)]
    left = parts[0]
    for p in parts[1:]:
        left = left.merge(p)
    right = parts[-1]
    for p in reversed(parts[:-1]):
        right = p.merge(right)
    for merged in (left, right):
        assert merged.rows == whole.rows
        for name, w in whole.features.items():
            m = merged.features[name]
            assert (m.count, m.nulls) == (w.count, w.nulls)
            if w.kind == "numeric":
                np.testing.assert_array_equal(m.coarse, w.coarse)
                np.testing.assert_array_equal(m.fine, w.fine)
                assert m.mean == pytest.approx(train[name].mean(), rel=1e-12)
                assert m.variance == pytest.approx(train[name].var(ddof=0), rel=1e-10)
                assert (m.min, m.max) == (train[name].min(), train[name].max())
            else:
                assert m.categories == w.categories
    assert whole.features["workclass"].nulls == train["workclass"].isna().sum()
    back = Profile.from_dict(whole.to_dict())
    assert drift_summary(whole, back)["features"]["age"]["psi"] == 0.0


def test_low_level_measures_and_errors() -> None:
    assert psi(np.array([10, 0]), np.array([10, 0])) == 0.0
    stat, p, dof = chi2_homogeneity(np.array([30, 20, 0]), np.array([10, 40, 0]))
    ref = stats.chi2_contingency(np.array([[30, 20], [10, 40]]), correction=False)
    assert (stat, p, dof) == pytest.approx((ref.statistic, ref.pvalue, ref.dof))
    d, _ = ks_binned(np.array([5, 5]), np.array([0, 10]))
    assert d == pytest.approx(0.5)
    a = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    with pytest.raises(InputError, match="unknown name"):
        drift_summary(profile(a), profile(a), thresholds={"psii": 0.2})
    with pytest.raises(InputError, match="expected numeric values as in the reference"):
        profile(pd.DataFrame({"x": ["a", "b"]}), profile(a).bins)


def test_integer_lookup_bins_equal_searchsorted() -> None:
    from assay.metrics.profile import FeatureBins

    rng = np.random.default_rng(5)
    for edges in (np.array([-3.0, 0.0, 2.5, 7.0, 40.0]), np.unique(rng.integers(-50, 900, 60))
                  .astype(float), np.array([1e12, 2e12]), np.array([1.0, np.nextafter(1.0, 2)]),
                  np.array([-7.5, 3.0, 3.5, 9.25])):
        b = FeatureBins("x", "numeric", edges[::3], edges)
        ints = rng.integers(-100, 1000, 5000).astype(float)
        floats = rng.uniform(-100, 1000, 5000)
        for x in (ints, floats, np.concatenate([ints, [1e15, -1e15]])):
            np.testing.assert_array_equal(b.fine_index(x),
                                          np.searchsorted(edges, x, side="right"))


def test_grid_bins_equal_searchsorted_at_the_edges() -> None:
    from assay.metrics.profile import FeatureBins

    rng = np.random.default_rng(11)
    samples = [rng.normal(0, 1, 20_000), rng.lognormal(3, 2, 20_000),
               np.concatenate([np.zeros(8000), rng.exponential(1000, 12_000)]),
               rng.normal(1e9, 1e-3, 20_000), rng.uniform(-1e-300, 1e-300, 20_000)]
    for data in samples:
        edges = np.unique(np.quantile(data, np.linspace(0, 1, 101)[1:-1]))
        b = FeatureBins("x", "numeric", edges[::10], edges)
        x = np.concatenate([data, edges, np.nextafter(edges, np.inf),
                            np.nextafter(edges, -np.inf), [-1e308, 1e308]])
        np.testing.assert_array_equal(b.fine_index(x), np.searchsorted(edges, x, side="right"))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=300),
       st.lists(st.integers(1, 299), max_size=4))
def test_merge_is_exact_for_any_split(values: list[float], cuts: list[int]) -> None:
    df = pd.DataFrame({"x": values, "c": [str(int(v) % 7) for v in values]})
    bins = profile(df).bins
    whole = profile(df, bins)
    bounds = sorted({0, len(df), *[c for c in cuts if c < len(df)]})
    parts = [profile(df.iloc[a:b], bins) for a, b in pairwise(bounds)]
    merged = parts[0]
    for p in parts[1:]:
        merged = p.merge(merged)
    w, m = whole.features["x"], merged.features["x"]
    np.testing.assert_array_equal(w.fine, m.fine)
    np.testing.assert_array_equal(w.coarse, m.coarse)
    assert m.count == len(values) and (m.min, m.max) == (min(values), max(values))
    assert m.mean == pytest.approx(np.mean(values), rel=1e-9, abs=1e-6)
    scale = len(values) * max(v * v for v in values)  # rounding grows with n * max(x^2)
    assert m.m2 == pytest.approx(np.var(values) * len(values), rel=1e-7, abs=1e-12 * scale)
    assert merged.features["c"].categories == whole.features["c"].categories
