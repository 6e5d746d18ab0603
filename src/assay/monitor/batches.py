"""Production batches and late labels into the windows' statistics.

:func:`ingest` reads one batch (Parquet, CSV or in-memory data through
:func:`assay.data.open_dataset`), splits its rows by UTC day and merges each
day's statistics into the stored window, all in the caller's transaction: a
failure (or a kill) half-way leaves nothing of the batch behind. Rows are
kept (id, day, prediction, score, group cell) only when a row id column is
given, so late labels can be joined by :func:`add_labels`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from assay.errors import ConflictError, InputError
from assay.metrics import ClassificationStats
from assay.metrics.novelty import NoveltyScorer, fit_novelty
from assay.metrics.profile import NUMERIC, FeatureBins, FeatureStats, column_kind, profile
from assay.monitor.roles import INGESTERS
from assay.monitor.state import (
    PREDICTION,
    SCORE_BINS,
    WindowState,
    at_midnight,
    novelty_from_blob,
    reference_blob,
    reference_from_blob,
    score_bins,
)
from assay.monitor.tables import MonitorBatch, MonitorReference, MonitorRow, MonitorWindow
from assay.registry import get_version, require_role
from assay.registry.tables import ModelVersion, User
from assay.store.audit import append_event
from assay.store.db import utcnow

_EPOCH = date(1970, 1, 1)
_CHUNK = 500  # row ids per IN (...) query
#: Training rows sampled to fit (half) and calibrate (half) the novelty score.
NOVELTY_REFERENCE_ROWS = 4_000
#: About how many rows of one ingested batch the novelty score counts (a seeded sample).
NOVELTY_BATCH_ROWS = 20_000
MISSING = "<missing>"


@dataclass
class IngestResult:
    """What one batch did: rows per window, what was ignored, the batch record."""

    batch_id: int
    source: str
    rows: int
    windows: dict[str, int]
    kept_rows: int
    labeled_rows: int
    extra_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "source": self.source, "rows": self.rows,
                "windows": dict(self.windows), "kept_rows": self.kept_rows,
                "labeled_rows": self.labeled_rows, "extra_columns": list(self.extra_columns)}


@dataclass
class LabelsResult:
    """What a label batch did: rows joined, and every row that was not, by reason."""

    batch_id: int
    source: str
    rows: int
    joined: int
    unknown: int
    already_labeled: int
    duplicates: int
    windows: dict[str, int]
    unknown_examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "source": self.source, "rows": self.rows,
                "joined": self.joined, "unknown": self.unknown,
                "already_labeled": self.already_labeled, "duplicates": self.duplicates,
                "windows": dict(self.windows), "unknown_examples": self.unknown_examples}


# --------------------------------------------------------------------------- reference


def reference_of(session: Session, mv: ModelVersion) -> tuple[MonitorReference, dict]:
    """The stored reference of a version and its profile (features -> FeatureStats)."""
    ref = session.get(MonitorReference, mv.id)
    if ref is None:
        raise InputError(f"{mv.model.name}@{mv.version}: nothing was ingested yet, so there is "
                         "no reference profile (run `assay monitor ingest` first)")
    return ref, reference_from_blob(ref.state).features


def _training_dataset(mv: ModelVersion) -> Any:
    from assay.data import open_dataset

    name = f"{mv.model.name}@{mv.version}"
    source = (mv.training_data_source or "").strip()
    if not source:
        raise InputError(f"{name}: no training data is registered with the version "
                         "(training_data_source); monitoring compares production data with "
                         "it: register the version with its training data")
    path = Path(source)
    if not path.exists():
        raise InputError(f"{name}: the training data '{source}' is not reachable (file not "
                         "found); monitoring needs it as the reference for drift")
    ds = open_dataset(path, name=f"training data {source}")
    if mv.training_data_digest:
        digest = "sha256:" + ds.digest
        if digest != mv.training_data_digest:
            raise InputError(f"{name}: the training data '{source}' has digest {digest}, but the "
                             f"version registered {mv.training_data_digest}: the file changed")
    return ds


def _reference(session: Session, mv: ModelVersion, batch_columns: Sequence[str],
               roles: set[str], features: Sequence[str] | None) -> tuple[MonitorReference,
                                                                         dict]:
    ref = session.get(MonitorReference, mv.id, with_for_update=True)
    if ref is not None:
        return ref, reference_from_blob(ref.state).features
    ds = _training_dataset(mv)
    if features is None:
        features = [c for c in batch_columns if c in ds.column_names and c not in roles]
    else:
        missing = [c for c in features if c not in ds.column_names]
        if missing:
            raise InputError(f"{ds.name}: feature column(s) {', '.join(missing)} are not in the "
                             "training data")
    if not features:
        raise InputError(f"{ds.name}: no column of the batch is in the training data, so "
                         "there is nothing to monitor for drift")
    prof = profile(ds, columns=list(features))
    ref = MonitorReference(model_version_id=mv.id, data_digest=mv.training_data_digest or
                           "sha256:" + ds.digest, source=mv.training_data_source,
                           features=list(features),
                           state=reference_blob(prof, _fit_novelty(ds, prof)),
                           created_at=utcnow())
    session.add(ref)
    session.flush()
    return ref, prof.features


# --------------------------------------------------------------------------- columns


def _days(arr: pa.ChunkedArray | pa.Array, column: str, source: str) -> np.ndarray:
    """UTC day number (since 1970-01-01) of every value of a time column."""
    t = arr.type
    try:
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            try:  # with a zone offset ("...Z", "+02:00")
                arr = pc.cast(arr, pa.timestamp("us", tz="UTC"))
            except pa.ArrowInvalid:  # without one: UTC
                arr = pc.cast(arr, pa.timestamp("us"))
            t = arr.type
        if pa.types.is_date(t):
            arr = pc.cast(arr, pa.date32())
            days = np.asarray(pc.cast(arr, pa.int32()).to_numpy(zero_copy_only=False),
                              dtype=np.float64)
        elif pa.types.is_timestamp(t):
            us = pc.cast(pc.cast(arr, pa.timestamp("us", tz=t.tz)), pa.int64())
            days = np.floor(us.to_numpy(zero_copy_only=False).astype(np.float64)
                            / 86_400_000_000)
        else:
            raise InputError(f"{source}: column '{column}': expected dates or times, got "
                             f"{t}")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"{source}: column '{column}': expected ISO 8601 dates or times "
                         f"({str(exc).splitlines()[0]})") from None
    bad = np.flatnonzero(np.isnan(days))
    if bad.size:
        raise InputError(f"{source}: column '{column}': {bad.size} row(s) without a time "
                         f"(first at data row {int(bad[0]) + 1}); they belong to no window")
    return days.astype(np.int64)


def _day(n: int) -> date:
    return _EPOCH + timedelta(days=int(n))


def _scores(arr: Any, column: str, source: str) -> np.ndarray:
    if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
        raise InputError(f"{source}: column '{column}': expected probabilities (numbers in "
                         f"[0, 1]), got {arr.type}")
    s = np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    bad = ~np.isfinite(s) | (s < 0) | (s > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{source}: column '{column}': expected probabilities in [0, 1], got "
                         f"{s[i]!r} at data row {i + 1} ({int(bad.sum())} such row(s))")
    return s


def _binary(arr: Any, column: str, source: str, positive_label: Any) -> np.ndarray:
    from assay.metrics._cells import binarize

    try:
        return binarize(arr, column, positive_label).astype(np.int64)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None


def _text(arr: Any) -> np.ndarray:
    values = arr.to_pylist()
    return np.array([MISSING if v is None else str(v) for v in values], dtype=object)


def _require(ds: Any, column: str | None, option: str) -> None:
    if column is not None and column not in ds.column_names:
        raise InputError(f"{ds.name}: {option} column '{column}' is not in the data (columns: "
                         f"{', '.join(ds.column_names)})")


# --------------------------------------------------------------------------- ingest


def ingest(session: Session, actor: User, model: str, version: str, data: Any, *,
           time_column: str | None = None, window_start: date | datetime | str | None = None,
           id_column: str | None = None, prediction: str | None = None,
           score: str | None = None, target: str | None = None,
           sensitive: Iterable[str] = (), positive_label: Any = 1, threshold: float = 0.5,
           features: Sequence[str] | None = None, now: datetime | None = None,
           name: str | None = None) -> IngestResult:
    """Merge one batch of production rows into the version's daily windows.

    Every row belongs to the UTC day of its ``time_column`` value, or, without
    a time column, to the day ``window_start``. The first batch fixes the
    monitored features (the batch's columns that the training data has, other
    than the role columns) and builds the reference profile from the training
    data registered with the version. Raises :class:`InputError` naming the file
    and column for missing columns, wrong types, rows outside any window and
    duplicate row ids; nothing is stored then.
    """
    from assay.data import open_dataset

    require_role(actor, *INGESTERS, action="send production data to monitoring")
    mv = get_version(session, model, version)
    now = now or utcnow()
    ds = open_dataset(data, name=name)
    src = ds.name
    sensitive = [s.strip() for s in sensitive if s and s.strip()]
    if prediction is None and score is None:
        raise InputError(f"{src}: give the model's output: a prediction column, a score "
                         "column or both")
    if time_column is None and window_start is None:
        raise InputError(f"{src}: give a time column or the window start of the batch")
    for col, option in ((time_column, "time"), (id_column, "row id"),
                        (prediction, "prediction"), (score, "score"), (target, "target")):
        _require(ds, col, option)
    for col in sensitive:
        _require(ds, col, "sensitive")
    start_day: date | None = None
    if window_start is not None:
        start_day = _parse_day(window_start)
    roles = {c for c in (time_column, id_column, prediction, score, target) if c}
    _ref, bins_stats = _reference(session, mv, ds.column_names, roles, features)
    bins: dict[str, FeatureBins] = {k: v.bins for k, v in bins_stats.items()}
    missing = [c for c in bins if c not in ds.column_names]
    if missing:
        raise InputError(f"{src}: monitored feature column(s) {', '.join(missing)} are missing "
                         "(the first batch fixed the features from the training data)")
    for c, b in bins.items():
        kind = column_kind(ds.schema.field(c).type)
        if kind != b.kind:
            raise InputError(f"{src}: column '{c}': expected {b.kind} values as in the training "
                             f"data, got {ds.schema.field(c).type}")
    extra = [c for c in ds.column_names if c not in bins and c not in roles
             and c not in sensitive]
    digest = "sha256:" + ds.digest
    dup = session.scalars(select(MonitorBatch.id).where(
        MonitorBatch.model_version_id == mv.id, MonitorBatch.kind == "outputs",
        MonitorBatch.digest == digest)).first()
    if dup is not None:
        raise ConflictError(f"{src}: this batch (digest {digest}) was already ingested as batch "
                            f"#{dup}; nothing was stored twice")
    ranges = {c: (s.min, s.max) for c, s in bins_stats.items()
              if s.kind == NUMERIC and s.count}
    scorer = novelty_from_blob(_ref.state)
    # the novelty score costs O(rows x reference rows): a batch larger than
    # NOVELTY_BATCH_ROWS is scored on a seeded uniform sample of about that many rows
    total = int(getattr(ds, "num_rows", None) or 0)
    rate = 1.0 if total <= NOVELTY_BATCH_ROWS else NOVELTY_BATCH_ROWS / total
    columns = list(dict.fromkeys([*bins, *roles, *sensitive]))
    states: dict[int, WindowState] = {}
    kept = _KeptRows(mv.id, sensitive) if id_column else None
    n_rows = 0
    labeled = 0
    today = now.astimezone(UTC).date()
    # One pass over the batch, record batch by record batch (streamed from files): each
    # batch's statistics are merged into its days' states, and only the rows kept for
    # late labels (row id, day, outputs, group cell) stay in memory, as compact arrays.
    plan = _IngestPlan(src=src, time_column=time_column, start_day=start_day, today=today,
                       prediction=prediction, score=score, target=target, sensitive=sensitive,
                       id_column=id_column, positive_label=positive_label, threshold=threshold,
                       bins=bins, ranges=ranges, extra=extra, scorer=scorer,
                       novelty_rate=rate)
    fold = getattr(ds, "fold_batches", None)
    if fold is not None:  # an engine that reads the rows where they live (Spark)
        total = fold(lambda batch, first: _ingest_part(batch, first, plan), columns=columns,
                     with_row=True, empty=_IngestPart)
        parts: Iterable[_IngestPart] = [total]
    else:
        parts = _local_parts(ds, columns, plan)
    for part in parts:
        for d, st_part in part.states.items():
            st = states.get(d)
            states[d] = st_part if st is None else st.merge(st_part)
        if kept is not None:
            for args in part.kept:
                kept.add(*args)
        n_rows += part.rows
        labeled += part.labeled
    if n_rows == 0:
        raise InputError(f"{src}: the batch has no rows")
    if kept is not None:
        kept.check_unique(id_column or "", src)
        _check_stored_ids(session, mv.id, kept.ids(_CHUNK), id_column or "", src)
    batch_row = MonitorBatch(model_version_id=mv.id, kind="outputs", digest=digest, source=src,
                             rows=n_rows, accepted=n_rows, summary={}, created_by=actor.id,
                             created_at=utcnow())
    session.add(batch_row)
    session.flush()
    windows = _merge_windows(session, mv.id, states, bins)
    kept_rows = 0
    if kept is not None:
        for chunk in kept.rows(batch_row.id, 5000):
            session.execute(insert(MonitorRow.__table__), chunk)  # Core: no ORM bookkeeping
            kept_rows += len(chunk)
    result = IngestResult(batch_id=batch_row.id, source=src, rows=n_rows, windows=windows,
                          kept_rows=kept_rows, labeled_rows=labeled, extra_columns=extra)
    batch_row.summary = {"windows": windows, "extra_columns": extra, "kept_rows": kept_rows,
                         "labeled_rows": labeled, "columns": {
                             "time": time_column, "id": id_column, "prediction": prediction,
                             "score": score, "target": target, "sensitive": sensitive}}
    append_event(session, actor=actor, action="monitor.ingest", subject_type="model_version",
                 subject_id=f"{model}@{version}",
                 payload={"batch_id": batch_row.id, "rows": n_rows, "windows": windows,
                          "kept_rows": kept_rows, "labeled_rows": labeled,
                          "extra_columns": extra, "source": src},
                 evidence={"batch": digest})
    return result


@dataclass
class _IngestPlan:
    """What :func:`ingest` reads from every batch, fixed before the first one."""

    src: str
    time_column: str | None
    start_day: date | None
    today: date
    prediction: str | None
    score: str | None
    target: str | None
    sensitive: list[str]
    id_column: str | None
    positive_label: Any
    threshold: float
    bins: dict[str, FeatureBins]
    ranges: dict[str, tuple[float, float]]
    extra: list[str]
    scorer: NoveltyScorer | None = None  # quality.out_of_distribution's novelty score
    novelty_rate: float = 1.0  # the share of rows it scores (a seeded sample)


@dataclass
class _IngestPart:
    """The windows' states of some consecutive rows, the rows kept for late labels, the
    counts; mergeable in row order (where the rows are read: here, or a Spark partition)."""

    states: dict[int, WindowState] = field(default_factory=dict)
    kept: list[tuple[Any, ...]] = field(default_factory=list)
    rows: int = 0
    labeled: int = 0

    def merge(self, other: _IngestPart) -> _IngestPart:
        states = dict(self.states)
        for d, part in other.states.items():
            st = states.get(d)
            states[d] = part if st is None else st.merge(part)
        return _IngestPart(states, [*self.kept, *other.kept], self.rows + other.rows,
                           self.labeled + other.labeled)


def _local_parts(ds: Any, columns: Sequence[str], plan: _IngestPlan) -> Iterator[_IngestPart]:
    n_rows = 0
    for batch in ds.batches(columns):
        if batch.num_rows == 0:
            continue
        part = _ingest_part(batch, n_rows, plan)
        n_rows += part.rows
        yield part


def _ingest_part(batch: pa.RecordBatch, n_rows: int, plan: _IngestPlan) -> _IngestPart:
    """One batch's part; ``n_rows`` is the index of its first row in the data (for messages)."""
    result = _IngestPart()
    src, time_column, start_day, today = plan.src, plan.time_column, plan.start_day, plan.today
    score, prediction, target, sensitive = plan.score, plan.prediction, plan.target, \
        plan.sensitive
    positive_label, threshold, id_column = plan.positive_label, plan.threshold, plan.id_column
    bins, ranges, extra = plan.bins, plan.ranges, plan.extra
    scorer, rate = plan.scorer, plan.novelty_rate
    kept = id_column is not None
    n = batch.num_rows
    if n == 0:
        return result
    # the novelty sample: row i of the data is scored when the i-th draw of one seeded
    # stream is below the rate, so the rows scored do not depend on how the data is cut
    # into batches, parts or Spark partitions
    draws = None if scorer is None or rate >= 1.0 else novelty_draws(n_rows, n)
    if time_column is not None:
        days = _days(batch.column(time_column), time_column, src)
        late = days > (today - _EPOCH).days
        if late.any():
            i = int(np.flatnonzero(late)[0])
            raise InputError(f"{src}: column '{time_column}': {int(late.sum())} row(s) lie "
                             f"after today ({_day(days[i]).isoformat()} at data row "
                             f"{n_rows + i + 1}); they belong to no window yet")
        if start_day is not None:
            early = days < (start_day - _EPOCH).days
            if early.any():
                i = int(np.flatnonzero(early)[0])
                raise InputError(
                    f"{src}: column '{time_column}': {int(early.sum())} row(s) lie before "
                    f"the window start {start_day.isoformat()} (first: "
                    f"{_day(days[i]).isoformat()} at data row {n_rows + i + 1})")
    else:
        assert start_day is not None
        days = np.full(n, (start_day - _EPOCH).days, dtype=np.int64)
    s = _scores(batch.column(score), score, src) if score else None
    if prediction:
        pred = _binary(batch.column(prediction), prediction, src, positive_label)
    else:
        assert s is not None
        pred = (s >= threshold).astype(np.int64)
    y = _binary(batch.column(target), target, src, positive_label) if target else None
    sens = {c: _text(batch.column(c)) for c in sensitive}
    ids = None
    if id_column:
        ids = _ids(batch.column(id_column), id_column, src)
    first_day, last_day = int(days.min()), int(days.max())
    one_day = first_day == last_day
    for d in [first_day] if one_day else np.unique(days).tolist():
        if one_day:  # the whole batch is one day: nothing to split
            idx = None
            sub = batch
        else:
            idx = np.flatnonzero(days == d)
            sub = batch.take(pa.array(idx))
        k = n if idx is None else int(idx.size)

        def pick(a: np.ndarray, idx: np.ndarray | None = idx) -> np.ndarray:
            return a if idx is None else a[idx]

        part = WindowState.empty(bins)
        part.profile.update_batch(sub.select(list(bins)))
        part.rows = k
        sd = None if s is None else pick(s)
        pd_ = pick(pred)
        sub_sens = {c: pick(v) for c, v in sens.items()}
        part.outputs = ClassificationStats.from_arrays(
            pd_, pd_, score=sd, sensitive=sub_sens, n_bins=SCORE_BINS)
        if y is not None:
            part.labeled = ClassificationStats.from_arrays(
                pick(y), pd_, score=sd, sensitive=sub_sens, n_bins=SCORE_BINS)
        if sd is not None:
            part.scores = FeatureStats(bins=score_bins())
            part.scores.update(pa.array(sd))
        else:
            part.scores = FeatureStats(bins=_prediction_bins())
            part.scores.update(pa.array(pd_.astype(str)))
        for c, (lo, hi) in ranges.items():
            x = np.asarray(pc.cast(sub.column(c), pa.float64()).to_numpy(
                zero_copy_only=False), dtype=np.float64)
            out = int(((x < lo) | (x > hi)).sum())
            if out:
                part.out_of_range[c] = out
        part.extra = {c: k for c in extra}
        if scorer is not None:
            keep = None if draws is None else pick(draws) < rate
            part.novel, part.novelty_rows = _count_novel(scorer, sub, keep)
        result.states[d] = part
        if kept and ids is not None:
            result.kept.append((ids if idx is None else ids.take(pa.array(idx)), d, pd_, sd,
                             None if y is None else pick(y), sub_sens))
    result.rows = n
    result.labeled = 0 if y is None else n
    return result


def _prediction_bins() -> FeatureBins:
    from assay.metrics.profile import CATEGORICAL

    return FeatureBins(PREDICTION, CATEGORICAL)


def _parse_day(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"window start: expected a date YYYY-MM-DD, got {value!r}") from None


def _ids(arr: Any, column: str, source: str) -> pa.Array:
    """The row ids of a batch as an Arrow text array (ids of other types as ``str(value)``)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.string())
    if not pa.types.is_string(arr.type):
        arr = pa.array([None if v is None else str(v) for v in arr.to_pylist()], pa.string())
    if arr.null_count or (len(arr) and pc.any(pc.equal(pc.utf8_length(arr), 0)).as_py()):
        raise InputError(f"{source}: column '{column}': expected a row id on every row, "
                         "got empty values")
    return arr


class _KeptRows:
    """The rows of a batch kept for late labels, as compact arrays until they are written:
    Arrow text ids, one byte per prediction and label, the scores, and each group cell as
    codes into its values (never one Python object per row)."""

    def __init__(self, version_id: int, sensitive: Sequence[str]) -> None:
        self.version_id = version_id
        self.names = list(sensitive)
        self._parts: list[tuple[pa.Array, int, np.ndarray, np.ndarray | None,
                                np.ndarray | None, list[tuple[np.ndarray, np.ndarray]]]] = []

    def add(self, ids: pa.Array, day: int, pred: np.ndarray, score: np.ndarray | None,
            label: np.ndarray | None, sens: dict[str, np.ndarray]) -> None:
        cells = []
        for c in self.names:
            values, codes = np.unique(sens[c], return_inverse=True)
            cells.append((values, codes.astype(np.int32)))
        self._parts.append((ids, day, pred.astype(np.int8),
                            None if score is None else score.copy(),
                            None if label is None else label.astype(np.int8), cells))

    def _all_ids(self) -> pa.ChunkedArray:
        return pa.chunked_array([p[0] for p in self._parts], type=pa.string())

    def check_unique(self, column: str, source: str) -> None:
        counts = pc.value_counts(self._all_ids())
        dup = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
        if len(dup):
            shown = sorted(dup.slice(0, 1000).to_pylist())[:3]
            raise InputError(f"{source}: column '{column}': {len(dup)} duplicate row id(s) in "
                             f"the batch (e.g. {', '.join(map(repr, shown))}); nothing was "
                             "stored")

    def ids(self, chunk: int) -> Iterable[list[str]]:
        for ids, *_ in self._parts:
            for i in range(0, len(ids), chunk):
                yield ids.slice(i, chunk).to_pylist()

    def rows(self, batch_id: int, chunk: int) -> Iterable[list[dict[str, Any]]]:
        """The rows to insert, ``chunk`` at a time."""
        for ids, day, pred, score, label, cells in self._parts:
            at = at_midnight(_day(day))
            for i in range(0, len(ids), chunk):
                j = min(len(ids), i + chunk)
                k = j - i
                scs = [None] * k if score is None else score[i:j].tolist()
                labs = [None] * k if label is None else label[i:j].tolist()
                if cells:
                    cols = [values[codes[i:j]].tolist() for values, codes in cells]
                    cell_list = [dict(zip(self.names, vals, strict=True))
                                 for vals in zip(*cols, strict=True)]
                else:
                    cell_list = [{} for _ in range(k)]
                yield [{"model_version_id": self.version_id, "row_id": rid, "day": at,
                        "prediction": pr, "score": sc, "cell": cell, "label": lab,
                        "batch_id": batch_id}
                       for rid, pr, sc, cell, lab in zip(
                           ids.slice(i, k).to_pylist(), pred[i:j].tolist(), scs, cell_list,
                           labs, strict=True)]


def _check_stored_ids(session: Session, version_id: int, ids: Iterable[list[str]],
                      column: str, source: str) -> None:
    if session.scalars(select(MonitorRow.row_id).where(
            MonitorRow.model_version_id == version_id).limit(1)).first() is None:
        return  # nothing kept yet for this version: no id can be taken
    found: list[str] = []
    for chunk in ids:
        found += session.scalars(select(MonitorRow.row_id).where(
            MonitorRow.model_version_id == version_id,
            MonitorRow.row_id.in_(chunk))).all()
    if found:
        raise InputError(f"{source}: column '{column}': {len(found)} row id(s) were already "
                         f"ingested (e.g. {', '.join(map(repr, sorted(found)[:3]))}); "
                         "nothing was stored")


def _merge_windows(session: Session, version_id: int, states: dict[int, WindowState],
                   bins: dict[str, FeatureBins]) -> dict[str, int]:
    """Merge day states into the stored windows (locked for the update)."""
    starts = [at_midnight(_day(d)) for d in sorted(states)]
    stored = {_key(w.start): w for w in session.scalars(
        select(MonitorWindow).where(MonitorWindow.model_version_id == version_id,
                                    MonitorWindow.start.in_(starts)).with_for_update())}
    out: dict[str, int] = {}
    for d in sorted(states):
        st = states[d]
        start = at_midnight(_day(d))
        w = stored.get(_key(start))
        if w is None:
            merged = st
            w = MonitorWindow(model_version_id=version_id, start=start,
                              end=start + timedelta(days=1), rows=0, labeled=0, state=b"",
                              updated_at=utcnow())
            session.add(w)
        else:
            merged = WindowState.from_blob(w.state, bins).merge(st)
        w.state = merged.to_blob()
        w.rows = merged.rows
        w.labeled = merged.labeled_rows
        w.updated_at = utcnow()
        out[_day(d).isoformat()] = st.rows
    session.flush()
    return out


def _key(dt: datetime) -> str:
    d = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return d.astimezone(UTC).date().isoformat()


# --------------------------------------------------------------------------- labels


def add_labels(session: Session, actor: User, model: str, version: str, data: Any, *,
               id_column: str, target: str, positive_label: Any = 1,
               name: str | None = None) -> LabelsResult:
    """Join late labels by row id into the windows' labelled statistics.

    Ids never ingested (or already purged by the retention) are counted as
    unknown, rows already labelled and repeated ids in the batch are counted
    and skipped: a label is never counted twice.
    """
    from assay.data import open_dataset

    require_role(actor, *INGESTERS, action="send labels to monitoring")
    mv = get_version(session, model, version)
    ds = open_dataset(data, name=name)
    src = ds.name
    _require(ds, id_column, "row id")
    _require(ds, target, "target")
    digest = "sha256:" + ds.digest
    dup = session.scalars(select(MonitorBatch.id).where(
        MonitorBatch.model_version_id == mv.id, MonitorBatch.kind == "labels",
        MonitorBatch.digest == digest)).first()
    if dup is not None:
        raise ConflictError(f"{src}: this label batch (digest {digest}) was already joined as "
                            f"batch #{dup}; nothing was counted twice")
    table = ds.to_arrow([id_column, target])
    ids = [None if v is None else str(v) for v in table.column(id_column).to_pylist()]
    if any(v is None or v == "" for v in ids):
        raise InputError(f"{src}: column '{id_column}': expected a row id on every row, got "
                         "empty values")
    y = _binary(table.column(target), target, src, positive_label)
    first: dict[str, int] = {}
    for i, rid in enumerate(ids):
        first.setdefault(rid, i)
    duplicates = len(ids) - len(first)
    listed = sorted(first)
    found: list[MonitorRow] = []
    for i in range(0, len(listed), _CHUNK):
        found += session.scalars(select(MonitorRow).where(
            MonitorRow.model_version_id == mv.id,
            MonitorRow.row_id.in_(listed[i:i + _CHUNK])).with_for_update()).all()
    known = {r.row_id for r in found}
    unknown = [rid for rid in listed if rid not in known]
    fresh = [r for r in found if r.label is None]
    already = len(found) - len(fresh)
    by_day: dict[str, list[MonitorRow]] = {}
    for r in fresh:
        by_day.setdefault(_key(r.day), []).append(r)
    _ref, bins_stats = reference_of(session, mv)
    bins = {k: v.bins for k, v in bins_stats.items()}
    windows: dict[str, int] = {}
    batch_row = MonitorBatch(model_version_id=mv.id, kind="labels", digest=digest, source=src,
                             rows=len(ids), accepted=len(fresh), summary={},
                             created_by=actor.id, created_at=utcnow())
    session.add(batch_row)
    session.flush()
    for day_key, rows in sorted(by_day.items()):
        start = at_midnight(date.fromisoformat(day_key))
        w = session.scalars(select(MonitorWindow).where(
            MonitorWindow.model_version_id == mv.id, MonitorWindow.start == start)
            .with_for_update()).one()
        state = WindowState.from_blob(w.state, bins)
        names = list(state.outputs.names) if state.outputs is not None else []
        labels = np.array([y[first[r.row_id]] for r in rows], dtype=np.int64)
        preds = np.array([r.prediction for r in rows], dtype=np.int64)
        scores = None
        if all(r.score is not None for r in rows):
            scores = np.array([r.score for r in rows], dtype=np.float64)
        sens = {c: np.array([(r.cell or {}).get(c, MISSING) for r in rows], dtype=object)
                for c in names}
        part = ClassificationStats.from_arrays(labels, preds, score=scores, sensitive=sens,
                                               n_bins=SCORE_BINS)
        state.labeled = part if state.labeled is None else state.labeled.merge(part)
        w.state = state.to_blob()
        w.labeled = state.labeled_rows
        w.updated_at = utcnow()
        windows[day_key] = len(rows)
        session.execute(update(MonitorRow), [
            {"model_version_id": mv.id, "row_id": r.row_id, "label": int(lab)}
            for r, lab in zip(rows, labels, strict=True)])
    result = LabelsResult(batch_id=batch_row.id, source=src, rows=len(ids), joined=len(fresh),
                          unknown=len(unknown), already_labeled=already, duplicates=duplicates,
                          windows=windows, unknown_examples=unknown[:5])
    batch_row.summary = result.to_dict()
    append_event(session, actor=actor, action="monitor.labels", subject_type="model_version",
                 subject_id=f"{model}@{version}", payload=result.to_dict(),
                 evidence={"batch": digest})
    return result


def _fit_novelty(ds: Any, prof: Any) -> NoveltyScorer | None:
    """The novelty score of ``quality.out_of_distribution``, fitted on a seeded sample of
    the training data; None when the training data is too small to calibrate it."""
    numeric = [c for c, st in prof.features.items() if st.kind == NUMERIC]
    categorical = [c for c, st in prof.features.items() if st.kind != NUMERIC]
    sample = ds.sample(NOVELTY_REFERENCE_ROWS, seed=0, columns=[*numeric, *categorical])
    try:
        return fit_novelty(sample, numeric=numeric, categorical=categorical, seed=0)
    except InputError:
        return None


def novelty_draws(first: int, n: int, seed: int = 0) -> np.ndarray:
    """Draws ``first`` to ``first + n - 1`` of the seeded uniform stream (``PCG64`` jumped
    ahead, so any stretch of it costs the same as the first)."""
    bits = np.random.PCG64(seed)
    bits.advance(first)
    return np.random.Generator(bits).random(n)


def _count_novel(scorer: NoveltyScorer, batch: pa.RecordBatch | pa.Table,
                 keep: np.ndarray | None) -> tuple[int, int]:
    """(novel rows, scored rows) of ``batch``, scoring the rows where ``keep`` is True."""
    if keep is not None:
        if not keep.any():
            return 0, 0
        batch = batch.filter(pa.array(keep))
    novel = scorer.novel(batch.select(scorer.columns).to_pandas())
    return int(novel.sum()), int(novel.size)
