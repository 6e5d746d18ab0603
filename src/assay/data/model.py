"""Model adapter: a fitted scikit-learn-style estimator behind one small interface.

.. warning::
   joblib and pickle files run code when they are loaded. :func:`load_model`
   scans a file first and refuses one that names code outside an allow-list
   (see :mod:`assay.data.modelfile`); the scan cannot vouch for the allowed
   packages themselves. Prefer ``.skops`` files.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assay.data.roles import match_label
from assay.errors import InputError, ModelLoadError

#: Predictions on fewer rows than this run on one native thread (OpenMP, BLAS). A
#: small batch gains almost nothing from several threads, and when the machine is
#: busy a parallel region waits for its slowest thread: a 2,000-row prediction of a
#: gradient-boosting pipeline then takes seconds instead of milliseconds.
SINGLE_THREAD_ROWS = 100_000

#: Classifiers whose ``predict`` is, by its definition in scikit-learn, the class of
#: highest ``predict_proba`` (binary: the positive class when its probability is above
#: one half, which is what a raw score above 0 means for the boosting and linear
#: models). For these (exact classes, not subclasses, alone or as the last step of a
#: ``Pipeline``) :meth:`ModelAdapter.predict_and_proba` takes the decisions from the
#: probabilities instead of running the model a second time.
DECIDES_BY_PROBA = frozenset({
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._gb.GradientBoostingClassifier",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.linear_model._logistic.LogisticRegression",
})

#: A row whose two highest probabilities are closer than this is not decided from the
#: probabilities (rounding could put it on either side): if any row is that close,
#: ``predict`` is called after all.
DECISION_MARGIN = 1e-9


class ModelAdapter:
    """A fitted estimator with ``predict`` (and usually ``predict_proba``).

    ``digest`` is the SHA-256 of the model file's bytes (or of the pickled
    estimator when built from an object); ``kind`` names the estimator
    ("sklearn Pipeline", "sklearn LogisticRegression", or the class name).
    """

    def __init__(self, estimator: Any, *, name: str = "model", digest: str | None = None,
                 path: Path | None = None) -> None:
        if not callable(getattr(estimator, "predict", None)):
            raise ModelLoadError(
                f"{name}: a {type(estimator).__name__} has no predict() method; "
                "expected a fitted scikit-learn estimator or Pipeline")
        self.estimator = estimator
        self.name = name
        self.path = path
        self._digest = digest
        self._threadpools: Any = None
        #: The scan of the model file (assay.data.modelfile.ScanResult); None in memory.
        self.scan: Any = None

    @classmethod
    def from_estimator(cls, estimator: Any, *, name: str | None = None) -> ModelAdapter:
        """Wrap an estimator already in memory."""
        return cls(estimator, name=name or type(estimator).__name__)

    def __repr__(self) -> str:
        return f"ModelAdapter({self.name!r}, kind={self.kind!r})"

    @property
    def digest(self) -> str:
        if self._digest is None:
            try:
                blob = pickle.dumps(self.estimator, protocol=5)
            except Exception as exc:
                raise ModelLoadError(f"{self.name}: cannot compute a digest ({exc})") from None
            self._digest = hashlib.sha256(blob).hexdigest()
        return self._digest

    @property
    def kind(self) -> str:
        cls = type(self.estimator)
        if cls.__module__.split(".")[0] == "sklearn":
            return f"sklearn {cls.__name__}"
        return f"{cls.__module__}.{cls.__name__}"

    @property
    def has_proba(self) -> bool:
        return callable(getattr(self.estimator, "predict_proba", None))

    @property
    def classes(self) -> list[Any] | None:
        c = getattr(self.estimator, "classes_", None)
        return None if c is None else list(np.asarray(c).tolist())

    @property
    def feature_names(self) -> list[str] | None:
        """The column names the model was fitted on, when it records them."""
        names = getattr(self.estimator, "feature_names_in_", None)
        return None if names is None else [str(n) for n in names]

    def input_columns(self, fallback: Sequence[str]) -> list[str]:
        """The model's input columns: its fitted names, else ``fallback``."""
        return self.feature_names or list(fallback)

    def _frame(self, df: Any) -> Any:
        names = self.feature_names
        if names is not None and isinstance(df, pd.DataFrame):
            missing = [c for c in names if c not in df.columns]
            if missing:
                raise InputError(
                    f"{self.name}: the model expects column(s) {', '.join(missing)} "
                    "which the data does not have")
            return df[names]
        return df

    def _threads(self, n_rows: int) -> contextlib.AbstractContextManager[Any]:
        """Native thread pools limited to one thread for a prediction on ``n_rows`` rows
        (below :data:`SINGLE_THREAD_ROWS`); unchanged otherwise or without threadpoolctl."""
        if n_rows >= SINGLE_THREAD_ROWS:
            return contextlib.nullcontext()
        if self._threadpools is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:  # scikit-learn depends on it; another model may not
                self._threadpools = False
            else:  # inspects the native libraries loaded by now, the model's included
                self._threadpools = ThreadpoolController()
        if self._threadpools is False:
            return contextlib.nullcontext()
        return self._threadpools.limit(limits=1)

    def predict(self, df: Any, *, rows: tuple[int, int] | None = None) -> np.ndarray:
        """The model's decisions for the rows of ``df``."""
        X = self._frame(df)
        try:
            with self._threads(len(X)):
                out = np.asarray(self.estimator.predict(X))
        except Exception as exc:
            raise ModelLoadError(f"{self.name}: predict() failed{_where(rows)}: "
                                 f"{type(exc).__name__}: {exc}") from None
        return self._check_len(out.reshape(len(out), -1)[:, 0] if out.ndim > 1 else out,
                               len(X), "predict", rows)

    def predict_proba(self, df: Any, *, positive_label: Any = None,
                      rows: tuple[int, int] | None = None) -> np.ndarray:
        """Probability of the positive class (``positive_label``, else the last class)."""
        proba, n = self._proba(df, rows)
        return self._positive(proba, n, positive_label, rows)

    def _proba(self, df: Any, rows: tuple[int, int] | None) -> tuple[np.ndarray, int]:
        """The estimator's ``predict_proba`` output and the number of rows it scored."""
        if not self.has_proba:
            raise ModelLoadError(f"{self.name}: a {type(self.estimator).__name__} has no "
                                 "predict_proba(); scores are not available")
        X = self._frame(df)
        try:
            with self._threads(len(X)):
                proba = np.asarray(self.estimator.predict_proba(X), dtype=np.float64)
        except Exception as exc:
            raise ModelLoadError(f"{self.name}: predict_proba() failed{_where(rows)}: "
                                 f"{type(exc).__name__}: {exc}") from None
        return proba, len(X)

    def predict_proba_matrix(self, df: Any, *, rows: tuple[int, int] | None = None
                             ) -> np.ndarray:
        """Every class's probability (one column per class of :attr:`classes`, in order)."""
        proba, n = self._proba(df, rows)
        classes = self.classes
        if proba.ndim != 2 or classes is None or proba.shape[1] != len(classes):
            raise ModelLoadError(f"{self.name}: predict_proba() returned an array of shape "
                                 f"{proba.shape}; expected one column per class of classes_ "
                                 f"({classes})")
        self._check_len(proba, n, "predict_proba", rows)
        return proba

    def predict_and_proba_matrix(self, df: Any, *, rows: tuple[int, int] | None = None
                                 ) -> tuple[np.ndarray, np.ndarray]:
        """``(predict(df), predict_proba_matrix(df))`` with one pass of the model where
        that is exact (as :meth:`predict_and_proba`)."""
        one = self._one_pass(df)
        if one is None:
            return self.predict(df, rows=rows), self.predict_proba_matrix(df, rows=rows)
        pred, proba, n = one
        return self._check_len(pred, n, "predict", rows), self._check_len(proba, n,
                                                                           "predict_proba", rows)

    def predict_and_proba(self, df: Any, *, positive_label: Any = None,
                          rows: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(predict(df), predict_proba(df, positive_label=...))``, the same arrays as the
        two calls give, computed with one pass of the model where that is exact.

        For a classifier of :data:`DECIDES_BY_PROBA` (or a ``Pipeline`` ending in one:
        its transformers run once, as ``Pipeline.predict`` runs them) the decisions are
        the classes of highest probability; when two probabilities of a row are within
        :data:`DECISION_MARGIN` of each other, ``predict`` decides. Any other model, and
        any failure, goes through ``predict`` and ``predict_proba`` as called apart (so
        an error names the method that failed).
        """
        one = self._one_pass(df)
        if one is None:
            return (self.predict(df, rows=rows),
                    self.predict_proba(df, positive_label=positive_label, rows=rows))
        pred, proba, n = one
        return (self._check_len(pred, n, "predict", rows),
                self._positive(proba, n, positive_label, rows))

    def _one_pass(self, df: Any) -> tuple[np.ndarray, np.ndarray, int] | None:
        """Decisions and the probability matrix from one ``predict_proba`` of the final
        estimator, or None when that is not known to equal ``predict``."""
        est, steps = self.estimator, []
        if _qualname(est) == "sklearn.pipeline.Pipeline":
            try:
                *steps, (_, est) = list(est.steps)
            except (AttributeError, TypeError, ValueError):
                return None
        if _qualname(est) not in DECIDES_BY_PROBA or not self.has_proba:
            return None
        classes = getattr(est, "classes_", None)  # a list of arrays for several outputs
        if not isinstance(classes, np.ndarray) or classes.ndim != 1 or len(classes) < 2:
            return None
        X = self._frame(df)
        try:
            with self._threads(len(X)):
                Xt = X
                for _, step in steps:  # what Pipeline.predict runs before its last step
                    if step is not None and not (isinstance(step, str)
                                                 and step == "passthrough"):
                        Xt = step.transform(Xt)
                proba = np.asarray(est.predict_proba(Xt), dtype=np.float64)
                if proba.ndim != 2 or proba.shape != (len(X), len(classes)):
                    return None
                top = np.argmax(proba, axis=1)
                if len(classes) == 2:
                    gap = np.abs(proba[:, 1] - proba[:, 0])
                else:
                    part = np.partition(proba, -2, axis=1)
                    gap = part[:, -1] - part[:, -2]
                if np.any(~(gap > DECISION_MARGIN)):  # a near tie (or NaN): ask predict
                    pred = np.asarray(est.predict(Xt))
                else:
                    pred = np.asarray(classes)[top]
        except Exception:
            return None
        if pred.ndim != 1:
            return None
        return pred, proba, len(X)

    def _positive(self, proba: np.ndarray, n: int, positive_label: Any,
                  rows: tuple[int, int] | None) -> np.ndarray:
        """The positive class's column of a ``predict_proba`` result on ``n`` rows."""
        if proba.ndim == 1:
            return self._check_len(proba, n, "predict_proba", rows)
        col = proba.shape[1] - 1
        classes = self.classes
        if positive_label is not None and classes is not None:
            hit = match_label(classes, positive_label)
            if hit is None:
                raise ModelLoadError(
                    f"{self.name}: the positive label {positive_label!r} is not one of the "
                    f"model's classes {classes}")
            col = classes.index(hit)
        return self._check_len(proba[:, col], n, "predict_proba", rows)

    def _check_len(self, out: np.ndarray, n: int, what: str,
                   rows: tuple[int, int] | None) -> np.ndarray:
        if len(out) != n:
            raise ModelLoadError(f"{self.name}: {what}() returned {len(out)} values for "
                                 f"{n} rows{_where(rows)}")
        return out


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _where(rows: tuple[int, int] | None) -> str:
    return f" on rows {rows[0]}..{rows[1] - 1}" if rows else ""


def load_model(path: str | Path, *, trust: bool = False,
               allow: Iterable[str] = ()) -> ModelAdapter:
    """Load a fitted estimator saved with joblib, pickle or skops.

    The file is scanned first (:func:`assay.data.modelfile.scan_model_file`):
    a pickle or joblib file that names code outside the allow-list (NumPy,
    SciPy, scikit-learn, pandas, XGBoost, LightGBM, CatBoost, statsmodels,
    plus ``allow``) is refused with
    :class:`~assay.data.modelfile.UnsafeModelError`, without being loaded,
    unless ``trust`` is true. A ``.skops`` file is loaded with skops, which
    builds only the types the scan allowed. The scan result is kept on the
    adapter (``adapter.scan``) for the certification's ``security.model_file``
    check. Raises :class:`~assay.errors.ModelLoadError` if the file is
    missing, is not a model file, or holds something without ``predict``.
    """
    from assay.data.modelfile import SKOPS, UnsafeModelError, scan_model_file

    p = Path(path)
    scan = scan_model_file(p, allow=allow)
    if scan.error and not scan.imports:  # not a model file at all: nothing to trust
        raise ModelLoadError(f"{p}: {scan.error}")
    if not scan.safe:
        if not trust:
            raise UnsafeModelError(
                f"{p}: refused to load the model file: it {scan.describe()} "
                f"(sha256 {scan.sha256}); loading it could run that code. If you trust "
                "the file's source, load it with {trust_model_file}",
                details=scan.to_dict(), fields={"trust_model_file": "trust=True"})
        scan.trusted = True
    if scan.format == SKOPS:
        import skops.io

        try:
            obj = skops.io.load(p, trusted=list(scan.imports))
        except Exception as exc:
            raise ModelLoadError(f"{p}: not a loadable skops model file "
                                 f"({type(exc).__name__}: {exc})") from None
    else:
        obj = _unpickle(p)
    adapter = ModelAdapter(obj, name=str(p), digest=scan.sha256, path=p)
    try:
        from sklearn.base import BaseEstimator
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        if isinstance(obj, BaseEstimator):
            check_is_fitted(obj)
    except NotFittedError:
        raise ModelLoadError(f"{p}: the {type(obj).__name__} in this file is not fitted; "
                             "save the estimator after calling fit()") from None
    except TypeError:
        pass
    adapter.scan = scan
    return adapter


def _unpickle(p: Path) -> Any:
    import joblib

    try:
        return joblib.load(p)
    except Exception as exc:
        try:
            with open(p, "rb") as fh:
                return pickle.load(fh)
        except Exception:
            raise ModelLoadError(
                f"{p}: not a joblib or pickle model file ({type(exc).__name__}: {exc})") from None
