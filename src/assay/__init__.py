"""assay: certify, govern and monitor machine-learning models with evidence.

    import assay

    cert = assay.certify(data="test.parquet", policy="default", tier="high",
                         target="label", model="model.joblib", sensitive=["sex"])
    print(cert.status)
    cert.write("out/")

The names below are imported on first use, so ``import assay`` stays cheap
and a command that needs none of them does not load NumPy or pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "certify": "assay.certification",
    "Certification": "assay.certification",
    "load_policy": "assay.policy",
    "Policy": "assay.policy",
    "ColumnRoles": "assay.data",
    "Dataset": "assay.data",
    "ModelAdapter": "assay.data",
    "open_dataset": "assay.data",
    "load_model": "assay.data",
    "ClassificationStats": "assay.metrics",
    "RegressionStats": "assay.metrics",
    "MetricFrame": "assay.metrics",
}

__all__ = ["__version__", *_EXPORTS]

#: public submodules loaded on first use (``assay.explain.reason_codes(...)``)
_SUBMODULES = frozenset({"explain"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"assay.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'assay' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise AttributeError(f"assay.{name} is not available in this installation ({exc})") \
            from exc
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
