"""The multiclass statistic and score sample of a certification, computed once and shared.

One streaming pass over the evaluation data (with the model's predictions and
per-class probabilities added on the fly when a model is given) builds the
:class:`~assay.metrics.multiclass.MulticlassStats` of every row and the
:class:`~assay.metrics.multiclass.ScoreSample` of a seeded sample of rows
(``sample_rows``; the seed is the policy's bootstrap seed). Both are cached on
the certification context, so every multiclass check, the multiclass fairness
checks and the ``metrics`` block of ``results.json`` read the same pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from assay.errors import InputError
from assay.metrics import _cells
from assay.metrics.context import _progress, settings_of
from assay.metrics.multiclass import (
    DEFAULT_SAMPLE_ROWS,
    MC_COUNT_METRICS,
    MC_SCORE_METRICS,
    MulticlassBootstrap,
    MulticlassStats,
    ScoreSample,
    class_table,
    normalise_proba,
    percentile_interval,
    reliability,
    sample_indices,
    score_point,
    score_replicates,
)

KEY_STATS = "metrics.multiclass_stats"
KEY_BOOTSTRAP = "metrics.multiclass_bootstrap"


def _label(v: Any) -> str:
    return _cells._label(v)


def _compute(ctx: Any, sample_rows: int) -> tuple[MulticlassStats, ScoreSample | None]:
    roles = ctx.roles
    ds = ctx.evaluation
    if roles.target is None:
        raise InputError("multiclass metrics need the target column (target=...)")
    if roles.score is not None:
        raise InputError(f"column '{roles.target}' (the target) holds more than two classes, "
                         f"so the model is multiclass, and score column '{roles.score}' "
                         "cannot hold the probabilities of every class: give one column per "
                         "class (class_scores, --class-scores CLASS=COL,...) or the model, or "
                         "a binary target")
    if roles.weight is not None:
        raise InputError(f"column '{roles.weight}': weights are not supported for multiclass "
                         "classification; certify without --weight")
    names = list(ds.column_names)
    model = getattr(ctx, "model", None)
    use_model = model is not None and (roles.prediction is None or roles.prediction not in names)
    class_scores = dict(roles.class_scores or {})
    if not use_model and roles.prediction is None and not class_scores:
        raise InputError("multiclass metrics need a prediction column, per-class score columns "
                         "(class_scores) or a model")
    model_proba = use_model and bool(getattr(model, "has_proba", False)) and not class_scores
    score_classes: list[str] = []
    if class_scores:
        score_classes = list(class_scores)
    elif model_proba:
        score_classes = [_label(c) for c in (model.classes or [])]
    data_cols = [c for c in (roles.target, *roles.sensitive) if c]
    if not use_model and roles.prediction:
        data_cols.append(roles.prediction)
    data_cols += list(class_scores.values())
    data_cols = list(dict.fromkeys(data_cols))
    read = data_cols
    inputs: list[str] = []
    if use_model:
        inputs = model.input_columns(roles.feature_columns(names))
        read = list(dict.fromkeys([*data_cols, *inputs]))
    total = int(ds.num_rows)
    pick = sample_indices(total, sample_rows, settings_of(ctx).seed)
    stats: MulticlassStats | None = None
    ys: list[np.ndarray] = []
    ps: list[np.ndarray] = []
    sens: dict[str, list[Any]] = {s: [] for s in roles.sensitive}
    start = 0
    with _progress(ctx, "Computing multiclass statistics") as task:
        for batch in ds.batches(read):
            m = batch.num_rows
            span = (start, start + m)
            proba = None
            if use_model:
                frame = batch.select(inputs).to_pandas()
                if model_proba:
                    pred, proba = model.predict_and_proba_matrix(frame, rows=span)
                else:
                    pred = model.predict(frame, rows=span)
            elif roles.prediction:
                pred = _cells.to_numpy(batch.column(roles.prediction), roles.prediction)
            if class_scores:
                proba = np.column_stack([
                    _cells.to_numpy(batch.column(c), c).astype(np.float64)
                    for c in class_scores.values()])
                if roles.prediction is None and not use_model:
                    pred = np.asarray(score_classes, dtype=object)[np.argmax(proba, axis=1)]
            y = _cells.to_numpy(batch.column(roles.target), roles.target)
            sensitive = {s: batch.column(s) for s in roles.sensitive}
            part = MulticlassStats.from_arrays(y, pred, sensitive=sensitive,
                                               classes=score_classes)
            stats = part if stats is None else stats.merge(part)
            if proba is not None:
                keep = (slice(None) if pick is None else
                        pick[(pick >= start) & (pick < start + m)] - start)
                ys.append(np.asarray([_label(v) for v in np.asarray(y, dtype=object)[keep]],
                                     dtype=object))
                ps.append(np.asarray(proba)[keep])
                for s in roles.sensitive:
                    sens[s].append(batch.column(s).take(np.asarray(
                        np.arange(m)[keep], dtype=np.int64)))
            start += m
            if hasattr(task, "advance"):
                task.advance(m)
    if stats is None or stats.n == 0:
        raise InputError(f"{getattr(ds, 'name', 'evaluation data')}: no rows")
    if len(stats.classes) < 3:
        raise InputError(f"{ds.name}: column '{roles.target}': the multiclass task needs at "
                         f"least three classes, got {', '.join(stats.classes)}; certify it as "
                         "binary classification (task classification)")
    sample = None
    if ps:
        sample = _sample(stats, score_classes, ys, ps, sens, total, roles, ds)
    return stats, sample


def _sample(stats: MulticlassStats, score_classes: list[str], ys: list[np.ndarray],
            ps: list[np.ndarray], sens: dict[str, list[Any]], total: int, roles: Any,
            ds: Any) -> ScoreSample:
    import pyarrow as pa

    what = (f"{ds.name}: columns {', '.join(roles.class_scores.values())}"
            if roles.class_scores else "the model's predict_proba")
    missing = [c for c in stats.classes if c not in score_classes]
    if missing:
        raise InputError(f"{what}: expected a probability for every class, none for "
                         f"{', '.join(missing)} (classes with scores: "
                         f"{', '.join(score_classes)})")
    order = [score_classes.index(c) for c in stats.classes]
    proba = normalise_proba(np.concatenate(ps)[:, order], what)
    pos = {c: i for i, c in enumerate(stats.classes)}
    y = np.array([pos[v] for v in np.concatenate(ys)], dtype=np.int64)
    cell = np.zeros(len(y), dtype=np.int64)
    if roles.sensitive:  # the flat cell index, row-major as in the statistic
        shape = [len(c) for c in stats.categories]
        for j, s in enumerate(roles.sensitive):
            codes, labels = _cells.encode_feature(pa.chunked_array(sens[s]), s)
            mapping = np.array([stats.categories[j].index(lab) for lab in labels],
                               dtype=np.int64)
            codes = mapping[codes] if len(codes) else codes
            cell = cell * shape[j] + codes if j else codes.astype(np.int64)
    return ScoreSample(classes=list(stats.classes), y=y, proba=proba, cell=cell,
                       names=list(stats.names), categories=[list(c) for c in stats.categories],
                       total=total)


def multiclass_data(ctx: Any, sample_rows: int = DEFAULT_SAMPLE_ROWS
                    ) -> tuple[MulticlassStats, ScoreSample | None]:
    """The statistic of every row and the score sample of ``sample_rows`` rows (cached).

    On a binary task the statistic is the binary one's table read as two classes
    (``not <positive>`` and ``<positive>``; no second pass over the data) and there is
    no score sample."""
    if getattr(ctx.roles, "task", "classification") == "classification":
        return ctx.cached(KEY_STATS + ":binary", lambda: (_from_binary(ctx), None))
    key = f"{KEY_STATS}:{sample_rows}"
    return ctx.cached(key, lambda: _compute(ctx, sample_rows))


def _from_binary(ctx: Any) -> MulticlassStats:
    from assay.metrics.context import classification_stats

    st = classification_stats(ctx)
    pos = _label(ctx.roles.positive_label)
    return MulticlassStats(names=list(st.names), categories=[list(c) for c in st.categories],
                           classes=[f"not {pos}", pos], counts=st.counts.astype(np.int64))


def multiclass_stats(ctx: Any) -> MulticlassStats:
    """The :class:`MulticlassStats` of the evaluation data (one pass, cached)."""
    return multiclass_data(ctx)[0]


def shared_bootstrap(ctx: Any) -> MulticlassBootstrap | None:
    """The count bootstrap with the policy's settings (None for 0 replicates)."""
    st = settings_of(ctx)
    if st.replicates <= 0:
        return None
    return ctx.cached(KEY_BOOTSTRAP, lambda: MulticlassBootstrap(
        multiclass_stats(ctx), n_boot=st.replicates, seed=st.seed, confidence=st.confidence))


def _ci(pair: Any) -> list[float] | None:
    lo, hi = float(pair[0]), float(pair[1])
    return [lo, hi] if np.isfinite(lo) and np.isfinite(hi) else None


def multiclass_summary(ctx: Any, *, score_replicate_cap: int = 200) -> dict[str, Any]:
    """The ``metrics`` block of ``results.json`` for a multiclass task.

    ``task``, ``classes``, ``rows``, ``confusion_matrix`` (rows: true class, columns:
    predicted class), ``per_class`` (precision, recall, F1, support with intervals),
    ``overall`` (count metrics with intervals; score metrics on the sample) and
    ``score_sample`` (rows of the sample and of the data).
    """
    stats, sample = multiclass_data(ctx)
    boot = shared_bootstrap(ctx)
    cfg = settings_of(ctx)
    cm, _, _ = stats.table()
    values = {k: float(v[0]) for k, v in stats.metrics().items()}
    reps = boot.replicates() if boot is not None else None
    overall: dict[str, Any] = {}
    for m in MC_COUNT_METRICS:
        ci = _ci(boot.interval(reps[m])[0]) if reps is not None else None
        overall[m] = {"value": values[m], "ci": ci}
    t = class_table(cm[0])
    per_class = []
    for j, c in enumerate(stats.classes):
        row: dict[str, Any] = {"class": c, "support": int(t["support"][j]),
                               "predicted": int(t["predicted"][j])}
        for m in ("precision", "recall", "f1"):
            row[m] = float(t[m][j])
            row[f"{m}_ci"] = (_ci(boot.interval(reps[f"class_{m}"][:, 0, j])) if reps is not None
                              else None)
        per_class.append(row)
    out: dict[str, Any] = {
        "task": "multiclass", "classes": list(stats.classes), "rows": stats.n,
        "confusion_matrix": cm[0].tolist(), "per_class": per_class, "overall": overall,
    }
    if sample is not None:
        n_boot = min(cfg.replicates, score_replicate_cap)
        for m in MC_SCORE_METRICS:
            point = score_point(sample, m)
            ci = None
            if n_boot >= 10:
                rep = score_replicates(sample, m, [None], n_boot=n_boot, seed=cfg.seed)
                ci = _ci(percentile_interval(rep, cfg.confidence)[0])
            overall[m] = {"value": point, "ci": ci}
        out["score_sample"] = {"rows": sample.n, "of": sample.total,
                               "replicates": n_boot}
        out["calibration"] = reliability(sample)
    if stats.names:
        out["fairness_by_class"] = fairness_by_class(stats, cfg)
    if boot is not None:
        out["interval"] = (f"bootstrap percentile, {boot.n_boot} replicates (count metrics), "
                           f"confidence {boot.confidence:g}")
    return out


#: Group rates and gaps of the one-vs-rest fairness summary.
CLASS_RATES = ("selection_rate", "tpr", "fpr")
CLASS_GAPS = ("demographic_parity_difference", "demographic_parity_ratio",
              "equal_opportunity_difference", "fpr_difference", "equalized_odds_difference")


def fairness_by_class(stats: MulticlassStats, cfg: Any) -> dict[str, Any]:
    """One-vs-rest fairness for each class and protected attribute: each group's selection
    rate, TPR and FPR with the class as the positive label and decision, and the gaps
    between groups (Fairlearn convention: largest minus smallest, smallest over largest),
    each with its bootstrap interval. ``{attribute: {class: {"groups": {group: {"n",
    rate: {"value", "ci"}}}, "gaps": {gap: {"value", "ci"}}}}}``."""
    from assay.metrics._formulas import FORMULAS
    from assay.metrics.bootstrap import Bootstrap
    from assay.metrics.fairness import fairness_report

    out: dict[str, Any] = {}
    for j, c in enumerate(stats.classes):
        ovr = stats.one_vs_rest(c)
        boot = (Bootstrap(ovr, n_boot=cfg.replicates, seed=cfg.seed + j,
                          confidence=cfg.confidence) if cfg.replicates >= 10 else None)
        for attr in stats.names:
            parts, n, labels = ovr.parts([attr])
            reps = boot.replicates(list(CLASS_RATES), [attr]) if boot is not None else None
            groups: dict[str, Any] = {}
            for i, lab in enumerate(labels):
                if n[i] == 0:
                    continue
                g: dict[str, Any] = {"n": int(n[i]),
                                     "judged": bool(n[i] >= cfg.min_group_size)}
                for m in CLASS_RATES:
                    v = float(FORMULAS[m](parts)[i])
                    ci = _ci(boot.interval(reps[m])[i]) if reps is not None else None
                    g[m] = {"value": v if np.isfinite(v) else None, "ci": ci}
                groups[" x ".join(lab)] = g
            rep = fairness_report(ovr, [attr], metrics=list(CLASS_GAPS), convention="fairlearn",
                                  min_group_size=cfg.min_group_size, boot=boot)
            gaps = {m: {"value": rep[m].get("value"), "ci": rep[m].get("ci")}
                    for m in CLASS_GAPS}
            out.setdefault(attr, {})[c] = {"groups": groups, "gaps": gaps}
    return out


__all__ = ["multiclass_data", "multiclass_stats", "multiclass_summary", "shared_bootstrap"]
