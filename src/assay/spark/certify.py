"""Certification on the Spark engine: :func:`assay.certify` over a Spark table.

The statistics (metrics, fairness, calibration, drift, data profile) are
built in the partitions and merged on the driver, batch for batch as the
local engine builds them, so ``results.json``'s ``metrics`` and ``drift``
blocks are the local engine's numbers. The checks that need rows run on a
seeded sample of ``settings.spark_sample_rows`` rows; the certification
names them in its notes, in ``data.evaluation.engine`` and in each such
check's ``details.sample``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from assay.certification import Certification, _start
from assay.certification import certify as certify_local
from assay.policy import Policy, load_policy
from assay.spark.dataset import SparkDataset, read_spark


class _CheckReads:
    """A progress reporter that records, check by check, whether a check read rows
    (the sample) of the Spark data sets, and passes everything on to ``inner``."""

    def __init__(self, inner: Any, datasets: Sequence[SparkDataset]) -> None:
        self.inner = inner
        self.datasets = list(datasets)
        self.per_check: list[bool] = []

    def _reads(self) -> bool:
        return any([bool(ds.take_row_reads()) for ds in self.datasets])

    def start(self, description: str, total: int | float | None = None) -> Any:
        handle = _start(self.inner, description, total)
        if not (description.startswith("Running ") and description.endswith(" checks")):
            return handle
        self._reads()  # the validation before the checks read the sample: not a check
        outer = self

        class _Step:
            def advance(self, n: int | float = 1) -> None:
                outer.per_check.append(outer._reads())
                handle.advance(n)

            def finish(self) -> None:
                handle.finish()

        return _Step()


def open_spark(source: Any, *, spark: Any = None, master: str | None = None,
               sample_rows: int = 100_000, seed: int = 0, exact: bool = True) -> SparkDataset:
    """A :class:`SparkDataset` from a Spark DataFrame, a table name or a Parquet/CSV path."""
    sdf, name, path = read_spark(source, spark, master=master)
    return SparkDataset(sdf, name=name, path=path, sample_rows=sample_rows, seed=seed,
                        exact=exact)


def _is_spark_source(x: Any) -> bool:
    return isinstance(x, SparkDataset | str | os.PathLike) or hasattr(x, "mapInArrow")


def certify(data: Any, *, policy: str | os.PathLike[str] | Policy, tier: str,
            spark: Any = None, master: str | None = None, reference: Any = None,
            out_dir: str | os.PathLike[str] | None = None, progress: Any = None,
            exact: bool = True, **options: Any) -> Certification:
    """:func:`assay.certify` with ``data`` (and ``reference``, when it is a Spark DataFrame,
    a table name or a path) read by Spark.

    ``data`` is a Spark DataFrame, a table name or a Parquet/CSV path; ``spark`` an
    existing SparkSession (else the active one, else a local one on ``master`` /
    ``$ASSAY_SPARK_MASTER`` / ``local[*]``). The other keywords are those of
    :func:`assay.certify` (``target``, ``model``, ``sensitive``, ...). A ``reference``
    that is a pandas/Polars frame or an Arrow table is read locally.
    """
    pol = load_policy(policy)
    sample = int(pol.settings.spark_sample_rows)
    seed = int(pol.settings.bootstrap.seed or 0)
    evaluation = data if isinstance(data, SparkDataset) else open_spark(
        data, spark=spark, master=master, sample_rows=sample, seed=seed, exact=exact)
    ref = reference
    if reference is not None and (reference is data or (
            isinstance(reference, str | os.PathLike) and isinstance(data, str | os.PathLike)
            and os.fspath(reference) == os.fspath(data))):
        ref = evaluation  # one table read once (its partition counts, its sample)
    elif reference is not None and _is_spark_source(reference) \
            and not isinstance(reference, SparkDataset):
        ref = open_spark(reference, spark=spark or evaluation.sdf.sparkSession, master=master,
                         sample_rows=sample, seed=seed, exact=exact)
    spark_sets = list({id(d): d for d in (evaluation, ref) if isinstance(d, SparkDataset)}
                      .values())
    tracker = _CheckReads(progress, spark_sets)
    cert = certify_local(data=evaluation, policy=pol, tier=tier, reference=ref,
                         progress=tracker, **options)
    sampled = [c.id for c, read in zip(cert.checks, tracker.per_check, strict=False) if read]
    for c, read in zip(cert.checks, tracker.per_check, strict=False):
        if read:
            c.details = {**(c.details or {}), "sample": {
                "engine": "spark", "rows": min(sample, evaluation.num_rows), "seed": seed,
                "setting": "settings.spark_sample_rows"}}
    cert.evaluation["engine"] = {
        "name": "spark", "partitions": evaluation.num_partitions, "exact": exact,
        "sample_rows": min(sample, evaluation.num_rows), "sample_seed": seed,
        "checks_on_sample": sampled}
    if isinstance(ref, SparkDataset) and cert.reference is not None:
        cert.reference["engine"] = {"name": "spark", "partitions": ref.num_partitions}
    how = ("batch for batch as the local engine builds them" if exact else
           "one statistic per partition (exact=False: float sums may differ from the local "
           "engine's in their last bits)")
    cert.notes.append(
        f"Spark engine: metrics, fairness, calibration, drift and data-profile statistics "
        f"computed over all {evaluation.num_rows:,} rows in {evaluation.num_partitions} "
        f"partitions, {how}")
    if sampled:
        cert.notes.append(
            f"Spark engine: {len(sampled)} check(s) that need rows ran on a seeded sample of "
            f"{min(sample, evaluation.num_rows):,} rows (settings.spark_sample_rows, seed "
            f"{seed}): {', '.join(sampled)}")
    if out_dir is not None:
        cert.write(out_dir)
    return cert


__all__ = ["certify", "open_spark"]
