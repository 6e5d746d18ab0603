"""Multinomial bootstrap over statistic cells: equal in distribution to the row bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from assay.errors import InputError
from assay.metrics import Bootstrap, ClassificationStats, bootstrap


def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.random(n)
    y = (rng.random(n) < s).astype(int)
    g = rng.choice(["a", "b", "c"], n, p=[0.5, 0.4, 0.1])
    return y, (s > 0.5).astype(int), s, g


def test_seeded_and_reproducible():
    y, yp, s, g = _data()
    stats = ClassificationStats.from_arrays(y, yp, score=s, sensitive={"g": g})
    a = bootstrap(stats, n_boot=200, seed=7).replicates(["recall", "roc_auc"], "g")
    b = bootstrap(stats, n_boot=200, seed=7).replicates(["recall", "roc_auc"], "g")
    c = bootstrap(stats, n_boot=200, seed=8).replicates(["recall"], "g")
    np.testing.assert_array_equal(a["recall"], b["recall"])
    np.testing.assert_array_equal(a["roc_auc"], b["roc_auc"])
    assert not np.array_equal(a["recall"], c["recall"])
    assert a["recall"].shape == (200, 3)


def test_count_metric_replicates_match_row_bootstrap_in_distribution():
    y, yp, _s, g = _data(n=2000)
    stats = ClassificationStats.from_arrays(y, yp, sensitive={"g": g})
    reps = bootstrap(stats, n_boot=2000, seed=1).replicates(["accuracy", "tpr"], "g")
    rng = np.random.default_rng(2)
    row = {"accuracy": [], "tpr": []}
    m = g == "c"
    for _ in range(600):
        ix = rng.integers(0, len(y), len(y))
        mm = m[ix]
        yy, pp = y[ix][mm], yp[ix][mm]
        row["accuracy"].append((yy == pp).mean())
        row["tpr"].append(pp[yy == 1].mean())
    for name in ("accuracy", "tpr"):
        ours = reps[name][:, 2]
        # same centre and spread (Monte Carlo tolerance)
        assert ours.mean() == pytest.approx(np.mean(row[name]), abs=0.01)
        assert ours.std() == pytest.approx(np.std(row[name]), rel=0.12)


def test_interval_covers_point_and_narrows_with_n():
    y, yp, s, _g = _data(n=20000)
    big = ClassificationStats.from_arrays(y, yp, score=s)
    small = ClassificationStats.from_arrays(y[:500], yp[:500], score=s[:500])
    widths = []
    for stats in (small, big):
        b = bootstrap(stats, n_boot=500)
        for name in ("accuracy", "roc_auc", "brier", "log_loss", "ece"):
            lo, hi = b.interval(b.replicates([name])[name])[0]
            point = stats.compute(name)
            if name != "ece":  # ECE is biased upward under resampling
                assert lo <= point <= hi, name
        lo, hi = b.interval(b.replicates(["roc_auc"])["roc_auc"])[0]
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 3


def test_score_metric_replicates_centred_on_fine_point_estimate():
    y, yp, s, _g = _data(n=50000)
    stats = ClassificationStats.from_arrays(y, yp, score=s)
    reps = bootstrap(stats, n_boot=300).replicates(["roc_auc", "brier"])
    assert np.median(reps["roc_auc"]) == pytest.approx(stats.compute("roc_auc"), abs=2e-3)
    assert np.median(reps["brier"]) == pytest.approx(stats.compute("brier"), abs=2e-3)


def test_weighted_replicates_use_mean_cell_weight():
    y, yp, _s, g = _data(n=2000)
    w = np.where(g == "a", 2.0, 1.0)  # constant within cells: exact
    stats = ClassificationStats.from_arrays(y, yp, sensitive={"g": g}, weight=w)
    reps = bootstrap(stats, n_boot=300).replicates(["selection_rate"])
    assert np.median(reps["selection_rate"]) == pytest.approx(
        stats.compute("selection_rate"), abs=0.01)


def test_p_value_and_bad_settings():
    b = Bootstrap(ClassificationStats.from_arrays([0, 1, 1, 0], [0, 1, 0, 0]), n_boot=20)
    assert b.p_value(np.array([[1.0], [2.0], [3.0]]))[0] == 0.0
    assert b.p_value(np.array([[-1.0], [1.0]]))[0] == 1.0
    with pytest.raises(InputError, match="replicates"):
        bootstrap(b.stats, n_boot=3)
    with pytest.raises(InputError, match="confidence"):
        bootstrap(b.stats, confidence=1.5)


def test_metric_names_are_validated_and_aliases_resolved():
    y, yp, _s, g = _data(n=500)
    b = bootstrap(ClassificationStats.from_arrays(y, yp, sensitive={"g": g}), n_boot=20)
    assert set(b.replicates(["sensitivity", "accuracy"])) == {"sensitivity", "accuracy"}
    with pytest.raises(InputError, match="unknown classification metric"):
        b.replicates(["acc"])
    with pytest.raises(InputError, match="needs a score column"):
        b.replicates(["roc_auc"])
