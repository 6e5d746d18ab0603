"""Reading data and models: column roles, data sets, model adapters.

    from assay.data import ColumnRoles, open_dataset, load_model

    roles = ColumnRoles(target="income", positive_label=">50K", sensitive=["sex", "race"])
    data = open_dataset("adult_test.parquet", roles)
    model = load_model("model.joblib")      # trusted files only: loading runs code
    for batch in data.with_model(model, roles):
        ...
"""

from assay.data.dataset import (
    DEFAULT_BATCH_SIZE,
    CsvOptions,
    Dataset,
    open_dataset,
    validate_dataset,
)
from assay.data.model import ModelAdapter, load_model
from assay.data.roles import MODEL_PREDICTION, MODEL_SCORE, ColumnRoles, match_label

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "MODEL_PREDICTION",
    "MODEL_SCORE",
    "ColumnRoles",
    "CsvOptions",
    "Dataset",
    "ModelAdapter",
    "load_model",
    "match_label",
    "open_dataset",
    "validate_dataset",
]
