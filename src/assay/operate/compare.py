"""Champion–challenger: compare two versions of a model on the same period.

Two kinds of evidence, both from monitoring (:mod:`assay.monitor`):

* **unpaired** (a canary and the incumbent serve different rows): each
  version's daily windows over the period are merged into one labelled
  statistic, and every metric's difference (challenger minus champion) gets a
  bootstrap interval from two independent multinomial bootstraps of the
  window statistics (:mod:`assay.metrics.bootstrap`): accuracy, AUC, selection
  rate, TPR and FPR overall and per group, and the gap between groups;
* **paired** (the same rows scored by both, e.g. a shadow version, kept with
  their row ids for late labels): DeLong's test for the difference of the two
  AUCs (the fast O(n log n) algorithm of Sun & Xu, 2014, with the structural
  components of DeLong, DeLong & Clarke-Pearson, 1988), and McNemar's test for
  the difference of the accuracies: the exact binomial test when fewer than
  :data:`MCNEMAR_EXACT_BELOW` rows are discordant, the chi-squared test with
  continuity correction otherwise (the result says which). The paired
  difference of accuracies gets the Wald interval of a paired difference of
  proportions. Both tests live in :mod:`assay.metrics.compare` (``assay compare``
  uses them too).

:func:`judge_release` applies a policy's release rule
(:class:`assay.policy.release.ReleasePlan`) to a comparison: for each metric,
is the challenger not worse than the champion by more than the margin?
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from scipy import stats as sps
from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.errors import InputError
from assay.metrics import ClassificationStats
from assay.metrics.compare import MCNEMAR_EXACT_BELOW, delong, mcnemar  # noqa: F401 (re-exported)
from assay.policy.release import GAP_METRICS, LOWER_IS_BETTER, PromoteIf, ReleasePlan
from assay.registry import get_version
from assay.registry.tables import ModelVersion

#: Metrics compared overall.
OVERALL_METRICS = ("accuracy", "roc_auc", "selection_rate", "tpr", "fpr", "balanced_accuracy",
                   "precision", "recall", "f1", "average_precision", "brier")
#: Metrics compared per group of each protected attribute.
GROUP_METRICS = ("selection_rate", "tpr", "fpr")


# --------------------------------------------------------------------------- result


@dataclass
class MetricComparison:
    """One metric: both values, the difference (challenger - champion) and its interval."""

    metric: str
    champion: float | None
    challenger: float | None
    difference: float | None
    ci: list[float] | None
    method: str
    group: str | None = None
    p_value: float | None = None
    se: float | None = None
    #: replicates of the difference (bootstrap) or None (normal approximation)
    _replicates: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_replicates")
        return d


@dataclass
class Comparison:
    """Champion against challenger over one period (see the module docstring)."""

    model: str
    champion: str
    challenger: str
    since: str
    until: str
    confidence: float
    rows: dict[str, int]
    paired: bool
    metrics: list[MetricComparison]
    groups: list[MetricComparison]
    tests: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def metric(self, name: str, *, paired: bool | None = None) -> MetricComparison | None:
        found = [m for m in self.metrics if m.metric == name]
        if paired is not None:
            found = [m for m in found if m.method.startswith("paired") == paired]
        paired_first = sorted(found, key=lambda m: not m.method.startswith("paired"))
        return paired_first[0] if paired_first else None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "champion": self.champion, "challenger": self.challenger,
                "since": self.since, "until": self.until, "confidence": self.confidence,
                "rows": dict(self.rows), "paired": self.paired,
                "metrics": [m.to_dict() for m in self.metrics],
                "groups": [g.to_dict() for g in self.groups], "tests": self.tests,
                "notes": list(self.notes)}


# --------------------------------------------------------------------------- reading


def _labelled(session: Session, mv: ModelVersion, since: date, until: date
              ) -> ClassificationStats | None:
    """The merged labelled statistic of a version's daily windows in [since, until)."""
    from assay.monitor.state import WindowState, at_midnight
    from assay.monitor.tables import MonitorReference, MonitorWindow

    ref = session.get(MonitorReference, mv.id)
    if ref is None:
        return None
    merged: ClassificationStats | None = None
    for w in session.scalars(select(MonitorWindow).where(
            MonitorWindow.model_version_id == mv.id,
            MonitorWindow.start >= at_midnight(since), MonitorWindow.start < at_midnight(until))
            .order_by(MonitorWindow.start)):
        if not w.labeled:
            continue
        st = WindowState.from_blob(w.state, {})
        if st.labeled is not None:
            merged = st.labeled if merged is None else merged.merge(st.labeled)
    return merged


def _paired_rows(session: Session, champion: ModelVersion, challenger: ModelVersion,
                 since: date, until: date) -> dict[str, np.ndarray] | None:
    """Rows both versions scored (same row id), with their label, in [since, until)."""
    from assay.monitor.state import at_midnight
    from assay.monitor.tables import MonitorRow

    def rows(mv: ModelVersion) -> dict[str, tuple[int, float | None, int]]:
        out = {}
        for rid, pred, score, label in session.execute(
                select(MonitorRow.row_id, MonitorRow.prediction, MonitorRow.score,
                       MonitorRow.label)
                .where(MonitorRow.model_version_id == mv.id, MonitorRow.label.is_not(None),
                       MonitorRow.day >= at_midnight(since),
                       MonitorRow.day < at_midnight(until))):
            out[rid] = (int(pred), score, int(label))
        return out

    a = rows(champion)
    if not a:
        return None
    b = rows(challenger)
    common = sorted(set(a) & set(b))
    if not common:
        return None
    clash = [r for r in common if a[r][2] != b[r][2]]
    if clash:
        raise InputError(f"{len(clash)} row(s) carry different labels for the two versions "
                         f"(e.g. row id '{clash[0]}': {a[clash[0]][2]} for "
                         f"{champion.version}, {b[clash[0]][2]} for {challenger.version}); "
                         "the same row must have one label: correct the label batches")
    y = np.array([a[r][2] for r in common], dtype=np.int64)
    pa_ = np.array([a[r][0] for r in common], dtype=np.int64)
    pb = np.array([b[r][0] for r in common], dtype=np.int64)
    sa = [a[r][1] for r in common]
    sb = [b[r][1] for r in common]
    scored = all(v is not None for v in sa) and all(v is not None for v in sb)
    return {"y": y, "pred_a": pa_, "pred_b": pb,
            "score_a": np.array(sa, dtype=float) if scored else None,
            "score_b": np.array(sb, dtype=float) if scored else None}


def _day(value: date | datetime | str | None, what: str, default: date) -> date:
    if value is None:
        return default
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise InputError(f"{{{what}}}: expected a date YYYY-MM-DD, got {value!r}",
                         fields=[what]) from None


# --------------------------------------------------------------------------- compare


def compare(session: Session, model: str, champion: str, challenger: str, *,
            since: date | datetime | str | None = None,
            until: date | datetime | str | None = None, confidence: float = 0.95,
            n_boot: int = 1000, seed: int = 0, min_group_size: int = 30,
            sensitive: list[str] | None = None, today: date | None = None) -> Comparison:
    """Compare ``challenger`` with ``champion`` over the days [since, until].

    ``since`` defaults to 30 days before ``until``; ``until`` (inclusive)
    to today. Raises :class:`InputError` for a period that ends before it
    starts or lies in the future, the same version twice, or a version with no
    labelled monitoring data in the period.
    """
    if champion == challenger:
        raise InputError(f"champion and challenger are the same version '{champion}': compare "
                         "two versions")
    if not 0 < confidence < 1:
        raise InputError(f"confidence: expected a number between 0 and 1, got {confidence!r}")
    today = today or datetime.now(UTC).date()
    last = _day(until, "until", today)
    first = _day(since, "since", last - timedelta(days=30))
    if last > today:
        raise InputError(f"{{until}} {last.isoformat()} is in the future (today is "
                         f"{today.isoformat()})", fields=["until"])
    if first > last:
        raise InputError(f"{{since}} {first.isoformat()} is after {{until}} "
                         f"{last.isoformat()}: expected since <= until",
                         fields=["since", "until"])
    end = last + timedelta(days=1)
    a = get_version(session, model, champion)
    b = get_version(session, model, challenger)
    st_a = _labelled(session, a, first, end)
    st_b = _labelled(session, b, first, end)
    for name, st in ((champion, st_a), (challenger, st_b)):
        if st is None or st.n == 0:
            raise InputError(f"{model}@{name} has no labelled monitoring data from "
                             f"{first.isoformat()} to {last.isoformat()}: ingest its outputs "
                             "with labels (assay monitor ingest --target, or assay monitor "
                             "labels) before comparing")
    assert st_a is not None and st_b is not None
    notes: list[str] = []
    metrics, groups = _unpaired(st_a, st_b, confidence=confidence, n_boot=n_boot, seed=seed,
                                min_group_size=min_group_size, sensitive=sensitive,
                                notes=notes)
    rows = {"champion": int(st_a.n), "challenger": int(st_b.n), "paired": 0}
    tests: dict[str, Any] = {}
    paired = _paired_rows(session, a, b, first, end)
    if paired is not None:
        rows["paired"] = len(paired["y"])
        metrics[:0] = _paired(paired, confidence, tests, notes)
    return Comparison(model=model, champion=champion, challenger=challenger,
                      since=first.isoformat(), until=last.isoformat(), confidence=confidence,
                      rows=rows, paired=paired is not None, metrics=metrics, groups=groups,
                      tests=tests, notes=notes)


def _paired(p: dict[str, np.ndarray], confidence: float, tests: dict[str, Any],
            notes: list[str]) -> list[MetricComparison]:
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    y = p["y"]
    n = len(y)
    out: list[MetricComparison] = []
    right_a = p["pred_a"] == y
    right_b = p["pred_b"] == y
    mc = mcnemar(right_a, right_b)
    tests["mcnemar"] = mc
    b01, b10 = mc["a_right_b_wrong"], mc["a_wrong_b_right"]
    diff = (b10 - b01) / n
    se = float(np.sqrt(max(b01 + b10 - (b10 - b01) ** 2 / n, 0.0)) / n)
    out.append(MetricComparison("accuracy", float(right_a.mean()), float(right_b.mean()),
                                float(diff), [diff - z * se, diff + z * se],
                                "paired: McNemar (" + mc["method"] + "), Wald interval",
                                p_value=mc["p_value"], se=se))
    if p["score_a"] is None:
        notes.append("DeLong's test needs the scores of both versions on every paired row; "
                      "some rows have predictions only")
    elif y.min() == y.max() or min(int(y.sum()), n - int(y.sum())) < 2:
        notes.append("DeLong's test needs at least 2 positive and 2 negative paired rows")
    else:
        d = delong(y, p["score_a"], p["score_b"])
        tests["delong"] = {k: v for k, v in d.items() if k != "covariance"}
        out.append(MetricComparison("roc_auc", d["auc_a"], d["auc_b"], d["difference"],
                                    [d["difference"] - z * d["se"],
                                     d["difference"] + z * d["se"]],
                                    "paired: DeLong", p_value=d["p_value"], se=d["se"]))
    return out


def _gap(values: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.nanmax(values, axis=-1) - np.nanmin(values, axis=-1)


def _unpaired(a: ClassificationStats, b: ClassificationStats, *, confidence: float,
              n_boot: int, seed: int, min_group_size: int, sensitive: list[str] | None,
              notes: list[str]) -> tuple[list[MetricComparison], list[MetricComparison]]:
    from assay.metrics import bootstrap

    scored = a.has_score and b.has_score
    names = [m for m in OVERALL_METRICS
             if scored or m not in ("roc_auc", "average_precision", "brier")]
    if not scored:
        notes.append("one version has no scores: AUC, average precision and Brier are not "
                      "compared")
    boot_a = bootstrap(a, n_boot=n_boot, seed=seed, confidence=confidence)
    boot_b = bootstrap(b, n_boot=n_boot, seed=seed + 1, confidence=confidence)
    rep_a = boot_a.replicates(names)
    rep_b = boot_b.replicates(names)
    method = f"unpaired: bootstrap of the window statistics ({n_boot} replicates each)"
    out = []
    for m in names:
        va, vb = a.compute(m), b.compute(m)
        diff_rep = rep_b[m][:, 0] - rep_a[m][:, 0]
        out.append(_from_replicates(m, va, vb, diff_rep, boot_a, method))
    groups: list[MetricComparison] = []
    attrs = sensitive if sensitive is not None else [n for n in a.names if n in b.names]
    for attr in attrs:
        if attr not in a.names or attr not in b.names:
            notes.append(f"'{attr}' was not given as a sensitive column for both versions: no "
                         "comparison by it")
            continue
        _, na, la = a.parts(attr)
        _, nb, lb = b.parts(attr)
        common = [g for g in la if g in lb]
        ia = [la.index(g) for g in common]
        ib = [lb.index(g) for g in common]
        keep = [k for k, g in enumerate(common)
                if na[ia[k]] >= min_group_size and nb[ib[k]] >= min_group_size]
        ga = boot_a.replicates(list(GROUP_METRICS), by=attr)
        gb = boot_b.replicates(list(GROUP_METRICS), by=attr)
        for m in GROUP_METRICS:
            va_all, vb_all = a.compute(m, by=attr), b.compute(m, by=attr)
            for k in keep:
                label = f"{attr}={common[k][0]}"
                diff_rep = gb[m][:, ib[k]] - ga[m][:, ia[k]]
                groups.append(_from_replicates(m, float(va_all[ia[k]]), float(vb_all[ib[k]]),
                                               diff_rep, boot_a, method, group=label))
            if len(keep) >= 2:
                sel_a = [ia[k] for k in keep]
                sel_b = [ib[k] for k in keep]
                gap_a, gap_b = float(_gap(va_all[sel_a])), float(_gap(vb_all[sel_b]))
                diff_rep = _gap(gb[m][:, sel_b]) - _gap(ga[m][:, sel_a])
                out.append(_from_replicates(f"{m}_gap", gap_a, gap_b, diff_rep, boot_a,
                                            method, group=attr))
        if len(keep) < 2:
            notes.append(f"fewer than two groups of '{attr}' have {min_group_size} labelled "
                         "rows in both versions: no gap compared")
    return out, groups


def _num(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _from_replicates(metric: str, va: float, vb: float, diff_rep: np.ndarray, boot: Any,
                     method: str, group: str | None = None) -> MetricComparison:
    ci = boot.interval(diff_rep[:, None])[0]
    a, b = _num(va), _num(vb)
    diff = None if a is None or b is None else b - a
    p = float(boot.p_value(diff_rep[:, None])[0])
    return MetricComparison(metric, a, b, diff,
                            None if not np.isfinite(ci).all() else [float(ci[0]), float(ci[1])],
                            method, group=group, p_value=p, _replicates=diff_rep)


# --------------------------------------------------------------------------- release rule


@dataclass
class RuleResult:
    """One entry of the release rule judged on a comparison."""

    metric: str
    group: str | None
    margin: float
    alpha: float
    difference: float | None
    bound: float | None
    method: str
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RuleVerdict:
    """Whether the release rule lets the challenger replace the champion."""

    allowed: bool
    test: str
    results: list[RuleResult]
    reasons: list[str]
    comparison: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "test": self.test,
                "results": [r.to_dict() for r in self.results], "reasons": list(self.reasons),
                "comparison": self.comparison}


def _loss_bounds(mc: MetricComparison, alpha: float, lower_better: bool
                 ) -> tuple[float, float] | None:
    """One-sided (1 - alpha) lower and upper bounds of the challenger's loss (positive:
    the challenger is worse)."""
    sign = 1.0 if lower_better else -1.0
    if mc._replicates is not None:
        loss = sign * np.asarray(mc._replicates, float)
        loss = loss[np.isfinite(loss)]
        if len(loss) < 10:
            return None
        lo, hi = np.quantile(loss, [alpha, 1 - alpha])
        return float(lo), float(hi)
    if mc.difference is None or mc.se is None:
        return None
    z = float(sps.norm.ppf(1 - alpha))
    loss = sign * mc.difference
    return loss - z * mc.se, loss + z * mc.se


def judge_release(comparison: Comparison, plan: ReleasePlan) -> RuleVerdict:
    """Apply a release plan's ``promote_if`` entries to a comparison.

    ``non_inferiority`` (default): each metric must be *shown* not worse than
    the margin: the one-sided (1 - alpha) upper bound of the challenger's loss
    is below the margin. ``significant_worsening``: refused only when the
    challenger is shown worse by more than the margin (the lower bound of its
    loss is above it). Paired tests are used where the rows are the same.
    Fewer than ``min_rows`` labelled rows in either version refuses.
    """
    results: list[RuleResult] = []
    reasons: list[str] = []
    n = min(comparison.rows["champion"], comparison.rows["challenger"])
    if comparison.paired and comparison.rows["paired"] >= plan.min_rows:
        n = max(n, comparison.rows["paired"])
    if n < plan.min_rows:
        reasons.append(f"too few labelled rows to compare: {n} (champion "
                       f"{comparison.rows['champion']}, challenger "
                       f"{comparison.rows['challenger']}), the release rule needs "
                       f"{plan.min_rows}")
    for rule in plan.promote_if:
        results.append(_judge_one(comparison, rule, plan.test))
    reasons.extend(r.message for r in results if not r.passed)
    return RuleVerdict(allowed=not reasons, test=plan.test, results=results, reasons=reasons,
                       comparison=comparison.to_dict())


def _judge_one(c: Comparison, rule: PromoteIf, test: str) -> RuleResult:
    lower_better = rule.metric in LOWER_IS_BETTER or rule.metric in GAP_METRICS
    if rule.metric in GAP_METRICS:
        found = [m for m in c.metrics if m.metric == rule.metric and m.group == rule.sensitive]
        mc = found[0] if found else None
    else:
        mc = c.metric(rule.metric)
    what = rule.label
    if mc is None or mc.difference is None:
        return RuleResult(rule.metric, rule.sensitive, rule.margin, rule.alpha, None, None, "",
                          False, f"{what}: cannot be compared on this data (no labelled rows "
                          "with it, or no groups large enough): the release rule cannot be met")
    bounds = _loss_bounds(mc, rule.alpha, lower_better)
    if bounds is None:
        return RuleResult(rule.metric, rule.sensitive, rule.margin, rule.alpha, mc.difference,
                          None, mc.method, False, f"{what}: no interval could be computed")
    lo, hi = bounds
    conf = f"{1 - rule.alpha:.0%} one-sided"
    figures = (f"{what}: champion {mc.champion:.4g}, challenger {mc.challenger:.4g}, "
               f"difference {mc.difference:+.4g} ({mc.method})")
    worse = "higher" if lower_better else "lower"
    if test == "non_inferiority":
        passed = hi < rule.margin
        bound = hi
        msg = (f"{figures}: the challenger may be worse by up to {hi:.4g} ({conf} bound), more "
               f"than the margin {rule.margin:g}: not shown non-inferior" if not passed else
               f"{figures}: non-inferior within {rule.margin:g} ({conf} bound of the loss "
               f"{hi:.4g})")
    else:
        passed = not lo > rule.margin
        bound = lo
        msg = (f"{figures}: the challenger is significantly worse ({worse}) by at least "
               f"{lo:.4g} ({conf} bound), more than the margin {rule.margin:g}" if not passed
               else f"{figures}: not significantly worse than the margin {rule.margin:g}")
    return RuleResult(rule.metric, rule.sensitive, rule.margin, rule.alpha, mc.difference,
                      bound, mc.method, passed, msg)
