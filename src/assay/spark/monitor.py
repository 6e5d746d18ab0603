"""Monitoring ingest from Spark: :func:`assay.monitor.ingest` over a Spark table.

The partitions split their rows by UTC day and build each day's window state
(profile, outputs, labelled outcomes, score histogram) over the local
engine's batches; the driver merges them in row order into the stored
windows, as the local ingest does. Rows kept for late labels (with an id
column) travel to the driver as the compact columns the local ingest keeps.
"""

from __future__ import annotations

from typing import Any

from assay.spark.dataset import SparkDataset, read_spark


def ingest(session: Any, actor: Any, model: str, version: str, data: Any, *,
           spark: Any = None, master: str | None = None, exact: bool = True,
           **options: Any) -> Any:
    """:func:`assay.monitor.ingest` with ``data`` a Spark DataFrame, a table name or a
    Parquet/CSV path read by Spark; the other arguments are those of
    :func:`assay.monitor.ingest` (``time_column``, ``prediction``, ``score`` ...)."""
    from assay.monitor import ingest as ingest_local
    from assay.monitor.roles import INGESTERS
    from assay.registry import require_role

    # the role first: nobody without it makes Spark read anything
    require_role(actor, *INGESTERS, action="send production data to monitoring")
    if isinstance(data, SparkDataset):
        ds = data
    else:
        sdf, name, path = read_spark(data, spark, master=master)
        ds = SparkDataset(sdf, name=options.pop("name", None) or name, path=path, exact=exact)
    return ingest_local(session, actor, model, version, ds, **options)


__all__ = ["ingest"]
