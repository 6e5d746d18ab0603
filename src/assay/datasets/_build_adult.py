"""Rebuild ``adult.csv.gz`` from the published UCI files (see README.md)."""

from __future__ import annotations

import csv
import gzip
import io
import sys
from pathlib import Path

from assay.datasets import ADULT_COLUMNS


def build(src_dir: Path, out: Path) -> int:
    """Write the cleaned, gzipped CSV; return the number of rows written."""
    rows: list[list[str]] = []
    for split, name in (("train", "adult.data"), ("test", "adult.test")):
        for line in (src_dir / name).read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("|"):
                continue
            values = [v.strip() for v in line.split(",")]
            if len(values) != len(ADULT_COLUMNS):
                raise SystemExit(f"{name}: expected {len(ADULT_COLUMNS)} values, got {line!r}")
            values[-1] = values[-1].rstrip(".")
            rows.append([*values, split])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*ADULT_COLUMNS, "split"])
    writer.writerows(rows)
    with out.open("wb") as fh, gzip.GzipFile(filename="adult.csv", mode="wb", fileobj=fh,
                                              mtime=0, compresslevel=9) as gz:
        gz.write(buf.getvalue().encode())
    return len(rows)


if __name__ == "__main__":  # pragma: no cover
    n = build(Path(sys.argv[1]), Path(__file__).with_name("adult.csv.gz"))
    print(f"wrote {n} rows")
