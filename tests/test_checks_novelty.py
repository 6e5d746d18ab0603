"""integrity.out_of_distribution and the novelty score behind it (assay.metrics.novelty)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import NearestNeighbors

import assay.checks.integrity  # registers the leakage screen
import assay.checks.novelty  # noqa: F401 - registers the check
from assay.checks.base import REGISTRY, CheckSpec, JudgeOn, Status, Threshold, run_check
from assay.data import ColumnRoles, open_dataset
from assay.datasets import load_adult
from assay.errors import InputError, PolicyError
from assay.metrics.novelty import NoveltyScorer, conformal_threshold, fit_novelty, knn_distance
from test_checks_integrity import ROLES, Ctx

ID = "integrity.out_of_distribution"
PLAIN = ColumnRoles(target="y")


@pytest.fixture(scope="module")
def adult() -> tuple[pd.DataFrame, pd.DataFrame]:
    return load_adult(missing_as_nan=True)


def frame(n: int, seed: int, *, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "a": rng.normal(shift, 1.0, n), "b": rng.normal(10.0 + shift, 3.0, n),
        "c": rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2]),
        "y": rng.integers(0, 2, n)})


def run(ctx: Ctx, threshold: Threshold | None = None, **params):
    spec = CheckSpec(id=ID, threshold=threshold, judge_on=JudgeOn.INTERVAL, params=params,
                     source="policy.yaml:12")
    return run_check(REGISTRY[ID], ctx, spec)


def test_identical_distribution_gives_one_percent() -> None:
    ev = frame(40_000, 2)
    ctx = Ctx(open_dataset(ev, PLAIN), open_dataset(frame(40_000, 1)), None, PLAIN)
    r = run(ctx, Threshold(max=0.05), reference_rows=40_000, sample_rows=40_000, seed=3)
    m = r.measurements[0]
    assert r.status is Status.PASS
    assert m.n == 40_000
    assert m.ci[0] <= 0.01 <= m.ci[1], m
    assert abs(m.value - 0.01) < 0.004
    assert "seeded sample" not in m.note and "20,000 training rows" in m.note


@pytest.mark.parametrize("planted", [0.05, 0.20])
def test_planted_cluster_is_found(planted: float) -> None:
    n = 20_000
    ev = frame(n, 2)
    k = int(planted * n)
    far = frame(k, 5, shift=8.0)  # a cluster far from the training rows
    ev.iloc[:k] = far.to_numpy()
    ev = ev.astype({"a": float, "b": float, "y": int})
    ctx = Ctx(open_dataset(ev, PLAIN), open_dataset(frame(20_000, 1)), None, PLAIN)
    r = run(ctx, Threshold(max=0.02), reference_rows=20_000, sample_rows=n)
    m = r.measurements[0]
    # the planted rows all count, and about 1% of the others
    assert m.value == pytest.approx(planted + 0.01 * (1 - planted), abs=0.005)
    assert r.status is Status.FAIL
    assert r.details["novel_rows"] == round(m.value * n)
    assert set(r.details["novel_rows_mean_abs_z"]) == {"a", "b"}


def test_unseen_category_is_novel() -> None:
    ref = frame(4_000, 1)
    ev = frame(4_000, 2)
    ev.loc[:399, "c"] = "never-seen"
    ctx = Ctx(open_dataset(ev, PLAIN), open_dataset(ref), None, PLAIN)
    r = run(ctx, Threshold(max=0.05))
    assert r.measurements[0].value >= 0.1
    assert r.details["novel_rows_unseen_share"]["c"] > 0.8


def test_sample_size_is_a_param_and_stated() -> None:
    ctx = Ctx(open_dataset(frame(30_000, 2), PLAIN), open_dataset(frame(10_000, 1)), None,
              PLAIN)
    r = run(ctx, Threshold(max=0.05), sample_rows=5_000, reference_rows=1_000)
    m = r.measurements[0]
    assert m.n == 5_000
    assert "seeded sample of 5,000 of 30,000 evaluation rows" in m.note
    assert r.details["fit_rows"] == 500 and r.details["calibration_rows"] == 500
    again = run(ctx, Threshold(max=0.05), sample_rows=5_000, reference_rows=1_000)
    assert again.measurements[0].value == m.value  # seeded


def test_skipped_without_reference() -> None:
    ctx = Ctx(open_dataset(frame(1_000, 2), PLAIN), None, None, PLAIN)
    r = run(ctx, Threshold(max=0.05))
    assert r.status is Status.SKIP and "no reference" in r.message


def test_bad_params_are_policy_errors() -> None:
    ctx = Ctx(open_dataset(frame(1_000, 2), PLAIN), open_dataset(frame(1_000, 1)), None, PLAIN)
    with pytest.raises(PolicyError, match=r"policy.yaml:12.*'sample_rows'"):
        run(ctx, Threshold(max=0.05), sample_rows=0)
    with pytest.raises(PolicyError, match="'reference_rows'"):
        run(ctx, Threshold(max=0.05), reference_rows=50)
    with pytest.raises(InputError, match=r"'nope'.*not in the evaluation data"):
        run(ctx, Threshold(max=0.05), columns=["a", "nope"])


def test_knn_distance_matches_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    pts, q = rng.normal(size=(700, 6)), rng.normal(size=(900, 6))
    d, _ = NearestNeighbors(n_neighbors=5).fit(pts).kneighbors(q)
    assert np.allclose(knn_distance(q, pts, 5), d.mean(axis=1), atol=1e-9)


def test_conformal_threshold() -> None:
    s = np.arange(1, 200, dtype=float)  # 199 scores: rank ceil(200 * 0.99) = 198
    assert conformal_threshold(s) == 198.0
    with pytest.raises(InputError, match="at least 99 calibration rows"):
        conformal_threshold(np.arange(50, dtype=float))


def test_fitted_state_round_trips_through_json() -> None:
    sc = fit_novelty(frame(2_000, 1), numeric=["a", "b"], categorical=["c"], seed=4)
    back = NoveltyScorer.from_dict(json.loads(json.dumps(sc.to_dict())))
    ev = frame(500, 9)
    assert np.array_equal(back.score(ev), sc.score(ev))
    assert back.threshold == sc.threshold


def test_adult_test_set_is_in_distribution(adult) -> None:
    # the Adult test file is drawn from the same census as its training file
    train, test = adult
    ctx = Ctx(open_dataset(test, ROLES), open_dataset(train), None, ROLES)
    r = run(ctx, Threshold(max=0.05), reference_rows=10_000, sample_rows=10_000)
    m = r.measurements[0]
    assert r.status is Status.PASS, r.message
    assert 0.003 < m.value < 0.025
    assert "income" not in r.details["categorical_features"]


def test_adult_against_another_population(adult) -> None:
    # trained on people under 35, evaluated on people of 50 and over: the age alone
    # puts them several standard deviations away
    train, test = adult
    ctx = Ctx(open_dataset(test[test["age"] >= 50], ROLES),
              open_dataset(train[train["age"] < 35]), None, ROLES)
    r = run(ctx, Threshold(max=0.05), reference_rows=10_000, sample_rows=5_000)
    assert r.status is Status.FAIL
    assert r.measurements[0].ci[0] > 0.9
    assert next(iter(r.details["novel_rows_mean_abs_z"])) == "age"


def test_report_draws_the_scores_against_the_threshold() -> None:
    from assay.report import render_report
    from assay.report.novelty_chart import novelty_histogram

    n = 5_000
    ev = frame(n, 2)
    ev.loc[:499, ["a", "b"]] = 40.0
    ctx = Ctx(open_dataset(ev, PLAIN), open_dataset(frame(4_000, 1)), None, PLAIN)
    r = run(ctx, Threshold(max=0.05))
    hist = r.details["score_histogram"]
    assert sum(hist["evaluation"]) == pytest.approx(1.0)
    # the planted rows are in the last bins, beyond the threshold
    beyond = [s for e, s in zip(hist["edges"][1:], hist["evaluation"], strict=True)
              if e > hist["threshold"]]
    assert sum(beyond) >= 0.1
    html = render_report({"status": "blocked", "checks": [r.to_dict()]})
    assert "Novelty scores: evaluation against training" in html
    assert "99th percentile" in html and "out-of-distribution rows" in html
    assert novelty_histogram({"edges": [0, 1], "evaluation": [1.0]}) is None


def test_the_evaluation_is_read_once_with_the_leakage_screen(adult) -> None:
    train, test = adult
    ctx = Ctx(open_dataset(test, ROLES), open_dataset(train), None, ROLES)
    leak = run_check(REGISTRY["integrity.target_leakage"], ctx,
                     CheckSpec(id="integrity.target_leakage", threshold=Threshold(max=0.95)))
    reads = []
    real = ctx.evaluation.sample_arrow
    ctx.evaluation.sample_arrow = lambda *a, **k: reads.append(a) or real(*a, **k)
    r = run(ctx, Threshold(max=0.05), sample_rows=5_000)
    assert leak.status is Status.PASS and r.status is Status.PASS
    assert reads == []  # drawn from the leakage screen's cached sample
    assert len([k for k in ctx.calls if k.startswith("integrity.sample")]) == 1
    assert r.measurements[0].n == 5_000
    assert "seeded sample of 5,000 of 16,281 evaluation rows" in r.measurements[0].note
