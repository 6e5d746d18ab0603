"""Monitoring rules of a policy tier: what they are, which parameters they take.

A tier's ``monitoring:`` section names the window length, the retention of
the rows kept for late labels, and a list of rules written like checks (id,
params, threshold, severity, judge on point or interval, rationale,
regulations) plus when a breach becomes an alert (``consecutive``,
``cooldown``) and what it does (``action: recertify``). The loader validates
them here, with the file and line of the entry; :mod:`assay.monitor`
evaluates them. docs/monitoring.md documents every rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assay.checks.base import CheckSpec, JudgeOn, Severity, Threshold
from assay.errors import PolicyError
from assay.policy._yaml import format_path

#: Drift measures a drift rule may judge (effect sizes; ``chi2`` judges the p-value).
DRIFT_METRICS = ("psi", "js", "wasserstein", "chi2")
#: What a drift rule compares the window with.
DRIFT_AGAINST = ("training", "previous_window")
#: Metrics the performance rules accept (those of assay.metrics' contingency tables
#: and score histograms that a window's statistics give).
PERFORMANCE_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "tpr", "fpr",
                       "selection_rate", "f1", "roc_auc", "average_precision", "brier")
#: Metrics confidence-based performance estimation gives from calibrated scores.
ESTIMATED_METRICS = ("accuracy", "roc_auc", "precision", "recall", "selection_rate")
#: Per-group metrics of a fairness rule (selection rate needs no labels).
FAIRNESS_METRICS = ("selection_rate", "tpr", "fpr", "accuracy", "precision")


@dataclass(frozen=True)
class RuleKind:
    """One kind of monitoring rule."""

    id: str
    title: str
    params: tuple[str, ...] = ()
    needs_labels: bool = False
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)


RULE_KINDS: dict[str, RuleKind] = {k.id: k for k in (
    RuleKind("drift.feature", "Feature drift", ("features", "metric", "against"),
             choices={"metric": DRIFT_METRICS, "against": DRIFT_AGAINST}),
    RuleKind("drift.prediction", "Prediction / score drift", ("metric", "against"),
             choices={"metric": DRIFT_METRICS, "against": ("previous_window", "first_window")}),
    RuleKind("quality.missing_share", "Share of missing values", ("features",)),
    RuleKind("quality.unseen_categories", "Share of categories unseen in training",
             ("features",)),
    RuleKind("quality.out_of_range", "Share of values outside the training range",
             ("features",)),
    RuleKind("quality.out_of_distribution",
             "Share of rows unlike the training data (beyond its 99th percentile of the "
             "novelty score)"),
    RuleKind("quality.schema", "Columns not in the training data"),
    RuleKind("volume.rows", "Rows per window"),
    RuleKind("performance.drop", "Performance drop against the certified value",
             ("metric", "baseline"), needs_labels=True,
             choices={"metric": PERFORMANCE_METRICS}),
    RuleKind("performance.estimated", "Estimated performance before labels (CBPE)",
             ("metric",), choices={"metric": ESTIMATED_METRICS}),
    RuleKind("fairness.gap", "Gap of a group metric against the best group",
             ("metric", "sensitive"), choices={"metric": FAIRNESS_METRICS}),
)}
#: The parameter every rule accepts: the seed of its bootstrap interval.
COMMON_PARAMS = ("seed",)


@dataclass(frozen=True)
class NotifyTargets:
    """Who hears of an alert: users holding ``roles`` (by e-mail) and the named
    ``channels`` (besides the channels that subscribe to alerts)."""

    roles: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.roles or self.channels)


@dataclass
class MonitorRule:
    """One validated rule: the check-style spec plus its alerting options."""

    spec: CheckSpec
    consecutive: int = 1
    cooldown: int = 0
    action: str = "alert"
    #: the rule's own ``notify``, else the tier's
    notify: NotifyTargets = field(default_factory=NotifyTargets)

    @property
    def key(self) -> str:
        """What identifies the rule in a tier (its ``name``, else its ``id``)."""
        return self.spec.name or self.spec.id

    @property
    def kind(self) -> RuleKind:
        return RULE_KINDS[self.spec.id]

    def param(self, name: str, default: Any = None) -> Any:
        value = self.spec.params.get(name)
        return default if value is None else value


@dataclass
class Monitoring:
    """A tier's monitoring plan: window length, retention, rules."""

    window: str = "daily"
    retention_days: int = 90
    rules: list[MonitorRule] = field(default_factory=list)
    notify: NotifyTargets = field(default_factory=NotifyTargets)

    def rule(self, key: str) -> MonitorRule:
        for r in self.rules:
            if r.key == key:
                return r
        raise PolicyError(f"the monitoring plan has no rule '{key}'")


def build_monitoring(model: Any, loc: tuple[str | int, ...],
                     where: Callable[..., str], did_you_mean: Callable[[str, list[str]], str]
                     ) -> Monitoring:
    """Validate a ``MonitoringModel`` (rule ids, parameters, their values) into a plan."""
    rules: list[MonitorRule] = []
    keys: dict[str, int] = {}
    tier_notify = _targets(model.notify)
    for i, r in enumerate(model.rules):
        at = (*loc, "rules", i)
        kind = RULE_KINDS.get(r.id)
        if kind is None:
            raise PolicyError(f"{where(*at, 'id')}: {format_path((*at, 'id'))}: unknown "
                              f"monitoring rule '{r.id}' (expected one of "
                              + ", ".join(RULE_KINDS) + ")" + did_you_mean(r.id, list(RULE_KINDS)))
        accepted = kind.params + COMMON_PARAMS
        for pname, value in r.params.items():
            if pname not in accepted:
                raise PolicyError(
                    f"{where(*at, 'params', pname)}: {format_path((*at, 'params', pname))}: "
                    f"rule '{r.id}' has no parameter '{pname}' (accepted: "
                    + ", ".join(f"'{p}'" for p in accepted) + ")"
                    + did_you_mean(str(pname), list(accepted)))
            _check_value(r.id, pname, value, kind, (*at, "params", pname), where)
        if r.key in keys:
            raise PolicyError(f"{where(*at)}: {format_path(at)}: rule '{r.key}' is already "
                              f"listed at rules[{keys[r.key]}]; give each entry of the same "
                              "rule a distinct 'name'")
        keys[r.key] = i
        if r.threshold is None and r.id != "quality.schema":
            raise PolicyError(f"{where(*at)}: {format_path((*at, 'threshold'))}: rule "
                              f"'{r.id}' needs a threshold ({{min: ...}} and/or {{max: ...}})")
        spec = CheckSpec(
            id=r.id,
            threshold=(Threshold(min=r.threshold.min, max=r.threshold.max) if r.threshold
                       else Threshold(max=0.0)),
            severity=Severity(r.severity), judge_on=JudgeOn(r.judge), params=dict(r.params),
            name=r.name, rationale=r.rationale, regulations=list(r.regulations),
            source=where(*at))
        rules.append(MonitorRule(spec=spec, consecutive=r.consecutive, cooldown=r.cooldown,
                                 action=r.action,
                                 notify=tier_notify if r.notify is None else _targets(r.notify)))
    return Monitoring(window=model.window, retention_days=model.retention_days, rules=rules,
                      notify=tier_notify)


def _targets(model: Any) -> NotifyTargets:
    if model is None:
        return NotifyTargets()
    return NotifyTargets(roles=tuple(dict.fromkeys(model.roles)),
                         channels=tuple(dict.fromkeys(model.channels)))


def _check_value(rule: str, pname: str, value: Any, kind: RuleKind,
                 loc: tuple[str | int, ...], where: Callable[..., str]) -> None:
    def bad(expected: str) -> PolicyError:
        return PolicyError(f"{where(*loc)}: {format_path(loc)}: rule '{rule}': expected "
                           f"{expected}, got {value!r}")

    if value is None:
        return
    if pname in kind.choices:
        if value not in kind.choices[pname]:
            raise bad("one of " + ", ".join(f"'{c}'" for c in kind.choices[pname]))
    elif pname in ("features", "sensitive"):
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise bad("a list of column names")
    elif pname == "baseline":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number (the certified value of the metric)")
    elif pname == "seed" and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 0):
        raise bad("an integer >= 0")
