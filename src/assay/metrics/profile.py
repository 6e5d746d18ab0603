"""Feature profiles: mergeable per-feature statistics on bins fixed by the reference.

A profile is computed in one vectorised pass per Arrow batch
(``np.searchsorted`` + ``np.bincount``; no Python loop over rows), and two
profiles built on the same bins merge exactly (``merge`` is associative and
commutative), so a file can be profiled batch by batch, in parallel, or on a
cluster, with the same result.

Per feature:

* numeric: count of finite values, nulls (null, NaN and infinite values),
  mean and M2 (sum of squared deviations) merged with Chan's parallel
  update, min, max; counts on *coarse* quantile bins (PSI, Jensen-Shannon,
  chi-squared; 10 by default) and on *fine* quantile bins (binned KS,
  Wasserstein; 100 by default) with the sum and the sum of squares of the
  values per fine bin.
  When the reference has no more distinct values than bins, every distinct
  value gets its own bin and the binned measures are exact.
* categorical (text, boolean, dictionary columns): count per category.
  At comparison time the reference's most frequent categories are kept and
  every other category (including categories never seen in the reference)
  falls in an ``"__other__"`` bucket.

Bins are fitted on the reference data (on a uniform sample of at most
``sample_rows`` rows for large files; a second, streaming pass counts).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay.errors import InputError

NUMERIC = "numeric"
CATEGORICAL = "categorical"
OTHER = "__other__"
MAX_TRACKED_CATEGORIES = 10_000
LUT_MAX = 1 << 21  # largest integer range binned through a lookup table
GRID_CELLS = 4096  # cells of the uniform grid that speeds up binning of real numbers


def column_kind(t: pa.DataType) -> str:
    """``"numeric"`` for integer, floating and decimal columns, else ``"categorical"``.

    A column of Arrow's null type (no value at all) is numeric with no values, like an
    all-empty CSV column: its kind cannot depend on how the file stored nothing.
    """
    if pa.types.is_dictionary(t):
        return CATEGORICAL
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or \
            pa.types.is_null(t):
        return NUMERIC
    return CATEGORICAL


@dataclass
class FeatureBins:
    """How one feature is binned; fixed by the reference data."""

    name: str
    kind: str
    edges: np.ndarray = field(default_factory=lambda: np.empty(0))  # coarse cut points
    fine_edges: np.ndarray = field(default_factory=lambda: np.empty(0))

    @cached_property
    def fine_to_coarse(self) -> np.ndarray | None:
        """Coarse bin of each fine bin, when every coarse cut point is a fine one."""
        if self.kind != NUMERIC or not np.isin(self.edges, self.fine_edges).all():
            return None
        lower = np.concatenate([[-np.inf], self.fine_edges])  # each fine bin's lower bound
        return np.searchsorted(self.edges, lower, side="right")

    @cached_property
    def _int_lut(self) -> tuple[int, np.ndarray] | None:
        """Fine bin of every integer between the outer fine cut points, if that range is small."""
        e = self.fine_edges
        if self.kind != NUMERIC or e.size == 0:
            return None
        # below base every value is in bin 0, from top on in the last bin
        base, top = int(np.floor(e[0])) - 1, int(np.ceil(e[-1]))
        if top - base > LUT_MAX:
            return None
        ks = np.arange(base, top + 1, dtype=np.float64)
        return base, np.searchsorted(e, ks, side="right").astype(np.int32)

    @cached_property
    def _grid(self) -> tuple[float, float, np.ndarray] | None:
        """A uniform grid over the fine cut points: the bin of each grid cell, or -1.

        Slot 0 holds values below the first cut point, slots 1..G the G
        cells, slot G+1 the band just above the last cut point (always
        resolved exactly) and slot G+2 everything beyond. A cell is -1
        when a cut point lies in it or within a margin far wider than the
        rounding error of locating a value in the grid.
        """
        e = self.fine_edges
        if self.kind != NUMERIC or e.size < 8:
            return None
        lo, hi = float(e[0]), float(e[-1])
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
            return None
        g = GRID_CELLS
        width = (hi - lo) / g
        left = lo + np.arange(g) * width
        pad = width * 1e-6 + 8 * np.finfo(np.float64).eps * max(abs(lo), abs(hi))
        first = np.searchsorted(e, left - pad, side="right")
        last = np.searchsorted(e, left + width + pad, side="right")
        cells = np.where(first == last, first, -1)
        table = np.concatenate([[0], cells, [-1, e.size]]).astype(np.int32)
        return lo, g / (hi - lo), table

    def fine_index(self, x: np.ndarray) -> np.ndarray:
        """Fine bin of each value of ``x`` (finite float64): ``searchsorted(fine_edges, x,
        side="right")``, computed faster.

        Integer-valued data (counts, amounts, ages, codes) use a lookup table
        over the integers between the outer cut points. Other data use a
        uniform grid over the cut points: most values fall in a cell without a
        cut point and get its bin from a table; only values in the few cells
        holding a cut point are searched.
        """
        e = self.fine_edges
        lut = self._int_lut
        head = x[:64]
        if lut is not None and x.size and np.array_equal(head, np.trunc(head)):
            lo, hi = float(x.min()), float(x.max())
            if lo > -2**62 and hi < 2**62:
                xi = x.astype(np.int64)
                if np.array_equal(xi, x):
                    base, table = lut
                    np.clip(xi, base, base + table.size - 1, out=xi)
                    xi -= base
                    return table[xi]
        grid = self._grid
        if grid is None or x.size < 1024:
            return np.searchsorted(e, x, side="right")
        lo, scale, table = grid
        with np.errstate(over="ignore"):  # far outside the grid: clipped just below
            c = x - lo
            c *= scale
        np.clip(c, -1.0, GRID_CELLS + 1.0, out=c)
        slot = np.floor(c).astype(np.int64)
        slot += 1
        idx = table[slot].astype(np.int64)
        amb = np.flatnonzero(idx < 0)
        if amb.size:
            idx[amb] = np.searchsorted(e, x[amb], side="right")
        return idx

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "edges": self.edges.tolist(),
                "fine_edges": self.fine_edges.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureBins:
        return cls(d["name"], d["kind"], np.asarray(d["edges"], dtype=np.float64),
                   np.asarray(d["fine_edges"], dtype=np.float64))


def _cut_points(sorted_x: np.ndarray, distinct: np.ndarray, n_bins: int) -> np.ndarray:
    """Interior cut points: each distinct value if few, else unique quantiles.

    With few distinct values, bins are ``(-inf, v1)``, ``[v1, v2)``, ...,
    ``[vk, vk+)`` and ``(vk, inf)``: each reference value alone in its bin.

    A value ``v`` falls in bin ``searchsorted(edges, v, side="right")``:
    bin 0 holds values below the first cut point, bin ``i`` values in
    ``[edges[i-1], edges[i])``. Quantiles are data values (inverted CDF), so
    the coarse cut points are a subset of the fine ones when the number of
    fine bins is a multiple of the number of coarse bins.
    """
    if sorted_x.size == 0:
        return np.empty(0)
    if distinct.size <= n_bins:
        # one bin per value, plus one below the minimum and one above the maximum, so
        # that values the reference never had are seen (even for a constant reference)
        d = distinct.astype(np.float64)
        return np.concatenate([d, [np.nextafter(d[-1], np.inf)]])
    n = sorted_x.size
    probs = np.arange(1, n_bins) / n_bins
    idx = np.clip(np.ceil(n * probs).astype(np.int64) - 1, 0, n - 1)
    cuts = np.unique(sorted_x[idx])
    # a cut point equal to the minimum would leave bin 0 empty; drop it
    return cuts[cuts > distinct[0]].astype(np.float64)


def _as_float(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_decimal(arr.type) or pa.types.is_integer(arr.type) or \
            pa.types.is_null(arr.type):
        arr = pc.cast(arr, pa.float64())
    out = arr.to_numpy(zero_copy_only=False)
    return np.asarray(out, dtype=np.float64)


def _as_text_counts(arr: pa.Array | pa.ChunkedArray) -> tuple[dict[str, int], int]:
    """Counts per category (as text) and the number of nulls, from Arrow's value_counts."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    nulls = arr.null_count
    vc = pc.value_counts(arr)
    values = vc.field("values").to_pylist()
    counts = vc.field("counts").to_numpy()
    out: dict[str, int] = {}
    for v, c in zip(values, counts, strict=True):
        if v is None:
            continue
        out[str(v)] = out.get(str(v), 0) + int(c)
    return out, nulls


@dataclass
class FeatureStats:
    """Mergeable statistics of one feature on fixed bins."""

    bins: FeatureBins
    count: int = 0
    nulls: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")
    coarse: np.ndarray | None = None
    fine: np.ndarray | None = None
    fine_sum: np.ndarray | None = None
    fine_sq: np.ndarray | None = None
    categories: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.bins.kind == NUMERIC:
            if self.coarse is None:
                self.coarse = np.zeros(self.bins.edges.size + 1, dtype=np.int64)
            if self.fine is None:
                self.fine = np.zeros(self.bins.fine_edges.size + 1, dtype=np.int64)
            if self.fine_sum is None:
                self.fine_sum = np.zeros(self.bins.fine_edges.size + 1, dtype=np.float64)
            if self.fine_sq is None:
                self.fine_sq = np.zeros(self.bins.fine_edges.size + 1, dtype=np.float64)

    @property
    def name(self) -> str:
        return self.bins.name

    @property
    def kind(self) -> str:
        return self.bins.kind

    @property
    def rows(self) -> int:
        return self.count + self.nulls

    @property
    def variance(self) -> float:
        """Population variance (ddof=0) of the finite values."""
        return self.m2 / self.count if self.count else float("nan")

    @property
    def std(self) -> float:
        return float(np.sqrt(self.variance)) if self.count else float("nan")

    @property
    def null_share(self) -> float:
        return self.nulls / self.rows if self.rows else float("nan")

    # -- updating ----------------------------------------------------------
    def update(self, arr: pa.Array | pa.ChunkedArray) -> None:
        """Add one batch of values."""
        if self.kind == NUMERIC:
            x = _as_float(arr)
            ok = np.isfinite(x)
            xv = x[ok] if not ok.all() else x
            self._merge_numeric(_numeric_part(self.bins, xv, int(x.size - xv.size)))
        else:
            counts, nulls = _as_text_counts(arr)
            self.nulls += nulls
            self.count += sum(counts.values())
            for k, c in counts.items():
                self.categories[k] = self.categories.get(k, 0) + c
            self._cap_categories()

    def _cap_categories(self) -> None:
        if len(self.categories) > MAX_TRACKED_CATEGORIES:
            keep = sorted(self.categories.items(), key=lambda kv: (-kv[1], kv[0]))
            other = self.categories.get(OTHER, 0)
            kept = dict(kv for kv in keep[:MAX_TRACKED_CATEGORIES] if kv[0] != OTHER)
            other += sum(c for k, c in keep[MAX_TRACKED_CATEGORIES:] if k != OTHER)
            kept[OTHER] = other
            self.categories = kept

    def _merge_numeric(self, o: FeatureStats) -> None:
        n = self.count + o.count
        if o.count:
            if self.count == 0:
                self.mean, self.m2 = o.mean, o.m2
            else:
                delta = o.mean - self.mean
                self.mean = self.mean + delta * o.count / n
                self.m2 = self.m2 + o.m2 + delta * delta * self.count * o.count / n
            self.min = min(self.min, o.min)
            self.max = max(self.max, o.max)
        self.count = n
        self.nulls += o.nulls
        assert self.coarse is not None and o.coarse is not None
        assert self.fine is not None and o.fine is not None
        assert self.fine_sum is not None and o.fine_sum is not None
        self.coarse = self.coarse + o.coarse
        self.fine = self.fine + o.fine
        self.fine_sum = self.fine_sum + o.fine_sum
        assert self.fine_sq is not None and o.fine_sq is not None
        self.fine_sq = self.fine_sq + o.fine_sq

    def merge(self, other: FeatureStats) -> FeatureStats:
        """A new statistic for both parts together (associative, commutative)."""
        if other.bins.kind != self.bins.kind or other.name != self.name:
            raise InputError(f"cannot merge profiles of {self.name!r} ({self.kind}) and "
                             f"{other.name!r} ({other.kind})")
        out = self.copy()
        if self.kind == NUMERIC:
            if not (np.array_equal(self.bins.edges, other.bins.edges)
                    and np.array_equal(self.bins.fine_edges, other.bins.fine_edges)):
                raise InputError(f"cannot merge profiles of {self.name!r} built on different bins")
            out._merge_numeric(other)
        else:
            out.count += other.count
            out.nulls += other.nulls
            for k, c in other.categories.items():
                out.categories[k] = out.categories.get(k, 0) + c
            out._cap_categories()
        return out

    def copy(self) -> FeatureStats:
        return FeatureStats(
            bins=self.bins, count=self.count, nulls=self.nulls, mean=self.mean, m2=self.m2,
            min=self.min, max=self.max,
            coarse=None if self.coarse is None else self.coarse.copy(),
            fine=None if self.fine is None else self.fine.copy(),
            fine_sum=None if self.fine_sum is None else self.fine_sum.copy(),
            fine_sq=None if self.fine_sq is None else self.fine_sq.copy(),
            categories=dict(self.categories))

    # -- serialisation -----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"bins": self.bins.to_dict(), "count": self.count,
                             "nulls": self.nulls}
        if self.kind == NUMERIC:
            assert self.coarse is not None and self.fine is not None
            assert self.fine_sum is not None
            d.update(mean=self.mean, m2=self.m2,
                     min=None if self.count == 0 else self.min,
                     max=None if self.count == 0 else self.max,
                     coarse=self.coarse.tolist(), fine=self.fine.tolist(),
                     fine_sum=self.fine_sum.tolist(),
                     fine_sq=None if self.fine_sq is None else self.fine_sq.tolist())
        else:
            d["categories"] = dict(self.categories)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureStats:
        bins = FeatureBins.from_dict(d["bins"])
        if bins.kind == NUMERIC:
            return cls(bins=bins, count=d["count"], nulls=d["nulls"], mean=d["mean"],
                       m2=d["m2"],
                       min=float("inf") if d["min"] is None else d["min"],
                       max=float("-inf") if d["max"] is None else d["max"],
                       coarse=np.asarray(d["coarse"], dtype=np.int64),
                       fine=np.asarray(d["fine"], dtype=np.int64),
                       fine_sum=np.asarray(d["fine_sum"], dtype=np.float64),
                       fine_sq=np.asarray(d["fine_sq"], dtype=np.float64))
        return cls(bins=bins, count=d["count"], nulls=d["nulls"],
                   categories={str(k): int(v) for k, v in d["categories"].items()})


def _numeric_part(bins: FeatureBins, xv: np.ndarray, nulls: int) -> FeatureStats:
    """Statistics of one batch of finite values."""
    n = int(xv.size)
    part = FeatureStats(bins=bins, count=n, nulls=nulls)
    if n:
        part.mean = float(xv.mean())
        part.m2 = float(np.square(xv - part.mean).sum())
        part.min = float(xv.min())
        part.max = float(xv.max())
        idx = bins.fine_index(xv)
        part.fine = np.bincount(idx, minlength=bins.fine_edges.size + 1).astype(np.int64)
        fine_to_coarse = bins.fine_to_coarse
        if fine_to_coarse is not None:  # coarse bins are unions of fine bins: O(bins), not O(n)
            part.coarse = np.bincount(fine_to_coarse, weights=part.fine,
                                      minlength=bins.edges.size + 1).astype(np.int64)
        else:
            part.coarse = np.bincount(np.searchsorted(bins.edges, xv, side="right"),
                                      minlength=bins.edges.size + 1).astype(np.int64)
        part.fine_sum = np.bincount(idx, weights=xv, minlength=bins.fine_edges.size + 1)
        part.fine_sq = np.bincount(idx, weights=xv * xv, minlength=bins.fine_edges.size + 1)
    return part


@dataclass
class Profile:
    """Per-feature statistics of one data set on fixed bins."""

    features: dict[str, FeatureStats]
    rows: int = 0

    @classmethod
    def empty(cls, bins: dict[str, FeatureBins]) -> Profile:
        return cls({name: FeatureStats(bins=b) for name, b in bins.items()})

    @property
    def bins(self) -> dict[str, FeatureBins]:
        return {name: s.bins for name, s in self.features.items()}

    def update_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Add one Arrow batch (it must hold every profiled column)."""
        names = set(batch.schema.names)
        for name, stats in self.features.items():
            if name not in names:
                raise InputError(f"column {name!r}: missing from the data being profiled")
            stats.update(batch.column(name))
        self.rows += batch.num_rows

    def merge(self, other: Profile) -> Profile:
        if set(self.features) != set(other.features):
            raise InputError("cannot merge profiles of different columns")
        return Profile({k: v.merge(other.features[k]) for k, v in self.features.items()},
                       rows=self.rows + other.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows,
                "features": {k: v.to_dict() for k, v in self.features.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        return cls({k: FeatureStats.from_dict(v) for k, v in d["features"].items()},
                   rows=int(d["rows"]))


def fit_bins(data: Any, columns: Sequence[str], *, bins: int = 10, fine_bins: int = 100,
             sample_rows: int = 500_000, seed: int = 0) -> dict[str, FeatureBins]:
    """Fix the bins of each column from reference data.

    ``data`` is a :class:`assay.data.Dataset` (read on a uniform sample of at
    most ``sample_rows`` rows) or anything ``open_dataset`` accepts.
    Numeric columns get ``bins`` coarse and ``fine_bins`` fine quantile bins.
    """
    if bins < 2 or fine_bins < 2:
        raise InputError(f"bins: expected at least 2 bins, got {bins} and {fine_bins}")
    ds = _dataset(data)
    schema = ds.schema
    cols = list(columns)
    for c in cols:
        if c not in schema.names:
            raise InputError(f"{ds.name}: no column {c!r} to profile")
    kinds = {c: column_kind(schema.field(c).type) for c in cols}
    numeric = [c for c in cols if kinds[c] == NUMERIC]
    out: dict[str, FeatureBins] = {}
    table: pa.Table | None = None
    if numeric:
        if ds.num_rows > sample_rows:
            table = ds.sample_arrow(sample_rows, seed=seed, columns=numeric)
        else:
            table = ds.to_arrow(numeric)
    for c in cols:
        if kinds[c] == NUMERIC:
            assert table is not None
            x = _as_float(table.column(c))
            x = np.sort(x[np.isfinite(x)])
            distinct = x[np.concatenate([[True], x[1:] != x[:-1]])] if x.size else x
            out[c] = FeatureBins(c, NUMERIC, _cut_points(x, distinct, bins),
                                 _cut_points(x, distinct, fine_bins))
        else:
            out[c] = FeatureBins(c, CATEGORICAL)
    return out


def _dataset(data: Any) -> Any:
    from assay.data import Dataset, open_dataset

    return data if isinstance(data, Dataset) else open_dataset(data)


def profile(data: Any, bins: dict[str, FeatureBins] | None = None, *,
            columns: Iterable[str] | None = None, n_bins: int = 10, fine_bins: int = 100,
            sample_rows: int = 500_000, seed: int = 0,
            batch_size: int = 65_536) -> Profile:
    """Profile ``data`` (a Dataset or a frame / table / file) in one streaming pass.

    Without ``bins`` they are first fitted on ``data`` itself (this is how a
    reference profile is built); pass the reference profile's ``bins`` to
    profile current data on the same bins.
    """
    ds = _dataset(data)
    if bins is None:
        cols = list(columns) if columns is not None else ds.column_names
        bins = fit_bins(ds, cols, bins=n_bins, fine_bins=fine_bins, sample_rows=sample_rows,
                        seed=seed)
    elif columns is not None:
        wanted = list(columns)
        unknown = [c for c in wanted if c not in bins]
        if unknown:
            raise InputError(f"no reference bins for column(s) {', '.join(unknown)}")
        bins = {c: bins[c] for c in wanted}
    missing = [c for c in bins if c not in ds.column_names]
    if missing:
        raise InputError(f"{ds.name}: column(s) {', '.join(missing)} of the reference are missing")
    for c, b in bins.items():
        kind = column_kind(ds.schema.field(c).type)
        if kind != b.kind:
            raise InputError(f"{ds.name}: column {c!r}: expected {b.kind} values as in the "
                             f"reference, got {ds.schema.field(c).type}")
    fold = getattr(ds, "fold_batches", None)
    if fold is not None:  # an engine that builds the statistics where the data lives

        def build(batch: pa.RecordBatch) -> Profile:
            part = Profile.empty(bins)
            part.update_batch(batch)
            return part

        return fold(build, columns=list(bins), empty=lambda: Profile.empty(bins))
    prof = Profile.empty(bins)
    for batch in ds.batches(list(bins), batch_size=batch_size):
        prof.update_batch(batch)
    return prof


#: The name docs/architecture.md uses for one feature's mergeable statistics.
FeatureProfile = FeatureStats
