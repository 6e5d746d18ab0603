"""The policies shipped with assay: valid against the check registry, and saying why."""

from __future__ import annotations

import pytest

from assay.checks.base import JudgeOn
from assay.errors import PolicyError
from assay.policy import load_check_modules, load_policy, shipped_policies


def test_both_policies_are_shipped() -> None:
    assert {"default", "credit-lending"} <= set(shipped_policies())


@pytest.mark.parametrize("name", ["default", "credit-lending"])
def test_shipped_policy_is_valid_against_the_registry(name: str) -> None:
    registry = load_check_modules()
    p = load_policy(name)
    assert p.path is not None and p.path.name == f"{name}.yaml"
    assert {"high", "medium", "low"} <= set(p.tiers)
    families = set()
    for tier in p.tiers.values():
        assert tier.checks, f"tier {tier.name} has no checks"
        assert tier.review_interval_days
        for spec in tier.checks:
            defn = registry[spec.id]  # a KeyError here is a check that does not exist
            assert set(spec.params) <= set(defn.params), spec.id
            assert spec.rationale.strip(), f"{name}:{spec.source}: {spec.id} has no rationale"
            assert spec.source and spec.source.startswith(f"{name}.yaml:")
            families.add(defn.family)
    assert {"integrity", "performance", "fairness", "drift", "robustness"} <= families


def test_default_covers_every_family_in_high_tier() -> None:
    registry = load_check_modules()
    high = load_policy("default").tier("high")
    families = {registry[s.id].family for s in high.checks}
    assert {"integrity", "performance", "fairness", "drift", "robustness"} <= families
    assert any(s.judge_on is JudgeOn.INTERVAL for s in high.checks
               if registry[s.id].family == "fairness")


def test_credit_lending_is_stricter_and_cites_regulations() -> None:
    p = load_policy("credit-lending")
    high = p.tier("high")
    regs = " ".join(r for s in high.checks for r in s.regulations)
    for ref in ("EU AI Act Art. 10", "EU AI Act Art. 15", "NIST AI RMF MEASURE 2.11",
                "SR 26-2", "ECOA"):
        assert ref in regs, ref
    assert "SR 11-7" not in regs  # superseded by SR 26-2 in April 2026
    four_fifths = [s for s in high.checks if s.threshold is not None and s.threshold.min == 0.8
                   and s.judge_on is JudgeOn.INTERVAL]
    assert four_fifths, "the four-fifths rule is judged on the interval"
    assert p.settings.min_group_size >= load_policy("default").settings.min_group_size


def test_missing_policy_file_or_name() -> None:
    with pytest.raises(PolicyError) as info:
        load_policy("no/such/policy.yaml")
    assert "no such file" in str(info.value)
    with pytest.raises(PolicyError) as info:
        load_policy("defualt")
    assert "did you mean 'default'" in str(info.value)


@pytest.mark.parametrize("name", ["default", "credit-lending"])
def test_tiers_tighten_from_low_to_high(name: str) -> None:
    p = load_policy(name)
    n = {t: len(p.tier(t).checks) for t in ("low", "medium", "high")}
    assert n["low"] < n["medium"] < n["high"]
    days = [p.tier(t).review_interval_days for t in ("high", "medium", "low")]
    assert days == sorted(days)
    auc = {t: next(s.threshold.min for s in p.tier(t).checks if s.id == "performance.roc_auc")
           for t in ("low", "medium", "high")}
    assert auc["low"] < auc["medium"] < auc["high"]


def test_shipped_policy_names_resolve_with_suffix_too() -> None:
    assert load_policy("default.yaml").name == "default"
