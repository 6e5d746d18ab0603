"""The policy ``workflow`` section: defaults, validation, per-tier resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from assay.errors import PolicyError
from assay.workflow.config import DEFAULT_STAGES, WorkflowConfig, parse_workflow
from assay.workflow.policy import SHIPPED, load_policy_info

DEFAULT_IDS = [
    "requirements_scope",
    "data_quality_governance",
    "development",
    "validation_performance",
    "fairness_risk",
    "regulatory_review",
    "deployment_approval",
    "post_deployment_monitoring",
]


def test_defaults_have_the_eight_stages_in_order():
    wf = parse_workflow(None)
    assert [s.id for s in wf.stages] == DEFAULT_IDS
    assert wf.deployment_stage == "deployment_approval"
    assert len(DEFAULT_STAGES) == 8


def test_high_tier_needs_two_distinct_approvers_at_deployment():
    wf = WorkflowConfig()
    dep = wf.stage("deployment_approval")
    assert dep.for_tier("high").required_approvers == 2
    assert dep.for_tier("medium").required_approvers == 1
    assert wf.stage("validation_performance").independent is True
    assert wf.stage("validation_performance").for_tier("low").roles == ["validator"]
    assert wf.stage("regulatory_review").for_tier("low").skip is True
    assert wf.stage("regulatory_review").for_tier("high").roles == ["compliance", "security"]


def _one_stage(signoff: dict) -> dict:
    return {"stages": [{"id": "deployment_approval", "signoff": signoff}]}


def test_policy_asking_one_approver_for_high_is_refused():
    with pytest.raises(PolicyError, match="two distinct approvers"):
        parse_workflow(_one_stage({"default": {"roles": ["risk_officer"]}}), source="p.yaml")


def test_custom_section_resolves_tiers_and_approvers():
    wf = parse_workflow({
        "approval_valid_days": {"default": 180},
        "waivers": {"granted_by": {"default": ["compliance"]}, "max_days": 30},
        "stages": [
            {"id": "validation_performance", "evidence": ["certification"], "independent": True,
             "signoff": {"default": {"roles": ["validator"]}, "low": {"skip": True}}},
            {"id": "deployment_approval", "evidence": ["certification"],
             "signoff": {"default": {"roles": ["risk_officer"], "approvers": 2}}},
        ],
    })
    assert wf.valid_days("high") == 180
    assert wf.waivers.roles_for("high") == ["compliance"]
    assert wf.stage("validation_performance").for_tier("low").required_approvers == 0
    assert wf.stage("deployment_approval").for_tier("low").required_approvers == 2


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (_one_stage({"default": {"roles": ["auditor"]}}),
         "workflow.stages.0.signoff.default.roles: unknown or non-signing role 'auditor'"),
        (_one_stage({"default": {"roles": ["validator"], "approvers": 0}}),
         "workflow.stages.0.signoff.default.approvers"),
        (_one_stage({"default": {"roles": ["validator", "risk_officer"], "approvers": 1}}),
         "'approvers' is 1 but 2 roles must each sign"),
        (_one_stage({"high": {"roles": ["validator"], "approvers": 2}}),
         "no sign-off for tier(s) medium, low and no 'default'"),
        (_one_stage({"extreme": {"roles": ["validator"]}}), "unknown tier 'extreme'"),
        (_one_stage({"default": {"roles": []}}), "must name at least one role"),
        ({"stages": [{"id": "a", "signoff": {"default": {"roles": ["validator"]}}}]},
         "deployment_stage 'deployment_approval' is not one of the stages a"),
        ({"stages": [{"id": "x", "signoff": {"default": {"roles": ["validator"]}},
                      "evidence": ["vibes"]}]}, "workflow.stages.0.evidence.0"),
        ({"stagez": []}, "workflow.stagez: Extra inputs are not permitted"),
        ({"approval_valid_days": {"high": 0}}, "approval validity must be at least 1 day"),
        ({"stages": [{"id": "deployment_approval",
                      "signoff": {"default": {"roles": ["risk_officer"], "approvers": 2}}}] * 2},
         "stage(s) listed twice: deployment_approval"),
    ],
)
def test_bad_sections_name_the_source_and_field(section, expected):
    with pytest.raises(PolicyError) as info:
        parse_workflow(section, source="credit.yaml")
    msg = str(info.value)
    assert msg.startswith("credit.yaml: workflow")
    assert expected in msg
    assert "\n" not in msg


def test_section_must_be_a_mapping():
    with pytest.raises(PolicyError, match="'workflow' must be a mapping, got list"):
        parse_workflow(["a"], source="p.yaml")


def test_unknown_stage_lookup_lists_stages():
    with pytest.raises(PolicyError, match="unknown stage 'deploy'; expected one of requirements"):
        WorkflowConfig().stage("deploy")


def test_policy_file_by_path_gives_digest_and_section(tmp_path: Path):
    doc = {"name": "mine", "version": "3", "tiers": {"high": {}, "medium": {}, "low": {}},
           "workflow": {
        "stages": [{"id": "deployment_approval",
                    "signoff": {"default": {"roles": ["risk_officer", "business_owner"]}}}]}}
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump(doc))
    info = load_policy_info(str(p))
    assert info.name == "mine"
    assert info.version == "3"
    assert info.digest.startswith("sha256:") and len(info.digest) == 71
    assert [s.id for s in info.workflow.stages] == ["deployment_approval"]


def test_missing_policy_is_a_policy_error(tmp_path: Path):
    with pytest.raises(PolicyError, match="nope"):
        load_policy_info(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize("name", ["default", "credit-lending"])
def test_shipped_policies_have_a_valid_workflow_section(name):
    path = SHIPPED / f"{name}.yaml"
    doc = yaml.safe_load(path.read_text())
    assert "workflow" in doc, f"{name}.yaml has no workflow section"
    wf = parse_workflow(doc["workflow"], source=str(path))
    assert wf.stage(wf.deployment_stage).for_tier("high").required_approvers >= 2


def test_policy_file_error_names_the_line(tmp_path: Path):
    doc = {"name": "mine", "version": "1", "tiers": {"high": {}, "medium": {}, "low": {}},
           "workflow": {"stages": [
               {"id": "deployment_approval",
                "signoff": {"default": {"roles": ["risk_officer", "business_owner"]},
                            "low": {"roles": ["auditor"]}}}]}}
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    lines = p.read_text().splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "auditor" in t)
    with pytest.raises(PolicyError) as info:
        load_policy_info(str(p))
    msg = str(info.value)
    assert "workflow.stages.0.signoff.low.roles" in msg
    assert f"mine.yaml:{line - 1}" in msg or f"mine.yaml:{line}" in msg


def test_shipped_default_policy_spells_out_the_built_in_defaults():
    assert load_policy_info("default").workflow == WorkflowConfig()


def test_credit_lending_is_stricter_than_default():
    credit = load_policy_info("credit-lending").workflow
    assert credit.stage("deployment_approval").for_tier("high").required_approvers == 3
    assert not credit.stage("regulatory_review").for_tier("low").skip
    assert credit.waivers.max_days < WorkflowConfig().waivers.max_days


def test_public_names_stay_functions_after_every_workflow_module_is_imported():
    """The functions live in modules by concept; a module named like a public
    function (``gate``, ``review``...) would replace it on ``assay.workflow``."""
    import importlib
    import pkgutil
    import types

    import assay.workflow as pkg
    from assay.workflow import service

    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"assay.workflow.{mod.name}")
    for name in pkg.__all__:
        obj = getattr(pkg, name)
        assert not isinstance(obj, types.ModuleType), name
        if hasattr(service, name):
            assert obj is getattr(service, name), name
    for name in service.__all__:
        assert getattr(service, name) is not None
