"""The Spark engine's data plane: partitions build statistics, the driver merges them.

The local engine reads a data set in batches of
:data:`assay.data.dataset.DEFAULT_BATCH_SIZE` rows, builds one statistic per
batch and merges them left to right. Sums of floating-point numbers depend on
the order in which they are added, so to give the *same* numbers the Spark
engine builds the same statistics over the same batches:

1. a first job (inside the JVM, no Python) counts the rows of every
   partition, which gives each row its index in the table;
2. the data's Arrow batches go through ``mapInArrow``: each partition cuts its
   rows at the global batch boundaries (row ``k * 65,536``), applies the
   model (broadcast) when the table holds its inputs, and returns, for every
   global batch it holds whole, the statistic serialised (a few KB);
3. a global batch cut by a partition boundary comes back as its rows' few
   statistic columns (at most one batch per partition boundary); the driver
   joins the pieces and builds their statistic;
4. the driver merges the statistics in batch order, as the local engine does.

With ``exact=False`` a partition returns one statistic for all its rows
instead: nothing but statistics travel, and float sums (log loss, Brier
score, ECE, means) may differ from the local engine's in their last bits.
"""

from __future__ import annotations

import contextlib
import io
import pickle
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from assay.data.dataset import DEFAULT_BATCH_SIZE
from assay.errors import AssayError

#: The schema of what a partition returns: global batch number, position of the
#: first row inside that batch, "s" (a statistic) or "f" (a fragment of rows), bytes.
PARTIAL_SCHEMA = "batch long, start long, kind string, payload binary"

Builder = Callable[[pa.RecordBatch], Any]
Prepare = Callable[[pa.RecordBatch, int], pa.RecordBatch]


def partition_offsets(sdf: Any) -> list[int]:
    """The index of the first row of every partition of ``sdf`` (plus the total at the end).

    Counted in the JVM (``spark_partition_id`` and a group-by): no row reaches Python.
    """
    from pyspark.sql import functions as F

    n_parts = sdf.rdd.getNumPartitions()
    counts = [0] * n_parts
    for row in sdf.select(F.spark_partition_id().alias("p")).groupBy("p").count().collect():
        counts[int(row["p"])] = int(row["count"])
    return [0, *np.cumsum(counts, dtype=np.int64).tolist()]


def to_arrow(sdf: Any) -> pa.Table:
    """The rows of ``sdf`` on the driver as an Arrow table, in partition order
    (``DataFrame.toArrow`` from Spark 4; its Arrow collection before that)."""
    if hasattr(sdf, "toArrow"):
        return sdf.toArrow()
    batches = sdf._collect_as_arrow()  # Spark 3.5
    from pyspark.sql.pandas.types import to_arrow_schema

    return pa.Table.from_batches(batches, schema=to_arrow_schema(sdf.schema))


def _ipc(batch: pa.RecordBatch | pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write(batch)
    return sink.getvalue()


def _from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def _one_batch(parts: Sequence[pa.RecordBatch | pa.Table]) -> pa.RecordBatch:
    """One record batch (one chunk per column) from consecutive pieces."""
    tables = [p if isinstance(p, pa.Table) else pa.Table.from_batches([p]) for p in parts]
    table = pa.concat_tables(tables).combine_chunks()
    batches = table.to_batches()
    if not batches:
        return pa.RecordBatch.from_pylist([], schema=table.schema)
    assert len(batches) == 1
    return batches[0]


def partition_function(offsets: Sequence[int], build: Callable[..., Any], *,
                       prepare: Prepare | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                       exact: bool = True, with_row: bool = False
                       ) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function ``mapInArrow`` runs in every partition.

    ``build(batch)`` (``build(batch, first_row)`` with ``with_row``: the index of the
    batch's first row in the table, for messages) makes a statistic from one batch;
    ``prepare(batch, first_row)`` (optional) adds the model's outputs to a batch first.
    """
    offsets = list(offsets)
    total = offsets[-1]

    def emit(g: int, start: int, kind: str, payload: bytes) -> pa.RecordBatch:
        return pa.RecordBatch.from_pydict(
            {"batch": [g], "start": [start], "kind": [kind], "payload": [payload]},
            schema=pa.schema([("batch", pa.int64()), ("start", pa.int64()),
                              ("kind", pa.string()), ("payload", pa.binary())]))

    def run(iterator: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        pid = TaskContext.get().partitionId()
        first = offsets[pid]
        pos = first  # global index of the next row
        pending: list[pa.RecordBatch] = []
        pending_from = first  # global index of the first pending row

        def flush(end: int) -> Iterator[pa.RecordBatch]:
            nonlocal pending, pending_from
            if not pending:
                return
            batch = _one_batch(pending)
            g, start = divmod(pending_from, batch_size)
            whole = start == 0 and (end - pending_from == batch_size or end == total)
            try:
                if prepare is not None:
                    batch = prepare(batch, pending_from)
                if whole or not exact:
                    stat = build(batch, pending_from) if with_row else build(batch)
                    out = emit(g, start, "s", pickle.dumps(stat, protocol=5))
                else:
                    out = emit(g, start, "f", _ipc(batch))
            except AssayError as exc:  # bad input: its message, not an executor's traceback
                out = emit(g, start, "e", pickle.dumps((type(exc), str(exc))))
            yield out
            pending = []
            pending_from = end

        for rb in iterator:
            lo = 0
            while lo < rb.num_rows:
                if exact:
                    boundary = (pos // batch_size + 1) * batch_size
                    take = min(rb.num_rows - lo, boundary - pos)
                else:
                    take = rb.num_rows - lo
                pending.append(rb.slice(lo, take))
                lo += take
                pos += take
                if exact and pos % batch_size == 0:
                    yield from flush(pos)
        yield from flush(pos)

    return run


def fold(sdf: Any, build: Callable[..., Any], *, prepare: Prepare | None = None,
         offsets: Sequence[int] | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
         exact: bool = True, empty: Callable[[], Any] | None = None,
         with_row: bool = False) -> Any:
    """Build ``build(batch)`` over every batch of ``sdf`` in the partitions and merge
    the results on the driver in row order (``a.merge(b)``).

    Returns ``empty()`` (or None) when the data has no rows.
    """
    if offsets is None:
        offsets = partition_offsets(sdf)
    fn = partition_function(offsets, build, prepare=prepare, batch_size=batch_size, exact=exact,
                            with_row=with_row)
    with _arrow_batches_of(sdf.sparkSession, batch_size):
        rows = sdf.mapInArrow(fn, PARTIAL_SCHEMA).collect()
    if with_row:
        def build_here(batch: pa.RecordBatch, first: int) -> Any:
            return build(batch, first)
    else:
        def build_here(batch: pa.RecordBatch, first: int) -> Any:
            return build(batch)
    return merge_partials(((r["batch"], r["start"], r["kind"], r["payload"]) for r in rows),
                          build_here, empty=empty, batch_size=batch_size)


@contextlib.contextmanager
def _arrow_batches_of(spark: Any, rows: int) -> Iterator[None]:
    """Spark's Arrow batches as large as ours during one job (10,000 rows by default:
    six times the slicing and per-batch overhead), the session's setting restored after."""
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key, None)
    try:
        current = int(before) if before is not None else 10_000
    except ValueError:
        current = 10_000
    if 0 < current < rows:
        spark.conf.set(key, str(rows))
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


def merge_partials(rows: Any, build: Callable[[pa.RecordBatch, int], Any], *,
                   empty: Callable[[], Any] | None = None,
                   batch_size: int = DEFAULT_BATCH_SIZE) -> Any:
    """Merge what the partitions returned, in (batch, start) order; fragments of one batch
    are joined and built here (``build(batch, first_row)``)."""
    stats: dict[tuple[int, int], Any] = {}
    fragments: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    errors: dict[tuple[int, int], tuple[type, str]] = {}
    for g, start, kind, payload in rows:
        if kind == "e":
            errors[(int(g), int(start))] = pickle.loads(payload)
        elif kind == "s":
            stats[(int(g), int(start))] = pickle.loads(payload)
        else:
            fragments[int(g)].append((int(start), bytes(payload)))
    if errors:  # the first in row order, as the local engine would have met it
        cls, message = errors[min(errors)]
        if isinstance(cls, type) and issubclass(cls, AssayError):
            raise cls(message)
        raise AssayError(message)
    for g, parts in fragments.items():
        parts.sort()
        stats[(g, parts[0][0])] = build(_one_batch([_from_ipc(p) for _, p in parts]),
                                        g * batch_size + parts[0][0])
    out = None
    for key in sorted(stats):
        out = stats[key] if out is None else out.merge(stats[key])
    if out is None and empty is not None:
        return empty()
    return out


def sample_rows(sdf: Any, indices: np.ndarray, offsets: Sequence[int]) -> pa.Table:
    """The rows of ``sdf`` at the given sorted global indices, in that order."""
    from pyspark.sql.types import LongType, StructField, StructType

    offsets = list(offsets)
    idx = np.asarray(indices, dtype=np.int64)
    bidx = sdf.sparkSession.sparkContext.broadcast(idx)
    row_col = "__assay_row__"
    schema = StructType([*sdf.schema.fields, StructField(row_col, LongType(), False)])

    def run(iterator: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        pid = TaskContext.get().partitionId()
        pos = offsets[pid]
        wanted = bidx.value
        for rb in iterator:
            lo, hi = np.searchsorted(wanted, [pos, pos + rb.num_rows])
            if hi > lo:
                take = wanted[lo:hi]
                picked = rb.take(pa.array(take - pos))
                yield picked.append_column(row_col, pa.array(take, pa.int64()))
            pos += rb.num_rows

    table = to_arrow(sdf.mapInArrow(run, schema))
    bidx.unpersist()
    order = np.argsort(table.column(row_col).to_numpy(), kind="stable")
    return table.take(pa.array(order)).drop_columns([row_col])


__all__ = ["PARTIAL_SCHEMA", "fold", "merge_partials", "partition_function",
           "partition_offsets", "sample_rows", "to_arrow"]
