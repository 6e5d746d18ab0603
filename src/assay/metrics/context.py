"""Statistics of a certification's evaluation data, computed once and shared.

A certification context (``assay.checks.base.CheckContext``) gives the
evaluation :class:`assay.data.Dataset`, the column roles, the model (if any)
and the policy settings. :func:`classification_stats` streams the data batch
by batch into a :class:`ClassificationStats` (merged as it goes) and caches
it with ``ctx.cached``, so every metric and fairness check, and the metrics
summary of ``results.json``, read the same single pass. With a model and no
prediction column, the model's predictions and scores are added on the fly
(``Dataset.with_model``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from assay.errors import InputError
from assay.metrics.bootstrap import Bootstrap, RegressionBootstrap
from assay.metrics.classification import DEFAULT_BINS, ClassificationStats
from assay.metrics.regression import RegressionStats

KEY_CLASSIFICATION = "metrics.classification_stats"
KEY_REGRESSION = "metrics.regression_stats"
KEY_BOOTSTRAP = "metrics.bootstrap"
KEY_REGRESSION_BOOTSTRAP = "metrics.regression_bootstrap"


@dataclass(frozen=True)
class MetricSettings:
    """The policy settings the metrics read (defaults when the policy gives none)."""

    min_group_size: int = 30
    replicates: int = 1000
    confidence: float = 0.95
    seed: int = 0


def settings_of(ctx: Any) -> MetricSettings:
    s = getattr(ctx, "settings", None)
    boot = getattr(s, "bootstrap", None)
    d = MetricSettings()
    return MetricSettings(
        min_group_size=int(getattr(s, "min_group_size", d.min_group_size)),
        replicates=int(getattr(boot, "replicates", d.replicates)),
        confidence=float(getattr(boot, "confidence", d.confidence)),
        seed=int(getattr(boot, "seed", d.seed)),
    )


def _batches(ctx: Any, task: str) -> tuple[Any, Iterator[pa.RecordBatch]]:
    """The roles naming the output columns, and the batches to read."""
    out_roles, use_model, data_cols = _plan(ctx, task)
    if use_model:
        return out_roles, ctx.evaluation.with_model(ctx.model, ctx.roles, columns=data_cols)
    return out_roles, ctx.evaluation.batches(columns=data_cols)


def _plan(ctx: Any, task: str) -> tuple[Any, bool, list[str]]:
    """The roles naming the output columns, whether the model adds them, and the data
    columns to read."""
    roles = ctx.roles
    if getattr(roles, "target", None) is None:
        raise InputError("metrics need the target column (target=...)")
    ds = ctx.evaluation
    names = list(getattr(ds, "column_names", None) or ds.schema.names)
    model = getattr(ctx, "model", None)
    use_model = model is not None and (roles.prediction is None or roles.prediction not in names)
    if use_model:
        out_roles = roles.with_model_outputs(has_score=bool(getattr(model, "has_proba", False)))
    else:
        out_roles = roles
    if task == "classification" and out_roles.prediction is None and out_roles.score is None:
        raise InputError("classification metrics need a prediction column, a score column "
                         "or a model")
    if task == "regression" and out_roles.prediction is None:
        raise InputError("regression metrics need a prediction column or a model")
    data_cols = [c for c in (roles.target, roles.weight, *roles.sensitive) if c]
    if not use_model:
        data_cols += [c for c in (roles.prediction, roles.score) if c]
    return out_roles, use_model, list(dict.fromkeys(data_cols))


def _fold(ctx: Any, task: str, build: Any) -> Any:
    """The statistic built by an engine that computes it where the data lives (the
    Spark engine's ``fold_batches``), or None to stream the batches here."""
    fold = getattr(ctx.evaluation, "fold_batches", None)
    if fold is None:
        return None
    _, use_model, data_cols = _plan(ctx, task)
    return fold(build, columns=data_cols, model=ctx.model if use_model else None,
                roles=ctx.roles)


def _progress(ctx: Any, description: str) -> Any:
    """The context's progress task (a context manager with ``advance``), or a no-op."""
    fn = getattr(ctx, "progress", None)
    handle = fn(description, None) if callable(fn) else None
    return handle if hasattr(handle, "__enter__") else contextlib.nullcontext(None)


def _compute_classification(ctx: Any) -> ClassificationStats:
    roles, batches = _batches(ctx, "classification")
    threshold = float(getattr(roles, "threshold", 0.5))

    def build(batch: pa.RecordBatch) -> ClassificationStats:
        return ClassificationStats.from_batch(
            batch, target=roles.target, prediction=roles.prediction, score=roles.score,
            sensitive=list(roles.sensitive), weight=roles.weight,
            positive_label=roles.positive_label, threshold=threshold, n_bins=DEFAULT_BINS)

    stats: ClassificationStats | None = _fold(ctx, "classification", build)
    with _progress(ctx, "Computing metric statistics") as task:
        for batch in batches if stats is None else ():
            part = build(batch)
            stats = part if stats is None else stats.merge(part)
            if hasattr(task, "advance"):
                task.advance(batch.num_rows)
    if stats is None or stats.n == 0:
        raise InputError(f"{getattr(ctx.evaluation, 'name', 'evaluation data')}: no rows")
    return stats


def _compute_regression(ctx: Any) -> RegressionStats:
    roles, batches = _batches(ctx, "regression")

    def build(batch: pa.RecordBatch) -> RegressionStats:
        return RegressionStats.from_batch(batch, target=roles.target,
                                          prediction=roles.prediction,
                                          sensitive=list(roles.sensitive), weight=roles.weight)

    stats: RegressionStats | None = _fold(ctx, "regression", build)
    with _progress(ctx, "Computing metric statistics") as task:
        for batch in batches if stats is None else ():
            part = build(batch)
            stats = part if stats is None else stats.merge(part)
            if hasattr(task, "advance"):
                task.advance(batch.num_rows)
    if stats is None or stats.n == 0:
        raise InputError(f"{getattr(ctx.evaluation, 'name', 'evaluation data')}: no rows")
    return stats


def classification_stats(ctx: Any) -> ClassificationStats:
    """The evaluation data's :class:`ClassificationStats`, computed once per certification."""
    return ctx.cached(KEY_CLASSIFICATION, lambda: _compute_classification(ctx))


def regression_stats(ctx: Any) -> RegressionStats:
    """The evaluation data's :class:`RegressionStats`, computed once per certification."""
    return ctx.cached(KEY_REGRESSION, lambda: _compute_regression(ctx))


def shared_bootstrap(ctx: Any) -> Bootstrap | None:
    """Bootstrap replicates of :func:`classification_stats` with the policy's settings
    (``None`` when the policy asks for 0 replicates)."""
    st = settings_of(ctx)
    if st.replicates <= 0:
        return None

    def make() -> Bootstrap:
        return Bootstrap(classification_stats(ctx), n_boot=st.replicates, seed=st.seed,
                         confidence=st.confidence)

    return ctx.cached(KEY_BOOTSTRAP, make)


def shared_regression_bootstrap(ctx: Any) -> RegressionBootstrap | None:
    """Bootstrap replicates of :func:`regression_stats` with the policy's settings
    (``None`` when the policy asks for 0 replicates)."""
    st = settings_of(ctx)
    if st.replicates <= 0:
        return None

    def make() -> RegressionBootstrap:
        return RegressionBootstrap(regression_stats(ctx), n_boot=st.replicates, seed=st.seed,
                                   confidence=st.confidence)

    return ctx.cached(KEY_REGRESSION_BOOTSTRAP, make)
