"""Small predictions run on one native thread; large ones keep the machine's threads.

A parallel region (OpenMP in scikit-learn's gradient boosting, BLAS in linear
models) waits for its slowest thread; on a busy machine a 2,000-row
prediction then takes seconds. The robustness checks predict on samples of
that size many times, so the adapter runs such predictions single-threaded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from assay.data import ModelAdapter
from assay.data.model import SINGLE_THREAD_ROWS


class ThreadProbe:
    """Records how many threads the native pools would use during each call."""

    classes_ = np.array([0, 1])

    def __init__(self) -> None:
        self.seen: list[int] = []

    def _record(self, X: pd.DataFrame) -> None:
        pools = [p["num_threads"] for p in threadpool_info()
                 if p["user_api"] in ("openmp", "blas")]
        self.seen.append(max(pools))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        self._record(X)
        return np.zeros(len(X), dtype=int)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self._record(X)
        return np.full((len(X), 2), 0.5)


@pytest.fixture(scope="module", autouse=True)
def _native_pools():
    # scikit-learn's gradient boosting brings the OpenMP runtime, NumPy brings BLAS
    import sklearn.ensemble  # noqa: F401

    if not [p for p in threadpool_info() if p["user_api"] in ("openmp", "blas")]:
        pytest.skip("no native thread pool is loaded")


def test_small_predictions_are_single_threaded_large_ones_are_not():
    probe = ThreadProbe()
    adapter = ModelAdapter.from_estimator(probe)
    small = pd.DataFrame({"x": np.arange(2_000.0)})
    large = pd.DataFrame({"x": np.zeros(SINGLE_THREAD_ROWS)})
    with threadpool_limits(limits=2):
        adapter.predict(small)
        adapter.predict_proba(small)
        adapter.predict(large)
        adapter.predict_proba(large)
        after = max(p["num_threads"] for p in threadpool_info()
                    if p["user_api"] in ("openmp", "blas"))
    assert probe.seen == [1, 1, 2, 2]
    assert after == 2  # the limit ends with the prediction


def test_a_failing_prediction_restores_the_threads():
    class Broken(ThreadProbe):
        def predict(self, X: pd.DataFrame) -> np.ndarray:
            raise ValueError("boom")

    adapter = ModelAdapter.from_estimator(Broken())
    with threadpool_limits(limits=2):
        with pytest.raises(Exception, match="boom"):
            adapter.predict(pd.DataFrame({"x": [1.0, 2.0]}))
        assert max(p["num_threads"] for p in threadpool_info()
                   if p["user_api"] in ("openmp", "blas")) == 2
