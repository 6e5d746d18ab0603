"""A model that sleeps in predict, for the operational checks (importable by the fresh
process that times it: tests/ is put on its PYTHONPATH)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


class SlowModel:
    """Wraps a fitted estimator and sleeps ``delay`` seconds per call."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.classes_ = inner.classes_
        self.feature_names_in_ = inner.feature_names_in_

    def predict(self, X: Any) -> np.ndarray:
        time.sleep(self.delay)
        return self.inner.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        time.sleep(self.delay)
        return self.inner.predict_proba(X)
