"""Peak memory of ``assay.monitor.ingest`` on one 10M-row Parquet batch.

    python benchmarks/bench_monitor_memory.py [--rows 10000000] [--ids both|no|yes]

Writes, in a temporary directory, a Parquet batch of ``--rows`` rows of one
day with the layout of ``bench_monitor.py`` (20 numeric and 3 categorical
features, a score, a decision, a label, a time stamp; with ``--ids`` also a
text row id per row), and the training data (100,000 rows). Each measurement
runs in a child process: it opens a real SQLite store, registers the model
version, ingests a 1,000-row batch of the day before (this builds the
reference profile from the training data: a fixed cost, like the imports),
notes its peak RSS so far (``ru_maxrss``: the fixed cost), then ingests the
10M-row batch (``--id-column`` when measuring with ids, so its rows are kept
for late labels) and notes the peak RSS again.

Printed: the in-memory (Arrow) size of the columns ingest uses, the peak, the
fixed cost, and the ratios peak / columns and (peak - fixed cost) / columns
(target <= 1.5x). With ids the figure covers keeping every row (id, day,
prediction, score, label) until the transaction writes them, and writing
them to SQLite.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

CHUNK = 500_000


def build(folder: Path, rows: int) -> tuple[Path, Path, Path, dict[str, int]]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from bench_monitor import DAY0, FEATURES, Generator

    gen = Generator(0)
    day1 = np.datetime64((DAY0 + timedelta(days=1)).isoformat(), "us")
    train = gen.frame(-1, 100_000)
    train_path = folder / "train.parquet"
    train[[*FEATURES, "score", "pred", "label"]].to_parquet(train_path, index=False)
    warm = folder / "warm.parquet"
    w = gen.frame(0, 1_000)
    w.to_parquet(warm, index=False)
    batch = folder / "batch.parquet"
    writer = None
    done = 0
    k = 0
    while done < rows:
        n = min(CHUNK, rows - done)
        f = gen.frame(1000 + k, n)  # seeded per chunk; every row on day 1
        f["ts"] = day1 + (np.arange(done, done + n) * (86_400e6 / rows)).astype(
            "timedelta64[us]")
        f["row_id"] = [f"r{done + j}" for j in range(n)]
        t = pa.Table.from_pandas(f, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(batch, t.schema)
        writer.write_table(t, row_group_size=CHUNK)
        done += n
        k += 1
    assert writer is not None
    writer.close()
    return train_path, warm, batch, _sizes(batch)


def _sizes(batch: Path) -> dict[str, int]:
    """In-memory (Arrow) bytes of the columns ingest reads, without and with the row ids."""
    import pyarrow.parquet as pq
    from bench_monitor import FEATURES

    used = [*FEATURES, "ts", "score", "pred", "label"]
    pf = pq.ParquetFile(batch)
    sizes = {}
    for cols, key in ((used, "without"), ([*used, "row_id"], "with")):
        total = 0
        for rg in range(pf.num_row_groups):
            total += pf.read_row_group(rg, columns=cols).nbytes
        sizes[key] = total
    return sizes


def child(folder: Path, with_ids: bool) -> None:
    from datetime import UTC, datetime

    from assay import registry as reg
    from assay.config import Settings
    from assay.evidence import digest_file
    from assay.monitor import ingest
    from assay.store import open_store

    home = folder / ("store-ids" if with_ids else "store")
    home.mkdir()
    store = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'assay.db'}"))
    train = folder / "train.parquet"
    with store.transaction() as s:
        reg.add_user(s, None, "ada", display_name="Ada", roles=["admin"])
    with store.transaction() as s:
        ada = reg.get_user(s, "ada")
        reg.add_user(s, ada, "dana", display_name="Dana", roles=["data_scientist"])
        reg.add_user(s, ada, "bo", display_name="Bo", roles=["business_owner"])
    with store.transaction() as s:
        dana = reg.get_user(s, "dana")
        reg.register_model(s, dana, "bench", owner="bo", decision_type="automated",
                           criticality="high", purpose="benchmark")
        reg.add_version(s, dana, "bench", "1", training_data_source=str(train),
                        training_data_digest=digest_file(train))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    args = dict(time_column="ts", score="score", prediction="pred", target="label", now=now)
    with store.transaction() as s:
        ingest(s, reg.get_user(s, "dana"), "bench", "1", folder / "warm.parquet", **args)
    fixed = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    before = _status("VmRSS")
    reset = _reset_peak()
    t0 = time.perf_counter()
    with store.transaction() as s:
        out = ingest(s, reg.get_user(s, "dana"), "bench", "1", folder / "batch.parquet",
                     id_column="row_id" if with_ids else None, **args)
    elapsed = time.perf_counter() - t0
    peak = _status("VmHWM") if reset else resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"fixed": fixed, "before": before, "peak": peak, "reset": reset,
                      "seconds": elapsed, "rows": out.rows, "kept": out.kept_rows}))


def _status(key: str) -> int:
    """A size from /proc/self/status, in bytes (0 where there is none)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    """Reset the peak RSS (Linux: ``echo 5 > /proc/self/clear_refs``) so that the next
    reading covers the ingest alone, not the set-up before it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status("VmHWM") > 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--ids", choices=["both", "no", "yes"], default="both")
    ap.add_argument("--child", choices=["no", "yes"], help=argparse.SUPPRESS)
    ap.add_argument("--folder", help="reuse (or keep) the files in this directory")
    args = ap.parse_args()
    if args.child:
        child(Path(args.folder), args.child == "yes")
        return
    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-monitor-memory-"))
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.folder and (folder / "batch.parquet").exists():  # reuse the files written before
        import shutil

        for old in ("store", "store-ids"):
            shutil.rmtree(folder / old, ignore_errors=True)
        batch, sizes = folder / "batch.parquet", _sizes(folder / "batch.parquet")
    else:
        _, _, batch, sizes = build(folder, args.rows)
    print(f"data: {args.rows:,} rows of one day in {batch} ({batch.stat().st_size / 2**20:.0f} "
          f"MiB on disk; written in {time.perf_counter() - t0:.0f} s)")
    modes = {"both": ["no", "yes"], "no": ["no"], "yes": ["yes"]}[args.ids]
    for mode in modes:
        proc = subprocess.run([sys.executable, __file__, "--child", mode, "--folder",
                               str(folder)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if proc.returncode != 0:
            print(proc.stderr[-3000:])
            raise SystemExit(1)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        cols = sizes["with" if mode == "yes" else "without"]
        label = "with --id-column (rows kept)" if mode == "yes" else "without an id column"
        mib = 2 ** 20
        what = ("peak RSS during the ingest" if r["reset"] else
                "peak RSS of the process (the peak could not be reset)")
        print(f"ingest {label}: {r['seconds']:.1f} s; columns used {cols / mib:,.0f} MiB; "
              f"{what} {r['peak'] / mib:,.0f} MiB = {r['peak'] / cols:.2f}x the columns "
              f"(target <= 1.5x); RSS before it {r['before'] / mib:,.0f} MiB (imports, store, "
              f"reference; the set-up peaked at {r['fixed'] / mib:,.0f} MiB); growth "
              f"{(r['peak'] - r['before']) / mib:,.0f} MiB = "
              f"{(r['peak'] - r['before']) / cols:.2f}x")


if __name__ == "__main__":
    main()
