"""The UCI Adult (Census Income) data shipped in ``adult.csv.gz`` (see README.md)."""

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


def load_adult(*, missing_as_nan: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The UCI Adult data as ``(train, test)`` DataFrames.

    Columns are :data:`ADULT_COLUMNS`; the target ``income`` is ``">50K"`` or
    ``"<=50K"``. Missing categorical values are kept as the string ``"?"``
    as published, unless ``missing_as_nan=True``.
    """
    ref = resources.files("assay.datasets").joinpath(ADULT_FILE)
    with resources.as_file(ref) as path:
        df = pd.read_csv(path, compression="gzip", keep_default_na=False,
                         na_values=["?"] if missing_as_nan else [])
    split = df.pop("split")
    train = df[split == "train"].reset_index(drop=True)
    test = df[split == "test"].reset_index(drop=True)
    return train, test
