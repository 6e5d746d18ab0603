"""Reading data for a certification: CSV and Parquet of the same table agree, missing
markers, duplicate column names, a wrong delimiter, identifier-like columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _datasets import DATASETS
from assay import certify
from assay.cli import main
from assay.data import ColumnRoles, CsvOptions, open_dataset
from assay.data.identifiers import identifier_columns, identifying_name
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
    with pytest.raises(InputError, match=r"line '1;2;3'.*separated by ';'"):
        open_dataset(path, csv={"header": False, "column_names": ["a", "b", "c"]})
    # a short line in a comma file is the reader's own error, with the line
    path.write_text("a,b\n1,2\n3\n")
    with pytest.raises(InputError, match=r"cannot read as CSV .*Expected 2 columns, got 1: 3"):
        open_dataset(path)


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


# --------------------------------------------------------------------------- identifiers


def test_identifier_names() -> None:
    for name in ("id", "ID", "customer_id", "CustomerID", "case_number", "case_no", "uuid",
                 "name", "First Name", "date_of_birth", "DOB", "BirthDate", "email"):
        assert identifying_name(name), name
    for name in ("age", "education_num", "number_of_existing_credits", "fnlwgt", "PAY_0",
                 "status_sex", "telephone", "native_country", "default-payment-next-month"):
        assert not identifying_name(name), name


def test_identifier_columns_on_real_data() -> None:
    train, test = load_adult()
    # fnlwgt is nearly unique in small samples, but an amount: it stays a feature
    for df in (train, test.head(1000), test.head(100)):
        assert identifier_columns(open_dataset(df), list(df.columns)) == {}
    taiwan = pd.read_csv(DATASETS / "taiwan_credit" / "credit_default.csv", nrows=2000)
    found = identifier_columns(open_dataset(taiwan), list(taiwan.columns))
    assert list(found) == ["ID"] and "every value distinct" in found["ID"]
    german = open_dataset(DATASETS / "german_credit" / "german.data",
                          csv={"delimiter": " ", "header": False})
    assert identifier_columns(german, german.column_names) == {}  # credit_amount stays


def test_identifier_columns_by_values_and_names() -> None:
    rng = np.random.default_rng(0)
    n = 400
    start = np.datetime64("1940-01-01")
    birth = start + rng.integers(0, 365 * 60, n).astype("timedelta64[D]")
    df = pd.DataFrame({
        "born": birth.astype(str),  # dates as text: nearly all distinct
        "birth": birth,  # a date column
        "client": [f"c{i}@example.org" for i in rng.permutation(np.arange(n) % 300)],
        "patient_no": rng.permutation(np.arange(n) % 300),  # repeats, but named as one
        "seq": np.arange(1000, 1000 + n),  # row numbers
        "amount": rng.integers(100, 100_000, n),  # unique by chance, but an amount
        "grade": rng.choice(["a", "b", "c"], n),
        "ratio": rng.random(n),
    })
    found = identifier_columns(open_dataset(df), list(df.columns))
    assert set(found) == {"born", "birth", "client", "patient_no", "seq"}
    assert found["client"].startswith("e-mail addresses")
    assert found["patient_no"].startswith("its name says")


def test_certify_leaves_identifiers_out_and_says_so(tables, tmp_path) -> None:
    ev = tables["evaluation"].head(1500).copy()
    ev["case_number"] = ev["case_number"].where(ev["race"] != "Other", "K-other")
    files = _write({"evaluation": ev}, tmp_path)
    cert = certify(data=files["evaluation.csv"], policy="default", tier="high", score="score",
                   **ADULT)
    r = cert.to_dict()
    assert list(r["roles"]["excluded"]) == ["case_number"]
    assert any("case_number" in n and "left out" in n for n in r["notes"])
    for check_id in ("integrity.proxy_features", "integrity.target_leakage"):
        c = _check(r, check_id)
        assert not any("case_number" in m["label"] for m in c["measurements"])
        assert list(c["details"]["left_out"]) == ["case_number"]
        assert "left out: case_number" in c["message"]
    report = (Path(cert.write(tmp_path / "out")["report.html"])).read_text()
    assert "Left out of the features (identifier-like)" in report
    # named among the features, it is kept (and Cramér's V of a unique id is about 1)
    feats = [c for c in ev.columns if c not in ("income", "score")]
    kept = certify(data=files["evaluation.csv"], policy="default", tier="high", score="score",
                   features=feats, **ADULT).to_dict()
    assert kept["roles"]["excluded"] == {}
    proxy = _check(kept, "integrity.proxy_features")
    assert _value(proxy, "case_number ~ race") > 0.9


def test_identifiers_the_model_reads_stay_features(tmp_path) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({"row": np.arange(n), "x": rng.normal(size=n),
                       "g": rng.choice(["a", "b"], n)})
    df["y"] = (df["x"] + rng.normal(size=n) > 0).astype(int)
    model = LogisticRegression().fit(df[["row", "x"]], df["y"])
    r = certify(data=df, policy="default", tier="high", target="y", model=model,
                sensitive=["g"]).to_dict()
    assert r["roles"]["excluded"] == {}
    assert any("kept as features because the model reads them: row" in n for n in r["notes"])
    without = certify(data=df, policy="default", tier="high", target="y",
                      model=LogisticRegression().fit(df[["x"]], df["y"]),
                      sensitive=["g"]).to_dict()
    assert list(without["roles"]["excluded"]) == ["row"]
