"""Input conversion and the encoding of sensitive features into cells.

A *cell* is one combination of categories of every sensitive feature. The
statistics keep one slot per cell; a marginal group (``sex``) or an
intersection (``sex x race``) is a sum over cell axes. Categories are kept
as sorted strings so that two statistics built from different batches line
up after :func:`realign`, and missing values form their own category,
:data:`MISSING`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay.errors import InputError

MISSING = "<missing>"
#: Largest number of cells (combinations of sensitive categories) a statistic may hold,
#: and with scores the largest cells x score bins (bounds memory to a few hundred MB).
MAX_CELLS = 50_000
MAX_CELL_BINS = 4_000_000


def to_numpy(values: Any, name: str) -> np.ndarray:
    """A 1-D NumPy array from a list, NumPy array, pandas / Polars Series or Arrow array."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if values.null_count:
            raise InputError(f"column '{name}': expected no missing values, "
                             f"got {values.null_count}")
        return values.to_numpy(zero_copy_only=False)
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InputError(f"column '{name}': expected a 1-D array, got shape {arr.shape}")
    return arr


def binarize(values: Any, name: str, positive_label: Any) -> np.ndarray:
    """Map a label column to 0/1 (1 where the value equals ``positive_label``).

    Raises :class:`InputError` when the column holds missing values or more
    than two distinct values.
    """
    arr = to_numpy(values, name)
    pos = positive_label
    if arr.dtype.kind in "iufb" and isinstance(pos, str):
        try:
            pos = float(pos)
        except ValueError:
            raise InputError(
                f"column '{name}': positive label {positive_label!r} is not a number,"
                f" but the column holds numbers") from None
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise InputError(f"column '{name}': expected no missing values, got NaN")
    y = arr == pos
    if arr.dtype.kind in "OUS" and not isinstance(pos, str):  # "1" in a text column
        y = y | (arr.astype(str) == _label(pos) if arr.dtype.kind != "O" else
                 np.array([v == pos or str(v) == _label(pos) for v in arr], dtype=bool))
    if arr.dtype.kind in "iufb":
        several = _numeric_has_two_other_values(arr, pos)
    else:
        rest = arr[~y]
        several = False
        if len(rest):
            if any(v is None for v in rest[:1]) or pc.any(
                    pc.is_null(pa.array(rest, from_pandas=True))).as_py():
                raise InputError(f"column '{name}': expected no missing values, got None")
            several = pc.count_distinct(pa.array(rest, from_pandas=True)).as_py() > 1
    if several:
        raise InputError(
            f"column '{name}': expected two classes (positive label {positive_label!r}),"
            f" got more than two distinct values")
    return y.astype(np.int64)


def _numeric_has_two_other_values(arr: np.ndarray, pos: Any) -> bool:
    """Whether a numeric column (no NaN) holds two distinct values other than ``pos``,
    from its extremes, without gathering the non-positive rows."""
    if not len(arr):
        return False
    lo, hi = arr.min(), arr.max()
    if lo == hi:
        return False
    if pos != lo and pos != hi:  # both extremes differ from pos
        return True
    return not bool(((arr == lo) | (arr == hi)).all())


def encode_feature(values: Any, name: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes into a sorted list of category labels (missing -> ``<missing>``)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        cat = _pandas_categorical(values)
        if cat is not None:
            return _from_codes(*cat)
        if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
            values = values.to_numpy()
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise InputError(f"sensitive feature '{name}': expected a 1-D array, "
                             f"got shape {arr.shape}")
        if arr.dtype.kind in "US" and len(arr):
            return _encode_fixed_strings(arr)
        values = pa.array(arr, from_pandas=True)
    if pa.types.is_null(values.type):  # every value missing
        return np.zeros(len(values), dtype=np.int64), [MISSING] if len(values) else []
    enc = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    indices = enc.indices if not enc.indices.null_count else pc.fill_null(enc.indices, -1)
    return _from_codes(indices.to_numpy(zero_copy_only=False), enc.dictionary.to_pylist())


def _pandas_categorical(values: Any) -> tuple[np.ndarray, list[Any]] | None:
    """Codes (-1 = missing) and categories of a pandas Categorical or category Series."""
    dtype = getattr(values, "dtype", None)
    if getattr(dtype, "name", None) != "category" or isinstance(values, np.ndarray):
        return None
    cat = values.cat if hasattr(values, "cat") else values
    codes = np.asarray(cat.codes, dtype=np.int64)
    return codes, list(cat.categories)


def _from_codes(codes: np.ndarray, dictionary: list[Any]) -> tuple[np.ndarray, list[str]]:
    """Canonical form: unique sorted labels (two values may print alike, e.g. 1 and "1");
    negative codes and missing dictionary entries become :data:`MISSING`."""
    labels = [MISSING if v is None or (isinstance(v, float) and math.isnan(v)) else _label(v)
              for v in dictionary]
    codes = codes.astype(np.int64, copy=False)
    missing = codes < 0
    if missing.any():
        labels.append(MISSING)
        codes = np.where(missing, len(labels) - 1, codes)
    if not labels:
        return codes, []
    uniq, inverse = np.unique(np.array(labels, dtype=object).astype(str), return_inverse=True)
    if len(uniq) == len(labels) and np.array_equal(inverse, np.arange(len(labels))):
        return codes, [str(u) for u in uniq]  # the dictionary is already sorted and distinct
    return inverse[codes], [str(u) for u in uniq]


def _encode_fixed_strings(arr: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Codes of a NumPy string array (no missing values possible) into its sorted
    distinct values.

    The fixed-width values are hashed as raw bytes (Arrow's dictionary encoding
    over a zero-copy fixed-size binary view): two values are equal exactly when
    their bytes are, as NumPy pads with NUL code units. Only the few distinct
    values are then decoded and sorted.
    """
    arr = np.ascontiguousarray(arr)
    raw = pa.FixedSizeBinaryArray.from_buffers(pa.binary(arr.dtype.itemsize), len(arr),
                                               [None, pa.py_buffer(arr)])
    enc = pc.dictionary_encode(raw)
    distinct = np.frombuffer(b"".join(enc.dictionary.to_pylist()), dtype=arr.dtype)
    order = np.argsort(distinct, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    codes = rank[enc.indices.to_numpy(zero_copy_only=False)]
    labels = [v.decode() if isinstance(v, bytes) else str(v) for v in distinct[order].tolist()]
    return codes, labels


def _label(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def encode_cells(
    sensitive: Mapping[str, Any] | None, n: int
) -> tuple[np.ndarray, list[str], list[list[str]]]:
    """Flat cell index for every row, the feature names and their categories."""
    if not sensitive:
        return np.zeros(n, dtype=np.int64), [], []
    names = list(sensitive)
    codes, cats = [], []
    for name in names:
        c, labels = encode_feature(sensitive[name], name)
        if len(c) != n:
            raise InputError(f"sensitive feature '{name}': expected {n} values, got {len(c)}")
        codes.append(c)
        cats.append(labels)
    # row-major flat index over the category axes (the codes are in range by construction)
    cell = np.array(codes[0], dtype=np.int64)
    for c, labels in zip(codes[1:], cats[1:], strict=True):
        cell *= len(labels)
        cell += c
    return cell, names, cats


def union_categories(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]]) -> list[list[str]]:
    return [sorted(set(x) | set(y)) for x, y in zip(a, b, strict=True)]


def realign(arr: np.ndarray, old: Sequence[Sequence[str]],
            new: Sequence[Sequence[str]]) -> np.ndarray:
    """Re-index the leading cell axes of ``arr`` from categories ``old`` to ``new``."""
    for axis, (o, nw) in enumerate(zip(old, new, strict=True)):
        if list(o) == list(nw):
            continue
        pos = {label: i for i, label in enumerate(nw)}
        mapping = np.array([pos[label] for label in o], dtype=np.int64)
        shape = list(arr.shape)
        shape[axis] = len(nw)
        out = np.zeros(shape, dtype=arr.dtype)
        index = (slice(None),) * axis + (mapping,)
        out[index] = arr
        arr = out
    return arr


def group_axes(names: Sequence[str], by: Sequence[str] | str | None) -> tuple[list[int], list[str]]:
    """Axis numbers of the features in ``by`` (validated) and their names."""
    if by is None:
        return [], []
    if isinstance(by, str):
        by = [by]
    axes = []
    for feature in by:
        if feature not in names:
            known = ", ".join(names) or "none"
            raise InputError(f"unknown sensitive feature '{feature}': known features are {known}")
        axes.append(list(names).index(feature))
    if len(set(axes)) != len(axes):
        raise InputError(f"sensitive feature listed twice in by={list(by)}")
    return axes, list(by)


def reduce_to_groups(arr: np.ndarray, n_cell_axes: int, axes: Sequence[int],
                     lead: int = 0) -> np.ndarray:
    """Sum ``arr`` over the cell axes not in ``axes`` and flatten the kept ones.

    ``arr`` has ``lead`` leading axes (e.g. bootstrap replicates), then
    ``n_cell_axes`` cell axes, then trailing axes. The result has the leading
    axes, one group axis (row-major over ``axes`` in the given order), and the
    trailing axes.
    """
    cell_axes = list(range(lead, lead + n_cell_axes))
    drop = tuple(a for i, a in enumerate(cell_axes) if i not in axes)
    kept = arr.sum(axis=drop) if drop else arr
    # the kept cell axes are now in ascending original order; permute to `axes` order
    order_sorted = sorted(axes)
    perm_src = [lead + order_sorted.index(a) for a in axes]
    k = len(axes)
    rest = list(range(lead + k, kept.ndim))
    kept = np.transpose(kept, [*range(lead), *perm_src, *rest])
    shape = kept.shape
    n_groups = int(np.prod(shape[lead:lead + k])) if k else 1
    return kept.reshape(*shape[:lead], n_groups, *shape[lead + k:])


def group_labels(cats: Sequence[Sequence[str]], axes: Sequence[int]) -> list[tuple[str, ...]]:
    """Labels of the flattened groups produced by :func:`reduce_to_groups`."""
    if not axes:
        return [()]
    grids = np.meshgrid(*[np.arange(len(cats[a])) for a in axes], indexing="ij")
    flat = [g.ravel() for g in grids]
    return [tuple(cats[a][int(f[i])] for a, f in zip(axes, flat, strict=True))
            for i in range(len(flat[0]))]


def check_size(names: Sequence[str], cats: Sequence[Sequence[str]], n_bins: int) -> None:
    """Refuse cell tables too large for memory, naming the feature with most categories."""
    n_cells = int(np.prod([len(c) for c in cats])) if cats else 1
    too_many = n_cells > MAX_CELLS or (n_bins and n_cells * n_bins > MAX_CELL_BINS)
    if not too_many:
        return
    worst = max(range(len(names)), key=lambda i: len(cats[i]))
    limit = MAX_CELLS if not n_bins else min(MAX_CELLS, MAX_CELL_BINS // n_bins)
    raise InputError(
        f"sensitive feature '{names[worst]}' has {len(cats[worst])} categories, and the "
        f"sensitive features together make {n_cells:,} groups (at most {limit:,}): group a "
        "numeric attribute into bands (e.g. age bands) or give fewer sensitive features")
