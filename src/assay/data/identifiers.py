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

* text columns whose values are direct identifiers by their format and
  checksum (phone numbers, US SSNs, UK NINOs, Spanish DNI/NIE, Dutch BSNs,
  IBANs, payment card numbers, e-mail addresses), whatever their distinct share,
  and person names (capitalised words, at least 50% distinct); see
  :func:`pii_columns`, which ``privacy.pii_columns`` reports.

Floating-point and boolean columns are never identifier-like by their values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
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
    if kind == "text":
        found = pii_kind_by_values(pc.drop_null(col).slice(0, PATTERN_VALUES).to_pylist(),
                                   distinct_share=share)
        if found is not None and found != "date of birth":
            return f"{found} values (format and checksum), {desc}"
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


# --------------------------------------------------------------------------- personal data
# Kinds of personal data recognised by their values, with the checksums the
# formats carry, and kinds of quasi-identifiers recognised by column names.
# ``privacy.pii_columns`` reports them (kinds and column names, never values);
# a column whose values are one of the direct identifiers below is also
# identifier-like (left out of the default features) whatever its distinct share.

#: Share of the sampled non-missing values that must match a kind's pattern (and
#: checksum) for the column to be of that kind.
MATCH_SHARE = 0.9
#: Values of a column tested against the patterns (the first ones of the sample).
PATTERN_VALUES = 500

DIRECT_KINDS = ("e-mail address", "phone number", "US social security number",
                "UK national insurance number", "Spanish DNI/NIE", "Dutch BSN", "IBAN",
                "payment card number", "date of birth", "person name", "national id",
                "passport number")
QUASI_KINDS = ("age", "birth year", "postcode", "sex or gender", "race or ethnicity",
               "marital status", "nationality")

_PHONE = re.compile(r"^(\+|00)?[\d(][\d ().-]{5,18}\d$")
_SSN = re.compile(r"^(\d{3})[- ](\d{2})[- ](\d{4})$")
_NINO = re.compile(r"^([A-CEGHJ-PR-TW-Z])([A-CEGHJ-NPR-TW-Z]) ?\d{2} ?\d{2} ?\d{2} ?[A-D]$")
_NINO_BAD_PREFIX = {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}
_DNI = re.compile(r"^([XYZ]|\d)(\d{7})-?([A-Z])$")
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
_CARD = re.compile(r"^\d{13,19}$")
_PERSON_PREFIXES = {"first", "last", "full", "given", "family", "middle", "maiden", "customer",
                    "client", "patient", "applicant", "person", "employee", "user", "holder"}
_PERSON = re.compile(r"^[A-Z][a-z'\u00e0-\u00ff-]+(\.)?( [A-Z][a-z'\u00e0-\u00ff-]*\.?){1,3}$")


def _ssn(v: str) -> bool:
    """US SSN format rules: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    m = _SSN.match(v)
    if not m:
        return False
    area, group, serial = m.groups()
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _nino(v: str) -> bool:
    m = _NINO.match(v.upper())
    return bool(m) and (m.group(1) + m.group(2)) not in _NINO_BAD_PREFIX


def _dni(v: str) -> bool:
    """Spanish DNI (8 digits) or NIE (X/Y/Z + 7 digits): the letter is the number mod 23."""
    m = _DNI.match(v.upper())
    if not m:
        return False
    first, rest, letter = m.groups()
    digits = str("XYZ".index(first)) if first in "XYZ" else first
    return _DNI_LETTERS[int(digits + rest) % 23] == letter


def _bsn(v: str) -> bool:
    """Dutch BSN: 9 digits passing the eleven test (9*d1 + 8*d2 + ... + 2*d8 - d9)."""
    d = v.replace(".", "").replace(" ", "")
    if len(d) != 9 or not d.isdigit() or d == "000000000":
        return False
    total = sum((9 - i) * int(c) for i, c in enumerate(d[:8])) - int(d[8])
    return total % 11 == 0


def _iban(v: str) -> bool:
    """IBAN: country, check digits, account; valid when the rearranged number mod 97 is 1."""
    s = v.replace(" ", "").upper()
    if not _IBAN.match(s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _luhn(v: str) -> bool:
    s = v.replace(" ", "").replace("-", "")
    if not _CARD.match(s) or s[0] == "0":
        return False
    total = 0
    for i, ch in enumerate(reversed(s)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _phone(v: str) -> bool:
    if not _PHONE.match(v) or _DATE.match(v) or _SSN.match(v):
        return False
    digits = sum(ch.isdigit() for ch in v)
    # a bare run of digits is an amount or a code as often as a phone number
    return 7 <= digits <= 15 and (v[0] == "+" or v.startswith("00") or not v.isdigit())


_VALUE_KINDS: tuple[tuple[str, Any], ...] = (
    ("e-mail address", _EMAIL.match),
    ("US social security number", _ssn),
    ("UK national insurance number", _nino),
    ("Spanish DNI/NIE", _dni),
    ("Dutch BSN", _bsn),
    ("IBAN", _iban),
    ("payment card number", _luhn),
    ("phone number", _phone),
)

_QUASI_NAMES: tuple[tuple[str, frozenset[str]], ...] = (
    ("birth year", frozenset({"yob", "birthyear"})),
    ("age", frozenset({"age"})),
    ("postcode", frozenset({"zip", "zipcode", "postcode", "postal", "plz"})),
    ("sex or gender", frozenset({"sex", "gender"})),
    ("race or ethnicity", frozenset({"race", "ethnicity", "ethnic"})),
    ("marital status", frozenset({"marital"})),
    ("nationality", frozenset({"nationality", "citizenship"})),
)
_DIRECT_NAMES: tuple[tuple[str, frozenset[str]], ...] = (
    ("e-mail address", frozenset({"email", "mail"})),
    ("phone number", frozenset({"phone", "mobile", "cellphone", "msisdn"})),
    ("US social security number", frozenset({"ssn"})),
    ("UK national insurance number", frozenset({"nino"})),
    ("Spanish DNI/NIE", frozenset({"dni", "nie", "nif"})),
    ("Dutch BSN", frozenset({"bsn"})),
    ("IBAN", frozenset({"iban"})),
    ("passport number", frozenset({"passport"})),
    ("person name", frozenset({"name", "firstname", "lastname", "surname", "fullname",
                               "forename", "givenname"})),
)


def pii_kind_by_name(name: str) -> tuple[str, str] | None:
    """``(kind, "direct" | "quasi")`` that a column's name announces, or None.

    ``telephone`` alone is not taken for a phone number (German credit's
    ``telephone`` says whether there is one), nor ``name`` inside a longer
    name that is not a person's (``product_name`` is; ``first_name`` is).
    """
    tokens = _tokens(name)
    if not tokens:
        return None
    joined = "_".join(tokens)
    if "birth" in tokens or "birthdate" in joined or "birthday" in joined or joined == "dob":
        if "year" in tokens or "yob" in tokens:
            return "birth year", "quasi"
        return "date of birth", "direct"
    if tokens[-1] in ("card", "pan") or joined in ("card_number", "credit_card", "card_no"):
        return "payment card number", "direct"
    if "national" in tokens and tokens[-1] in ("id", "number", "no"):
        return "national id", "direct"
    for kind, words in _DIRECT_NAMES:
        hits = [t for t in tokens if t in words]
        if not hits:
            continue
        if kind == "person name" and hits == ["name"] and len(tokens) > 1 \
                and tokens[0] not in _PERSON_PREFIXES:
            continue  # product_name, file_name: not a person's
        return kind, "direct"
    for kind, words in _QUASI_NAMES:
        if any(t in words for t in tokens) or (kind == "postcode" and "post_code" in joined):
            return kind, "quasi"
    if joined in ("native_country", "country_of_birth", "birth_country"):
        return "nationality", "quasi"
    return None


def _text(values: Any) -> list[str]:
    return [s for s in (str(v).strip() for v in values if v is not None) if s]


def pii_kind_by_values(values: Sequence[Any], *, distinct_share: float | None = None,
                       dates: bool = False) -> str | None:
    """The kind of personal data that at least :data:`MATCH_SHARE` of ``values`` (text)
    are, checksums included, or None. ``distinct_share`` (of the sample) lets person
    names count: text of capitalised words in which at least half the values are
    distinct. ``dates``: the values are dates (a date column): dates of birth when
    they lie between 1900 and 14 years ago and spread over at least 10 years."""
    head = _text(values[:PATTERN_VALUES] if hasattr(values, "__getitem__") else values)
    if not head:
        return None
    need = MATCH_SHARE * len(head)
    if dates or sum(bool(_DATE.match(v)) for v in head) >= need:
        years = []
        for v in head:
            m = re.search(r"(\d{4})", v)
            if m:
                years.append(int(m.group(1)))
        if len(years) >= need and years:
            import datetime as _dt

            latest = _dt.date.today().year - 14
            inside = sum(1900 <= y <= latest for y in years)
            if inside >= need and max(years) - min(years) >= 10:
                return "date of birth"
        return None
    for kind, test in _VALUE_KINDS:
        if sum(bool(test(v)) for v in head) >= need:
            return kind
    if distinct_share is not None and distinct_share >= NAMED_SHARE and len(head) >= 20 \
            and sum(bool(_PERSON.match(v)) for v in head) >= need:
        return "person name"
    return None


@dataclass(frozen=True)
class PiiFinding:
    """A column holding personal data: which kind, direct or quasi-identifier, found
    by its name or by its values. Never holds a value."""

    column: str
    kind: str
    category: str  # "direct" or "quasi"
    found_by: str  # "name", "values" or "name and values"

    def to_dict(self) -> dict[str, str]:
        return {"column": self.column, "kind": self.kind, "category": self.category,
                "found_by": self.found_by}


def pii_columns(data: Any, columns: Sequence[str] | None = None, *,
                sample_rows: int = PATTERN_VALUES * 10, seed: int = 0) -> list[PiiFinding]:
    """Columns of ``data`` (an :class:`assay.data.Dataset`) holding direct identifiers or
    quasi-identifiers, by name and by the values of a seeded sample of ``sample_rows``
    rows (text and date columns; at most :data:`PATTERN_VALUES` values tested each)."""
    schema = data.schema
    cols = list(columns) if columns is not None else list(data.column_names)
    scan = [c for c in cols if _kind(schema.field(c).type) in ("text", "date")]
    table = data.sample_arrow(sample_rows, seed=seed, columns=scan) if scan else None
    out: list[PiiFinding] = []
    for c in cols:
        by_name = pii_kind_by_name(c)
        by_values = None
        if table is not None and c in scan:
            col = table.column(c)
            if pa.types.is_dictionary(col.type):
                col = pc.cast(col, col.type.value_type)
            kind = _kind(col.type)
            valid = pc.drop_null(col)
            n = len(valid)
            if n:
                share = pc.count_distinct(valid).as_py() / n
                values = valid.slice(0, PATTERN_VALUES).to_pylist()
                by_values = pii_kind_by_values(values, distinct_share=share,
                                               dates=kind == "date")
                if by_values == "date of birth" and kind == "date" and not (
                        by_name and by_name[0] in ("date of birth", "birth year")) \
                        and share < NAMED_SHARE:
                    by_values = None  # a date column of a few dates: an event date
        if by_values is not None:
            category = "direct"
            found = "name and values" if by_name and by_name[0] == by_values else "values"
            out.append(PiiFinding(c, by_values, category, found))
        elif by_name is not None:
            out.append(PiiFinding(c, by_name[0], by_name[1], "name"))
    return out


__all__ = ["DIRECT_KINDS", "DISTINCT_SHARE", "NAMED_SHARE", "QUASI_KINDS", "PiiFinding",
           "identifier_columns", "identifying_name", "pii_columns", "pii_kind_by_name",
           "pii_kind_by_values"]
