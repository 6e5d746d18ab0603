"""Reading data: one ``Dataset`` over frames, Arrow tables, Parquet and CSV files.

Files are read batch by batch (``pyarrow.parquet.ParquetFile.iter_batches``,
``pyarrow.csv.open_csv``), so a file larger than memory can be validated,
profiled and certified with bounded memory. In-memory inputs are converted
to an Arrow table once.

``open_dataset`` validates once, at the boundary, against the column roles;
after that the rest of assay trusts the data.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from assay.data.roles import ColumnRoles, match_label
from assay.errors import InputError, ModelLoadError, column_error

if TYPE_CHECKING:
    import pandas as pd

    from assay.data.model import ModelAdapter

DEFAULT_BATCH_SIZE = 65_536
#: A Parquet file whose decoded columns take at most this many bytes (by its metadata)
#: keeps each column in memory once read: the checks read the same columns many times,
#: and decoding them again cost more than the checks' own work on 10,000 rows.
#: Larger files are streamed on every read, as before, so memory stays bounded.
KEEP_PARQUET_BYTES = 64 * 1024 * 1024
#: Fields that the CSV reader takes as missing in number columns (Arrow's defaults).
_ARROW_NULL_VALUES: tuple[str, ...] = tuple(pacsv.ConvertOptions().null_values)

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".data", ".test", ".csv.gz", ".tsv.gz", ".csv.bz2")


@dataclass(frozen=True)
class CsvOptions:
    """How to read a delimited text file.

    ``header=False`` with ``column_names`` reads files without a header row
    (the UCI Adult and German credit files). ``skip_rows`` drops leading lines
    (a comment line, for example). ``strip_whitespace`` trims spaces around
    text values (``"a, b"`` separators) before missing values are recognised.
    ``column_types`` forces the type of some columns (``{"zip": "string"}``).

    Missing values: an empty field is missing in every column, text or number,
    as a null is in a Parquet file of the same table. Number columns also take
    the usual markers (``NA``, ``NaN``, ``null``, ``N/A``, ...) as missing.
    ``na_values`` adds markers that are missing in every column (``["?"]``
    for the UCI files).
    """

    delimiter: str = ","
    header: bool = True
    column_names: Sequence[str] | None = None
    na_values: Sequence[str] | None = None
    skip_rows: int = 0
    strip_whitespace: bool = True
    quote_char: str | bool = '"'
    column_types: Mapping[str, str] = field(default_factory=dict)
    encoding: str = "utf8"

    def __post_init__(self) -> None:
        na = self.na_values
        if na is not None:
            if isinstance(na, str):
                na = [na]
            bad = [v for v in na if not isinstance(v, str)]
            if bad:
                raise InputError(f"CSV options: na_values: expected text markers such as '?' "
                                 f"or 'n/a', got {bad[0]!r}")
            object.__setattr__(self, "na_values", tuple(na))
        if self.delimiter in ("tab", "\\t"):
            object.__setattr__(self, "delimiter", "\t")
        if not isinstance(self.delimiter, str) or len(self.delimiter) != 1:
            raise InputError(f"CSV options: delimiter: expected one character such as ',' or "
                             f"';', got {self.delimiter!r}")
        if self.column_names is not None:
            _refuse_duplicates("CSV options: column_names", list(self.column_names))

    @classmethod
    def coerce(cls, value: CsvOptions | Mapping[str, Any] | None) -> CsvOptions:
        if value is None:
            return cls()
        if isinstance(value, CsvOptions):
            return value
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(value) - known)
        if unknown:
            raise InputError(
                f"CSV options: unknown option(s) {', '.join(unknown)}; "
                f"expected some of {', '.join(sorted(known))}")
        return cls(**dict(value))


def _refuse_duplicates(label: str, names: Sequence[str]) -> None:
    """InputError naming each column name that occurs more than once, with its positions."""
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names, start=1):
        seen.setdefault(n, []).append(i)
    dup = {n: at for n, at in seen.items() if len(at) > 1}
    if dup:
        desc = "; ".join(f"{n!r} (columns {', '.join(map(str, at))})" for n, at in dup.items())
        raise InputError(f"{label}: duplicate column name(s) {desc}: every column needs its own "
                         "name, or one of them would be lost; rename them and try again")


def _close(name: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.6)
    if not close:
        lowered = {o.lower(): o for o in options}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class Dataset:
    """A table to certify: a frame, an Arrow table, or a Parquet / CSV file.

    Use :func:`open_dataset` to build one; it validates the data against the
    column roles.
    """

    def __init__(self, *, name: str, kind: str, table: pa.Table | None = None,
                 path: Path | None = None, csv: CsvOptions | None = None,
                 roles: ColumnRoles | None = None) -> None:
        self.name = name
        self.kind = kind  # "pandas", "polars", "arrow", "parquet", "parquet-dir", "csv"
        self.roles = roles
        self._table = table
        self._path = path
        self._csv = csv
        self._csv_types: dict[str, pa.DataType] | None = None
        self._num_rows: int | None = table.num_rows if table is not None else None
        self.positive_value: Any = None  # the target value that is positive, as stored
        if kind == "parquet":
            try:
                # without pre-buffering, reading holds less memory at once (local files)
                self._pf = pq.ParquetFile(str(path), pre_buffer=False)
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"{name}: not a readable Parquet file ({exc})") from None
            self._num_rows = self._pf.metadata.num_rows
            meta = self._pf.metadata
            self._keep: dict[int, dict[str, list[pa.Array]]] | None = (
                {} if sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
                <= KEEP_PARQUET_BYTES else None)
            self._kept_metadata: dict[bytes, bytes] | None = None
            self._kept_fields: dict[str, pa.Field] = {}
        if kind == "parquet-dir":
            import pyarrow.dataset as pads

            try:
                self._pads = pads.dataset(str(path), format="parquet", partitioning="hive",
                                          exclude_invalid_files=True)
                self._files = sorted(self._pads.files)
                if not self._files:
                    raise InputError(f"{name}: the directory holds no Parquet file")
                self._num_rows = self._pads.count_rows()
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"{name}: not a readable Parquet directory ({exc})") from None
        if kind == "csv":
            self._csv_types = self._infer_csv_types()
        else:
            _refuse_duplicates(name, self.schema.names)

    # -- description -------------------------------------------------------
    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, kind={self.kind!r}, rows={self.num_rows})"

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def csv_options(self) -> CsvOptions | None:
        """How a CSV file is read (None for other sources)."""
        return (self._csv or CsvOptions()) if self.kind == "csv" else None

    @cached_property
    def schema(self) -> pa.Schema:
        if self._table is not None:
            return self._table.schema
        if self.kind == "parquet":
            return self._pf.schema_arrow
        if self.kind == "parquet-dir":
            return self._pads.schema
        assert self._csv_types is not None
        return pa.schema([(n, t) for n, t in self._csv_types.items()])

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)

    @property
    def num_rows(self) -> int:
        if self._num_rows is None:
            self._num_rows = sum(b.num_rows for b in self.batches(columns=[self.column_names[0]]))
        return self._num_rows

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the file's bytes, or of the Arrow IPC stream of in-memory data.

        For a directory of Parquet files: of each file's path relative to the
        directory, a NUL byte and the file's bytes, in path order.
        """
        h = hashlib.sha256()
        if self.kind == "parquet-dir":
            assert self._path is not None
            for f in self._files:
                h.update(os.path.relpath(f, self._path).encode() + b"\0")
                with open(f, "rb") as fh:
                    for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                        h.update(chunk)
            return h.hexdigest()
        if self._path is not None:
            with open(self._path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            return h.hexdigest()

        class _Sink:
            def write(self, data: Any) -> int:
                h.update(data)
                return len(data)

            def flush(self) -> None:
                pass

            closed = False

        sink = pa.PythonFile(_Sink(), mode="w")  # type: ignore[arg-type]
        assert self._table is not None
        with pa.ipc.new_stream(sink, self._table.schema) as writer:
            for batch in self._table.to_batches(max_chunksize=DEFAULT_BATCH_SIZE):
                writer.write_batch(batch)
        return h.hexdigest()

    # -- reading -----------------------------------------------------------
    def _check_columns(self, columns: Sequence[str]) -> None:
        names = self.column_names
        for c in columns:
            if c not in names:
                raise InputError(
                    f"{self.name}: no column {c!r}{_close(c, names)} "
                    f"(columns: {', '.join(names[:30])}{', ...' if len(names) > 30 else ''})")

    def batches(self, columns: Sequence[str] | None = None,
                batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[pa.RecordBatch]:
        """Yield record batches of at most ``batch_size`` rows (streaming for files)."""
        if columns is not None:
            columns = list(dict.fromkeys(columns))
            self._check_columns(columns)
        if self._table is not None:
            table = self._table if columns is None else self._table.select(columns)
            yield from table.to_batches(max_chunksize=batch_size)
            return
        if self.kind == "parquet":
            if self._keep is not None and columns != []:
                yield from self._kept_batches(columns, batch_size)
                return
            for batch in self._pf.iter_batches(batch_size=batch_size, columns=columns):
                yield batch
            return
        if self.kind == "parquet-dir":
            # little read-ahead: memory stays bounded by a few batches
            yield from self._pads.to_batches(columns=columns, batch_size=batch_size,
                                             batch_readahead=1, fragment_readahead=1)
            return
        for batch in self._csv_batches(columns):
            if batch.num_rows <= batch_size:
                yield batch
            else:
                for start in range(0, batch.num_rows, batch_size):
                    yield batch.slice(start, batch_size)

    def _kept_batches(self, columns: Sequence[str] | None,
                      batch_size: int) -> Iterator[pa.RecordBatch]:
        """The batches that ``iter_batches`` yields for a small Parquet file, from the
        columns kept in memory (each column is read from the file once per batch size)."""
        assert self._keep is not None
        names = list(columns) if columns is not None else self.column_names
        kept = self._keep.setdefault(batch_size, {})
        missing = [c for c in names if c not in kept]
        if missing:
            read: dict[str, list[pa.Array]] = {c: [] for c in missing}
            for batch in self._pf.iter_batches(batch_size=batch_size, columns=missing):
                self._kept_metadata = batch.schema.metadata
                for c in missing:
                    self._kept_fields[c] = batch.schema.field(c)
                    read[c].append(batch.column(c))
            kept.update(read)
        if not kept[names[0]]:  # no rows
            return
        schema = pa.schema([self._kept_fields[c] for c in names], metadata=self._kept_metadata)
        for i in range(len(kept[names[0]])):
            yield pa.RecordBatch.from_arrays([kept[c][i] for c in names], schema=schema)

    def to_arrow(self, columns: Sequence[str] | None = None, limit: int | None = None) -> pa.Table:
        """Read into one Arrow table (all rows, or the first ``limit``)."""
        cols = list(columns) if columns is not None else self.column_names
        if self._table is not None:
            t = self._table.select(cols)
            return t if limit is None else t.slice(0, limit)
        out: list[pa.RecordBatch] = []
        got = 0
        for b in self.batches(cols):
            if limit is not None and got + b.num_rows >= limit:
                out.append(b.slice(0, limit - got))
                got = limit
                break
            out.append(b)
            got += b.num_rows
        if not out:
            return pa.Table.from_batches([], schema=pa.schema([self.schema.field(c) for c in cols]))
        return pa.Table.from_batches(out)

    def to_pandas(self, columns: Sequence[str] | None = None,
                  limit: int | None = None) -> pd.DataFrame:
        """Read into a pandas DataFrame (all rows, or the first ``limit``)."""
        return self.to_arrow(columns, limit).to_pandas()

    def sample(self, n: int, seed: int = 0, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """A uniform random sample of ``n`` rows without replacement, read by streaming.

        Rows keep their order in the data. With ``n >= num_rows`` every row is returned.
        """
        return self.sample_arrow(n, seed, columns).to_pandas()

    def sample_arrow(self, n: int, seed: int = 0,
                     columns: Sequence[str] | None = None) -> pa.Table:
        """:meth:`sample` as an Arrow table."""
        if n <= 0:
            raise InputError(f"sample size: expected a positive number of rows, got {n}")
        cols = list(columns) if columns is not None else self.column_names
        total = self.num_rows
        if n >= total:
            return self.to_arrow(cols)
        idx = _sample_indices(total, n, np.random.default_rng(seed))
        parts: list[pa.RecordBatch] = []
        start = 0
        for b in self.batches(cols):
            lo, hi = np.searchsorted(idx, [start, start + b.num_rows])
            if hi > lo:
                parts.append(b.take(pa.array(idx[lo:hi] - start)))
            start += b.num_rows
        return pa.Table.from_batches(parts)

    def with_model(self, adapter: ModelAdapter, roles: ColumnRoles | None = None, *,
                   columns: Sequence[str] | None = None,
                   batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[pa.RecordBatch]:
        """Yield batches with the model's prediction and score columns added.

        The columns are named ``roles.prediction`` / ``roles.score`` or, when
        the roles name none, ``__prediction__`` / ``__score__`` (see
        :meth:`ColumnRoles.with_model_outputs`). The score is the
        probability of ``roles.positive_label`` and is added only when the
        model has ``predict_proba``. ``columns`` restricts the data columns
        passed through (the model's inputs are always read).
        """
        roles = roles or self.roles or ColumnRoles()
        # a multiclass model has no single score (its probabilities are read apart)
        has_score = adapter.has_proba and roles.task != "multiclass"
        out_roles = roles.with_model_outputs(has_score=has_score)
        inputs = adapter.input_columns(roles.feature_columns(self.column_names))
        missing = [c for c in inputs if c not in self.column_names]
        if missing:
            raise ModelLoadError(
                f"{adapter.name}: the model expects column(s) {', '.join(missing)} "
                f"which {self.name} does not have")
        keep = list(columns) if columns is not None else self.column_names
        keep = [c for c in keep if c not in (out_roles.prediction, out_roles.score)]
        read = list(dict.fromkeys([*keep, *inputs]))
        start = 0
        for batch in self.batches(read, batch_size=batch_size):
            frame = batch.select(inputs).to_pandas()
            span = (start, start + batch.num_rows)
            score = None
            if has_score:  # one pass of the model where that gives the same
                pred, score = adapter.predict_and_proba(
                    frame, positive_label=roles.positive_label, rows=span)
            else:
                pred = adapter.predict(frame, rows=span)
            arrays = [batch.column(c) for c in keep]
            names = list(keep)
            arrays.append(pa.array(pred))
            names.append(out_roles.prediction)
            if score is not None:
                arrays.append(pa.array(score, type=pa.float64()))
                names.append(out_roles.score)
            start += batch.num_rows
            yield pa.RecordBatch.from_arrays(arrays, names=names)

    # -- CSV ---------------------------------------------------------------
    def _csv_options(self, types: Mapping[str, pa.DataType] | None,
                     include: Sequence[str] | None,
                     block_size: int = 1 << 22) -> tuple[Any, Any, Any]:
        o = self._csv or CsvOptions()
        read = pacsv.ReadOptions(
            column_names=list(o.column_names) if o.column_names else None,
            autogenerate_column_names=(not o.header and not o.column_names),
            skip_rows=o.skip_rows,
            block_size=block_size, encoding=o.encoding)
        if o.header and o.column_names:
            # a header row is present but the caller renames the columns
            read = pacsv.ReadOptions(column_names=list(o.column_names), skip_rows=o.skip_rows + 1,
                                     block_size=block_size, encoding=o.encoding)
        parse = pacsv.ParseOptions(delimiter=o.delimiter, quote_char=o.quote_char)
        # Numbers: an empty field, Arrow's usual markers (NA, NaN, null, ...) and the
        # caller's markers are missing. Text: an empty field and the caller's markers,
        # matched after trimming, in _clean_csv_batch (a country code "NA" stays text).
        kwargs: dict[str, Any] = {
            "null_values": list(dict.fromkeys([*_ARROW_NULL_VALUES, *(o.na_values or ())])),
            "strings_can_be_null": False,
        }
        if types:
            kwargs["column_types"] = dict(types)
        if include is not None:
            kwargs["include_columns"] = list(include)
        convert = pacsv.ConvertOptions(**kwargs)
        return read, parse, convert

    def _open_csv(self, types: Mapping[str, pa.DataType] | None,
                  include: Sequence[str] | None) -> pacsv.CSVStreamingReader:
        read, parse, convert = self._csv_options(types, include)
        try:
            return pacsv.open_csv(str(self._path), read_options=read, parse_options=parse,
                                  convert_options=convert)
        except pa.ArrowInvalid as exc:
            raise self._csv_error(exc) from None

    def _csv_error(self, exc: Exception) -> InputError:
        """The reader's error, or the delimiter's when a line was read as one field."""
        one = re.search(r"Expected \d+ columns, got 1: (.*)", str(exc))
        if one:  # columns are named, but the line is one field: the wrong delimiter?
            self._refuse_one_column(one.group(1), row=True)
        return InputError(f"{self.name}: cannot read as CSV ({exc})")

    def _clean_csv_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Text columns: trim spaces (``strip_whitespace``), then an empty field or one of
        ``na_values`` is missing, as it is in a Parquet file of the same table."""
        o = self._csv or CsvOptions()
        na = pa.array(sorted({"", *(o.na_values or ())}), type=pa.string())
        arrays = []
        for col in batch.columns:
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                if o.strip_whitespace:
                    col = pc.utf8_trim_whitespace(col)
                missing = pc.is_in(col, value_set=na.cast(col.type))
                if pc.any(missing).as_py():
                    col = pc.if_else(missing, pa.scalar(None, col.type), col)
            arrays.append(col)
        return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)

    def _infer_csv_types(self) -> dict[str, pa.DataType]:
        """Infer column types from a full streaming pass, widening on conflicts.

        The CSV reader infers types from the first block; a later block may
        not fit (``1.5`` after integers, text after numbers). The whole file is
        scanned once here, widening a column (integer -> float -> text) and
        rescanning when that happens, so reading later never fails midway.
        """
        o = self._csv or CsvOptions()
        reader = self._open_csv({k: pa.type_for_alias(v) for k, v in o.column_types.items()},
                                None)
        _refuse_duplicates(self.name, reader.schema.names)
        types = {f.name: f.type for f in reader.schema}
        if not types:
            raise InputError(f"{self.name}: the file has no columns")
        if len(types) == 1:
            self._refuse_one_column(next(iter(types)))
        for _ in range(2 * len(types) + 2):
            rows = 0
            try:
                for batch in reader:
                    rows += batch.num_rows
            except pa.ArrowInvalid as exc:
                col = _csv_error_column(str(exc), list(types))
                if col is None:
                    raise self._csv_error(exc) from None
                types[col] = _widen(types[col])
                reader = self._open_csv(types, None)
                continue
            for k, t in types.items():
                if pa.types.is_null(t):  # no value at all: missing numbers, as pandas reads it
                    types[k] = pa.float64()
            self._num_rows = rows
            return types
        raise InputError(f"{self.name}: cannot settle the column types of this CSV file")

    def _refuse_one_column(self, column: str, *, row: bool = False) -> None:
        """A file read as one column whose text holds another separator was read with
        the wrong delimiter (a ';' file from a spreadsheet, read with ','). ``column``
        is the header, or with ``row`` a line of the file."""
        o = self._csv or CsvOptions()
        text = column
        if not o.header and not row:  # no header: look at the first value instead
            try:
                first = self._open_csv(None, None).read_next_batch()
            except (StopIteration, pa.ArrowInvalid, InputError):
                return
            value = first.column(0)[0].as_py() if first.num_rows else None
            text = value if isinstance(value, str) else ""
        found = [d for d in (";", "\t", "|", ",") if d != o.delimiter and d in text]
        if not found:
            return
        shown = {"\t": "tab"}.get(found[0], found[0])
        what = (f"its line {text!r}" if row else
                f"its header {text!r}" if o.header else f"its first row {text!r}")
        raise InputError(
            f"{self.name}: read as a single column with the delimiter {o.delimiter!r}, but "
            f"{what} holds {shown!r}: the file seems to be separated by {shown!r}; give the "
            f"delimiter (--delimiter {shown!r} on the command line, "
            f"csv={{'delimiter': {found[0]!r}}} in Python)")

    def _csv_batches(self, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        assert self._csv_types is not None
        reader = self._open_csv(self._csv_types, columns)
        try:
            for batch in reader:
                yield self._clean_csv_batch(batch)
        except pa.ArrowInvalid as exc:  # the file changed since it was opened
            raise self._csv_error(exc) from None


def _sample_indices(total: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct sorted row indices out of ``total``, uniformly, in O(n) memory."""
    if n * 4 >= total:
        return np.sort(rng.choice(total, size=n, replace=False))
    picked = np.unique(rng.integers(0, total, size=n + n // 8 + 16))
    while picked.size < n:
        more = rng.integers(0, total, size=n - picked.size + 16)
        picked = np.unique(np.concatenate([picked, more]))
    # every n-subset of a uniform random set is uniform: drop the surplus at random
    return np.sort(rng.choice(picked, size=n, replace=False))


def _csv_error_column(message: str, names: list[str]) -> str | None:
    m = re.search(r"CSV column #(\d+)", message)
    if m and int(m.group(1)) < len(names):
        return names[int(m.group(1))]
    return None


def _widen(t: pa.DataType) -> pa.DataType:
    if pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_null(t):
        return pa.float64()
    return pa.string()


# ---------------------------------------------------------------------------
# opening and validation


def open_dataset(source: Any, roles: ColumnRoles | None = None, *, name: str | None = None,
                 csv: CsvOptions | Mapping[str, Any] | None = None,
                 format: str | None = None, validate: bool = True) -> Dataset:
    """Open ``source`` as a :class:`Dataset` and validate it against ``roles``.

    ``source`` is a pandas or Polars DataFrame, a pyarrow Table or
    RecordBatch, a mapping of column name to array, an existing Dataset, a
    path to a Parquet or CSV file (``format="parquet"|"csv"`` overrides the
    file suffix), or a directory of Parquet files (hive partitions such as
    ``sex=Female/`` become columns). ``csv`` gives :class:`CsvOptions` for text files.
    Validation streams over the columns the roles name and raises
    :class:`~assay.errors.InputError` with the file, the column and what was
    expected.
    """
    ds = _make(source, name=name, csv=csv, format=format)
    if roles is not None:
        ds.roles = roles
        if validate:
            validate_dataset(ds, roles)
    elif validate and ds.num_rows == 0:
        raise InputError(f"{ds.name}: the data set is empty (no rows)")
    return ds


def _make(source: Any, *, name: str | None, csv: Any, format: str | None) -> Dataset:
    if isinstance(source, Dataset):
        return source
    if isinstance(source, str | os.PathLike):
        return _from_path(Path(source), name=name, csv=csv, format=format)
    if isinstance(source, pa.Table):
        return Dataset(name=name or "Arrow table", kind="arrow", table=source)
    if isinstance(source, pa.RecordBatch):
        return Dataset(name=name or "Arrow record batch", kind="arrow",
                       table=pa.Table.from_batches([source]))
    mod = type(source).__module__.split(".")[0]
    if mod == "pandas":
        import pandas as pd

        if not isinstance(source, pd.DataFrame):
            raise InputError(f"expected a DataFrame, got a pandas {type(source).__name__}")
        label = name or "pandas DataFrame"
        bad = [str(c) for c in source.columns if not isinstance(c, str)]
        if bad:
            raise InputError(f"{label}: column names must be text, got {', '.join(bad[:5])}")
        if source.columns.duplicated().any():
            dup = sorted(set(source.columns[source.columns.duplicated()]))
            raise InputError(f"{label}: duplicate column name(s) {', '.join(dup)}")
        try:
            table = pa.Table.from_pandas(source, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise InputError(f"{label}: cannot convert to a table ({exc})") from None
        return Dataset(name=label, kind="pandas", table=table)
    if mod == "polars":
        return Dataset(name=name or "Polars DataFrame", kind="polars", table=source.to_arrow())
    if isinstance(source, Mapping):
        label = name or "mapping of arrays"
        lengths = {str(k): len(v) for k, v in source.items()}
        if len(set(lengths.values())) > 1:
            desc = ", ".join(f"{k}={n}" for k, n in lengths.items())
            raise InputError(f"{label}: columns have different lengths ({desc})")
        try:
            table = pa.table({str(k): np.asarray(v) if not isinstance(v, pa.Array) else v
                              for k, v in source.items()})
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise InputError(f"{label}: cannot convert to a table ({exc})") from None
        return Dataset(name=label, kind="arrow", table=table)
    raise InputError(
        f"unsupported data source {type(source).__name__}: expected a pandas or Polars "
        "DataFrame, a pyarrow Table, or a path to a Parquet or CSV file")


def _from_path(path: Path, *, name: str | None, csv: Any, format: str | None) -> Dataset:
    label = name or str(path)
    if not path.exists():
        raise InputError(f"{label}: file not found")
    if path.is_dir():
        if (format or "parquet").lower() != "parquet":
            raise InputError(f"{label}: is a directory; only Parquet data sets can be "
                             "directories")
        return Dataset(name=label, kind="parquet-dir", path=path)
    if not os.access(path, os.R_OK):
        raise InputError(f"{label}: file is not readable (permission denied)")
    fmt = (format or "").lower() or None
    lower = path.name.lower()
    if fmt is None:
        if lower.endswith(PARQUET_SUFFIXES):
            fmt = "parquet"
        elif lower.endswith(CSV_SUFFIXES):
            fmt = "csv"
        else:
            raise InputError(
                f"{label}: unsupported file format {path.suffix or '(no suffix)'!r}; expected "
                f"Parquet ({', '.join(PARQUET_SUFFIXES)}) or CSV ({', '.join(CSV_SUFFIXES)}), "
                "or pass format='parquet' or 'csv'")
    if fmt == "parquet":
        return Dataset(name=label, kind="parquet", path=path)
    if fmt == "csv":
        return Dataset(name=label, kind="csv", path=path, csv=CsvOptions.coerce(csv))
    raise InputError(f"{label}: unsupported format {format!r}; expected 'parquet' or 'csv'")


def _is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _fmt_values(values: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    return shown + (", ..." if len(values) > limit else "")


def validate_dataset(ds: Dataset, roles: ColumnRoles) -> None:
    """Check ``ds`` against ``roles`` in one streaming pass; raise InputError on a problem."""
    names = ds.column_names
    for role, col in (("target", roles.target), ("prediction", roles.prediction),
                      ("score", roles.score), ("weight", roles.weight)):
        if col is not None and col not in names:
            raise InputError(f"{ds.name}: {role} column {col!r} not found{_close(col, names)}")
    for kind, cols in (("sensitive", roles.sensitive), ("feature", roles.features or [])):
        for col in cols:
            if col not in names:
                raise InputError(f"{ds.name}: {kind} column {col!r} not found{_close(col, names)}")
    for cls, col in (roles.class_scores or {}).items():
        if col not in names:
            raise InputError(f"{ds.name}: score column {col!r} of class {cls!r} not found"
                             f"{_close(col, names)}")
        if not _is_numeric(ds.schema.field(col).type):
            raise column_error(col, ds.name, f"numbers for the probability of class {cls!r}",
                               str(ds.schema.field(col).type))
    if ds.num_rows == 0:
        raise InputError(f"{ds.name}: the data set is empty (no rows)")
    schema = ds.schema
    for role, col in (("score", roles.score), ("weight", roles.weight)):
        if col is not None and not _is_numeric(schema.field(col).type):
            raise column_error(col, ds.name, f"numbers for the {role}", str(schema.field(col).type))
    if roles.task == "regression":
        for role, col in (("target", roles.target), ("prediction", roles.prediction)):
            if col is not None and not _is_numeric(schema.field(col).type):
                raise column_error(col, ds.name, f"numbers for a regression {role}",
                                   str(schema.field(col).type))
    cols = [c for c in (roles.target, roles.prediction, roles.score, roles.weight) if c]
    if not cols:
        return
    target_values: set[Any] = set()
    pred_values: set[Any] = set()
    # (column, expected) -> [count, first row, first bad value]
    problems: dict[tuple[str, str], list[Any]] = {}

    def note(col: str, expected: str, mask: np.ndarray, x: np.ndarray | None, start: int) -> None:
        bad = np.flatnonzero(mask)
        if bad.size:
            p = problems.setdefault((col, expected), [0, start + int(bad[0]),
                                                      None if x is None else x[bad[0]]])
            p[0] += int(bad.size)

    start = 0
    for batch in ds.batches(cols):
        n = batch.num_rows
        for role, col in (("target", roles.target), ("prediction", roles.prediction),
                          ("score", roles.score), ("weight", roles.weight)):
            if col:
                note(col, f"no missing values in the {role}", _null_mask(batch.column(col)),
                     None, start)
        if roles.target and roles.task == "classification":
            target_values.update(v for v in pc.unique(batch.column(roles.target)).to_pylist()
                                 if v is not None)
            if len(target_values) > 2:
                raise column_error(
                    roles.target, ds.name, "a binary target for classification",
                    f"{len(target_values)}+ distinct values "
                    f"({_fmt_values(sorted(target_values, key=str))})")
        if roles.prediction and roles.task == "classification":
            pred_values.update(v for v in pc.unique(batch.column(roles.prediction)).to_pylist()
                               if v is not None)
            if len(pred_values) > 2:
                raise column_error(
                    roles.prediction, ds.name, "binary predictions for classification",
                    f"{len(pred_values)}+ distinct values "
                    f"({_fmt_values(sorted(pred_values, key=str))})")
        if roles.score and roles.task == "classification":
            x = _float(batch.column(roles.score))
            note(roles.score, "scores between 0 and 1", (x < 0.0) | (x > 1.0), x, start)
        if roles.weight:
            x = _float(batch.column(roles.weight))
            note(roles.weight, "finite non-negative weights", (x < 0.0) | np.isinf(x), x, start)
        start += n
    for (col, expected), (count, first, value) in problems.items():
        what = "missing (null or NaN)" if expected.startswith("no missing") else "bad"
        shown = "" if value is None else f" ({value:g})"
        raise column_error(col, ds.name, expected,
                           f"{count} {what} value(s) out of {start}, first at row {first}{shown}")
    if roles.target and roles.task == "classification":
        values = sorted(target_values, key=str)
        pos = match_label(values, roles.positive_label)
        if pos is None and len(values) == 2:
            raise column_error(roles.target, ds.name,
                               f"the positive label {roles.positive_label!r} among its values",
                               f"values {_fmt_values(values)}")
        ds.positive_value = pos if pos is not None else roles.positive_label
    if roles.prediction and roles.task == "classification" and roles.target:
        allowed = target_values | {0, 1}
        odd = [v for v in pred_values if match_label(sorted(allowed, key=str), v) is None]
        if odd:
            raise column_error(roles.prediction, ds.name,
                               "predictions among the target values "
                               f"{_fmt_values(sorted(target_values, key=str))} or 0/1",
                               f"{_fmt_values(sorted(odd, key=str))}")


def _null_mask(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True where a value is null (or NaN, for floating-point columns)."""
    floating = pa.types.is_floating(arr.type)
    mask = pc.is_null(arr, nan_is_null=True) if floating else pc.is_null(arr)
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def _float(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric column as float64 with nulls as NaN."""
    return np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
