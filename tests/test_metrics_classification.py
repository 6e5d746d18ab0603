"""ClassificationStats: building, merging, and every metric against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from assay.errors import InputError
from assay.metrics import MISSING, ClassificationStats, MetricFrame


def _data(n: int = 4000, seed: int = 0, distinct: int | None = None):
    rng = np.random.default_rng(seed)
    s = rng.random(n)
    if distinct:
        s = np.round(s * (distinct - 1)) / (distinct - 1)
    y = (rng.random(n) < s).astype(int)
    yp = (s >= 0.5).astype(int)
    sex = rng.choice(["F", "M"], n)
    race = rng.choice(["A", "B", "C"], n, p=[0.6, 0.3, 0.1])
    w = rng.uniform(0.2, 3.0, n)
    return y, yp, s, sex, race, w


SK_COUNT = {
    "accuracy": skm.accuracy_score,
    "balanced_accuracy": skm.balanced_accuracy_score,
    "precision": skm.precision_score,
    "recall": skm.recall_score,
    "f1": skm.f1_score,
}


@pytest.mark.parametrize("weighted", [False, True])
def test_count_metrics_match_sklearn_overall_and_per_group(weighted):
    y, yp, s, sex, race, w = _data()
    sw = w if weighted else None
    stats = ClassificationStats.from_arrays(y, yp, score=s, sensitive={"sex": sex, "race": race},
                                            weight=sw)
    for name, fn in SK_COUNT.items():
        assert stats.compute(name) == pytest.approx(fn(y, yp, sample_weight=sw), abs=1e-12)
    frame = stats.frame([*list(SK_COUNT), "fpr", "tnr", "fnr", "selection_rate"],
                        by=["sex", "race"])
    for (a, b), key in [(("F", "C"), "F x C"), (("M", "A"), "M x A")]:
        m = (sex == a) & (race == b)
        ws = sw[m] if weighted else None
        for name, fn in SK_COUNT.items():
            assert frame.by_group[key][name] == pytest.approx(fn(y[m], yp[m], sample_weight=ws),
                                                              abs=1e-12)
        tn, fp, fn_, tp = skm.confusion_matrix(y[m], yp[m], sample_weight=ws).ravel()
        assert frame.by_group[key]["fpr"] == pytest.approx(fp / (fp + tn), abs=1e-12)
        assert frame.by_group[key]["fnr"] == pytest.approx(fn_ / (fn_ + tp), abs=1e-12)
        assert frame.by_group[key]["selection_rate"] == pytest.approx(
            np.average(yp[m], weights=ws), abs=1e-12)
        assert frame.counts[key] == int(m.sum())


@pytest.mark.parametrize("weighted", [False, True])
def test_log_loss_and_brier_are_exact(weighted):
    y, yp, s, sex, _race, w = _data()
    s = s.copy()
    s[:5] = [0.0, 1.0, 0.0, 1.0, 1e-20]  # clipping matters here
    sw = w if weighted else None
    stats = ClassificationStats.from_arrays(y, yp, score=s, sensitive={"sex": sex}, weight=sw)
    assert stats.compute("log_loss") == pytest.approx(skm.log_loss(y, s, sample_weight=sw),
                                                      rel=1e-12)
    assert stats.compute("brier") == pytest.approx(skm.brier_score_loss(y, s, sample_weight=sw),
                                                   rel=1e-12)
    m = sex == "F"
    per = stats.frame(["log_loss", "brier"], by="sex").by_group["F"]
    assert per["log_loss"] == pytest.approx(
        skm.log_loss(y[m], s[m], sample_weight=None if sw is None else sw[m]), rel=1e-12)


def test_auc_and_ap_exact_when_scores_take_few_values():
    y, yp, s, sex, _race, w = _data(distinct=51)
    stats = ClassificationStats.from_arrays(y, yp, score=s, sensitive={"sex": sex}, weight=w)
    assert stats.auc_exact()
    assert stats.auc_error_bound() == 0
    assert stats.compute("roc_auc") == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w),
                                                     abs=1e-12)
    assert stats.compute("average_precision") == pytest.approx(
        skm.average_precision_score(y, s, sample_weight=w), abs=1e-12)
    m = sex == "M"
    assert stats.compute("roc_auc", by="sex")[1] == pytest.approx(
        skm.roc_auc_score(y[m], s[m], sample_weight=w[m]), abs=1e-12)


def test_auc_binned_error_within_stated_bound():
    y, yp, s, _sex, race, _w = _data(n=20000)
    stats = ClassificationStats.from_arrays(y, yp, score=s, sensitive={"race": race})
    assert not stats.auc_exact()
    exact = skm.roc_auc_score(y, s)
    bound = stats.auc_error_bound()
    assert 0 < bound < 2e-3
    assert abs(stats.compute("roc_auc") - exact) <= bound
    bounds = stats.auc_error_bound(by="race")
    for i, g in enumerate(["A", "B", "C"]):
        m = race == g
        assert abs(stats.compute("roc_auc", by="race")[i] - skm.roc_auc_score(y[m], s[m])) \
            <= bounds[i]
    # coarse bins: bound still holds and is larger
    coarse = ClassificationStats.from_arrays(y, yp, score=s, n_bins=20)
    assert abs(coarse.compute("roc_auc") - exact) <= coarse.auc_error_bound()
    assert coarse.auc_error_bound() > bound


def _ece_direct(y, s, w, bins=10):
    idx = np.minimum((s * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += w[m].sum() * abs(np.average(s[m], weights=w[m]) -
                                      np.average(y[m], weights=w[m]))
    return total / w.sum()


def test_ece_and_reliability_match_direct_numpy():
    y, yp, s, _sex, _race, w = _data(n=10000)
    s = s ** 2  # a miscalibrated model
    stats = ClassificationStats.from_arrays(y, yp, score=s, weight=w)
    assert stats.compute("ece") == pytest.approx(_ece_direct(y, s, w), abs=1e-12)
    assert stats.ece(20) == pytest.approx(_ece_direct(y, s, w, 20), abs=1e-12)
    curve = stats.reliability_curve(10)
    idx = np.minimum((s * 10).astype(int), 9)
    assert curve["count"] == np.bincount(idx, minlength=10).tolist()
    frac = [np.average(y[idx == b], weights=w[idx == b]) for b in range(10)]
    np.testing.assert_allclose(curve["fraction_positive"], frac, atol=1e-12)
    with pytest.raises(InputError, match="must divide"):
        stats.ece(7)


def test_merge_equals_one_pass_and_realigns_categories():
    y, yp, s, sex, race, w = _data(n=3000)
    full = ClassificationStats.from_arrays(y, yp, score=s, sensitive={"sex": sex, "race": race},
                                           weight=w)
    # batch 1 has no race C, batch 2 lists the features in another order
    first = race != "C"
    a = ClassificationStats.from_arrays(y[first], yp[first], score=s[first],
                                        sensitive={"sex": sex[first], "race": race[first]},
                                        weight=w[first])
    b = ClassificationStats.from_arrays(y[~first], yp[~first], score=s[~first],
                                        sensitive={"race": race[~first], "sex": sex[~first]},
                                        weight=w[~first])
    assert a.categories == [["F", "M"], ["A", "B"]]
    for merged in (a.merge(b), b.merge(a).merge(ClassificationStats.empty(
            sensitive_names=["sex", "race"], score=True))):
        if merged.names != full.names:
            merged = merged._reorder(full.names)
        assert merged.categories == full.categories
        np.testing.assert_array_equal(merged.counts, full.counts)
        np.testing.assert_array_equal(merged.hist_n, full.hist_n)
        np.testing.assert_allclose(merged.wsums, full.wsums, rtol=1e-12)
        np.testing.assert_allclose(merged.hist_nll, full.hist_nll, rtol=1e-12)
        assert merged.compute("roc_auc") == pytest.approx(full.compute("roc_auc"), abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.floats(0, 1),
                          st.sampled_from(["a", "b", "c", None])), min_size=3, max_size=60),
       st.integers(1, 20), st.integers(21, 40))
def test_merge_is_associative_and_commutative(rows, i, j):
    y, p, s, g = (list(c) for c in zip(*rows, strict=True))
    cuts = sorted({min(i, len(rows)), min(j, len(rows))})
    pieces = np.split(np.arange(len(rows)), cuts)

    def build(ix):
        return ClassificationStats.from_arrays(
            np.array(y)[ix], np.array(p)[ix], score=np.array(s)[ix],
            sensitive={"g": [g[k] for k in ix]}, n_bins=10)

    parts = [build(ix) for ix in pieces]
    while len(parts) < 3:
        parts.append(build(np.array([], dtype=int)))
    a, b, c = parts[:3]
    left, right, swapped = (a.merge(b)).merge(c), a.merge(b.merge(c)), c.merge(a).merge(b)
    one = build(np.arange(len(rows)))
    for m in (left, right, swapped):
        assert m.categories == one.categories
        np.testing.assert_array_equal(m.counts, one.counts)
        np.testing.assert_array_equal(m.hist_n, one.hist_n)
        np.testing.assert_allclose(m.hist_sq, one.hist_sq, atol=1e-9)


def test_missing_sensitive_values_form_their_own_group():
    y = np.array([1, 0, 1, 0, 1, 1])
    sex = pd.Series(["F", None, "M", np.nan, "F", "M"], dtype=object)
    stats = ClassificationStats.from_arrays(y, y, sensitive={"sex": sex})
    frame = stats.frame(["accuracy"], by="sex")
    assert frame.counts == {"F": 2, "M": 2, MISSING: 2}


def test_intersections_are_sums_of_cells():
    y, yp, _s, sex, race, _w = _data(n=2000)
    stats = ClassificationStats.from_arrays(y, yp, sensitive={"sex": sex, "race": race})
    by_race = stats.frame(["recall"], by="race")
    by_race_sex = stats.frame(["recall"], by=["race", "sex"])
    assert set(by_race_sex.by_group) == {f"{r} x {x}" for r in "ABC" for x in "FM"}
    assert by_race.counts["B"] == by_race_sex.counts["B x F"] + by_race_sex.counts["B x M"]
    df = by_race_sex.to_pandas()
    assert df.index.names == ["race", "sex"]
    assert df.loc[("B", "M"), "n"] == int(((race == "B") & (sex == "M")).sum())


def test_string_labels_and_arrow_batches():
    table = pa.table({"income": [">50K", "<=50K", ">50K", "<=50K"],
                      "pred": [">50K", ">50K", ">50K", "<=50K"],
                      "p": [0.9, 0.6, 0.7, 0.1], "sex": ["F", "M", "F", "M"]})
    stats = ClassificationStats.from_batch(table.to_batches()[0], target="income",
                                           prediction="pred", score="p", sensitive=["sex"],
                                           positive_label=">50K")
    assert stats.compute("precision") == pytest.approx(2 / 3)
    by_score = ClassificationStats.from_batch(table, target="income", score="p",
                                              positive_label=">50K", threshold=0.65)
    assert by_score.compute("accuracy") == 1.0
    stats.update_batch(table.to_batches()[0], target="income", prediction="pred", score="p",
                       sensitive=["sex"])
    assert stats.n == 8


@pytest.mark.parametrize("kwargs, message", [
    (dict(y_true=[0, 1, 2], y_pred=[0, 1, 1]), "expected two classes"),
    (dict(y_true=[0, 1, 1], y_pred=[0, 1]), "expected 3 values"),
    (dict(y_true=[0, 1, 1], y_pred=[0, 1, 1], score=[0.1, 1.2, 0.5]), r"in \[0, 1\]"),
    (dict(y_true=[0, 1, 1], y_pred=[0, 1, 1], score=[0.1, np.nan, 0.5]), "NaN"),
    (dict(y_true=[0, np.nan, 1], y_pred=[0, 1, 1]), "missing"),
    (dict(y_true=[0, 1, 1], y_pred=[0, 1, 1], weight=[1, -1, 1]), "non-negative"),
])
def test_bad_input_is_a_clear_error(kwargs, message):
    y_true, y_pred = kwargs.pop("y_true"), kwargs.pop("y_pred")
    with pytest.raises(InputError, match=message):
        ClassificationStats.from_arrays(y_true, y_pred, **kwargs)


def test_unknown_metric_feature_and_missing_score_are_clear_errors():
    stats = ClassificationStats.from_arrays([0, 1], [0, 1], sensitive={"sex": ["F", "M"]})
    with pytest.raises(InputError, match="unknown classification metric 'acc'"):
        stats.frame(["acc"])
    with pytest.raises(InputError, match="needs a score column"):
        stats.frame(["roc_auc"])
    with pytest.raises(InputError, match="unknown sensitive feature 'race'"):
        stats.frame(["accuracy"], by="race")
    table = pa.table({"y": [0, 1]})
    with pytest.raises(InputError, match="prediction column 'yhat' is not in the data"):
        ClassificationStats.from_batch(table, target="y", prediction="yhat")


def test_zero_denominators_are_nan_not_zero():
    stats = ClassificationStats.from_arrays([0, 0, 0], [0, 0, 0])
    assert math.isnan(stats.compute("precision"))
    assert math.isnan(stats.compute("recall"))
    assert stats.compute("accuracy") == 1.0


def test_metric_frame_difference_ratio_and_rendering():
    y, yp, s, _sex, race, _w = _data(n=2000)
    stats = ClassificationStats.from_arrays(y, yp, score=s, sensitive={"race": race})
    f = stats.frame(["selection_rate", "roc_auc"], by="race", min_group_size=300)
    assert isinstance(f, MetricFrame)
    sr = {g: v["selection_rate"] for g, v in f.by_group.items()}
    judged = [g for g in sr if f.counts[g] >= 300]
    assert f.judged_groups == judged and "C" not in judged  # C has ~200 rows
    assert f.difference()["selection_rate"] == pytest.approx(
        max(sr[g] for g in judged) - min(sr[g] for g in judged))
    assert f.ratio()["selection_rate"] == pytest.approx(
        min(sr[g] for g in judged) / max(sr[g] for g in judged))
    assert f.difference("to_reference", reference="A")["selection_rate"] == pytest.approx(
        abs(sr["B"] - sr["A"]))
    assert f.gaps("A")["selection_rate"] == {"B": pytest.approx(sr["B"] - sr["A"])}
    with pytest.raises(InputError, match="reference group 'Z'"):
        f.gaps("Z")
    d = f.to_dict()
    assert d["by_group"]["C"]["judged"] is False
    assert "<table>" in f._repr_html_() and "race" in f._repr_html_()


def test_roc_curve_is_downsampled_and_monotone():
    y, yp, s, _sex, _race, _w = _data(n=5000)
    roc = ClassificationStats.from_arrays(y, yp, score=s).roc_curve(200)
    assert len(roc["fpr"]) <= 200
    assert roc["fpr"][0] == 0 and roc["tpr"][-1] == pytest.approx(1.0)
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)


def test_state_round_trip_through_json_and_streamed_batches():
    import json

    y, yp, s, sex, _race, w = _data(n=3000)
    table = pa.table({"y": y, "yhat": yp, "p": s, "sex": sex, "w": w})
    streamed = ClassificationStats.from_batches(
        table.to_batches(max_chunksize=700), target="y", prediction="yhat", score="p",
        sensitive=["sex"], weight="w")
    direct = ClassificationStats.from_arrays(y, yp, score=s, sensitive={"sex": sex}, weight=w)
    np.testing.assert_array_equal(streamed.counts, direct.counts)
    back = ClassificationStats.from_state(json.loads(json.dumps(streamed.to_state(),
                                                                allow_nan=False)))
    for name in ("roc_auc", "log_loss", "recall"):
        assert back.compute(name) == streamed.compute(name)
    assert back.auc_error_bound() == streamed.auc_error_bound()
    assert back.merge(direct).n == 6000
    with pytest.raises(InputError, match="classification statistic state"):
        ClassificationStats.from_state({"kind": "regression"})
    empty = ClassificationStats.from_batches([], target="y", prediction="yhat",
                                             sensitive=["sex"])
    assert empty.n == 0 and empty.merge(direct).n == 3000


def test_too_many_groups_is_a_clear_error():
    rng = np.random.default_rng(0)
    n = 5000
    with pytest.raises(InputError, match="sensitive feature 'income' has 5000 categories"):
        ClassificationStats.from_arrays(rng.integers(0, 2, n), rng.integers(0, 2, n),
                                        score=rng.random(n),
                                        sensitive={"sex": rng.integers(0, 2, n),
                                                   "income": rng.normal(size=n)})


def test_threshold_sweep_matches_direct_computation():
    y, yp, s, sex, _race, w = _data(n=4000)
    stats = ClassificationStats.from_arrays(y, yp, score=s, sensitive={"sex": sex}, weight=w)
    sweep = stats.threshold_sweep(by="sex", step=50)
    assert sweep["thresholds"][:3] == [0.0, 0.05, 0.1] and sweep["thresholds"][-1] == 1.0
    m = sex == "F"
    for k, t in enumerate(sweep["thresholds"]):
        pred = s[m] >= t
        yy, ww = y[m], w[m]
        tpr = (ww * pred * yy).sum() / (ww * yy).sum()
        sel = (ww * pred).sum() / ww.sum()
        assert sweep["groups"]["F"]["tpr"][k] == pytest.approx(tpr, abs=1e-12)
        assert sweep["groups"]["F"]["selection_rate"][k] == pytest.approx(sel, abs=1e-12)
    overall = stats.threshold_sweep()
    assert overall["groups"]["overall"]["n"] == 4000
    with pytest.raises(InputError, match="step"):
        stats.threshold_sweep(step=7)


def test_text_labels_match_a_numeric_positive_label():
    stats = ClassificationStats.from_arrays(np.array(["1", "0", "1"]), [1, 0, 0])
    assert stats.compute("recall") == 0.5
    stats = ClassificationStats.from_arrays(np.array(["1", "0", "1"], dtype=object), [1, 0, 1])
    assert stats.compute("recall") == 1.0


def test_large_inputs_are_processed_in_chunks(monkeypatch):
    import pandas as pd

    from assay.metrics import classification

    y, yp, s, sex, race, w = _data(n=5000)
    whole = ClassificationStats.from_arrays(y, yp, score=s, sensitive={"sex": sex, "race": race},
                                            weight=w)
    monkeypatch.setattr(classification, "CHUNK_ROWS", 1200)
    chunked = ClassificationStats.from_arrays(
        pd.Series(y), pa.array(yp), score=list(s),
        sensitive={"sex": pd.Categorical(sex), "race": pa.chunked_array([race])}, weight=w)
    np.testing.assert_array_equal(chunked.counts, whole.counts)
    np.testing.assert_array_equal(chunked.hist_n, whole.hist_n)
    assert chunked.compute("log_loss") == pytest.approx(whole.compute("log_loss"), rel=1e-12)


def test_merging_different_positive_labels_is_refused():
    a = ClassificationStats.from_arrays(["y", "n"], ["y", "y"], positive_label="y")
    b = ClassificationStats.from_arrays([1, 0], [1, 1], positive_label=1)
    with pytest.raises(InputError, match="different positive labels"):
        a.merge(b)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="ab\u00e9\u4e2d ", max_size=4), min_size=1, max_size=60),
       st.booleans())
def test_numpy_string_features_encode_to_their_sorted_distinct_values(values, as_bytes):
    from assay.metrics._cells import encode_feature

    if as_bytes:
        values = [v.encode() for v in values]
    arr = np.array(values)
    codes, labels = encode_feature(arr, "f")
    uniq, inverse = np.unique(arr, return_inverse=True)
    assert labels == [u.decode() if isinstance(u, bytes) else str(u) for u in uniq.tolist()]
    np.testing.assert_array_equal(codes, inverse.ravel())
    # a strided view (every other row) gives the same as a copy
    c2, l2 = encode_feature(arr[::2], "f")
    c3, l3 = encode_feature(arr[::2].copy(), "f")
    assert l2 == l3 and np.array_equal(c2, c3)


def test_string_feature_with_a_rare_category_outside_any_sample():
    from assay.metrics._cells import encode_feature

    arr = np.array(["b"] * 100_000 + ["a"] + ["c"] * 50_000)
    codes, labels = encode_feature(arr, "f")
    assert labels == ["a", "b", "c"]
    assert codes[100_000] == 0 and (codes[:100_000] == 1).all() and (codes[100_001:] == 2).all()
