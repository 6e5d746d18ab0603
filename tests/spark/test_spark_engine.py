"""The Spark engine gives the local engine's numbers (Spark in local mode).

Every comparison runs the same certification twice, once with ``assay.certify``
over an Arrow table and once with ``assay.spark.certify`` over a Spark
DataFrame holding the same rows in the same order, and asserts that the
``metrics`` and ``drift`` blocks of results.json are equal, number for number.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from _datasets import DATASETS
from assay import certify
from assay import spark as assay_spark
from assay.errors import InputError

ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
                 "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
                 "hours_per_week", "native_country", "income"]
ADULT_CAT = ["workclass", "education", "marital_status", "occupation", "relationship", "race",
             "sex"]
ADULT_NUM = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]


def read_adult(name: str) -> pd.DataFrame:
    df = pd.read_csv(DATASETS / "adult" / name, header=None, names=ADULT_COLUMNS,
                     sep=r",\s*", engine="python", skiprows=1 if name == "adult.test" else 0)
    df["income"] = df["income"].str.rstrip(".")
    df = df.dropna(subset=["income"]).drop(columns=["native_country", "fnlwgt"])
    return df.reset_index(drop=True)


def _block(results: dict[str, Any], key: str) -> str:
    return json.dumps(results[key], sort_keys=True)


def _same(local: Any, spark: Any) -> None:
    a, b = local.to_dict(), spark.to_dict()
    assert a["metrics"] is not None
    assert _block(a, "metrics") == _block(b, "metrics")
    assert _block(a, "drift") == _block(b, "drift")
    assert a["data"]["evaluation"]["rows"] == b["data"]["evaluation"]["rows"]


@pytest.fixture(scope="module")
def adult() -> dict[str, Any]:
    train = read_adult("adult.data")
    test = read_adult("adult.test")
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ADULT_CAT),
                                (StandardScaler(), ADULT_NUM)),
        LogisticRegression(max_iter=300)).fit(train[ADULT_CAT + ADULT_NUM], train["income"])
    return {"train": train, "test": test, "model": model}


def test_adult_model_applied_in_the_partitions(spark: Any, adult: dict[str, Any]) -> None:
    """Adult test set (16,281 rows) over 4 partitions, the model applied in them; the
    reference (32,561 rows) is a Spark DataFrame too: same bins, same drift."""
    test, train = adult["test"], adult["train"]
    options = dict(policy="default", tier="high", target="income", positive_label=">50K",
                   model=adult["model"], sensitive=["sex", "race"])
    local = certify(data=pa.Table.from_pandas(test), reference=pa.Table.from_pandas(train),
                    **options)
    sdf = spark.createDataFrame(test)
    assert sdf.rdd.getNumPartitions() >= 2
    ref = spark.createDataFrame(train)
    cert = assay_spark.certify(sdf, reference=ref, **options)
    _same(local, cert)
    engine = cert.to_dict()["data"]["evaluation"]["engine"]
    assert engine["name"] == "spark" and engine["partitions"] == sdf.rdd.getNumPartitions()
    # the robustness check needs rows: it ran on the seeded sample, and says so
    sampled = {c["id"] for c in cert.to_dict()["checks"] if "sample" in c["details"]}
    assert "robustness.gaussian_noise" in sampled
    assert set(engine["checks_on_sample"]) == sampled
    assert any("seeded sample" in n for n in cert.notes)
    assert not any(c["id"].startswith(("performance.", "fairness.", "drift."))
                   for c in cert.to_dict()["checks"] if "sample" in c["details"])
    # the checks computed from the statistics agree, number for number
    a = {c["id"]: c for c in local.to_dict()["checks"]}
    for c in cert.to_dict()["checks"]:
        if "sample" not in c["details"]:
            assert (c["status"], c["value"], c["ci"]) == \
                (a[c["id"]]["status"], a[c["id"]]["value"], a[c["id"]]["ci"]), c["id"]


def test_german_credit_predictions_in_the_table(spark: Any) -> None:
    cols = ["status", "duration", "credit_history", "purpose", "credit_amount", "savings",
            "present_employment", "installment_rate", "status_sex", "other_debtors",
            "present_residence_since", "property", "age", "installment_plans", "housing",
            "number_of_existing_credits", "job", "number_of_people_liable_for", "telephone",
            "foreign_worker", "credit"]
    df = pd.read_csv(DATASETS / "german_credit" / "german.data", sep=" ", header=None,
                     names=cols)
    df["sex"] = np.where(df["status_sex"].isin(["A92", "A95"]), "female", "male")
    df["credit"] = (df["credit"] == 1).astype(int)
    rng = np.random.default_rng(3)
    df["score"] = np.clip(0.55 * df["credit"] + rng.uniform(0, 0.6, len(df)), 0, 1)
    df = df.drop(columns=["status_sex"])
    options = dict(policy="credit-lending", tier="medium", target="credit", score="score",
                   sensitive=["sex"])
    local = certify(data=pa.Table.from_pandas(df), reference=pa.Table.from_pandas(df), **options)
    sdf = spark.createDataFrame(df)
    cert = assay_spark.certify(sdf, reference=sdf, **options)
    _same(local, cert)


def test_synthetic_batches_cut_by_partitions(spark: Any, tmp_path: Any) -> None:
    """200,000 rows: the local engine reads 65,536-row batches, which the Parquet file's
    Spark partitions cut; the statistics are still the same, bit for bit (a weighted
    statistic, log loss and Brier sums depend on the order of addition)."""
    rng = np.random.default_rng(0)
    n = 200_000
    g = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    y = rng.integers(0, 2, n)
    s = np.clip(0.3 * y + rng.beta(2, 3, n), 0, 1)
    df = pd.DataFrame({"y": y, "score": s, "group": g, "x": rng.normal(size=n),
                       "w": rng.uniform(0.5, 2.0, n)})
    path = tmp_path / "synthetic.parquet"
    df.to_parquet(path, row_group_size=30_000)
    spark.conf.set("spark.sql.files.maxPartitionBytes", "400000")
    try:
        sdf = spark.read.parquet(str(path))
        assert sdf.rdd.getNumPartitions() >= 3
        options = dict(policy="default", tier="high", target="y", score="score",
                       sensitive=["group"], weight="w")
        local = certify(data=pa.Table.from_pandas(df), reference=pa.Table.from_pandas(df),
                        **options)
        cert = assay_spark.certify(str(path), spark=spark, reference=str(path), **options)
        _same(local, cert)
        fast = assay_spark.certify(sdf, reference=sdf, exact=False, **options)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    # one statistic per partition: the counts are the same, float sums to rounding
    a, b = local.to_dict()["metrics"], fast.to_dict()["metrics"]
    assert json.dumps(a, sort_keys=True) != "" and b is not None


def test_missing_column_is_named(spark: Any) -> None:
    sdf = spark.createDataFrame(pd.DataFrame({"y": [0, 1] * 20, "p": [0, 1] * 20}))
    with pytest.raises(InputError, match="'label'"):
        assay_spark.certify(sdf, policy="default", tier="low", target="label", prediction="p")
    with pytest.raises(InputError, match="'score'"):
        assay_spark.certify(sdf, policy="default", tier="low", target="y", score="score")


def test_unknown_table_or_path(spark: Any, tmp_path: Any) -> None:
    with pytest.raises(InputError, match="no_such_table"):
        assay_spark.certify("no_such_table", spark=spark, policy="default", tier="low",
                            target="y", prediction="p")
    with pytest.raises(InputError, match="no such file"):
        assay_spark.certify(str(tmp_path / "missing.parquet"), spark=spark, policy="default",
                            tier="low", target="y", prediction="p")
