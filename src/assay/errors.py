"""Errors that assay reports to people.

Every error a user can cause derives from :class:`AssayError`. The CLI prints
``str(err)`` on one line and exits with ``err.exit_code`` (2 for bad input);
the REST service maps them to JSON error bodies. Messages say *where* (file,
column, policy line) and *what was expected*; never raise a bare ValueError
for something the user typed or supplied.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

_FIELD = re.compile(r"\{(\w+)\}")


class AssayError(Exception):
    """Base class for errors that are shown to the user without a traceback.

    A message about arguments the caller gave names them as ``{field}``
    placeholders listed in ``fields``, so that each face can name them as its
    user knows them: the Python API by its keyword (``model``, or the text
    that ``fields`` maps it to, such as ``model=...``), the command line by its
    flag (``--model``, through :meth:`rename`)::

        InputError("{task}: expected 'classification' or 'regression'", fields=["task"])
    """

    exit_code: int = 2
    code: str = "assay_error"

    def __init__(self, message: str, *, details: dict | None = None,
                 fields: Iterable[str] | Mapping[str, str] = ()) -> None:
        self.fields: dict[str, str] = (dict(fields) if isinstance(fields, Mapping)
                                       else {f: f for f in fields})
        self.template = message
        self.message = self.render()
        super().__init__(self.message)
        self.details = details or {}

    def render(self, names: Mapping[str, str] | None = None) -> str:
        """The message with each field named by ``names``, else as the Python API names it."""
        if not self.fields:
            return self.template
        names = names or {}
        return _FIELD.sub(lambda m: names.get(m[1], self.fields[m[1]]) if m[1] in self.fields
                          else m[0], self.template)

    def rename(self, names: Mapping[str, str]) -> AssayError:
        """Name the fields of this error as ``names`` says (``{"model": "--model"}``)."""
        self.message = self.render(names)
        self.args = (self.message,)
        return self

    def __str__(self) -> str:
        return self.message


class InputError(AssayError):
    """Bad data, columns, files or arguments supplied by the user."""

    code = "bad_input"


class PolicyError(AssayError):
    """An invalid policy file (the message names file, line and field)."""

    code = "bad_policy"


class ModelLoadError(AssayError):
    """A model file that cannot be loaded or does not behave like a model."""

    code = "bad_model"


class NotFoundError(AssayError):
    """An unknown model, version, user or other record."""

    code = "not_found"


class PermissionDenied(AssayError):
    """A role acting outside its rights."""

    code = "forbidden"


class ConflictError(AssayError):
    """A stale version, a stage acted on out of order, a separation-of-duties violation."""

    code = "conflict"


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """``"; did you mean 'x'?"`` for the choices close to ``word`` (case ignored), else ``""``."""
    by_key: dict[str, str] = {}
    for c in choices:
        by_key.setdefault(str(c).casefold(), str(c))
    close = difflib.get_close_matches(str(word).casefold(), list(by_key), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{by_key[c]}'" for c in close) + "?"


def column_error(column: str, source: str | None, expected: str,
                 got: str | None = None) -> InputError:
    """Build a uniform error about one column of one data source."""
    where = f"{source}: " if source else ""
    tail = f", got {got}" if got is not None else ""
    return InputError(f"{where}column '{column}': expected {expected}{tail}")


def choice_error(name: str, given: object, choices: Iterable[object]) -> InputError:
    """``--format: expected 'table' or 'json', got 'jsn'; did you mean 'json'?``"""
    names = [str(c) for c in choices]
    quoted = [f"'{n}'" for n in names]
    expected = " or ".join(quoted) if len(quoted) <= 2 else "one of " + ", ".join(quoted)
    return InputError(f"{name}: expected {expected}, got {str(given)!r}"
                      + did_you_mean(given, names))
