"""Monitoring ingest from a Spark table stores the local ingest's windows, byte for byte."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from assay import registry as reg
from assay.errors import InputError, PermissionDenied
from assay.store import Store

NOW = datetime(2026, 4, 1, tzinfo=UTC)
DAY0 = date(2026, 3, 2)


def _frames(n: int = 70_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(5)

    def frame(m: int) -> pd.DataFrame:
        return pd.DataFrame({"income": rng.lognormal(10.0, 0.5, m),
                             "region": rng.choice(["north", "south", "east"], m),
                             "sex": rng.choice(["female", "male"], m)})

    train = frame(5000)
    prod = frame(n)
    y = rng.integers(0, 2, n)
    prod["y"] = y
    prod["p"] = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    # three days, in order; the 65,536-row batch boundary falls inside the last day
    prod["ts"] = (pd.Timestamp(DAY0) + pd.to_timedelta(np.arange(n) * (3 * 86400 // n),
                                                       unit="s")).strftime("%Y-%m-%dT%H:%M:%S")
    prod["row"] = "r" + pd.Series(np.arange(n)).astype(str)
    return train, prod


def _windows(s: Any, version: str) -> list[tuple[Any, int, int, bytes]]:
    from assay.monitor.tables import MonitorWindow

    mv = reg.get_version(s, "pd", version)
    rows = s.scalars(select(MonitorWindow).where(MonitorWindow.model_version_id == mv.id)
                     .order_by(MonitorWindow.start)).all()
    return [(w.start, w.rows, w.labeled, bytes(w.state)) for w in rows]


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_spark_ingest_stores_the_local_windows(db: Store, people: dict, spark: Any,
                                               tmp_path: Path) -> None:
    from assay.evidence import digest_file
    from assay.monitor import ingest
    from assay.spark import ingest as spark_ingest

    train, prod = _frames()
    train_path = tmp_path / "train.parquet"
    train.to_parquet(train_path, index=False)
    prod_path = tmp_path / "prod.parquet"
    prod.to_parquet(prod_path, index=False, row_group_size=20_000)
    with db.transaction() as s:
        dana = reg.get_user(s, "dana")
        reg.register_model(s, dana, "pd", owner="bo", decision_type="automated",
                           criticality="high", purpose="probability of default")
        for v in ("local", "spark", "cli"):
            reg.add_version(s, dana, "pd", v, training_data_source=str(train_path),
                            training_data_digest=digest_file(train_path))
    args = dict(time_column="ts", id_column="row", score="p", target="y", sensitive=["sex"],
                now=NOW)
    with db.transaction() as s:
        local = ingest(s, reg.get_user(s, "dana"), "pd", "local", prod_path, **args)
    spark.conf.set("spark.sql.files.maxPartitionBytes", "300000")
    try:
        sdf = spark.read.parquet(str(prod_path))
        assert sdf.rdd.getNumPartitions() >= 2
        with db.transaction() as s:
            viewer = reg.get_user(s, "audrey")
            with pytest.raises(PermissionDenied):
                spark_ingest(s, viewer, "pd", "spark", sdf, **args)
        with db.transaction() as s:
            remote = spark_ingest(s, reg.get_user(s, "dana"), "pd", "spark", sdf, **args)
        with db.transaction() as s, pytest.raises(InputError, match="'nope'"):
            spark_ingest(s, reg.get_user(s, "dana"), "pd", "spark", sdf,
                         **{**args, "score": "nope"})
        # the command line: the same windows; a missing column exits 2, naming it
        from assay.cli import main

        base = ["monitor", "ingest", "pd", "cli", "--data", str(prod_path), "--engine",
                "spark", "--time-column", "ts", "--id-column", "row", "--target", "y",
                "--sensitive", "sex", "--as", "dana"]
        assert _exit_code(main, [*base, "--score", "nope"]) == 2
        assert _exit_code(main, [*base, "--score", "p"]) == 0
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert (remote.rows, remote.windows, remote.kept_rows, remote.labeled_rows) == \
        (local.rows, local.windows, local.kept_rows, local.labeled_rows)
    with db.transaction() as s:
        a, b = _windows(s, "local"), _windows(s, "spark")
        c = _windows(s, "cli")
    assert len(a) == 3
    assert a == b
    # (the command's "now" is today, not NOW: the window states are the same all the same)
    assert [w[1:] for w in a] == [w[1:] for w in c]
    assert timedelta(0) == a[0][0].replace(tzinfo=UTC) - datetime(2026, 3, 2, tzinfo=UTC)


def _exit_code(main: Any, args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0
