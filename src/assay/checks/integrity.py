"""Data integrity checks: schema, missing values, duplicates, ranges, balance,
representation, leakage and proxies.

Every check streams over the evaluation data (``ctx.evaluation``) or works
on a seeded uniform sample of it (``sample`` rows, default 50,000) where a
model-free estimate is enough (leakage and proxy screens).

Suggested thresholds: ``integrity.schema`` max 0 (share of rows breaking
the contract), ``integrity.missing_values`` max 0.05, ``integrity.duplicates``
max 0.01, ``integrity.constant_columns`` max 0, ``integrity.value_ranges``
max 0.01, ``integrity.label_balance`` min 0.05, ``integrity.group_representation``
min 0.01 (share) or ``measure: count`` with min 30, ``integrity.train_eval_overlap``
max 0.01, ``integrity.target_leakage`` max 0.95 (AUC), ``integrity.proxy_features``
max 0.5 (Cramér's V).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.stats.contingency import association
from sklearn.metrics import roc_auc_score

from assay.checks.base import (
    CheckContext,
    CheckOutput,
    CheckSpec,
    Measurement,
    SkipCheck,
    check,
    int_param,
    seed_param,
    where,
)
from assay.data import match_label
from assay.errors import InputError, PolicyError
from assay.metrics.frame import group_label, group_name
from assay.metrics.profile import NUMERIC, FeatureBins, column_kind, profile

SAMPLE_ROWS = 50_000
TYPES = ("numeric", "categorical", "boolean", "string")





def _columns(ctx: CheckContext, spec: CheckSpec, default: Sequence[str]) -> list[str]:
    cols = spec.params.get("columns")
    if cols is None:
        return list(default)
    if isinstance(cols, str):
        cols = [cols]
    names = ctx.evaluation.column_names
    for c in cols:
        if c not in names:
            raise InputError(f"{ctx.evaluation.name}: column {c!r} named by {where(spec)} "
                             "does not exist")
    return list(cols)


def _left_out(ctx: CheckContext, spec: CheckSpec) -> tuple[dict[str, Any], str]:
    """Details and a message suffix naming the identifier-like columns left out of the
    default features (``ColumnRoles.excluded``), when the spec names no columns."""
    excluded = dict(getattr(ctx.roles, "excluded", None) or {})
    if not excluded or spec.params.get("columns") is not None:
        return {}, ""
    return ({"left_out": excluded},
            f"; identifier-like column(s) left out: {', '.join(excluded)}")


def _all_columns(ctx: CheckContext) -> list[str]:
    return list(ctx.evaluation.column_names)


def _features(ctx: CheckContext) -> list[str]:
    return ctx.roles.feature_columns(ctx.evaluation.column_names)


def _column_profile(ctx: CheckContext) -> Any:
    """Counts, nulls, min / max and categories of every evaluation column (one pass)."""
    return ctx.cached("integrity.columns", lambda: _plain_profile(ctx.evaluation))


def _plain_profile(ds: Any, columns: Sequence[str] | None = None) -> Any:
    """Moments, nulls, min / max and categories without histograms: one streaming pass."""
    cols = list(columns) if columns is not None else ds.column_names
    bins = {c: FeatureBins(c, column_kind(ds.schema.field(c).type)) for c in cols}
    return profile(ds, bins)


def _sample(ctx: CheckContext, spec: CheckSpec, columns: Sequence[str]) -> pd.DataFrame:
    n = int_param(spec, "sample", SAMPLE_ROWS)
    seed = seed_param(ctx, spec)
    cols = list(dict.fromkeys(columns))
    key = f"integrity.sample:{n}:{seed}:{','.join(cols)}"
    return ctx.cached(key, lambda: ctx.evaluation.sample(n, seed=seed, columns=cols))


def _binary_target(ctx: CheckContext, values: pd.Series) -> np.ndarray:
    pos = getattr(ctx.evaluation, "positive_value", None)
    if pos is None:
        pos = ctx.roles.positive_label
    uniq = list(pd.unique(values.dropna()))
    hit = match_label(uniq, pos)
    return (values == hit).to_numpy() if hit is not None else np.zeros(len(values), bool)


def row_hashes(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """A 64-bit hash per row over all columns of ``batch``, independent of storage types.

    Numbers are hashed as float64 (``5`` and ``5.0`` agree), everything else as text.
    """
    parts = []
    for col in batch.columns:
        if column_kind(col.type) == NUMERIC:
            x = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
            x = np.where(np.isnan(x), np.nan, x) + 0.0  # one NaN, and -0.0 == 0.0
            parts.append(pd.util.hash_array(x))
        else:
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode() if isinstance(col, pa.Array) else pc.cast(
                    col, col.type.value_type)
            text = pc.cast(col, pa.string()).to_numpy(zero_copy_only=False)
            parts.append(pd.util.hash_array(text.astype(object)))
    if not parts:
        return np.zeros(batch.num_rows, dtype=np.uint64)
    h = parts[0].copy()
    for p in parts[1:]:
        h = h * np.uint64(1_000_003) ^ p  # order-sensitive combination
    return h


def _hashes(ds: Any, columns: Sequence[str]) -> np.ndarray:
    """Row hashes of the whole dataset, filled batch by batch into one array.

    Filling a preallocated array keeps one copy of the hashes in memory (a
    list of per-batch arrays joined at the end needs two).
    """
    out = np.empty(int(ds.num_rows), dtype=np.uint64)
    pos = 0
    for b in ds.batches(list(columns)):
        h = row_hashes(b)
        if pos + h.size > out.size:  # more rows than announced: grow
            grown = np.empty(max(2 * out.size, pos + h.size), dtype=np.uint64)
            grown[:pos] = out[:pos]
            out = grown
        out[pos:pos + h.size] = h
        pos += h.size
    return out[:pos]


def _duplicate_count(h: np.ndarray) -> int:
    """Number of entries of ``h`` equal to an earlier entry; sorts ``h`` in place.

    Sorting needs no memory beyond ``h`` and a boolean per row, where
    ``np.unique`` (a hash table in NumPy >= 2.3) needs several times ``h``.
    """
    if h.size < 2:
        return 0
    h.sort()
    return int(np.count_nonzero(h[1:] == h[:-1]))


# --------------------------------------------------------------------------- schema


def _contract(spec: CheckSpec) -> dict[str, dict[str, Any]]:
    cols = spec.params.get("columns")
    if not isinstance(cols, Mapping) or not cols:
        raise PolicyError(f"{where(spec)}: parameter 'columns': expected a mapping of column "
                          "name to {type, min, max, allowed, nullable}")
    out: dict[str, dict[str, Any]] = {}
    for name, rule in cols.items():
        rule = dict(rule or {})
        unknown = set(rule) - {"type", "min", "max", "allowed", "nullable"}
        if unknown:
            raise PolicyError(f"{where(spec)}: column {name!r}: unknown key(s) "
                              f"{', '.join(sorted(unknown))}; expected type, min, max, allowed, "
                              "nullable")
        if rule.get("type") is not None and rule["type"] not in TYPES:
            raise PolicyError(f"{where(spec)}: column {name!r}: type must be one of "
                              f"{', '.join(TYPES)}, got {rule['type']!r}")
        out[str(name)] = rule
    return out


def _type_ok(expected: str | None, t: pa.DataType) -> bool:
    if expected is None:
        return True
    if expected == "numeric":
        return column_kind(t) == NUMERIC and not pa.types.is_boolean(t)
    if expected == "boolean":
        return pa.types.is_boolean(t)
    if expected == "string":
        return pa.types.is_string(t) or pa.types.is_large_string(t) or (
            pa.types.is_dictionary(t) and pa.types.is_string(t.value_type))
    return True  # categorical: any type can hold categories


@check("integrity.schema", family="integrity", title="Data matches its declared schema",
       params=("columns",))
def schema(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Share of rows breaking each column's contract (type, range, allowed values, nulls)."""
    contract = _contract(spec)
    ds = ctx.evaluation
    present = [c for c in contract if c in ds.column_names]
    bad = dict.fromkeys(contract, 0)
    notes: dict[str, list[str]] = {c: [] for c in contract}
    types = {c: ds.schema.field(c).type for c in present}
    for c in contract:
        if c not in ds.column_names:
            notes[c].append("column is missing")
        elif not _type_ok(contract[c].get("type"), types[c]):
            notes[c].append(f"expected {contract[c]['type']} values, got {types[c]}")
    checkable = [c for c in present if not notes[c]]
    rows = 0
    for batch in ds.batches(checkable) if checkable else ():
        rows += batch.num_rows
        for c in checkable:
            rule = contract[c]
            col = batch.column(c)
            mask = np.zeros(batch.num_rows, dtype=bool)
            nulls = np.asarray(pc.is_null(col, nan_is_null=True).to_numpy(zero_copy_only=False))
            if rule.get("nullable", True) is False:
                mask |= nulls
            if (rule.get("min") is not None or rule.get("max") is not None) and \
                    column_kind(col.type) == NUMERIC:
                x = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
                with np.errstate(invalid="ignore"):
                    if rule.get("min") is not None:
                        mask |= x < float(rule["min"])
                    if rule.get("max") is not None:
                        mask |= x > float(rule["max"])
            if rule.get("allowed") is not None:
                allowed = list(rule["allowed"])
                vals = col.to_pandas()
                ok = vals.isin(allowed) | vals.astype(str).isin([str(a) for a in allowed])
                mask |= ~ok.to_numpy() & ~nulls
            bad[c] += int(mask.sum())
    rows = rows or ds.num_rows
    out = []
    for c in contract:
        if notes[c]:
            out.append(Measurement(label=c, value=1.0, n=ds.num_rows, note="; ".join(notes[c])))
        else:
            out.append(Measurement(label=c, value=bad[c] / rows, n=rows,
                                   note=f"{bad[c]} row(s) break the contract" if bad[c] else None))
    broken = [m.label for m in out if m.value]
    msg = f"contract broken in: {', '.join(broken)}" if broken else "every column as declared"
    return CheckOutput(measurements=out, message=msg)


# --------------------------------------------------------------------------- simple quality


@check("integrity.missing_values", family="integrity", title="Missing values per column",
       params=("columns",))
def missing_values(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Share of missing values (null or NaN) in each column."""
    prof = _column_profile(ctx)
    cols = _columns(ctx, spec, _all_columns(ctx))
    out = [Measurement(label=c, value=prof.features[c].null_share, n=prof.features[c].rows)
           for c in cols]
    worst = max(out, key=lambda m: m.value or 0.0)
    return CheckOutput(measurements=out,
                       message=f"most missing: {worst.label} ({worst.value:.2%})")


@check("integrity.duplicates", family="integrity", title="Duplicate rows",
       params=("columns",))
def duplicates(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Share of rows that repeat an earlier row (64-bit row hashing).

    Keeps 8 bytes per row; with 64-bit hashes two different rows collide
    with probability about n^2 / 2^65 (3e-6 at ten million rows)."""
    cols = _columns(ctx, spec, _all_columns(ctx))
    h = _hashes(ctx.evaluation, cols)
    n = int(h.size)
    dup = _duplicate_count(h)
    return CheckOutput(
        measurements=[Measurement(label="duplicate rows", value=dup / n if n else 0.0, n=n)],
        message=f"{dup} duplicate row(s) out of {n}")


@check("integrity.constant_columns", family="integrity", title="Constant columns",
       params=("columns",))
def constant_columns(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """1 for a column with at most one distinct non-missing value, else 0."""
    prof = _column_profile(ctx)
    cols = _columns(ctx, spec, _features(ctx))
    out = []
    for c in cols:
        f = prof.features[c]
        if f.kind == NUMERIC:
            const = f.count == 0 or f.min == f.max
            what = f"always {f.min:g}" if f.count else "no values"
        else:
            const = len(f.categories) <= 1
            what = f"always {next(iter(f.categories))!r}" if f.categories else "no values"
        out.append(Measurement(label=c, value=1.0 if const else 0.0, n=f.rows,
                               note=what if const else None))
    consts = [m.label for m in out if m.value]
    return CheckOutput(measurements=out, message=(f"constant: {', '.join(consts)}" if consts
                                                  else "no constant column"))


@check("integrity.value_ranges", family="integrity", title="Values within their expected range",
       params=("ranges", "columns"))
def value_ranges(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Share of values outside the declared range, or outside the reference's [min, max]."""
    ranges = spec.params.get("ranges")
    if ranges is not None and not isinstance(ranges, Mapping):
        raise PolicyError(f"{where(spec)}: parameter 'ranges': expected a mapping of column to "
                          "{min, max}")
    source = "declared"
    if not ranges:
        if ctx.reference is None:
            raise SkipCheck("no reference data was given and no 'ranges' were declared")
        source = "reference"
        cols = [c for c in _columns(ctx, spec, _features(ctx))
                if c in ctx.reference.column_names
                and column_kind(ctx.evaluation.schema.field(c).type) == NUMERIC
                and column_kind(ctx.reference.schema.field(c).type) == NUMERIC]
        if not cols:
            raise SkipCheck("no numeric feature in both the reference and the evaluation data")
        ref = ctx.cached(f"integrity.reference_columns:{','.join(cols)}",
                         lambda: _plain_profile(ctx.reference, cols))
        ranges = {c: {"min": ref.features[c].min, "max": ref.features[c].max} for c in cols}
    for c in ranges:
        if c not in ctx.evaluation.column_names:
            raise InputError(f"{ctx.evaluation.name}: column {c!r} named by {where(spec)} "
                             "does not exist")
        t = ctx.evaluation.schema.field(c).type
        if column_kind(t) != NUMERIC:
            raise InputError(f"{ctx.evaluation.name}: column {c!r} named by {where(spec)}: "
                             f"expected numbers for a range, got {t}")
    outside = dict.fromkeys(ranges, 0)
    counted = dict.fromkeys(ranges, 0)
    for batch in ctx.evaluation.batches(list(ranges)):
        for c, r in ranges.items():
            x = pc.cast(batch.column(c), pa.float64()).to_numpy(zero_copy_only=False)
            x = x[~np.isnan(x)]
            counted[c] += x.size
            lo = -np.inf if r.get("min") is None else float(r["min"])
            hi = np.inf if r.get("max") is None else float(r["max"])
            outside[c] += int(((x < lo) | (x > hi)).sum())
    out = [Measurement(label=c, value=outside[c] / counted[c] if counted[c] else 0.0,
                       n=counted[c],
                       note=f"{source} range [{ranges[c].get('min')}, {ranges[c].get('max')}]")
           for c in ranges]
    return CheckOutput(measurements=out, details={"ranges": {k: dict(v) for k, v in
                                                             ranges.items()}})


# --------------------------------------------------------------------------- labels and groups


@check("integrity.label_balance", family="integrity", title="Minority class share",
       requires=())
def label_balance(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Share of the rarest class of the target (classification)."""
    target = ctx.roles.target
    if target is None:
        raise SkipCheck("no target column was given")
    if ctx.roles.task not in ("classification", "multiclass"):
        raise SkipCheck("label balance applies to classification only")
    counts: dict[Any, int] = {}
    for batch in ctx.evaluation.batches([target]):
        vc = pc.value_counts(batch.column(target))
        for v, k in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(),
                        strict=True):
            counts[v] = counts.get(v, 0) + k
    n = sum(counts.values())
    if len(counts) < 2:
        only = next(iter(counts), None)
        return CheckOutput(measurements=[Measurement(label="minority class share", value=0.0,
                                                     n=n, note=f"only class {only!r}")],
                           message=f"the target has a single class ({only!r})")
    minority, k = min(counts.items(), key=lambda kv: kv[1])
    return CheckOutput(
        measurements=[Measurement(label="minority class share", value=k / n, n=n,
                                  note=f"class {minority!r}")],
        details={"counts": {str(v): c for v, c in counts.items()}})


MISSING = "<missing>"  # the label the group metrics give a missing protected value


def _group_labels(s: pd.Series) -> pd.Series:
    """Group labels as the group metrics print them (``1.0`` as ``1``, missing as ``<missing>``)."""
    if pd.api.types.is_float_dtype(s):
        x = s.to_numpy(dtype=float)
        ok = ~np.isnan(x)
        if np.array_equal(x[ok], np.trunc(x[ok])):
            s = s.astype("Int64")
    return s.astype(str).where(s.notna(), MISSING)


@check("integrity.group_representation", family="integrity",
       title="Representation of protected groups", requires=("sensitive",),
       params=("measure", "intersections", "max_groups"))
def group_representation(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Count and share of each protected group and of their intersections."""
    sens = list(ctx.roles.sensitive)
    if not sens:
        raise SkipCheck("no sensitive column was given")
    measure = spec.params.get("measure", "share")
    if measure not in ("share", "count"):
        raise PolicyError(f"{where(spec)}: parameter 'measure': expected 'share' or 'count', "
                          f"got {measure!r}")
    max_groups = int_param(spec, "max_groups", 200)
    inter = spec.params.get("intersections", True)
    counts: dict[tuple[str, ...], int] = {}
    n = 0
    for batch in ctx.evaluation.batches(sens):
        df = batch.to_pandas()
        n += len(df)
        key_frame = pd.DataFrame({c: _group_labels(df[c]) for c in sens})
        for key, k in key_frame.value_counts(dropna=False).items():
            key = key if isinstance(key, tuple) else (key,)
            counts[key] = counts.get(key, 0) + int(k)
    groups: list[tuple[str, dict[str, int]]] = []
    for i, s in enumerate(sens):
        marg: dict[str, int] = {}
        for key, k in counts.items():
            marg[key[i]] = marg.get(key[i], 0) + k
        groups.append((s, marg))
    if inter and len(sens) > 1:
        for r in range(2, len(sens) + 1):
            for combo in itertools.combinations(range(len(sens)), r):
                cell: dict[str, int] = {}
                for key, k in counts.items():
                    name = group_name(tuple(key[j] for j in combo))
                    cell[name] = cell.get(name, 0) + k
                groups.append((group_name(tuple(sens[j] for j in combo)), cell))
    out: list[Measurement] = []
    for attr, cells in groups:
        if len(cells) > max_groups:
            out.append(Measurement(label=attr, value=None, judged=False,
                                   note=f"{len(cells)} groups; more than max_groups={max_groups}"))
            continue
        for g, k in sorted(cells.items()):
            value = float(k) if measure == "count" else k / n
            out.append(Measurement(label=group_label(attr, g), value=value, n=k))
    smallest = min((m for m in out if m.value is not None), key=lambda m: m.n or 0, default=None)
    msg = f"smallest group: {smallest.label} ({smallest.n} rows)" if smallest else ""
    return CheckOutput(measurements=out, message=msg)


# --------------------------------------------------------------------------- leakage


@check("integrity.train_eval_overlap", family="integrity",
       title="Evaluation rows also present in the training data", requires=("reference",),
       params=("columns",))
def train_eval_overlap(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Share of evaluation rows whose feature values also occur in the reference (training) data."""
    if ctx.reference is None:
        raise SkipCheck("no reference data was given")
    cols = _columns(ctx, spec, [c for c in _features(ctx) if c in ctx.reference.column_names])
    missing = [c for c in cols if c not in ctx.reference.column_names]
    if missing:
        raise InputError(f"{ctx.reference.name}: column(s) {', '.join(missing)} missing")
    ref = _hashes(ctx.reference, cols)
    ref.sort()
    hit = n = 0
    for batch in ctx.evaluation.batches(cols):  # the evaluation's hashes are never all held
        h = row_hashes(batch)
        n += int(h.size)
        if ref.size and h.size:
            at = np.minimum(np.searchsorted(ref, h), ref.size - 1)
            hit += int(np.count_nonzero(ref[at] == h))
    return CheckOutput(
        measurements=[Measurement(label="overlapping rows", value=hit / n if n else 0.0, n=n)],
        message=f"{hit} of {n} evaluation rows also appear in the reference data "
                f"(compared on {len(cols)} feature columns)")


def _auc_best(y: np.ndarray, x: np.ndarray) -> float:
    if np.unique(x).size < 2:
        return 0.5
    auc = float(roc_auc_score(y, x))
    return max(auc, 1.0 - auc)


def _encode_out_of_fold(values: pd.Series, y: np.ndarray, seed: int) -> np.ndarray:
    """Target rate of each category, learnt on the other half of the rows."""
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, 2, size=len(values))
    key = values.astype(str).where(values.notna(), "(missing)").to_numpy()
    codes = pd.factorize(key)[0]
    k = int(codes.max(initial=-1)) + 1
    hits = np.asarray(y, dtype=np.float64)  # 0/1: the sums per category are exact
    out = np.empty(len(values), dtype=np.float64)
    prior = float(y.mean())
    for f in (0, 1):
        train = fold != f
        n = np.bincount(codes[train], minlength=k)
        rates = np.bincount(codes[train], weights=hits[train], minlength=k) / np.maximum(n, 1)
        held = codes[~train]
        out[~train] = np.where(n[held] > 0, rates[held], prior)  # unseen category: the prior
    return out


def _numeric_values(s: pd.Series) -> np.ndarray:
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(x).any():
        fill = np.nanmin(x) - 1.0 if np.isfinite(x).any() else 0.0
        x = np.where(np.isnan(x), fill, x)
    return x


@check("integrity.target_leakage", family="integrity",
       title="No single feature predicts the target almost perfectly",
       params=("sample", "seed", "columns"))
def target_leakage(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Univariate AUC of each feature against the target (best ordering; categories by
    out-of-fold target rate), on a seeded sample."""
    target = ctx.roles.target
    if target is None:
        raise SkipCheck("no target column was given")
    if ctx.roles.task == "multiclass":
        raise SkipCheck("the leakage screen uses a binary AUC (one positive class) and applies "
                        "to binary classification only, not to a multiclass target")
    if ctx.roles.task != "classification":
        raise SkipCheck("the leakage screen uses AUC and applies to classification only")
    feats = [c for c in _columns(ctx, spec, _features(ctx)) if c != target]
    df = _sample(ctx, spec, [*feats, target])
    y = _binary_target(ctx, df[target])
    if y.all() or not y.any():
        raise SkipCheck("the target has a single class in the sample")
    seed = seed_param(ctx, spec)
    out = []
    for c in feats:
        if df[c].nunique(dropna=False) < 2:
            # one value (or none): no ordering, whatever the column's type; an encoding by
            # the other half's target rate would only measure the split of the rows
            out.append(Measurement(label=c, value=0.5, n=len(df),
                                   note="constant in the sample: says nothing about the target"))
            continue
        kind = column_kind(ctx.evaluation.schema.field(c).type)
        x = _numeric_values(df[c]) if kind == NUMERIC else _encode_out_of_fold(df[c], y, seed)
        out.append(Measurement(label=c, value=_auc_best(y, x), n=len(df)))
    worst = max(out, key=lambda m: m.value or 0.0)
    details, left_out = _left_out(ctx, spec)
    return CheckOutput(measurements=out, details=details,
                       message=f"most predictive single feature: {worst.label} "
                               f"(AUC {worst.value:.3f}){left_out}")


def _codes(s: pd.Series, kind: str, bins: int) -> np.ndarray:
    if kind == NUMERIC and s.nunique(dropna=True) > bins:
        b = pd.qcut(pd.to_numeric(s, errors="coerce"), q=bins, duplicates="drop")
        return b.cat.codes.to_numpy()  # -1 for missing: its own category
    key = s.astype(str).where(s.notna(), "(missing)")
    return pd.factorize(key)[0]


def cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Cramér's V of two integer-coded variables (0 = independent, 1 = determined)."""
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    if ia.max(initial=0) == 0 or ib.max(initial=0) == 0:
        return 0.0
    table = np.zeros((ia.max() + 1, ib.max() + 1), dtype=np.int64)
    np.add.at(table, (ia, ib), 1)
    return float(association(table, method="cramer"))


@check("integrity.proxy_features", family="integrity",
       title="Features that stand in for a protected attribute", requires=("sensitive",),
       params=("sample", "seed", "columns", "bins"))
def proxy_features(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Cramér's V between each feature and each protected attribute (numbers in quantile bins)."""
    sens = list(ctx.roles.sensitive)
    if not sens:
        raise SkipCheck("no sensitive column was given")
    bins = int_param(spec, "bins", 10, low=2)
    feats = [c for c in _columns(ctx, spec, _features(ctx)) if c not in sens]
    if not feats:
        raise SkipCheck("no feature other than the protected attributes")
    df = _sample(ctx, spec, [*feats, *sens])
    kinds = {c: column_kind(ctx.evaluation.schema.field(c).type) for c in [*feats, *sens]}
    codes = {c: _codes(df[c], kinds[c], bins) for c in [*feats, *sens]}
    out = []
    for s in sens:
        for f in feats:
            out.append(Measurement(label=f"{f} ~ {s}", value=cramers_v(codes[f], codes[s]),
                                   n=len(df)))
    worst = max(out, key=lambda m: m.value or 0.0)
    details, left_out = _left_out(ctx, spec)
    return CheckOutput(measurements=out, details=details,
                       message=f"strongest proxy: {worst.label} (Cramér's V {worst.value:.3f})"
                               f"{left_out}")
