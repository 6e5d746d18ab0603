"""Identifier-like columns: names, case numbers, ids, dates of birth.

A column that identifies a row (almost every value distinct) carries no
pattern a model could generalise from, and every association measure
computed on it is an artefact: Cramér's V between a unique id and any
protected attribute is 1 because each id is its own category. Such columns
are left out of the features by default (see ``docs/architecture.md``).

The rule, applied to a seeded uniform sample of at most ``sample_rows`` rows,
to columns with no other role:

* text and date columns in which at least 95% of the (at least 50)
  non-missing values are distinct;
* integer columns in which every one of the non-missing values is distinct,
  with at least 1,000 of them or with values that fill at least half of the
  range between their smallest and largest (row numbers, sequential ids).
  Amounts (``fnlwgt``, ``credit_amount``) repeat values or spread over a wide
  range, so they stay features;
* text or date columns whose values look like dates (``1985-03-02``,
  ``02/03/1985``) or e-mail addresses, with at least 50% distinct values;
* columns whose name says they identify someone (``id``, ``*_id``,
  ``CustomerID``, ``uuid``, ``ssn``, ``email``, ``phone``, ``name``,
  ``first_name``, ``date_of_birth``, ``dob``, ``case_number``, ``*_no``),
  with at least 50% distinct values.

Floating-point and boolean columns are never identifier-like by their values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

#: Share of distinct values above which a text column is identifier-like.
DISTINCT_SHARE = 0.95
#: Share of distinct values above which a column with an identifying name or
#: identifying values (dates, e-mail addresses) is identifier-like.
NAMED_SHARE = 0.5
#: Fewest non-missing values in the sample for a verdict from the distinct share.
MIN_VALUES = 50
#: Fewest values for an all-distinct integer column to count without a dense range.
MIN_INTEGER_VALUES = 1000
SAMPLE_ROWS = 50_000

_NAME_TOKENS = {"id", "ids", "uuid", "guid", "ssn", "email", "mail", "phone",
                "dob", "name", "firstname", "lastname", "surname", "fullname", "forename",
                "birthdate", "birthday", "passport", "iban"}
_LAST_TOKENS = {"id", "uuid", "guid", "key", "number", "no", "nr"}
_DATE = re.compile(r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
                   r"([ T]\d{1,2}:\d{2}(:\d{2})?)?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _tokens(name: str) -> list[str]:
    """Words of a column name: ``"CustomerID"`` -> ``["customer", "id"]``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [t for t in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if t]


def identifying_name(name: str) -> bool:
    """Whether a column's name says that it identifies a person or a record."""
    tokens = _tokens(name)
    if not tokens:
        return False
    joined = "_".join(tokens)
    if "birth" in tokens or "birthdate" in joined or joined in ("dob", "date_of_birth"):
        return True
    if any(t in _NAME_TOKENS for t in tokens):
        return True
    return len(tokens) > 1 and tokens[-1] in _LAST_TOKENS


def _kind(t: pa.DataType) -> str | None:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return "date"
    return None


def _looks_like(values: list[Any]) -> str | None:
    """``"dates"`` or ``"e-mail addresses"`` when most of the first values match."""
    head = [str(v).strip() for v in values[:200]]
    if not head:
        return None
    for what, pattern in (("dates", _DATE), ("e-mail addresses", _EMAIL)):
        if sum(bool(pattern.match(v)) for v in head) >= 0.9 * len(head):
            return what
    return None


def _reason(name: str, col: pa.ChunkedArray | pa.Array) -> str | None:
    kind = _kind(col.type)
    if kind is None:
        return None
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    n = len(col) - col.null_count
    if n == 0:
        return None
    distinct = pc.count_distinct(col, mode="only_valid").as_py()
    share = distinct / n
    desc = f"{distinct:,} distinct of {n:,} non-missing values in the sample"
    if kind == "integer":
        if distinct == n and n >= 2:
            lo, hi = pc.min_max(col).values()
            dense = (int(hi.as_py()) - int(lo.as_py()) + 1) <= 2 * n
            if n >= MIN_INTEGER_VALUES or (dense and n >= MIN_VALUES):
                return f"every value distinct: {desc}"
    elif share >= DISTINCT_SHARE and n >= MIN_VALUES:
        return f"{'every' if distinct == n else 'nearly every'} value distinct: {desc}"
    if share >= NAMED_SHARE:
        if kind == "date":
            return f"dates, {desc}"
        if kind == "text":
            looks = _looks_like(pc.drop_null(col).slice(0, 200).to_pylist())
            if looks:
                return f"{looks}, {desc}"
        if identifying_name(name):
            return f"its name says it identifies a record, {desc}"
    return None


def identifier_columns(data: Any, columns: Sequence[str], *, sample_rows: int = SAMPLE_ROWS,
                       seed: int = 0) -> dict[str, str]:
    """The identifier-like columns among ``columns`` of ``data`` (an
    :class:`assay.data.Dataset`), each with the reason, in column order."""
    schema = data.schema
    candidates = [c for c in columns if _kind(schema.field(c).type) is not None]
    if not candidates:
        return {}
    table = data.sample_arrow(sample_rows, seed=seed, columns=candidates)
    out: dict[str, str] = {}
    for c in candidates:
        reason = _reason(c, table.column(c))
        if reason is not None:
            out[c] = reason
    return out


__all__ = ["DISTINCT_SHARE", "NAMED_SHARE", "identifier_columns", "identifying_name"]
