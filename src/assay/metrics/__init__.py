"""Mergeable sufficient statistics and the metrics derived from them.

    from assay.metrics import ClassificationStats, classification_summary

    stats = ClassificationStats.from_arrays(y, y_hat, score=p, sensitive={"sex": sex})
    stats.frame(["recall", "selection_rate"], by=["sex"]).difference()
    classification_summary(stats, sensitive=["sex"])   # the results.json block

See ``classification.py`` for which metrics are exact and which are binned,
``regression.py`` for the regression statistic and its bootstrap table,
``bootstrap.py`` for the fast bootstrap, ``fairness.py`` for the fairness
metrics and their two conventions.
"""

from assay.metrics._cells import MISSING
from assay.metrics._formulas import CLASSIFICATION_METRICS, COUNT_METRICS, SCORE_METRICS
from assay.metrics.bootstrap import Bootstrap, RegressionBootstrap, bootstrap
from assay.metrics.classification import DEFAULT_BINS, ClassificationStats, resolve_metric
from assay.metrics.fairness import (
    CONVENTIONS,
    FAIRNESS_METRICS,
    REGRESSION_FAIRNESS_METRICS,
    available_fairness_metrics,
    fairness_report,
    regression_fairness_report,
    two_proportion_p,
)
from assay.metrics.frame import MetricFrame
from assay.metrics.regression import REGRESSION_METRICS, RegressionStats
from assay.metrics.summary import classification_summary, groupings, regression_summary

__all__ = [
    "CLASSIFICATION_METRICS",
    "CONVENTIONS",
    "COUNT_METRICS",
    "DEFAULT_BINS",
    "FAIRNESS_METRICS",
    "MISSING",
    "REGRESSION_FAIRNESS_METRICS",
    "REGRESSION_METRICS",
    "SCORE_METRICS",
    "Bootstrap",
    "ClassificationStats",
    "MetricFrame",
    "RegressionBootstrap",
    "RegressionStats",
    "available_fairness_metrics",
    "bootstrap",
    "classification_summary",
    "fairness_report",
    "groupings",
    "regression_fairness_report",
    "regression_summary",
    "resolve_metric",
    "two_proportion_p",
]
