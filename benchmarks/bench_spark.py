"""The Spark engine against the local engine on the same Parquet file.

1. Throughput: the classification statistic (contingency table and 1,000-bin
   score histograms per group, weighted) over every row of a Parquet file,
   built by the local engine (one process, batch by batch) and by the Spark
   engine (``local[CORES]``, exact: the partitions build the local engine's
   batches, the driver merges them in row order). Reported in rows per second
   per core, the partition-count job and the driver merge included.
2. Merge cost: the driver's cost to deserialise and merge the statistics of
   10 to 10,000 partitions (what grows with the partition count; the
   partitions' own work does not).

    python benchmarks/bench_spark.py                  # 50M rows, local[2]; ~1.2 GB of Parquet
    python benchmarks/bench_spark.py --rows 2000000   # a quick look

Both engines give the same statistic (checked at the end, array for array).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from assay.data import open_dataset
from assay.metrics.classification import ClassificationStats

COLUMNS = ["y", "score", "group", "w"]


def build(batch: pa.RecordBatch) -> ClassificationStats:
    return ClassificationStats.from_batch(batch, target="y", score="score",
                                          sensitive=["group"], weight="w")


def write_data(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    step = 1_000_000
    writer = None
    for lo in range(0, rows, step):
        n = min(step, rows - lo)
        y = rng.integers(0, 2, n)
        table = pa.table({
            "y": y,
            "score": np.clip(0.3 * y + rng.beta(2, 3, n), 0, 1),
            "group": pa.array(rng.choice(["a", "b", "c", "d"], n)),
            "w": rng.uniform(0.5, 2.0, n),
            "x": rng.normal(size=n),
        })
        if writer is None:
            writer = pq.ParquetWriter(str(path), table.schema)
        writer.write_table(table, row_group_size=step)
    assert writer is not None
    writer.close()


def local_engine(path: Path) -> tuple[float, ClassificationStats]:
    t = time.perf_counter()
    ds = open_dataset(path, validate=False)
    stats = ClassificationStats.from_batches(ds.batches(COLUMNS), target="y", score="score",
                                             sensitive=["group"], weight="w")
    return time.perf_counter() - t, stats


def spark_engine(path: Path, cores: int) -> tuple[float, float, int, ClassificationStats]:
    from pyspark.sql import SparkSession

    from assay.spark import engine

    spark = (SparkSession.builder.master(f"local[{cores}]").appName("assay-bench")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", str(cores))
             .config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    sdf = spark.read.parquet(str(path)).select(*COLUMNS)
    engine.fold(sdf.limit(1000), build)  # start the Python workers once
    t = time.perf_counter()
    offsets = engine.partition_offsets(sdf)
    t_count = time.perf_counter() - t
    stats = engine.fold(sdf, build, offsets=offsets)
    elapsed = time.perf_counter() - t
    parts = len(offsets) - 1
    spark.stop()
    return elapsed, t_count, parts, stats


def merge_cost(counts: list[int]) -> list[tuple[int, float, int]]:
    """Driver time to unpickle and merge ``k`` partition statistics, for each k."""
    from assay.spark.engine import merge_partials

    rng = np.random.default_rng(1)
    n = 5_000
    y = rng.integers(0, 2, n)
    batch = pa.RecordBatch.from_pydict({
        "y": y, "score": np.clip(0.3 * y + rng.beta(2, 3, n), 0, 1),
        "group": rng.choice(["a", "b", "c", "d"], n), "w": rng.uniform(0.5, 2.0, n)})
    payload = pickle.dumps(build(batch), protocol=5)
    out = []
    for k in counts:
        rows = [(g, 0, "s", payload) for g in range(k)]
        t = time.perf_counter()
        merged = merge_partials(rows, lambda b, first: build(b))
        out.append((k, time.perf_counter() - t, len(payload)))
        assert merged.n == n * k
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000_000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--partitions", default="10,100,1000,10000",
                    help="partition counts for the merge-cost table")
    ap.add_argument("--dir", default=None, help="where to write the Parquet file")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "bench.parquet"
        t = time.perf_counter()
        write_data(path, args.rows)
        print(f"data: {args.rows:,} rows, {path.stat().st_size / 1e6:.0f} MB of Parquet "
              f"(written in {time.perf_counter() - t:.1f} s); {os.cpu_count()} CPUs visible")
        t_local, local = local_engine(path)
        print(f"local engine : {t_local:8.2f} s  {args.rows / t_local:14,.0f} rows/s "
              f"(1 core: {args.rows / t_local:,.0f} rows/s/core)")
        t_spark, t_count, parts, spark = spark_engine(path, args.cores)
        print(f"spark engine : {t_spark:8.2f} s  {args.rows / t_spark:14,.0f} rows/s on "
              f"local[{args.cores}] ({args.rows / t_spark / args.cores:,.0f} rows/s/core; "
              f"{parts} partitions; counting the rows of each: {t_count:.2f} s)")
        same = all(np.array_equal(getattr(local, a), getattr(spark, a), equal_nan=True)
                   for a in ("counts", "wsums", "hist_n", "hist_w", "hist_ws", "hist_nll",
                             "hist_sq"))
        print(f"same statistic as the local engine, array for array: {same}")
    print("\ndriver merge of k partition statistics (4 groups x 2 labels x 1,000 score bins):")
    print(f"{'partitions':>10}  {'seconds':>9}  {'ms/partition':>12}  {'state bytes':>11}")
    for k, sec, size in merge_cost([int(x) for x in args.partitions.split(",")]):
        print(f"{k:>10,}  {sec:9.3f}  {1000 * sec / k:12.3f}  {size:11,}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
