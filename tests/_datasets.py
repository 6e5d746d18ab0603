"""Where the real data sets live: ``shared/datasets`` beside the repository.

``ASSAY_DATASETS`` overrides the location. The tests that read them fail
(rather than skip) when they cannot be found, so a CI run can never pass
without having checked the numbers on real data.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


def _find() -> Path:
    candidates = [
        Path(os.environ["ASSAY_DATASETS"]) if os.environ.get("ASSAY_DATASETS") else None,
        _REPO.parent / "shared" / "datasets",
        Path("/work/shared/datasets"),
    ]
    for c in candidates:
        if c is not None and (c / "adult" / "adult.data").is_file():
            return c
    raise RuntimeError(
        "the real data sets were not found: put shared/datasets beside the repository "
        "or set ASSAY_DATASETS"
    )


DATASETS = _find()
