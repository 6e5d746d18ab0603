"""Data sets shipped inside the package, so that ``assay demo`` runs offline.

``load_adult()`` returns the UCI Adult (Census Income) data as published,
split as published (32,561 training rows, 16,281 test rows), with a header
row and the values cleaned (see ``README.md`` in this folder).
"""

from assay.datasets.adult import (
    ADULT_COLUMNS,
    ADULT_FILE,
    ADULT_POSITIVE_LABEL,
    ADULT_TARGET,
    load_adult,
)

__all__ = [
    "ADULT_COLUMNS",
    "ADULT_FILE",
    "ADULT_POSITIVE_LABEL",
    "ADULT_TARGET",
    "load_adult",
]
