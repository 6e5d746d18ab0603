"""The policy's monitoring rules: validated at load with file:line errors."""

from __future__ import annotations

import re

import pytest

from assay.errors import PolicyError
from assay.policy import load_policy, parse_policy, shipped_policies

BASE = """\
name: p
version: "1"
tiers:
  low:
    checks: []
    monitoring:
      window: weekly
      retention_days: 30
      rules:
      - id: drift.feature
        params: {metric: js, against: previous_window}
        threshold: {max: 0.1}
        consecutive: 2
        cooldown: 1
        action: recertify
  high:
    extends: low
"""


def test_rules_load_with_their_alerting_options_and_tiers_inherit_them() -> None:
    policy = parse_policy(BASE, source="p.yaml")
    plan = policy.tier("low").monitoring
    assert plan is not None and plan.window == "weekly" and plan.retention_days == 30
    rule = plan.rules[0]
    assert (rule.key, rule.consecutive, rule.cooldown, rule.action) == (
        "drift.feature", 2, 1, "recertify")
    assert rule.spec.threshold.max == 0.1 and rule.spec.source == "p.yaml:10"
    assert policy.tier("high").monitoring.rules[0].key == "drift.feature"


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("id: drift.feature", "id: drift.featur",
     "p.yaml:10: tiers.low.monitoring.rules[0].id: unknown monitoring rule 'drift.featur'"),
    ("metric: js,", "metrc: js,",
     "p.yaml:11: tiers.low.monitoring.rules[0].params.metrc: rule 'drift.feature' has no "
     "parameter 'metrc'"),
    ("metric: js,", "metric: kl,",
     "p.yaml:11: tiers.low.monitoring.rules[0].params.metric: rule 'drift.feature': "
     "expected one of 'psi', 'js', 'wasserstein', 'chi2', got 'kl'"),
    ("window: weekly", "window: hourly",
     "p.yaml:7: tiers.low.monitoring.window: expected 'daily', 'weekly' or 'monthly'"),
    ("consecutive: 2", "consecutive: 0",
     "p.yaml:13: tiers.low.monitoring.rules[0].consecutive: expected"),
    ("action: recertify", "action: page",
     "p.yaml:15: tiers.low.monitoring.rules[0].action: expected 'alert' or 'recertify'"),
    ("        threshold: {max: 0.1}\n", "",
     "p.yaml:10: tiers.low.monitoring.rules[0].threshold: rule 'drift.feature' needs a "
     "threshold"),
    ("        cooldown: 1\n", "        cooldwn: 1\n",
     "p.yaml:14: tiers.low.monitoring.rules[0].cooldwn: unknown field 'cooldwn'; did you "
     "mean 'cooldown'?"),
])
def test_bad_rules_name_the_line_and_what_was_expected(old: str, new: str,
                                                       expected: str) -> None:
    assert old in BASE
    with pytest.raises(PolicyError) as err:
        parse_policy(BASE.replace(old, new, 1), source="p.yaml")
    message = re.sub(r"^p\.yaml:(\d+):\d+:", r"p.yaml:\1:", str(err.value))  # the column
    assert message.startswith(expected), str(err.value)


def test_the_old_threshold_format_in_a_tier_is_a_clear_error() -> None:
    text = ('name: p\nversion: "1"\ntiers:\n  low:\n'
            '    monitoring: {interval_days: 7, psi_max: 0.1}\n')
    with pytest.raises(PolicyError, match=r"p.yaml:5:\d+: tiers.low.monitoring: 'interval_days' "
                                          r"is a threshold of the old monitoring format"):
        parse_policy(text, source="p.yaml")


def test_the_old_risk_monitoring_thresholds_still_load() -> None:
    from assay.risk.config import parse_risk

    policy = load_policy("credit-lending")
    risk = parse_risk(policy.extra_sections["risk"])
    assert risk.tier("high").monitoring["psi_max"] == 0.10


@pytest.mark.parametrize("name", shipped_policies())
def test_every_shipped_tier_watches_feature_drift_against_training(name: str) -> None:
    policy = load_policy(name)
    for tier in policy.tiers.values():
        plan = tier.monitoring
        assert plan is not None, tier.name
        drift = [r for r in plan.rules if r.spec.id == "drift.feature"]
        assert drift and drift[0].param("against") == "training", tier.name
        assert {r.spec.id for r in plan.rules} >= {
            "performance.drop", "fairness.gap", "performance.estimated", "volume.rows"}
