"""Errors that assay reports to people.

Every error a user can cause derives from :class:`AssayError`. The CLI prints
``str(err)`` on one line and exits with ``err.exit_code`` (2 for bad input);
the REST service maps them to JSON error bodies. Messages say *where* (file,
column, policy line) and *what was expected*; never raise a bare ValueError
for something the user typed or supplied.
"""

from __future__ import annotations


class AssayError(Exception):
    """Base class for errors that are shown to the user without a traceback."""

    exit_code: int = 2
    code: str = "assay_error"

    def __init__(self, message: str, *, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

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


def column_error(column: str, source: str | None, expected: str,
                 got: str | None = None) -> InputError:
    """Build a uniform error about one column of one data source."""
    where = f"{source}: " if source else ""
    tail = f", got {got}" if got is not None else ""
    return InputError(f"{where}column '{column}': expected {expected}{tail}")
