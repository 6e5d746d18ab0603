"""Drift checks through the check framework, on Adult and Taiwan credit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

import assay.checks.drift  # noqa: F401 - registers the checks
from _datasets import DATASETS
from assay.checks.base import REGISTRY, CheckSpec, Status, Threshold, run_check
from assay.checks.drift import context_drift
from assay.data import ColumnRoles, open_dataset
from assay.datasets import load_adult
from assay.errors import InputError, PolicyError
from assay.metrics.drift import drift_summary

TAIWAN = DATASETS / "taiwan_credit" / "credit_default.csv"


@dataclass
class Ctx:
    evaluation: Any
    reference: Any | None
    model: Any | None
    roles: ColumnRoles
    settings: Any = None
    calls: dict[str, int] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self.calls[key] = self.calls.get(key, 0) + 1
            self._cache[key] = fn()
        return self._cache[key]

    def progress(self, description: str, total: int | None = None) -> Any:
        return None


def run(ctx: Ctx, check_id: str, threshold: Threshold | None = None, **params: Any):
    return run_check(REGISTRY[check_id], ctx, CheckSpec(id=check_id, threshold=threshold,
                                                        params=params))


ROLES = ColumnRoles(target="income", positive_label=">50K", sensitive=["sex"])


@pytest.fixture(scope="module")
def adult_ctx() -> Ctx:
    train, test = load_adult()
    return Ctx(open_dataset(test, ROLES), open_dataset(train), None, ROLES)


@pytest.fixture(scope="module")
def taiwan_ctx() -> Ctx:
    df = pd.read_csv(TAIWAN)
    roles = ColumnRoles(target="default-payment-next-month",
                        features=["LIMIT_BAL", "AGE", "SEX", "PAY_0", "BILL_AMT1", "PAY_AMT1"])
    low = df[df["LIMIT_BAL"] <= df["LIMIT_BAL"].median()]
    high = df[df["LIMIT_BAL"] > df["LIMIT_BAL"].median()]
    return Ctx(open_dataset(high, roles), open_dataset(low), None, roles)


def test_no_drift_between_adult_train_and_test(adult_ctx: Ctx) -> None:
    for cid, th in [("drift.psi", Threshold(max=0.1)), ("drift.jensen_shannon", Threshold(max=0.1)),
                    ("drift.ks", Threshold(max=0.1)), ("drift.wasserstein", Threshold(max=0.1)),
                    ("drift.chi2", Threshold(min=0.001)), ("drift.share", Threshold(max=0.2))]:
        r = run(adult_ctx, cid, th)
        assert r.status is Status.PASS, (cid, r.message)
    labels = [m.label for m in run(adult_ctx, "drift.psi", Threshold(max=0.1)).measurements]
    assert "income" not in labels and "age" in labels and "sex" in labels
    ks_labels = [m.label for m in run(adult_ctx, "drift.ks", Threshold(max=0.1)).measurements]
    assert "sex" not in ks_labels  # numeric features only
    # one pair of profiles serves every check
    profiles = [k for k in adult_ctx.calls if k.startswith("drift.profiles")]
    assert len(profiles) == 1 and adult_ctx.calls[profiles[0]] == 1


def test_drift_found_on_taiwan_split_by_limit(taiwan_ctx: Ctx) -> None:
    r = run(taiwan_ctx, "drift.psi", Threshold(max=0.25))
    assert r.status is Status.FAIL and "LIMIT_BAL" in r.message
    share = run(taiwan_ctx, "drift.share", Threshold(max=0.2))
    assert share.status is Status.FAIL and "LIMIT_BAL" in share.details["drifted"]
    assert share.measurements[0].value == pytest.approx(len(share.details["drifted"]) / 6)
    # stricter thresholds flag more features
    strict = run(taiwan_ctx, "drift.share", Threshold(max=0.2),
                 thresholds={"psi": 0.02, "js": 0.05})
    assert strict.measurements[0].value >= share.measurements[0].value
    # the summary the certification records is the same computation
    s = context_drift(taiwan_ctx)
    assert s["features"]["LIMIT_BAL"]["psi"] == pytest.approx(
        next(m.value for m in r.measurements if m.label == "LIMIT_BAL"))
    # drift_summary itself compares two profiles; given a context it says where to look
    with pytest.raises(InputError, match=r"context_drift\(ctx\)"):
        drift_summary(taiwan_ctx)


def test_skips_without_reference_and_bad_params(adult_ctx: Ctx) -> None:
    none = Ctx(adult_ctx.evaluation, None, None, ROLES)
    r = run(none, "drift.psi", Threshold(max=0.25))
    assert r.status is Status.SKIP and r.message == "no reference data was given"
    with pytest.raises(PolicyError, match="bins"):
        REGISTRY["drift.psi"].fn(adult_ctx, CheckSpec(id="drift.psi", params={"bins": 1}))
    with pytest.raises(InputError, match="'agee' is not a column"):
        REGISTRY["drift.psi"].fn(adult_ctx, CheckSpec(id="drift.psi",
                                                      params={"features": ["agee"]}))
    with pytest.raises(PolicyError, match=r"policy.yaml:12.*unknown name 'psii'"):
        REGISTRY["drift.share"].fn(adult_ctx, CheckSpec(id="drift.share", source="policy.yaml:12",
                                                        params={"thresholds": {"psii": 0.2}}))
    assert REGISTRY["drift.share"].params == ("features", "bins", "fine_bins", "max_categories",
                                              "thresholds")


def test_certification_runs_every_data_check_without_error() -> None:
    """The shipped default policy, with a real model, through the real certification."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from assay.certification import certify

    train, test = load_adult(missing_as_nan=True)
    num = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
    cat = ["workclass", "marital_status", "occupation", "relationship", "race", "sex"]
    model = Pipeline([
        ("prep", ColumnTransformer([("num", StandardScaler(), num),
                                    ("cat", OneHotEncoder(handle_unknown="ignore"), cat)])),
        ("clf", LogisticRegression(max_iter=300)),
    ]).fit(train[num + cat], train["income"])
    cert = certify(data=test, reference=train, model=model, policy="default", tier="high",
                   target="income", positive_label=">50K", sensitive=["sex", "race"],
                   features=num + cat)
    ours = [r for r in cert.checks if r.family in ("integrity", "drift", "robustness")]
    assert len(ours) >= 10
    assert all(r.status.value in ("pass", "warn", "fail") for r in ours), [
        (r.id, r.status, r.message) for r in ours if r.status.value not in ("pass", "warn", "fail")]
    drift = cert.to_dict()["drift"]
    assert drift["drifted_share"] == 0.0 and set(drift["features"]) == set(num + cat)


def test_prediction_drift_with_a_model_and_with_score_columns() -> None:
    from scipy.spatial.distance import jensenshannon
    from sklearn.linear_model import LogisticRegression

    from assay.data import ModelAdapter

    df = pd.read_csv(TAIWAN)
    feats = ["LIMIT_BAL", "AGE", "PAY_0", "BILL_AMT1", "PAY_AMT1"]
    target = "default-payment-next-month"
    low = df[df["LIMIT_BAL"] <= df["LIMIT_BAL"].median()].reset_index(drop=True)
    high = df[df["LIMIT_BAL"] > df["LIMIT_BAL"].median()].reset_index(drop=True)
    model = LogisticRegression(max_iter=500).fit(low[feats], low[target])
    roles = ColumnRoles(target=target, features=feats)
    adapter = ModelAdapter.from_estimator(model)
    shifted = Ctx(open_dataset(high, roles), open_dataset(low), adapter, roles)
    r = run(shifted, "drift.prediction", Threshold(max=0.25))
    assert r.status is Status.FAIL and r.measurements[0].label == "model output (__score__)"
    # same numbers from score columns written into the data
    low2 = low.assign(p=model.predict_proba(low[feats])[:, 1])
    high2 = high.assign(p=model.predict_proba(high[feats])[:, 1])
    roles2 = ColumnRoles(target=target, features=feats, score="p")
    given = Ctx(open_dataset(high2, roles2), open_dataset(low2), None, roles2)
    r2 = run(given, "drift.prediction", Threshold(max=0.25), measure="js")
    fr = np.asarray(r2.details["reference"]["fractions"])
    fc = np.asarray(r2.details["current"]["fractions"])
    assert r2.measurements[0].value == pytest.approx(jensenshannon(fr, fc, base=2), abs=1e-12)
    assert fr.size >= 10  # coarse quantile bins of the reference's scores
    stable = Ctx(open_dataset(low.iloc[::2], roles), open_dataset(low.iloc[1::2]), adapter,
                 roles)
    assert run(stable, "drift.prediction", Threshold(max=0.1)).status is Status.PASS
    nothing = Ctx(open_dataset(high, roles), open_dataset(low), None, roles)
    assert run(nothing, "drift.prediction", Threshold(max=0.1)).status is Status.SKIP
