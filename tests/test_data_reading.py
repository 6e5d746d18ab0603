"""Reading data for a certification: CSV and Parquet of the same table agree, missing
markers, duplicate column names, a wrong delimiter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay import certify
from assay.cli import main
from assay.data import ColumnRoles, CsvOptions, open_dataset
from assay.datasets import load_adult
from assay.errors import InputError

ADULT = {"target": "income", "positive_label": ">50K", "sensitive": ["race", "sex"]}


def _frame(part: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """Adult rows with what a fresh export holds: empty text fields, an all-empty text
    column, an all-empty number column, a constant column, a case number, missing numbers."""
    df = part.sample(rows, random_state=seed).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    df.loc[rng.choice(rows, 120, replace=False), "occupation"] = None
    df["hours_per_week"] = df["hours_per_week"].astype(float)
    df.loc[rng.choice(rows, 80, replace=False), "hours_per_week"] = np.nan
    df["comment"] = None  # all empty, text
    df["bonus"] = np.nan  # all empty, numbers
    df["channel"] = "branch"  # constant
    df["case_number"] = [f"K-{seed}-{i:06d}" for i in range(rows)]
    return df


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    train, test = load_adult(missing_as_nan=True)
    from assay.demo import build_model

    ref = _frame(train, 3000, 1)
    ev = _frame(test, 3000, 2)
    model = build_model(train.sample(4000, random_state=0), max_iter=30)
    pos = list(model.classes_).index(">50K")
    ev["score"] = model.predict_proba(ev[list(train.columns.drop("income"))])[:, pos].round(12)
    return {"reference": ref, "evaluation": ev}


def _write(tables: dict[str, pd.DataFrame], d: Path, *, marker: str | None = None,
           delimiter: str = ",") -> dict[str, Path]:
    """Each table as CSV (missing values as empty fields, or as ``marker`` in text
    columns) and as Parquet (missing values as nulls)."""
    out: dict[str, Path] = {}
    for name, df in tables.items():
        text = df.copy()
        if marker is not None:
            for c in text.columns:
                if text[c].dtype == object:
                    text[c] = text[c].where(text[c].notna(), marker)
        out[f"{name}.csv"] = d / f"{name}.csv"
        text.to_csv(out[f"{name}.csv"], index=False, sep=delimiter)
        out[f"{name}.parquet"] = d / f"{name}.parquet"
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), out[f"{name}.parquet"])
    return out


def _main(args: list[str]) -> int:
    """Run the ``assay`` command in-process; its exit code."""
    try:
        main(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def _comparable(results: dict[str, Any]) -> dict[str, Any]:
    """results.json without what names the files or the run (data block, times)."""
    return {k: v for k, v in results.items()
            if k not in ("data", "created_at", "duration_seconds")}


def _check(results: dict[str, Any], check_id: str) -> dict[str, Any]:
    return next(c for c in results["checks"] if c["id"] == check_id)


def _value(check: dict[str, Any], label: str) -> Any:
    return next(m for m in check["measurements"] if m["label"] == label)["value"]


def test_csv_and_parquet_of_the_same_table_give_the_same_results(tables, tmp_path) -> None:
    files = _write(tables, tmp_path)
    runs = {fmt: certify(data=files[f"evaluation.{fmt}"], reference=files[f"reference.{fmt}"],
                         policy="default", tier="high", score="score", **ADULT).to_dict()
            for fmt in ("csv", "parquet")}
    csv, parquet = runs["csv"], runs["parquet"]
    assert _comparable(csv) == _comparable(parquet)
    # and the numbers are the right ones, not merely equal
    ev = tables["evaluation"]
    missing = _check(csv, "integrity.missing_values")
    assert _value(missing, "comment") == 1.0 and _value(missing, "bonus") == 1.0
    assert _value(missing, "occupation") == pytest.approx(ev["occupation"].isna().mean())
    assert ev["workclass"].isna().any()  # the published "?", read as missing
    assert _value(missing, "workclass") == pytest.approx(ev["workclass"].isna().mean())
    leakage = _check(csv, "integrity.target_leakage")
    for constant in ("comment", "bonus", "channel"):
        assert _value(leakage, constant) == 0.5
    assert csv["data"]["evaluation"]["csv"] == {"delimiter": ",", "na_values": []}
    assert "csv" not in parquet["data"]["evaluation"]


def test_missing_markers_and_delimiter_from_the_command_line(tables, tmp_path, capsys) -> None:
    files = _write(tables, tmp_path, marker="?", delimiter=";")
    outs = {}
    for fmt, extra in (("csv", ["--na-values", "?,n/a", "--delimiter", ";"]), ("parquet", [])):
        out = tmp_path / fmt
        code = _main(["certify", "--policy", "default", "--tier", "medium", "--data",
                      str(files[f"evaluation.{fmt}"]), "--train", str(files[f"reference.{fmt}"]),
                      "--target", "income", "--positive-label", ">50K", "--score", "score",
                      "--sensitive", "race,sex", "--out", str(out), "--no-progress", *extra])
        assert code in (0, 1)
        outs[fmt] = json.loads((out / "results.json").read_text())
    capsys.readouterr()
    assert _comparable(outs["csv"]) == _comparable(outs["parquet"])
    assert outs["csv"]["data"]["evaluation"]["csv"] == {"delimiter": ";",
                                                         "na_values": ["?", "n/a"]}
    # the report's command reads the file the same way again
    report = (tmp_path / "csv" / "report.html").read_text()
    assert "--na-values &#39;?,n/a&#39;" in report and "--delimiter &#39;;&#39;" in report


def test_without_markers_a_question_mark_is_a_value(tmp_path) -> None:
    path = tmp_path / "q.csv"
    path.write_text("x,y,s\n?,1,a\nb,0,b\n,1,a\n")
    ds = open_dataset(path, ColumnRoles(target="y"))
    assert ds.to_arrow(["x"]).column(0).to_pylist() == ["?", "b", None]
    marked = open_dataset(path, ColumnRoles(target="y"), csv={"na_values": "?"})
    assert marked.to_arrow(["x"]).column(0).to_pylist() == [None, "b", None]
    # a country code "NA" is text, not a missing value; in a number column NA is missing
    path.write_text("country,n,y\nNA,NA,1\nFR,2,0\n")
    t = open_dataset(path, ColumnRoles(target="y")).to_arrow()
    assert t.column("country").to_pylist() == ["NA", "FR"]
    assert t.column("n").to_pylist() == [None, 2]


def test_markers_for_data_that_is_not_csv_are_refused(tables, tmp_path) -> None:
    files = _write({"evaluation": tables["evaluation"].head(200)}, tmp_path)
    with pytest.raises(InputError, match=r"evaluation\.parquet: CSV options .* CSV files only"):
        certify(data=files["evaluation.parquet"], policy="default", tier="low",
                score="score", na_values=["?"], **ADULT)


@pytest.mark.parametrize("delimiter, shown", [(";", "';'"), ("\t", "'tab'"), ("|", "'|'")])
def test_a_file_read_as_one_column_names_the_delimiter(tmp_path, delimiter, shown) -> None:
    df = load_adult()[1].head(50)
    path = tmp_path / "export.csv"
    df.to_csv(path, index=False, sep=delimiter)
    with pytest.raises(InputError) as err:
        open_dataset(path, ColumnRoles(target="income", positive_label=">50K"))
    msg = str(err.value)
    assert "export.csv" in msg and "single column" in msg
    assert f"separated by {shown}" in msg and f"--delimiter {shown}" in msg
    ok = open_dataset(path, ColumnRoles(target="income", positive_label=">50K"),
                      csv={"delimiter": "tab" if delimiter == "\t" else delimiter})
    assert ok.column_names == list(df.columns)
    # without a header, the first row tells
    path.write_text("1;2;3\n4;5;6\n")
    with pytest.raises(InputError, match=r"first row '1;2;3'.*separated by ';'"):
        open_dataset(path, csv={"header": False})


def test_duplicate_column_names_are_refused(tmp_path, capsys) -> None:
    csv = tmp_path / "dup.csv"
    csv.write_text("age,income,sex,age,sex\n30,1,F,31,M\n40,0,M,41,F\n")
    with pytest.raises(InputError) as err:
        open_dataset(csv)
    assert "dup.csv" in str(err.value)
    assert "'age' (columns 1, 4)" in str(err.value) and "'sex' (columns 3, 5)" in str(err.value)
    table = pa.table([pa.array([1, 2]), pa.array([0, 1]), pa.array([3, 4])],
                     names=["a", "y", "a"])
    pq.write_table(table, tmp_path / "dup.parquet")
    for source in (tmp_path / "dup.parquet", table):
        with pytest.raises(InputError, match=r"duplicate column name\(s\) 'a' \(columns 1, 3\)"):
            open_dataset(source)
    with pytest.raises(InputError, match="column_names: duplicate column name"):
        CsvOptions(header=False, column_names=["a", "b", "a"])
    code = _main(["certify", "--policy", "default", "--tier", "low", "--data", str(csv),
                  "--target", "income", "--prediction", "income", "--no-progress",
                  "--out", str(tmp_path / "out")])
    assert code == 2
    assert "'age' (columns 1, 4)" in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.json").exists()
