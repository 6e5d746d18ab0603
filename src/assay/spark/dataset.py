"""A Spark table seen as an :class:`assay.data.Dataset`.

The statistics every metric, fairness, drift and data-profile check reads are
built in the partitions (:meth:`SparkDataset.fold_batches`, found by
``assay.metrics.context`` and ``assay.metrics.profile``). What needs rows
(robustness, the row-level integrity checks, validation) reads a seeded
uniform sample of ``sample_rows`` rows, drawn exactly as the local engine
draws its samples (the same row indices for the same seed); each such read is
recorded so that the certification can say which checks ran on the sample.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from assay.data import Dataset, ModelAdapter, open_dataset
from assay.data.dataset import DEFAULT_BATCH_SIZE, _sample_indices
from assay.errors import InputError
from assay.spark import engine

#: Up to this many rows, ``to_arrow()`` of the whole table is collected to the driver
#: (reference bins are fitted on at most 500,000 rows, as by the local engine).
COLLECT_ROWS = 500_000
DEFAULT_SAMPLE_ROWS = 100_000


def spark_session(master: str | None = None) -> Any:
    """The active SparkSession, or a new local one (``master``, else ``$ASSAY_SPARK_MASTER``,
    else ``local[*]``)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError("the Spark engine needs pyspark: pip install 'assay[spark]'") from None
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    master = master or os.environ.get("ASSAY_SPARK_MASTER") or "local[*]"
    try:
        return (SparkSession.builder.master(master).appName("assay")
                .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    except Exception as exc:  # no Java, a bad master URL
        raise InputError(f"cannot start Spark with master {master!r}: {exc}") from None


def read_spark(source: Any, spark: Any = None, *, master: str | None = None) -> tuple[Any, str,
                                                                                       Path | None]:
    """A Spark DataFrame, its name and (for a local file) its path, from a DataFrame, a
    table name, or a Parquet / CSV path (file or directory)."""
    if hasattr(source, "mapInArrow") and hasattr(source, "sparkSession"):
        return source, "Spark DataFrame", None
    if not isinstance(source, str | os.PathLike):
        raise InputError(f"the Spark engine reads a Spark DataFrame, a table name or a Parquet "
                         f"or CSV path, got {type(source).__name__}")
    spark = spark or spark_session(master)
    text = os.fspath(source)
    path = Path(text)
    looks_like_path = path.exists() or "/" in text or text.endswith((".parquet", ".csv"))
    try:
        if looks_like_path:
            if not path.exists() and "://" not in text:
                raise InputError(f"{text}: no such file, directory or table")
            csv = text.endswith(".csv") or (path.is_dir() and any(path.glob("*.csv"))
                                            and not any(path.glob("*.parquet")))
            if csv:
                sdf = spark.read.csv(text, header=True, inferSchema=True)
            else:
                sdf = spark.read.parquet(text)
            return sdf, text, path if path.exists() else None
        return spark.table(text), text, None
    except InputError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{text}: not a readable Spark table or Parquet/CSV path ({first[:300]})"
                         ) from None


class SparkDataset(Dataset):
    """A Spark DataFrame behind the :class:`Dataset` interface (see the module doc)."""

    def __init__(self, sdf: Any, *, name: str = "Spark DataFrame", path: Path | None = None,
                 sample_rows: int = DEFAULT_SAMPLE_ROWS, seed: int = 0, exact: bool = True
                 ) -> None:
        if sample_rows < 1:
            raise InputError(f"spark_sample_rows: expected a positive number of rows, "
                             f"got {sample_rows}")
        self.name = name
        self.kind = "spark"
        self.roles = None
        self.positive_value = None
        self._table = None
        self._path = path
        self._csv = None
        self._csv_types = None
        self.sdf = sdf
        self.sample_size = int(sample_rows)
        self.seed = int(seed)
        self.exact = exact
        self._offsets: list[int] | None = None
        self._sample: Dataset | None = None
        self.row_reads: list[str] = []  # what read rows since the last take_row_reads()
        self.partitions_folded: int = 0
        from assay.data.dataset import _refuse_duplicates

        _refuse_duplicates(name, self.schema.names)

    def __repr__(self) -> str:
        return f"SparkDataset({self.name!r}, partitions={self.num_partitions})"

    # -- description -------------------------------------------------------
    @cached_property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the batches the partitions read (derived without a job)."""
        from pyspark.sql.pandas.types import to_arrow_schema

        try:
            return to_arrow_schema(self.sdf.schema)
        except Exception:  # a type Arrow cannot hold: ask Spark for it
            return engine.to_arrow(self.sdf.limit(0)).schema

    @property
    def offsets(self) -> list[int]:
        if self._offsets is None:
            self._offsets = engine.partition_offsets(self.sdf)
        return self._offsets

    @property
    def num_partitions(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_rows(self) -> int:
        return int(self.offsets[-1])

    @cached_property
    def digest(self) -> str:
        """For a local file or directory, the local engine's digest of its bytes; otherwise
        SHA-256 over each partition's SHA-256 of its rows as an Arrow IPC stream (in
        partition order: it depends on how the table is partitioned)."""
        if self._path is not None and self._path.exists():
            return open_dataset(self._path, validate=False).digest
        from pyspark.sql.types import BinaryType, LongType, StructField, StructType

        def run(iterator: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            from pyspark import TaskContext

            h = hashlib.sha256()
            for rb in iterator:
                h.update(engine._ipc(rb))
            yield pa.RecordBatch.from_pydict({"p": [TaskContext.get().partitionId()],
                                              "d": [h.digest()]})

        schema = StructType([StructField("p", LongType()), StructField("d", BinaryType())])
        parts = sorted((r["p"], bytes(r["d"])) for r in self.sdf.mapInArrow(run, schema).collect())
        return hashlib.sha256(b"".join(d for _, d in parts)).hexdigest()

    # -- statistics in the partitions --------------------------------------
    def fold_batches(self, build: Callable[[pa.RecordBatch], Any], *,
                     columns: Sequence[str] | None = None, model: Any = None,
                     roles: Any = None, empty: Callable[[], Any] | None = None,
                     with_row: bool = False) -> Any:
        """``build(batch)`` over the batches the local engine would read, in the partitions,
        merged on the driver; with ``model`` its outputs are added first (as
        :meth:`Dataset.with_model` adds them)."""
        cols = list(dict.fromkeys(columns)) if columns is not None else self.column_names
        read = cols
        prepare = None
        if model is not None:
            inputs = model.input_columns(roles.feature_columns(self.column_names))
            read = list(dict.fromkeys([*cols, *inputs]))
            # a fresh adapter: the estimator and its identity, without the driver's thread
            # pools (native handles do not travel)
            shipped = ModelAdapter(model.estimator, name=model.name, digest=model.digest,
                                   path=model.path)
            bmodel = self.sdf.sparkSession.sparkContext.broadcast(shipped)

            def prepare(batch: pa.RecordBatch, first_row: int) -> pa.RecordBatch:
                if batch.num_rows == 0:
                    return batch
                local = open_dataset(pa.Table.from_batches([batch]), validate=False)
                out = list(local.with_model(bmodel.value, roles, columns=cols,
                                            batch_size=batch.num_rows))
                return out[0]
        self._check_columns(read)
        self.partitions_folded = self.num_partitions
        return engine.fold(self.sdf.select(*read), build, prepare=prepare,
                           offsets=self.offsets, exact=self.exact, empty=empty,
                           with_row=with_row)

    # -- rows: exact samples, recorded -------------------------------------
    def take_row_reads(self) -> list[str]:
        reads, self.row_reads = self.row_reads, []
        return reads

    def _rows(self, indices: np.ndarray, columns: Sequence[str]) -> pa.Table:
        self._check_columns(columns)
        return engine.sample_rows(self.sdf.select(*columns), indices, self.offsets)

    @property
    def sample_dataset(self) -> Dataset:
        """The seeded sample (``sample_rows`` rows) as a local Dataset."""
        if self._sample is None:
            n = min(self.sample_size, self.num_rows)
            table = (self.sample_arrow(n, seed=self.seed) if n
                     else engine.to_arrow(self.sdf.limit(0)))
            self._sample = open_dataset(table, name=f"{self.name} (sample of {n:,} rows)",
                                        validate=False)
        self._sample.roles = self.roles
        self._sample.positive_value = self.positive_value
        return self._sample

    def batches(self, columns: Sequence[str] | None = None,
                batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[pa.RecordBatch]:
        if columns is not None:
            self._check_columns(list(columns))
        self.row_reads.append("sample")
        yield from self.sample_dataset.batches(columns, batch_size)

    def to_arrow(self, columns: Sequence[str] | None = None, limit: int | None = None) -> pa.Table:
        cols = list(columns) if columns is not None else self.column_names
        if limit is not None:  # a look at some rows (e.g. a model's trial run): the sample's
            self.row_reads.append("sample")
            return self.sample_dataset.to_arrow(cols, limit)
        if self.num_rows <= max(COLLECT_ROWS, self.sample_size):
            self._check_columns(cols)
            return engine.to_arrow(self.sdf.select(*cols))  # partition order is row order
        self.row_reads.append("sample")
        return self.sample_dataset.to_arrow(cols)

    def to_pandas(self, columns: Sequence[str] | None = None,
                  limit: int | None = None) -> pd.DataFrame:
        return self.to_arrow(columns, limit).to_pandas()

    def sample_arrow(self, n: int, seed: int = 0,
                     columns: Sequence[str] | None = None) -> pa.Table:
        """The rows the local engine's ``sample_arrow(n, seed)`` picks (at most
        ``sample_rows`` of them)."""
        if n <= 0:
            raise InputError(f"sample size: expected a positive number of rows, got {n}")
        cols = list(columns) if columns is not None else self.column_names
        if n > self.sample_size:
            n = self.sample_size
            self.row_reads.append("sample")
        total = self.num_rows
        if n >= total:
            self._check_columns(cols)
            return engine.to_arrow(self.sdf.select(*cols))
        idx = _sample_indices(total, n, np.random.default_rng(seed))
        return self._rows(idx, cols)

    def sample(self, n: int, seed: int = 0, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """A check's sample: ``n`` rows drawn (with ``seed``) from the seeded sample of
        ``sample_rows`` rows, without another pass over the table."""
        self.row_reads.append("sample")
        return self.sample_dataset.sample(n, seed=seed, columns=columns)

    def with_model(self, adapter: Any, roles: Any = None, *,
                   columns: Sequence[str] | None = None,
                   batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[pa.RecordBatch]:
        self.row_reads.append("sample")
        yield from self.sample_dataset.with_model(adapter, roles or self.roles,
                                                  columns=columns, batch_size=batch_size)


__all__ = ["SparkDataset", "read_spark", "spark_session"]
