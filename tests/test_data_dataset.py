"""Dataset: reading frames, Arrow tables, Parquet and CSV files, and validating them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _datasets import DATASETS
from assay.data import ColumnRoles, CsvOptions, Dataset, open_dataset
from assay.datasets import ADULT_COLUMNS, load_adult
from assay.errors import AssayError, InputError

DATA = DATASETS
ADULT_RAW = DATA / "adult" / "adult.data"
ADULT_CSV = {"header": False, "column_names": list(ADULT_COLUMNS), "na_values": ["?"]}
ROLES = ColumnRoles(target="income", positive_label=">50K", sensitive=["sex", "race"])


@pytest.fixture(scope="module")
def adult() -> tuple[pd.DataFrame, pd.DataFrame]:
    return load_adult(missing_as_nan=True)


@pytest.fixture(scope="module")
def adult_parquet(tmp_path_factory: pytest.TempPathFactory, adult) -> Path:
    path = tmp_path_factory.mktemp("pq") / "adult.parquet"
    pq.write_table(pa.Table.from_pandas(adult[0], preserve_index=False), path, row_group_size=5000)
    return path


def test_every_in_memory_source_gives_the_same_rows(adult) -> None:
    train = adult[0]
    sources = [train, pl.from_pandas(train), pa.Table.from_pandas(train, preserve_index=False)]
    sets = [open_dataset(s, ROLES) for s in sources]
    assert [d.kind for d in sets] == ["pandas", "polars", "arrow"]
    for d in sets:
        assert d.num_rows == 32_561
        assert d.column_names == list(ADULT_COLUMNS)
        assert d.positive_value == ">50K"
        pd.testing.assert_frame_equal(d.to_pandas(limit=100), train.head(100),
                                      check_dtype=False)
    assert sets[0].name == "pandas DataFrame"
    # the digest is of the Arrow IPC stream: the same data gives the same digest
    assert sets[0].digest == sets[2].digest == open_dataset(train.copy(), ROLES).digest
    changed = train.copy()
    changed.loc[5, "age"] = 99
    assert open_dataset(changed, ROLES).digest != sets[0].digest


def test_parquet_streams_in_batches(adult_parquet: Path, adult) -> None:
    ds = open_dataset(adult_parquet, ROLES)
    assert ds.kind == "parquet" and ds.num_rows == 32_561
    sizes = [b.num_rows for b in ds.batches(["age", "income"], batch_size=4000)]
    assert max(sizes) <= 4000 and sum(sizes) == 32_561 and len(sizes) > 1
    assert ds.digest == hashlib.sha256(adult_parquet.read_bytes()).hexdigest()
    np.testing.assert_array_equal(ds.to_pandas(["age"])["age"], adult[0]["age"])


def test_adult_raw_csv_without_header(adult) -> None:
    ds = open_dataset(ADULT_RAW, ROLES, csv=ADULT_CSV)
    assert ds.kind == "csv" and ds.num_rows == 32_561
    assert ds.schema.field("age").type == pa.int64()
    df = ds.to_pandas()
    # the ", " separators are trimmed and '?' read as missing, as in the shipped copy
    pd.testing.assert_frame_equal(df, adult[0], check_dtype=False)
    assert ds.digest == hashlib.sha256(ADULT_RAW.read_bytes()).hexdigest()


def test_adult_test_file_labels_with_a_period_are_named() -> None:
    with pytest.raises(InputError) as err:
        open_dataset(DATA / "adult" / "adult.test", ROLES, csv={**ADULT_CSV, "skip_rows": 1})
    msg = str(err.value)
    assert "adult.test" in msg and "'income'" in msg and "'>50K.'" in msg


def test_german_credit_space_separated() -> None:
    names = ["status", "duration", "credit_history", "purpose", "credit_amount", "savings",
             "present_employment", "installment_rate", "status_sex", "other_debtors",
             "present_residence_since", "property", "age", "installment_plans", "housing",
             "number_of_existing_credits", "job", "number_of_people_liable_for", "telephone",
             "foreign_worker", "credit"]
    ds = open_dataset(DATA / "german_credit" / "german.data",
                      ColumnRoles(target="credit", positive_label=1),
                      csv=CsvOptions(delimiter=" ", header=False, column_names=names))
    assert ds.num_rows == 1000
    assert ds.positive_value == 1
    assert ds.to_pandas(["credit"])["credit"].value_counts().to_dict() == {1: 700, 2: 300}


def test_csv_type_conflict_after_first_block_is_widened(tmp_path: Path) -> None:
    n = 300_000
    x = np.arange(n).astype(str).astype(object)
    x[-1] = "2.5"  # a float far after the rows the reader infers types from
    path = tmp_path / "late.csv"
    pd.DataFrame({"x": x, "y": np.arange(n) % 2}).to_csv(path, index=False)
    ds = open_dataset(path, ColumnRoles(target="y"))
    assert ds.schema.field("x").type == pa.float64()
    assert ds.to_pandas(["x"])["x"].iloc[-1] == 2.5


def test_sample_is_seeded_and_uniform(adult_parquet: Path) -> None:
    ds = open_dataset(adult_parquet, ROLES)
    a = ds.sample(500, seed=3)
    b = ds.sample(500, seed=3)
    c = ds.sample(500, seed=4)
    assert len(a) == 500
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert len(ds.sample(10**6)) == ds.num_rows
    # the mean of a uniform sample is close to the population mean
    big = ds.sample(8000, seed=1)["age"].mean()
    assert abs(big - ds.to_pandas(["age"])["age"].mean()) < 1.0


@pytest.mark.parametrize(
    ("roles", "fragment"),
    [
        (ColumnRoles(target="incme"), "target column 'incme' not found; did you mean 'income'"),
        (ColumnRoles(target="income", sensitive=["Sex"]), "did you mean 'sex'"),
        (ColumnRoles(target="education"), "binary target for classification"),
        (ColumnRoles(target="income", positive_label="yes"), "positive label 'yes'"),
        (ColumnRoles(target="income", positive_label=">50K", score="workclass"),
         "expected numbers for the score"),
    ],
)
def test_validation_errors_name_column_and_expectation(adult, roles, fragment) -> None:
    with pytest.raises(InputError, match="pandas DataFrame") as err:
        open_dataset(adult[0], roles)
    assert fragment in str(err.value)


def test_scores_out_of_range_or_nan_report_count_and_first_row(tmp_path: Path) -> None:
    score = np.linspace(0, 1, 200_000)
    score[[150_000, 150_010]] = [1.5, -0.1]
    df = pd.DataFrame({"y": np.arange(200_000) % 2, "s": score})
    path = tmp_path / "scores.parquet"
    df.to_parquet(path)
    with pytest.raises(InputError) as err:
        open_dataset(path, ColumnRoles(target="y", score="s"))
    msg = str(err.value)
    assert "scores.parquet" in msg and "'s'" in msg
    assert "2 bad value(s)" in msg and "first at row 150000" in msg and "(1.5)" in msg
    df.loc[7, "s"] = np.nan
    with pytest.raises(InputError, match=r"1 missing .* first at row 7"):
        open_dataset(df, ColumnRoles(target="y", score="s"))


def test_missing_target_values_are_rejected(adult) -> None:
    df = adult[0].copy()
    df.loc[[10, 20], "income"] = None
    with pytest.raises(InputError, match=r"'income'.*2 missing .* first at row 10"):
        open_dataset(df, ROLES)


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nothing\.parquet: file not found"):
        open_dataset(tmp_path / "nothing.parquet")
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match=r"broken\.parquet: not a readable Parquet file"):
        open_dataset(bad)
    other = tmp_path / "data.xlsx"
    other.write_bytes(b"x")
    with pytest.raises(InputError, match=r"unsupported file format '\.xlsx'"):
        open_dataset(other)
    with pytest.raises(InputError, match="columns have different lengths"):
        open_dataset({"a": [1, 2, 3], "b": [1, 2]})
    with pytest.raises(InputError, match="empty"):
        open_dataset(pd.DataFrame({"y": pd.Series([], dtype=int)}), ColumnRoles(target="y"))
    with pytest.raises(InputError, match="unsupported data source"):
        open_dataset(42)
    with pytest.raises(InputError, match="unknown option"):
        open_dataset(ADULT_RAW, csv={"sep": ","})
    # every error above is an AssayError: the CLI prints it on one line
    assert issubclass(InputError, AssayError)


def test_batches_reject_unknown_columns(adult) -> None:
    ds = open_dataset(adult[0], ROLES)
    assert isinstance(ds, Dataset)
    with pytest.raises(InputError, match="no column 'agee'; did you mean 'age'"):
        next(ds.batches(["agee"]))


def test_roles_resolve_features() -> None:
    roles = ColumnRoles(target="y", score="s", sensitive="sex")
    assert roles.sensitive == ["sex"]
    assert roles.feature_columns(["a", "y", "s", "sex"]) == ["a", "sex"]
    assert roles.with_model_outputs().prediction == "__prediction__"
    with pytest.raises(InputError, match="task"):
        ColumnRoles(task="ranking")  # type: ignore[arg-type]


def test_gzipped_csv_streams_and_sources_pass_through() -> None:
    import assay.datasets

    path = Path(assay.datasets.__file__).parent / "adult.csv.gz"
    ds = open_dataset(path, ROLES, csv={"na_values": ["?"]})
    assert ds.num_rows == 48_842 and ds.schema.field("age").type == pa.int64()
    assert ds.to_pandas(["split"])["split"].value_counts().to_dict() == {"train": 32_561,
                                                                        "test": 16_281}
    assert open_dataset(ds) is ds
    assert ds.to_arrow(["age"], limit=10).num_rows == 10


def test_parquet_directory_with_hive_partitions(tmp_path: Path, adult) -> None:
    root = tmp_path / "adult_by_sex"
    pq.write_to_dataset(pa.Table.from_pandas(adult[0], preserve_index=False), root,
                        partition_cols=["sex"])
    ds = open_dataset(root, ROLES)
    assert ds.kind == "parquet-dir" and ds.num_rows == 32_561
    assert set(ds.column_names) == set(ADULT_COLUMNS)
    counts = ds.to_pandas(["sex"])["sex"].astype(str).value_counts().to_dict()
    assert counts == adult[0]["sex"].value_counts().to_dict()
    assert all(b.num_rows <= 5000 for b in ds.batches(["age"], batch_size=5000))
    assert ds.digest == open_dataset(root).digest
    (root / "sex=Male" / "extra.parquet").write_bytes(
        (next(root.glob("sex=Male/*.parquet"))).read_bytes())
    assert open_dataset(root).digest != ds.digest
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no Parquet file"):
        open_dataset(empty)
