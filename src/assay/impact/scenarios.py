"""Named what-if scenarios, side by side with the baseline.

A scenarios file (YAML)::

    scenarios:
      - name: as today            # changes nothing: reproduces the baseline exactly
      - name: downturn
        prevalence: 0.55          # share of positive labels (rows reweighted by label)
      - name: younger book
        group_mix: {under_25: 0.4, 25_and_over: 0.6}   # share of each group
      - name: inflation
        features: {amount: {scale: 1.1, shift: 0}}    # re-scored through --model
      - name: stricter cut-off
        threshold: 0.8
      - name: regulator
        limit: {demographic_parity_ratio: 0.9}         # or equal_opportunity_difference,
                                                       # or max_selection_rate

The baseline decision rule is one threshold: ``--threshold`` if given, else the
best single threshold for the value model (exact, see :mod:`assay.impact.value`).
A scenario keeps that rule unless it sets ``threshold`` or a ``limit`` (group
thresholds from the frontier, or the best threshold whose selection rate is at
most the cap). Reweighting scenarios (prevalence, group mix) scale the counts of
:class:`~assay.impact.value.ScoreStats` (the total weight stays the row count);
feature scenarios change the data and score it again through the model. Each
scenario also reports the best single threshold under its own conditions.

Intervals: multinomial bootstrap over the (group, label, decision) cells of the
scenario's weighted counts, with the row count as the size of each replicate
(per-row values at their cell mean).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assay.errors import InputError
from assay.impact.value import (
    OUTCOME_LABEL,
    OUTCOMES,
    ScoreStats,
    ValueModel,
    _rev_cumsum,
    best_index,
    group_value_curves,
    outcome_sums,
)
from assay.policy._yaml import Path_, Position, load_yaml_with_lines, position_of

KEYS = ("name", "description", "prevalence", "group_mix", "features", "threshold", "limit")
LIMITS = ("demographic_parity_ratio", "equal_opportunity_difference", "max_selection_rate")


@dataclass
class Scenario:
    """One validated scenario."""

    name: str
    description: str = ""
    prevalence: float | None = None
    group_mix: dict[str, float] | None = None
    features: dict[str, dict[str, float]] | None = None
    threshold: float | None = None
    limit: tuple[str, float] | None = None
    line: int | None = None


class _Where:
    def __init__(self, source: str, positions: dict[Path_, Position]) -> None:
        self.source, self.positions = source, positions

    def error(self, path: Path_, message: str) -> InputError:
        pos = position_of(path, self.positions)
        where = f"{self.source}:{pos[0]}" if pos else self.source
        return InputError(f"{where}: {message}")


def _number(w: _Where, path: Path_, v: Any, what: str, lo: float | None = None,
            hi: float | None = None, *, open_ends: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
        raise w.error(path, f"{what}: expected a number, got {v!r}")
    x = float(v)
    bad = ((lo is not None and (x <= lo if open_ends else x < lo))
           or (hi is not None and (x >= hi if open_ends else x > hi)))
    if bad:
        rng = f"between {lo:g} and {hi:g}" + (" (exclusive)" if open_ends else "")
        raise w.error(path, f"{what}: expected a number {rng}, got {x:g}")
    return x


def parse_scenarios(text: str, source: str, *, features: Sequence[str] | None = None,
                    groups: Sequence[str] | None = None) -> list[Scenario]:
    """Validate a scenarios document; errors name the file and line.

    ``features`` (the columns a feature scenario may change) and ``groups`` (the
    groups a group mix may name) are checked when given.
    """
    data, positions = load_yaml_with_lines(text, source)
    w = _Where(source, positions)
    if not isinstance(data, Mapping) or "scenarios" not in data:
        raise w.error((), "expected a mapping with a 'scenarios' list")
    extra = [k for k in data if k != "scenarios"]
    if extra:
        raise w.error((extra[0],), f"unknown key {extra[0]!r} (expected 'scenarios')")
    items = data["scenarios"]
    if not isinstance(items, list) or not items:
        raise w.error(("scenarios",), "scenarios: expected a non-empty list")
    out: list[Scenario] = []
    names: set[str] = set()
    for i, item in enumerate(items):
        p: Path_ = ("scenarios", i)
        if not isinstance(item, Mapping):
            raise w.error(p, f"scenarios[{i}]: expected a mapping with a name")
        for k in item:
            if k not in KEYS:
                raise w.error((*p, k), f"scenarios[{i}]: unknown key {k!r} "
                                       f"(expected one of {', '.join(KEYS)})")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise w.error(p, f"scenarios[{i}]: expected a 'name'")
        if name in names:
            raise w.error((*p, "name"), f"scenario {name!r}: the name is used twice")
        names.add(name)
        s = Scenario(name=name, description=str(item.get("description") or ""),
                     line=(position_of(p, positions) or (None,))[0])
        label = f"scenario {name!r}"
        if "prevalence" in item:
            s.prevalence = _number(w, (*p, "prevalence"), item["prevalence"],
                                   f"{label}: prevalence", 0.0, 1.0, open_ends=True)
        if "group_mix" in item:
            mix = item["group_mix"]
            if not isinstance(mix, Mapping) or not mix:
                raise w.error((*p, "group_mix"), f"{label}: group_mix: expected a mapping "
                                                 "of group to share")
            s.group_mix = {}
            for g, v in mix.items():
                if groups is not None and str(g) not in groups:
                    raise w.error((*p, "group_mix", g),
                                  f"{label}: group_mix: unknown group {g!r} (groups: "
                                  f"{', '.join(groups)})")
                s.group_mix[str(g)] = _number(w, (*p, "group_mix", g), v,
                                              f"{label}: group_mix.{g}", 0.0, 1.0)
            if groups is not None and set(s.group_mix) != set(groups):
                left = [g for g in groups if g not in s.group_mix]
                raise w.error((*p, "group_mix"), f"{label}: group_mix: give a share for "
                                                 f"every group (missing {', '.join(left)})")
            if abs(sum(s.group_mix.values()) - 1) > 1e-9:
                raise w.error((*p, "group_mix"), f"{label}: group_mix: the shares sum to "
                                                 f"{sum(s.group_mix.values()):g}, not 1")
        if "features" in item:
            fs = item["features"]
            if not isinstance(fs, Mapping) or not fs:
                raise w.error((*p, "features"), f"{label}: features: expected a mapping of "
                                                "feature to {scale, shift}")
            s.features = {}
            for f, change in fs.items():
                fp = (*p, "features", f)
                if features is not None and str(f) not in features:
                    from assay.errors import did_you_mean

                    raise w.error(fp, f"{label}: unknown feature {f!r}"
                                      f"{did_you_mean(str(f), features)}")
                if not isinstance(change, Mapping) or not set(change) <= {"scale", "shift"} \
                        or not change:
                    raise w.error(fp, f"{label}: feature {f!r}: expected scale and/or shift")
                s.features[str(f)] = {
                    "scale": _number(w, (*fp, "scale"), change.get("scale", 1.0),
                                     f"{label}: {f}.scale"),
                    "shift": _number(w, (*fp, "shift"), change.get("shift", 0.0),
                                     f"{label}: {f}.shift")}
        if "threshold" in item:
            s.threshold = _number(w, (*p, "threshold"), item["threshold"],
                                  f"{label}: threshold")
        if "limit" in item:
            lim = item["limit"]
            if not isinstance(lim, Mapping) or len(lim) != 1:
                raise w.error((*p, "limit"), f"{label}: limit: expected one of "
                                             f"{', '.join(LIMITS)} with its level")
            (k, v), = lim.items()
            if k not in LIMITS:
                raise w.error((*p, "limit", k), f"{label}: limit: unknown limit {k!r} "
                                                f"(expected {', '.join(LIMITS)})")
            s.limit = (str(k), _number(w, (*p, "limit", k), v, f"{label}: limit.{k}",
                                       0.0, 1.0))
        if s.threshold is not None and s.limit is not None:
            raise w.error(p, f"{label}: give a threshold or a limit, not both")
        out.append(s)
    return out


def reweight(stats: ScoreStats, weights: np.ndarray) -> ScoreStats:
    """Stats with each (group, label) count and value sum scaled by ``weights[g, y]``."""
    w = weights[:, :, None]
    return ScoreStats(stats.scores, stats.groups, stats.counts * w,
                      {c: v * w for c, v in stats.sums.items()}, stats.grouping)


def scenario_weights(stats: ScoreStats, s: Scenario) -> np.ndarray | None:
    """(G, 2) weights for the reweighting parts of ``s`` (None: no reweighting)."""
    if s.prevalence is None and s.group_mix is None:
        return None
    c = stats.counts.sum(axis=2).astype(np.float64)  # (G, 2)
    n = c.sum()
    w = np.ones_like(c)
    if s.group_mix is not None:
        n_g = c.sum(axis=1)
        for gx, g in enumerate(stats.groups):
            share = s.group_mix[g]
            if share > 0 and n_g[gx] == 0:
                raise InputError(f"scenario {s.name!r}: group {g!r} has no rows to reweight")
            w[gx, :] = share * n / n_g[gx] if n_g[gx] else 0.0
    if s.prevalence is not None:
        cw = c * w
        pos, neg = cw[:, 1].sum(), cw[:, 0].sum()
        if pos == 0 or neg == 0:
            raise InputError(f"scenario {s.name!r}: prevalence needs rows of both labels")
        w[:, 1] *= s.prevalence * n / pos
        w[:, 0] *= (1 - s.prevalence) * n / neg
    return w


def _index(stats: ScoreStats, threshold: float) -> int:
    """The threshold index of ``score >= threshold``."""
    return int(np.searchsorted(stats.scores, threshold, "left"))


def evaluate(stats: ScoreStats, model: ValueModel, jg: Sequence[int], *, n_rows: int,
             n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """Metrics, value and fairness of per-group threshold indices ``jg``, with intervals."""
    G = len(stats.groups)
    sel = _rev_cumsum(stats.counts)  # (G, 2, k+1)
    tot = stats.counts.sum(axis=2)  # (G, 2)
    conf = np.zeros((G, 2, 2))  # group, label, decision
    for g in range(G):
        conf[g, :, 1] = sel[g, :, jg[g]]
        conf[g, :, 0] = tot[g] - conf[g, :, 1]
    s = outcome_sums(stats, model)
    vsum = np.zeros((G, 2, 2))
    for o in OUTCOMES:
        lab = OUTCOME_LABEL[o]
        d = 1 if o in ("tp", "fp") else 0
        picked = _rev_cumsum(s[o])
        for g in range(G):
            chosen = picked[g, jg[g]]
            vsum[g, lab, d] = chosen if d == 1 else picked[g, 0] - chosen
    point = _metrics(conf[None], vsum[None], stats.groups)
    out = {k: v[0] if isinstance(v, np.ndarray) else v for k, v in point.items()}
    if n_boot:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nan_to_num(vsum / conf)
        flat = conf.ravel()
        total = flat.sum()
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(n_rows, flat / total, size=n_boot).reshape(n_boot, G, 2, 2)
        reps = draws.astype(np.float64) * (total / n_rows)
        boot = _metrics(reps, reps * mean, stats.groups)
        alpha = (1 - confidence) / 2
        for k, v in boot.items():
            if isinstance(v, np.ndarray):
                lo, hi = np.nanquantile(v, [alpha, 1 - alpha])
                out[k + "_ci"] = [float(lo), float(hi)]
    out = {k: (float(v) if isinstance(v, np.floating | float) else v) for k, v in out.items()}
    out["thresholds"] = {g: (float(stats.scores[j]) if j < len(stats.scores) else None)
                         for g, j in zip(stats.groups, jg, strict=True)}
    return out


def _metrics(conf: np.ndarray, vsum: np.ndarray, groups: Sequence[str]) -> dict[str, Any]:
    """Metrics of confusion matrices ``conf`` (R, G, label, decision)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        n = conf.sum(axis=(1, 2, 3))
        tp, fn = conf[:, :, 1, 1].sum(1), conf[:, :, 1, 0].sum(1)
        fp, tn = conf[:, :, 0, 1].sum(1), conf[:, :, 0, 0].sum(1)
        n_g = conf.sum(axis=(2, 3))
        sr_g = conf[:, :, :, 1].sum(2) / n_g
        tpr_g = conf[:, :, 1, 1] / conf[:, :, 1, :].sum(2)
        out: dict[str, Any] = {
            "value_per_decision": vsum.sum(axis=(1, 2, 3)) / n,
            "total_value": vsum.sum(axis=(1, 2, 3)),
            "selection_rate": (tp + fp) / n,
            "prevalence": (tp + fn) / n,
            "true_positive_rate": tp / (tp + fn),
            "false_positive_rate": fp / (fp + tn),
            "precision": tp / (tp + fp),
            "accuracy": (tp + tn) / n,
        }
        if len(groups) > 1:
            out["demographic_parity_ratio"] = np.nanmin(sr_g, 1) / np.nanmax(sr_g, 1)
            out["demographic_parity_difference"] = np.nanmax(sr_g, 1) - np.nanmin(sr_g, 1)
            out["equal_opportunity_difference"] = np.nanmax(tpr_g, 1) - np.nanmin(tpr_g, 1)
            for gx, g in enumerate(groups):
                out[f"selection_rate[{g}]"] = sr_g[:, gx]
                out[f"value_per_decision[{g}]"] = vsum[:, gx].sum(axis=(1, 2)) / n_g[:, gx]
    return out


@dataclass
class ScenarioResult:
    baseline: dict[str, Any]
    scenarios: list[dict[str, Any]]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "scenarios": self.scenarios,
                "settings": self.settings}


def run_scenarios(stats: ScoreStats, model: ValueModel, scenarios: Sequence[Scenario], *,
                  threshold: float | None = None, rescore: Any = None, n_boot: int = 1000,
                  seed: int = 0) -> ScenarioResult:
    """Each scenario's metrics, value and fairness beside the baseline's.

    ``rescore(features) -> ScoreStats`` scores the data again with the named feature
    changes (needed only by feature scenarios).
    """
    from assay.impact.value import check_replicates

    check_replicates(n_boot, seed)
    n_rows = int(stats.counts.sum())
    G = len(stats.groups)
    if threshold is None:
        j0 = best_index(group_value_curves(stats, model).sum(axis=0))
        rule = "best single threshold for the value model"
    else:
        j0 = _index(stats, threshold)
        rule = "the given threshold"
    base_thr = float(stats.scores[j0]) if j0 < len(stats.scores) else None
    baseline = evaluate(stats, model, [j0] * G, n_rows=n_rows, n_boot=n_boot, seed=seed)
    rows = []
    for s in scenarios:
        st = stats
        if s.features:
            if rescore is None:
                raise InputError(f"scenario {s.name!r} (line {s.line}): changing features "
                                 "needs the model to score the data again: pass {model}",
                                 fields={"model": "model"})
            st = rescore(s.features)
        w = scenario_weights(st, s)
        if w is not None:
            st = reweight(st, w)
        if s.threshold is not None:
            jg = [_index(st, s.threshold)] * G
        elif s.limit is not None:
            jg = _limited(st, model, *s.limit, s.name)
        else:
            # the baseline rule: the same cut-off on the (possibly new) scores
            jg = [_index(st, base_thr) if base_thr is not None else len(st.scores)] * G
        res = evaluate(st, model, jg, n_rows=n_rows, n_boot=n_boot, seed=seed)
        jb = best_index(group_value_curves(st, model).sum(axis=0))
        res["best_threshold"] = float(st.scores[jb]) if jb < len(st.scores) else None
        res["best_value_per_decision"] = float(
            group_value_curves(st, model).sum(axis=0)[jb] / st.counts.sum())
        res["change_in_value_per_decision"] = res["value_per_decision"] \
            - baseline["value_per_decision"]
        rows.append({"name": s.name, "description": s.description, **res})
    settings = {"baseline_rule": rule, "baseline_threshold": base_thr,
                "replicates": n_boot, "seed": seed,
                "interval_method": "multinomial bootstrap over (group, label, decision) "
                                   "cells of the weighted counts"}
    return ScenarioResult(baseline, rows, settings)


def _limited(st: ScoreStats, model: ValueModel, kind: str, level: float,
             name: str) -> list[int]:
    G = len(st.groups)
    if kind == "max_selection_rate":
        total = group_value_curves(st, model).sum(axis=0)
        sel = _rev_cumsum(st.counts.sum(axis=(0, 1)))
        ok = sel / st.counts.sum() <= level + 1e-12
        masked = np.where(ok, total, -np.inf)
        return [best_index(masked)] * G
    from assay.impact.frontier import _deterministic, _options

    if G < 2:
        raise InputError(f"scenario {name!r}: limit {kind} needs at least two groups: "
                         "pass {sensitive}", fields={"sensitive": "sensitive"})
    options = _options(st, model, kind)
    res = _deterministic(options, kind, level)
    if res is None:
        raise InputError(f"scenario {name!r}: no group thresholds meet {kind} {level:g}")
    _, picks = res
    return [int(o.j[p]) for o, p in zip(options, picks, strict=True)]


def load_scenarios(path: Path, **kwargs: Any) -> list[Scenario]:
    if not path.is_file():
        raise InputError(f"{path}: no such scenarios file")
    return parse_scenarios(path.read_text(encoding="utf-8"), str(path), **kwargs)


class ScoredData:
    """A data set with the model that scores it: the baseline statistics, and the
    statistics again after changing the data (for feature scenarios and sensitivity)."""

    def __init__(self, data: Any, adapter: Any, *, target: str, positive_label: Any,
                 model: ValueModel, sensitive: Sequence[str] = ()) -> None:
        from assay.data.dataset import open_dataset
        from assay.impact.value import group_column
        from assay.metrics import _cells
        from assay.metrics.frame import SEP

        ds = open_dataset(data)
        names = ds.column_names
        for c in [target, *sensitive, *model.columns]:
            if c not in names:
                ds._check_columns([c])
        self.frame = ds.to_pandas()
        self.adapter = adapter
        self.positive_label = positive_label
        self.model = model
        self.grouping = SEP.join(sensitive)
        y = _cells.binarize(self.frame[target].to_numpy(), target, positive_label)
        if not y.any():
            raise InputError(f"column '{target}': the positive label {positive_label!r} "
                             "occurs in no row")
        self.y = y
        cols = {c: self.frame[c].to_numpy() for c in [*sensitive, *model.columns]}
        self.group = group_column(cols, sensitive)
        self.values = {c: cols[c] for c in model.columns}
        self.features = adapter.input_columns(
            [c for c in names if c not in {target, *model.columns}])

    def scores(self, frame: Any = None) -> np.ndarray:
        f = self.frame if frame is None else frame
        label = self.positive_label
        classes = self.adapter.classes
        if classes is not None and label not in classes:
            match = [c for c in classes if str(c) == str(label)]
            label = match[0] if match else label
        return self.adapter.predict_proba(f[self.features], positive_label=label)

    def stats(self, frame: Any = None) -> ScoreStats:
        from assay.impact.value import score_stats

        return score_stats(self.y, self.scores(frame), self.group, values=self.values,
                           grouping=self.grouping)

    def changed(self, features: Mapping[str, Mapping[str, float]]) -> Any:
        """A copy of the data with each named numeric feature scaled, then shifted."""
        import pandas as pd

        f = self.frame.copy()
        for name, ch in features.items():
            if name not in f.columns:
                raise InputError(f"unknown feature {name!r}")
            if not pd.api.types.is_numeric_dtype(f[name]):
                raise InputError(f"feature {name!r} is not numeric: it cannot be scaled "
                                 "or shifted")
            f[name] = f[name] * ch.get("scale", 1.0) + ch.get("shift", 0.0)
        return f

    def rescore(self, features: Mapping[str, Mapping[str, float]]) -> ScoreStats:
        return self.stats(self.changed(features))
