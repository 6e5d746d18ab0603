"""Data sets shipped inside the package, so that ``assay demo`` runs offline.

``load_adult()`` returns the UCI Adult (Census Income) data as published,
split as published (32,561 training rows, 16,281 test rows), with a header
row and the values cleaned (see ``README.md`` in this folder).
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

ADULT_COLUMNS: tuple[str, ...] = (
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
    "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
    "hours_per_week", "native_country", "income",
)
ADULT_TARGET = "income"
ADULT_POSITIVE_LABEL = ">50K"
ADULT_FILE = "adult.csv.gz"

__all__ = [
    "ADULT_COLUMNS",
    "ADULT_POSITIVE_LABEL",
    "ADULT_TARGET",
    "load_adult",
]


def load_adult(*, missing_as_nan: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The UCI Adult data as ``(train, test)`` DataFrames.

    Columns are :data:`ADULT_COLUMNS`; the target ``income`` is ``">50K"`` or
    ``"<=50K"``. Missing categorical values are kept as the string ``"?"``
    as published, unless ``missing_as_nan=True``.
    """
    ref = resources.files(__name__).joinpath(ADULT_FILE)
    with resources.as_file(ref) as path:
        df = pd.read_csv(path, compression="gzip", keep_default_na=False,
                         na_values=["?"] if missing_as_nan else [])
    split = df.pop("split")
    train = df[split == "train"].reset_index(drop=True)
    test = df[split == "test"].reset_index(drop=True)
    return train, test
