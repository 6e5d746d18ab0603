"""RegressionStats: exact, stable merges; metrics against scikit-learn to 1e-9."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn import metrics as skm

from assay.errors import InputError
from assay.metrics import RegressionStats, regression_summary


def _data(n=6000, seed=4, offset=0.0):
    rng = np.random.default_rng(seed)
    y = offset + rng.normal(0, 3, n)
    p = y + rng.normal(0.4, 1.5, n)
    a = rng.choice(["x", "y", "z"], n)
    b = rng.integers(0, 2, n)
    w = rng.uniform(0.1, 2, n)
    return y, p, a, b, w


def _sk(y, p, w):
    return {"mae": skm.mean_absolute_error(y, p, sample_weight=w),
            "rmse": np.sqrt(skm.mean_squared_error(y, p, sample_weight=w)),
            "r2": skm.r2_score(y, p, sample_weight=w),
            "mean_error": np.average(p - y, weights=w)}


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("offset", [0.0, 1e6])  # large offset: numerical stability
def test_batched_merge_matches_sklearn(weighted, offset):
    y, p, a, b, w = _data(offset=offset)
    sw = w if weighted else None
    stats = None
    for lo in range(0, len(y), 997):
        sl = slice(lo, lo + 997)
        part = RegressionStats.from_arrays(y[sl], p[sl], sensitive={"a": a[sl], "b": b[sl]},
                                           weight=None if sw is None else sw[sl])
        stats = part if stats is None else part.merge(stats)
    for name, want in _sk(y, p, sw).items():
        assert stats.compute(name) == pytest.approx(want, rel=1e-9, abs=1e-9), name
    frame = stats.frame(by=["a", "b"])
    m = (a == "z") & (b == 1)
    for name, want in _sk(y[m], p[m], None if sw is None else sw[m]).items():
        assert frame.by_group["z x 1"][name] == pytest.approx(want, rel=1e-9, abs=1e-9), name
    m = b == 0
    assert stats.compute("r2", by="b")[0] == pytest.approx(
        _sk(y[m], p[m], None if sw is None else sw[m])["r2"], rel=1e-9)


def test_arrow_batch_and_summary_shape():
    y, p, a, _b, _w = _data(n=500)
    table = pa.table({"y": y, "p": p, "a": a})
    stats = RegressionStats.from_batch(table, target="y", prediction="p", sensitive=["a"])
    out = regression_summary(stats, sensitive=["a"], min_group_size=10)
    assert out["task"] == "regression" and out["n"] == 500
    assert set(out["groups"]["a"]) == {"x", "y", "z"}
    lo, hi = out["overall"]["mean_error"]["ci"]
    assert lo < out["overall"]["mean_error"]["value"] < hi
    lo, hi = out["overall"]["rmse"]["ci"]
    assert lo < out["overall"]["rmse"]["value"] < hi
    fair = out["fairness"]["a"]["mae_difference"]
    maes = [out["groups"]["a"][g]["metrics"]["mae"]["value"] for g in "xyz"]
    assert fair["value"] == pytest.approx(max(maes) - min(maes))
    assert fair["convention"] == "fairlearn"


def test_bad_regression_input():
    with pytest.raises(InputError, match="expected numbers"):
        RegressionStats.from_arrays(["a", "b"], [1.0, 2.0])
    with pytest.raises(InputError, match="finite"):
        RegressionStats.from_arrays([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(InputError, match="unknown regression metric"):
        RegressionStats.from_arrays([1.0, 2.0], [1.0, 2.0]).compute("mape")


def test_state_round_trip_and_streamed_batches():
    import json

    y, p, a, _b, w = _data(n=2000)
    table = pa.table({"y": y, "p": p, "a": a, "w": w})
    streamed = RegressionStats.from_batches(table.to_batches(max_chunksize=300), target="y",
                                            prediction="p", sensitive=["a"], weight="w")
    back = RegressionStats.from_state(json.loads(json.dumps(streamed.to_state())))
    assert back.compute("r2") == streamed.compute("r2")
    assert back.compute("rmse") == pytest.approx(
        np.sqrt(skm.mean_squared_error(y, p, sample_weight=w)), rel=1e-9)
    with pytest.raises(InputError, match="regression statistic state"):
        RegressionStats.from_state({"kind": "classification"})


def test_merge_order_does_not_matter():
    y, p, a, _b, w = _data(n=900, seed=9)

    def part(sl):
        return RegressionStats.from_arrays(y[sl], p[sl], sensitive={"a": a[sl]}, weight=w[sl])

    x, m, z = part(slice(0, 100)), part(slice(100, 650)), part(slice(650, 900))
    one = part(slice(0, 900))
    for merged in (x.merge(m).merge(z), x.merge(m.merge(z)), z.merge(x).merge(m)):
        np.testing.assert_array_equal(merged.n_rows, one.n_rows)
        np.testing.assert_allclose(merged.mean, one.mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(merged.m2, one.m2, rtol=1e-9)
