"""Duplicate counting streams row hashes into one array and counts by sorting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from assay.checks.integrity import _duplicate_count, _hashes, row_hashes
from assay.data import open_dataset


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "a": rng.integers(0, 40, n),
        "b": rng.choice(["x", "y", "z"], n),
        "c": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 3, n).astype(float)),
    })


def test_duplicate_count_matches_pandas() -> None:
    rng = np.random.default_rng(1)
    for n in (0, 1, 2, 50, 5_000):
        h = rng.integers(0, max(n // 3, 1), n).astype(np.uint64)
        expected = int(pd.Series(h).duplicated().sum())
        assert _duplicate_count(h.copy()) == expected
    assert _duplicate_count(np.array([7, 7, 7], dtype=np.uint64)) == 2
    assert _duplicate_count(np.array([3, 1, 2], dtype=np.uint64)) == 0


def test_hashes_of_a_multi_batch_parquet_file(tmp_path: Path) -> None:
    df = _frame(150_000)
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=30_000)
    ds = open_dataset(path)
    assert sum(1 for _ in ds.batches(["a"])) > 1
    h = _hashes(ds, ["a", "b", "c"])
    assert h.dtype == np.uint64 and h.size == len(df)
    whole = row_hashes(pa.Table.from_pandas(df, preserve_index=False))
    np.testing.assert_array_equal(h, whole)
    assert _duplicate_count(h) == int(df.duplicated().sum()) > 0


class _Undercounted:
    """A dataset whose announced row count is smaller than what it streams."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.num_rows = 10

    def batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        yield from self.table.select(columns).to_batches(max_chunksize=7)


def test_hashes_grow_past_the_announced_row_count() -> None:
    table = pa.Table.from_pandas(_frame(103, seed=2), preserve_index=False)
    h = _hashes(_Undercounted(table), ["a", "b"])
    np.testing.assert_array_equal(h, row_hashes(table.select(["a", "b"])))


def test_train_eval_overlap_streams_the_evaluation(tmp_path: Path) -> None:
    import assay.checks.integrity  # noqa: F401 - registers the checks
    from assay.certification import CertificationContext
    from assay.checks.base import REGISTRY, CheckSpec, Threshold, run_check
    from assay.data import ColumnRoles
    from assay.policy.schema import Settings

    rng = np.random.default_rng(3)
    cur = pd.DataFrame({"a": rng.integers(0, 10**6, 150_000), "b": rng.choice(["x", "y"], 150_000),
                        "y": rng.integers(0, 2, 150_000)})
    fresh = pd.DataFrame({"a": rng.integers(0, 10**6, 4_000), "b": rng.choice(["x", "y"], 4_000),
                          "y": rng.integers(0, 2, 4_000)})
    ref = pd.concat([fresh, cur.iloc[:500]], ignore_index=True)
    cur_path, ref_path = tmp_path / "cur.parquet", tmp_path / "ref.parquet"
    pq.write_table(pa.Table.from_pandas(cur, preserve_index=False), cur_path)
    pq.write_table(pa.Table.from_pandas(ref, preserve_index=False), ref_path)
    roles = ColumnRoles(target="y", features=["a", "b"])
    evaluation = open_dataset(cur_path, roles)
    assert sum(1 for _ in evaluation.batches(["a"])) > 1
    spec = CheckSpec(id="integrity.train_eval_overlap", threshold=Threshold(max=0.5))
    ctx = CertificationContext(evaluation=evaluation, reference=open_dataset(ref_path),
                               model=None, roles=roles, settings=Settings())
    r = run_check(REGISTRY[spec.id], ctx, spec)
    keys = set(zip(ref["a"], ref["b"], strict=True))
    expected = np.mean([k in keys for k in zip(cur["a"], cur["b"], strict=True)])
    assert r.measurements[0].value == expected and 0 < expected < 1
    assert r.measurements[0].n == len(cur)

