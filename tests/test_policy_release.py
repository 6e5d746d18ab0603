"""The ``release:`` section of a policy tier: validated at load with the file and line
of the entry, inherited through ``extends``, present in both shipped policies."""

from __future__ import annotations

import pytest

from assay.errors import PolicyError
from assay.policy import load_policy, parse_policy
from assay.policy.release import DEFAULT_PLAN

HEAD = """\
name: rel
version: "1"
tiers:
  high:
    checks: []
    release:
"""


def load(release: str) -> object:
    return parse_policy(HEAD + release, source="rel.yaml")


def test_a_valid_release_section_and_its_inheritance():
    pol = load("""\
      environments: [production, eu-prod]
      min_rows: 300
      test: significant_worsening
      promote_if:
      - metric: roc_auc
        not_worse_than: 0.01
      - metric: tpr_gap
        sensitive: sex
        not_worse_than: 0.02
        alpha: 0.1
  medium:
    extends: high
  low:
    checks: []
""")
    plan = pol.tier("high").release
    assert plan.environments == ("production", "eu-prod") and plan.min_rows == 300
    assert plan.test == "significant_worsening" and plan.independent_full
    assert [(r.metric, r.margin, r.alpha, r.sensitive) for r in plan.promote_if] == [
        ("roc_auc", 0.01, 0.05, None), ("tpr_gap", 0.02, 0.1, "sex")]
    assert plan.promote_if[1].source == "rel.yaml:13"
    assert pol.tier("medium").release == plan
    assert pol.tier("low").release == DEFAULT_PLAN


@pytest.mark.parametrize("release,message", [
    ("      promote_if:\n      - metric: auc_roc\n        not_worse_than: 0.01\n",
     "rel.yaml:8: tiers.high.release.promote_if[0].metric: unknown release metric 'auc_roc'"),
    ("      promote_if:\n      - metric: tpr_gap\n        not_worse_than: 0.01\n",
     "rel.yaml:8: tiers.high.release.promote_if[0]: 'tpr_gap' is a gap between groups: name "
     "the protected attribute with 'sensitive: COLUMN'"),
    ("      promote_if:\n      - metric: accuracy\n        sensitive: sex\n"
     "        not_worse_than: 0.01\n",
     "rel.yaml:9: tiers.high.release.promote_if[0].sensitive: 'accuracy' is an overall metric"),
    ("      promote_if:\n      - metric: accuracy\n        not_worse_than: 2\n",
     "rel.yaml:9"),
    ("      promote_if:\n      - metric: accuracy\n", "rel.yaml:8"),
    ("      environments: [production, Prod EU]\n",
     "rel.yaml:7: tiers.high.release.environments[1]: expected an environment name"),
    ("      environments: [production, production]\n",
     "rel.yaml:7: tiers.high.release.environments[1]: environment 'production' is already "
     "listed at environments[0]"),
    ("      promot_if: []\n", "rel.yaml:7"),
    ("      test: lenient\n", "rel.yaml:7"),
    ("      min_rows: 0\n", "rel.yaml:7"),
    ("      - production\n", "rel.yaml:6:5: tiers.high.release: expected a mapping"),
    ("      promote_if:\n      - metric: accuracy\n        not_worse_than: 0.01\n"
     "      - metric: accuracy\n        not_worse_than: 0.02\n",
     "rel.yaml:10: tiers.high.release.promote_if[1]: 'accuracy' is listed twice"),
])
def test_bad_release_sections_name_file_line_and_field(release, message):
    with pytest.raises(PolicyError) as err:
        load(release)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_release_key_suggests_the_right_one():
    with pytest.raises(PolicyError,
                       match=r"unknown field 'promot_if'; did you mean 'promote_if'\?"):
        load("      promot_if: []\n")


@pytest.mark.parametrize("name", ["default", "credit-lending"])
def test_shipped_policies_have_a_release_rule_in_every_tier(name):
    pol = load_policy(name)
    for tier in pol.tiers.values():
        plan = tier.release
        assert plan is not DEFAULT_PLAN and plan.promote_if, tier.name
        assert "roc_auc" in [r.metric for r in plan.promote_if]
    assert pol.tier("high").release.require_comparison
    assert pol.tier("high").release.independent_full


def test_policy_show_lists_the_release_rule(capsys):
    from test_workflow_cli import ok

    out = ok(capsys, "policy", "show", "credit-lending", "--tier", "high")
    rule = out.split("tier high: release")[1]
    assert "someone other than the developer" in rule
    assert "at least 2000; a comparison is required" in rule
    for metric, margin in (("roc_auc", 0.01), ("accuracy", 0.015), ("recall", 0.02)):
        assert f"promote if {metric}" in rule and f"not worse than {margin:g} (alpha 0.05)" \
            in rule
