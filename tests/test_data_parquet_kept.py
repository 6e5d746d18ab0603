"""A small Parquet file keeps the columns it has read in memory: the same batches as
streaming, each column decoded once; a large one streams on every read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay.data import dataset as dataset_module
from assay.data import open_dataset


@pytest.fixture()
def parquet(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 2_500
    frame = pd.DataFrame({
        "x": rng.normal(size=n),
        "k": pd.array(rng.integers(0, 5, size=n), dtype="Int64"),
        "s": rng.choice(["a", "b", None], size=n),
        "y": rng.integers(0, 2, size=n),
    })
    frame.loc[::7, "x"] = np.nan
    path = tmp_path / "data.parquet"
    # several row groups: batches end at row-group boundaries as well as at batch_size
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=900)
    return path


def batches(path: Path, columns: list[str] | None, batch_size: int,
            keep: bool) -> list[pa.RecordBatch]:
    ds = open_dataset(path)
    if not keep:
        ds._keep = None
    return list(ds.batches(columns, batch_size=batch_size))


@pytest.mark.parametrize("columns", [None, ["s"], ["y", "x"], ["k", "s", "k"]])
@pytest.mark.parametrize("batch_size", [400, 65_536])
def test_kept_columns_give_the_streamed_batches(parquet: Path, columns: list[str] | None,
                                                batch_size: int) -> None:
    streamed = batches(parquet, columns, batch_size, keep=False)
    ds = open_dataset(parquet)
    assert ds._keep is not None
    list(ds.batches(["x"], batch_size=batch_size))  # some columns kept already
    for _ in range(2):
        kept = list(ds.batches(columns, batch_size=batch_size))
        assert [b.num_rows for b in kept] == [b.num_rows for b in streamed]
        assert all(a.equals(b) and a.schema.equals(b.schema, check_metadata=True)
                   for a, b in zip(kept, streamed, strict=True))
    pd.testing.assert_frame_equal(ds.to_pandas(columns), open_dataset(parquet).to_pandas(columns))


def test_a_kept_column_is_not_read_from_the_file_again(parquet: Path) -> None:
    ds = open_dataset(parquet)
    first = ds.to_arrow(["x", "s"])
    with open(parquet, "r+b") as fh:  # the file is damaged after the first read
        fh.write(b"\0" * parquet.stat().st_size)
    assert ds.to_arrow(["s", "x"]).equals(first.select(["s", "x"]))


def test_a_large_file_streams_every_read(parquet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset_module, "KEEP_PARQUET_BYTES", 1_000)
    ds = open_dataset(parquet)
    assert ds._keep is None
    ds.to_arrow(["x"])
    with open(parquet, "r+b") as fh:
        fh.write(b"\0" * parquet.stat().st_size)
    with pytest.raises(Exception):  # noqa: B017 - streamed again: reads the damaged file
        ds.to_arrow(["x"])


def test_an_empty_file_has_no_batches(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"x": pa.array([], pa.float64()), "y": pa.array([], pa.int64())}),
                   path)
    ds = open_dataset(path, validate=False)
    assert list(ds.batches(["x"])) == []
    assert ds.to_arrow(["x", "y"]).num_rows == 0
