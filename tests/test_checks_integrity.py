"""Integrity checks on real data (Adult, German credit) through a small check context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency
from sklearn.metrics import roc_auc_score

import assay.checks.integrity  # noqa: F401 - registers the checks
from _datasets import DATASETS
from assay.checks.base import REGISTRY, CheckSpec, Status, Threshold, run_check
from assay.data import ColumnRoles, open_dataset
from assay.datasets import load_adult
from assay.errors import PolicyError

GERMAN = DATASETS / "german_credit" / "german.data"
GERMAN_COLS = ["status", "duration", "credit_history", "purpose", "credit_amount", "savings",
               "present_employment", "installment_rate", "status_sex", "other_debtors",
               "present_residence_since", "property", "age", "installment_plans", "housing",
               "number_of_existing_credits", "job", "number_of_people_liable_for", "telephone",
               "foreign_worker", "credit"]


@dataclass
class Settings:
    min_group_size: int = 30
    bootstrap: Any = None


@dataclass
class Ctx:
    """The CheckContext protocol over real Datasets, with a plain cache."""

    evaluation: Any
    reference: Any | None
    model: Any | None
    roles: ColumnRoles
    settings: Any = field(default_factory=Settings)
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
    spec = CheckSpec(id=check_id, threshold=threshold, params=params)
    return run_check(REGISTRY[check_id], ctx, spec)


ROLES = ColumnRoles(target="income", positive_label=">50K", sensitive=["sex", "race"])


@pytest.fixture(scope="module")
def adult():
    return load_adult(missing_as_nan=True)


@pytest.fixture(scope="module")
def ctx(adult) -> Ctx:
    return Ctx(open_dataset(adult[1], ROLES), open_dataset(adult[0]), None, ROLES)


@pytest.fixture(scope="module")
def german() -> Ctx:
    roles = ColumnRoles(target="credit", positive_label=1, sensitive=["status_sex", "age"])
    ds = open_dataset(GERMAN, roles, csv={"delimiter": " ", "header": False,
                                          "column_names": GERMAN_COLS})
    return Ctx(ds, None, None, roles)


def _m(result, label):
    return next(m for m in result.measurements if m.label == label)


def test_missing_values_match_pandas(ctx: Ctx, adult) -> None:
    r = run(ctx, "integrity.missing_values", Threshold(max=0.05))
    test = adult[1]
    for col in test.columns:
        assert _m(r, col).value == pytest.approx(test[col].isna().mean(), abs=1e-15)
    assert _m(r, "occupation").value > 0.05
    assert r.status is Status.FAIL and "occupation" in r.message
    r2 = run(ctx, "integrity.missing_values", Threshold(max=0.05), columns=["age", "sex"])
    assert r2.status is Status.PASS and len(r2.measurements) == 2


def test_duplicates_match_pandas(ctx: Ctx, adult) -> None:
    r = run(ctx, "integrity.duplicates", Threshold(max=0.01))
    expected = adult[1].duplicated().mean()
    assert expected > 0
    assert r.measurements[0].value == pytest.approx(expected, abs=1e-12)
    r2 = run(ctx, "integrity.duplicates", Threshold(max=0.01), columns=["sex", "race"])
    assert r2.status is Status.FAIL
    assert r2.measurements[0].value == pytest.approx(adult[1][["sex", "race"]].duplicated().mean())


def test_train_eval_overlap(adult) -> None:
    train, test = adult
    leaky = pd.concat([test, train.head(4000)], ignore_index=True)
    c = Ctx(open_dataset(leaky, ROLES), open_dataset(train), None, ROLES)
    r = run(c, "integrity.train_eval_overlap", Threshold(max=0.01))
    feats = [x for x in train.columns if x != "income"]
    keys = set(map(tuple, train[feats].astype(str).to_numpy()))
    expected = np.mean([tuple(row) in keys for row in leaky[feats].astype(str).to_numpy()])
    assert r.measurements[0].value == pytest.approx(expected, abs=1e-12)
    assert r.measurements[0].value >= 4000 / len(leaky)
    assert r.status is Status.FAIL
    nothing = Ctx(open_dataset(test, ROLES), None, None, ROLES)
    assert run(nothing, "integrity.train_eval_overlap", Threshold(max=0.01)).status is Status.SKIP


def test_type_independent_row_hashing(adult) -> None:
    import pyarrow as pa

    from assay.checks.integrity import row_hashes

    a = pa.table({"x": pa.array([1, 2, 3], pa.int64()), "s": ["a", "b", None]})
    b = pa.table({"x": pa.array([1.0, 2.0, 3.0]),
                  "s": pa.array(["a", "b", None]).dictionary_encode()})
    np.testing.assert_array_equal(row_hashes(a), row_hashes(b))
    swapped = pa.table({"s": ["a", "b", None], "x": pa.array([1, 2, 3])})
    assert not np.array_equal(row_hashes(a), row_hashes(swapped))


def test_constant_columns_and_label_balance(adult) -> None:
    df = adult[1].copy()
    df["country_const"] = "US"
    c = Ctx(open_dataset(df, ROLES), None, None, ROLES)
    r = run(c, "integrity.constant_columns", Threshold(max=0))
    assert _m(r, "country_const").value == 1.0 and _m(r, "age").value == 0.0
    assert r.status is Status.FAIL and "country_const" in r.message
    lb = run(c, "integrity.label_balance", Threshold(min=0.05))
    assert lb.measurements[0].value == pytest.approx((df["income"] == ">50K").mean())
    assert lb.status is Status.PASS


def test_value_ranges_declared_and_from_reference(ctx: Ctx, adult) -> None:
    r = run(ctx, "integrity.value_ranges", Threshold(max=0.0),
            ranges={"age": {"min": 18, "max": 80}})
    age = adult[1]["age"]
    assert r.measurements[0].value == pytest.approx(((age < 18) | (age > 80)).mean())
    assert r.status is Status.FAIL
    r2 = run(ctx, "integrity.value_ranges", Threshold(max=0.01))
    tr, te = adult[0]["fnlwgt"], adult[1]["fnlwgt"]
    assert _m(r2, "fnlwgt").value == pytest.approx(((te < tr.min()) | (te > tr.max())).mean())
    assert r2.status is Status.PASS
    from assay.errors import InputError

    with pytest.raises(InputError, match=r"'sex'.*expected numbers for a range"):
        REGISTRY["integrity.value_ranges"].fn(
            ctx, CheckSpec(id="integrity.value_ranges", params={"ranges": {"sex": {"min": 0}}}))


def test_group_representation_with_intersections(ctx: Ctx, adult) -> None:
    r = run(ctx, "integrity.group_representation", Threshold(min=0.01))
    test = adult[1]
    assert _m(r, "sex=Female").value == pytest.approx((test["sex"] == "Female").mean())
    cell = ((test["sex"] == "Female") & (test["race"] == "Other")).sum()
    m = _m(r, "sex x race=Female x Other")
    assert m.n == cell and m.value == pytest.approx(cell / len(test))
    assert r.status is Status.FAIL  # small intersections
    counts = run(ctx, "integrity.group_representation", Threshold(min=30), measure="count",
                 intersections=False)
    assert all(" x " not in m.label for m in counts.measurements)
    assert _m(counts, "race=Other").value == (test["race"] == "Other").sum()


def test_target_leakage_names_the_leaky_feature(adult) -> None:
    df = adult[1].copy()
    rng = np.random.default_rng(0)
    y = (df["income"] == ">50K").to_numpy()
    df["approved_amount"] = np.where(y, 1000.0, 0.0) + rng.normal(0, 50, len(df))
    df["row_id"] = [f"id{i}" for i in range(len(df))]  # unique categories must not look leaky
    c = Ctx(open_dataset(df, ROLES), None, None, ROLES)
    r = run(c, "integrity.target_leakage", Threshold(max=0.95))
    assert r.status is Status.FAIL and "approved_amount" in r.message
    assert _m(r, "approved_amount").value > 0.99
    assert _m(r, "row_id").value < 0.6
    assert _m(r, "capital_gain").value == pytest.approx(
        max(roc_auc_score(y, df["capital_gain"]), 1 - roc_auc_score(y, df["capital_gain"])))
    assert 0.7 < _m(r, "relationship").value < 0.95


def test_proxy_features_on_german_credit(german: Ctx) -> None:
    r = run(german, "integrity.proxy_features", Threshold(max=0.5))
    df = german.evaluation.to_pandas()
    table = pd.crosstab(df["job"], df["status_sex"]).to_numpy()
    chi2 = chi2_contingency(table, correction=False).statistic
    v = np.sqrt(chi2 / (table.sum() * (min(table.shape) - 1)))
    assert _m(r, "job ~ status_sex").value == pytest.approx(v, rel=1e-9)
    assert "Cramér's V" in r.message
    assert all(0 <= m.value <= 1 for m in r.measurements)


def test_schema_contract(german: Ctx) -> None:
    contract = {
        "duration": {"type": "numeric", "min": 4, "max": 48},
        "purpose": {"type": "categorical", "allowed": [f"A4{i}" for i in range(10)]},
        "age": {"type": "string"},
        "income": {"type": "numeric"},
        "telephone": {"type": "string", "nullable": False},
    }
    r = run(german, "integrity.schema", Threshold(max=0.0), columns=contract)
    df = german.evaluation.to_pandas()
    assert _m(r, "duration").value == pytest.approx((df["duration"] > 48).mean())
    assert _m(r, "purpose").value == pytest.approx((df["purpose"] == "A410").mean())
    assert "expected string" in _m(r, "age").note
    assert _m(r, "income").note == "column is missing"
    assert _m(r, "telephone").value == 0.0
    assert r.status is Status.FAIL


def test_label_balance_skips_regression(adult) -> None:
    roles = ColumnRoles(target="age", task="regression")
    c = Ctx(open_dataset(adult[1], roles), None, None, roles)
    assert run(c, "integrity.label_balance", Threshold(min=0.05)).status is Status.SKIP


def test_bad_contract_is_a_policy_error(german: Ctx) -> None:
    from assay.checks.integrity import schema

    with pytest.raises(PolicyError, match="unknown key"):
        schema(german, CheckSpec(id="integrity.schema", params={"columns": {"age": {"typ": 1}}}))


def test_group_labels_match_the_group_metrics(adult) -> None:
    df = adult[1].head(3000).copy()
    df.loc[:9, "sex"] = None
    df["grade"] = (df["education_num"] > 9).astype(float)
    roles = ColumnRoles(target="income", positive_label=">50K", sensitive=["sex", "grade"])
    c = Ctx(open_dataset(df, roles), None, None, roles)
    r = run(c, "integrity.group_representation", Threshold(min=1), measure="count")
    assert _m(r, "sex=<missing>").value == 10
    assert _m(r, "grade=1").value == (df["grade"] == 1).sum()


def test_constant_columns_score_no_leakage_whatever_their_type(adult, tmp_path) -> None:
    """A column with one value (or none) has AUC 0.5: from CSV it used to get the
    out-of-fold target rate of each half of the rows, so 0.509 instead of 0.5."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = adult[1].head(4000).copy()
    df["channel"] = "branch"
    df["comment"] = None
    df["bonus"] = np.nan
    df["flag"] = 3
    df.to_csv(tmp_path / "t.csv", index=False)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "t.parquet")
    for source in (df, tmp_path / "t.csv", tmp_path / "t.parquet"):
        c = Ctx(open_dataset(source, ROLES), None, None, ROLES)
        r = run(c, "integrity.target_leakage", Threshold(max=0.95))
        for col in ("channel", "comment", "bonus", "flag"):
            assert _m(r, col).value == 0.5, (source, col)
            assert "constant" in _m(r, col).note
        # missing against present is information: not constant
        assert _m(r, "workclass").note is None and _m(r, "workclass").value > 0.5


def test_intersection_labels_are_the_same_in_every_section(adult) -> None:
    from assay import certify
    from assay.metrics.frame import group_label
    from assay.policy import parse_policy

    text = """
name: labels
version: "1"
tiers:
  high:
    checks:
      - {id: integrity.group_representation, params: {measure: count}, threshold: {min: 1}}
      - {id: performance.accuracy, params: {by: [race, sex]}, threshold: {min: 0.1}}
      - id: fairness.demographic_parity_difference
        params: {by: [race, sex], convention: aif360}
        threshold: {max: 1}
"""
    df = adult[1].head(3000).copy()
    df["decision"] = (df["education_num"] > 10).map({True: ">50K", False: "<=50K"})
    r = certify(data=df, policy=parse_policy(text, source="labels.yaml"), tier="high",
                target="income", positive_label=">50K", prediction="decision",
                sensitive=["race", "sex"]).to_dict()
    checks = {c["id"]: c for c in r["checks"]}
    prefix = group_label(["race", "sex"], "")
    represented = {m["label"] for m in checks["integrity.group_representation"]["measurements"]
                   if m["label"].startswith(prefix)}
    measured = {m["label"] for m in checks["performance.accuracy"]["measurements"]
                if m["label"].startswith(prefix)}
    assert "race x sex=Other x Female" in represented
    assert represented == measured
    fair = {m["label"].split(" vs ")[0]
            for m in checks["fairness.demographic_parity_difference"]["measurements"]}
    assert fair and fair <= represented
    summary = {group_label(["race", "sex"], g) for g in r["metrics"]["groups"]["race x sex"]}
    assert summary == represented
    assert not any("&" in label for label in represented | measured | fair | summary)


def _encode_with_pandas(values: pd.Series, y: np.ndarray, seed: int) -> np.ndarray:
    """The leakage screen's out-of-fold target rate, written with a pandas group-by."""
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, 2, size=len(values))
    key = values.astype(str).where(values.notna(), "(missing)").to_numpy()
    out = np.empty(len(values), dtype=np.float64)
    prior = float(y.mean())
    for f in (0, 1):
        train = fold != f
        rates = pd.Series(y[train]).groupby(key[train]).mean()
        out[~train] = pd.Series(key[~train]).map(rates).fillna(prior).to_numpy()
    return out


@pytest.mark.parametrize("rows", [7, 60, 2_000, 32_561])
def test_out_of_fold_encoding_is_bit_for_bit_the_group_by(rows: int) -> None:
    """Counted with bincount, the rates are the same floats as the group-by means
    (categories seen in one half only get the prior; missing values are a category)."""
    from assay.checks.integrity import _encode_out_of_fold

    train = load_adult(missing_as_nan=True)[0]
    for seed in range(3):
        d = train.sample(rows, random_state=seed)
        y = (d["income"] == ">50K").to_numpy()
        for c in d.columns:
            want = _encode_with_pandas(d[c], y, seed)
            assert _encode_out_of_fold(d[c], y, seed).tobytes() == want.tobytes(), (c, seed)
