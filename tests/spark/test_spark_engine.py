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


SMALL_POLICY = """
name: spark-compare
version: "1"
settings:
  min_group_size: 30
  bootstrap: {replicates: 200, confidence: 0.95, seed: 7}
  spark_sample_rows: 5000
tiers:
  t:
    checks:
      - id: performance.roc_auc
        threshold: {min: 0.5}
      - id: fairness.demographic_parity_ratio
        threshold: {min: 0.1}
        judge: interval
      - id: drift.psi
        threshold: {max: 0.2}
      - id: integrity.missing_values
        threshold: {max: 0.5}
"""


@pytest.fixture(scope="module")
def small_policy(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("policy") / "small.yaml"
    path.write_text(SMALL_POLICY)
    return str(path)


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


def test_german_credit_predictions_in_the_table(spark: Any, small_policy: str) -> None:
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
    options = dict(policy=small_policy, tier="t", target="credit", score="score",
                   sensitive=["sex"])
    local = certify(data=pa.Table.from_pandas(df), reference=pa.Table.from_pandas(df), **options)
    sdf = spark.createDataFrame(df)
    cert = assay_spark.certify(sdf, reference=sdf, **options)
    _same(local, cert)


def test_synthetic_batches_cut_by_partitions(spark: Any, tmp_path: Any,
                                             small_policy: str) -> None:
    """140,000 rows: the local engine reads 65,536-row batches, which the Parquet file's
    Spark partitions cut; the statistics are still the same, bit for bit (a weighted
    statistic, log loss and Brier sums depend on the order of addition)."""
    rng = np.random.default_rng(0)
    n = 140_000
    g = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    y = rng.integers(0, 2, n)
    s = np.clip(0.3 * y + rng.beta(2, 3, n), 0, 1)
    df = pd.DataFrame({"y": y, "score": s, "group": g, "x": rng.normal(size=n),
                       "w": rng.uniform(0.5, 2.0, n)})
    path = tmp_path / "synthetic.parquet"
    df.to_parquet(path, row_group_size=45_000)
    spark.conf.set("spark.sql.files.maxPartitionBytes", "1000000")
    try:
        sdf = spark.read.parquet(str(path))
        from assay.spark import engine

        offsets = engine.partition_offsets(sdf)
        assert any(o % 65_536 for o in offsets[1:-1])  # a partition starts inside a batch
        options = dict(policy=small_policy, tier="t", target="y", score="score",
                       sensitive=["group"], weight="w")
        local = certify(data=pa.Table.from_pandas(df), reference=pa.Table.from_pandas(df),
                        **options)
        cert = assay_spark.certify(str(path), spark=spark, reference=str(path), **options)
        _same(local, cert)
        # exact=False: one statistic per partition; the same counts, float sums equal to
        # rounding only
        from assay.metrics.classification import ClassificationStats

        def build(batch: Any) -> ClassificationStats:
            return ClassificationStats.from_batch(batch, target="y", score="score",
                                                  sensitive=["group"], weight="w")

        sel = sdf.select("y", "score", "group", "w")
        exact = engine.fold(sel, build)
        fast = engine.fold(sel, build, exact=False)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    local_stats = ClassificationStats.from_batches(
        pa.Table.from_pandas(df).to_batches(max_chunksize=65_536), target="y", score="score",
        sensitive=["group"], weight="w")
    assert np.array_equal(exact.hist_nll, local_stats.hist_nll)
    assert np.array_equal(fast.counts, local_stats.counts)
    assert np.allclose(fast.hist_nll, local_stats.hist_nll, rtol=1e-12, atol=0)


def test_missing_column_is_named(spark: Any) -> None:
    sdf = spark.createDataFrame(pd.DataFrame({"y": [0, 1] * 20, "p": [0, 1] * 20}))
    with pytest.raises(InputError, match="'label'"):
        assay_spark.certify(sdf, policy="default", tier="low", target="label", prediction="p")
    with pytest.raises(InputError, match="'score'"):
        assay_spark.certify(sdf, policy="default", tier="low", target="y", score="score")


def test_bad_values_found_in_a_partition_are_one_clear_error(spark: Any) -> None:
    """A score outside [0, 1] is found by a partition: the error names the column, as the
    local engine's does, instead of an executor's traceback."""
    df = pd.DataFrame({"y": [0, 1] * 20 + [1], "s": [0.2, 0.8] * 20 + [1.5]})
    with pytest.raises(InputError) as local:
        certify(data=pa.Table.from_pandas(df), policy="default", tier="low", target="y",
                score="s")
    with pytest.raises(InputError) as remote:
        from assay.metrics.classification import ClassificationStats
        from assay.spark import engine

        engine.fold(spark.createDataFrame(df), lambda b: ClassificationStats.from_batch(
            b, target="y", score="s"))
    assert "'s'" in str(local.value) and "'s'" in str(remote.value)
    assert "Traceback" not in str(remote.value)


def test_unknown_table_or_path(spark: Any, tmp_path: Any) -> None:
    with pytest.raises(InputError, match="no_such_table"):
        assay_spark.certify("no_such_table", spark=spark, policy="default", tier="low",
                            target="y", prediction="p")
    with pytest.raises(InputError, match="no such file"):
        assay_spark.certify(str(tmp_path / "missing.parquet"), spark=spark, policy="default",
                            tier="low", target="y", prediction="p")


def test_command_line_engine_spark(spark: Any, tmp_path: Any, small_policy: str) -> None:
    """``assay certify --engine spark`` on a Parquet path: the local command's numbers;
    a missing column and an unknown path exit 2 with one line naming them."""
    from assay.cli import main

    rng = np.random.default_rng(1)
    n = 3000
    df = pd.DataFrame({"y": rng.integers(0, 2, n), "g": rng.choice(["f", "m"], n),
                       "x": rng.normal(size=n)})
    df["score"] = np.clip(0.4 * df["y"] + rng.uniform(0, 0.6, n), 0, 1)
    path = tmp_path / "eval.parquet"
    df.to_parquet(path)
    args = ["certify", "--policy", small_policy, "--tier", "t", "--data", str(path),
            "--target", "y", "--score", "score", "--sensitive", "g", "--train", str(path),
            "--no-progress"]
    assert _exit_code(main, [*args, "--out", str(tmp_path / "local")]) in (0, 1)
    assert _exit_code(main, [*args, "--engine", "spark", "--out", str(tmp_path / "spark")]) \
        in (0, 1)
    a = json.loads((tmp_path / "local" / "results.json").read_text())
    b = json.loads((tmp_path / "spark" / "results.json").read_text())
    assert a["status"] == b["status"]
    assert _block(a, "metrics") == _block(b, "metrics") and _block(a, "drift") == _block(b, "drift")
    assert b["data"]["evaluation"]["engine"]["name"] == "spark"
    assert b["data"]["evaluation"]["sha256"] == a["data"]["evaluation"]["sha256"]
    assert "spark" in (tmp_path / "spark" / "report.html").read_text().lower()

    bad = ["certify", "--policy", small_policy, "--tier", "t", "--engine", "spark",
           "--target", "label", "--score", "score", "--out", str(tmp_path / "bad")]
    assert _exit_code(main, [*bad, "--data", str(path)]) == 2
    assert _exit_code(main, [*bad, "--data", str(tmp_path / "nowhere.parquet")]) == 2


def _exit_code(main: Any, args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0
