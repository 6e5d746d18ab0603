"""The ``workflow`` section of a policy: stages, evidence, sign-offs, waivers.

A policy may carry a top-level ``workflow`` section; when it is absent the
defaults below apply (eight stages from requirements to post-deployment
monitoring). Example::

    workflow:
      deployment_stage: deployment_approval
      approval_valid_days: {high: 365, medium: 730, low: 1095}
      waivers:
        granted_by: {high: [risk_officer], default: [risk_officer, compliance]}
        max_days: 90
      stages:
        - id: validation_performance
          title: Validation and performance
          evidence: [certification]
          independent: true          # the version's developer may not sign
          signoff:
            default: {roles: [validator]}
            high: {roles: [validator, risk_officer]}
            low: {skip: true}

For each stage and tier, ``roles`` lists the roles that must each sign the
stage (one distinct person per role) and ``approvers`` the number of distinct
people who must approve it (at least ``len(roles)``; extra approvers may hold
any of the listed roles). The high tier needs two distinct approvers at the
deployment stage; a policy that asks for fewer is refused.

``distinct_signers`` (per tier, or ``default``) is the number of different
people who must approve the stages of one submission up to and including the
deployment stage, for example ``{high: 5}``. Whatever it says, one person
signs a submission in one role only (see :mod:`assay.workflow.service`).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from assay.errors import PolicyError

TIERS = ("high", "medium", "low")

#: Roles that may appear in sign-off and waiver lists (the auditor is read-only).
SIGNING_ROLES = (
    "data_scientist",
    "validator",
    "risk_officer",
    "compliance",
    "security",
    "business_owner",
    "admin",
)


class EvidenceKind(StrEnum):
    """What a stage needs before it can be approved."""

    CERTIFICATION = "certification"  # latest certification passed, or a valid waiver
    RISK_ASSESSMENT = "risk_assessment"  # a risk assessment of the version exists
    DOCUMENTS = "documents"  # at least one document attached to the stage
    MODEL_CARD = "model_card"  # a current model card (after the latest certification/narrative)
    REPRODUCTION = "reproduction"  # the latest certification was reproduced successfully
    IMPACT_ASSESSMENT = "impact_assessment"  # an impact assessment of the version exists


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageSignoff(_Strict):
    """Who must sign one stage for one tier."""

    roles: list[str] = Field(default_factory=list)
    approvers: int | None = Field(default=None, ge=1)
    skip: bool = False

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, v: list[str]) -> list[str]:
        for role in v:
            if role not in SIGNING_ROLES:
                raise ValueError(
                    f"unknown or non-signing role '{role}'; expected one of "
                    + ", ".join(SIGNING_ROLES)
                )
        if len(set(v)) != len(v):
            raise ValueError("a role is listed twice")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> StageSignoff:
        if self.skip:
            return self
        if not self.roles:
            raise ValueError("'roles' must name at least one role (or set 'skip: true')")
        if self.approvers is not None and self.approvers < len(self.roles):
            raise ValueError(
                f"'approvers' is {self.approvers} but {len(self.roles)} roles must each sign"
            )
        return self

    @property
    def required_approvers(self) -> int:
        return 0 if self.skip else max(self.approvers or 0, len(self.roles))


class StageConfig(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str = ""
    evidence: list[EvidenceKind] = Field(default_factory=list)
    independent: bool = False
    signoff: dict[str, StageSignoff]

    @field_validator("signoff")
    @classmethod
    def _tiers(cls, v: dict[str, StageSignoff]) -> dict[str, StageSignoff]:
        for key in v:
            if key != "default" and key not in TIERS:
                raise ValueError(f"unknown tier '{key}'; expected default, " + ", ".join(TIERS))
        missing = [t for t in TIERS if t not in v] if "default" not in v else []
        if missing:
            raise ValueError("no sign-off for tier(s) " + ", ".join(missing) + " and no 'default'")
        return v

    def for_tier(self, tier: str) -> StageSignoff:
        if tier not in TIERS:
            raise PolicyError(f"unknown tier '{tier}'; expected one of " + ", ".join(TIERS))
        return self.signoff.get(tier) or self.signoff["default"]

    @property
    def label(self) -> str:
        return self.title or self.id.replace("_", " ").capitalize()


class WaiverConfig(_Strict):
    granted_by: dict[str, list[str]] = Field(
        default_factory=lambda: {"high": ["risk_officer"],
                                 "default": ["risk_officer", "compliance"]}
    )
    max_days: int = Field(default=90, ge=1, le=3650)

    @field_validator("granted_by")
    @classmethod
    def _roles(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, roles in v.items():
            if key != "default" and key not in TIERS:
                raise ValueError(f"unknown tier '{key}'; expected default, " + ", ".join(TIERS))
            for role in roles:
                if role not in SIGNING_ROLES:
                    raise ValueError(f"unknown or non-signing role '{role}'")
        return v

    def roles_for(self, tier: str) -> list[str]:
        return list(self.granted_by.get(tier, self.granted_by.get("default", [])))


def _stage(sid: str, title: str, evidence: list[str], signoff: dict[str, Any],
           independent: bool = False) -> dict[str, Any]:
    return {"id": sid, "title": title, "evidence": evidence, "signoff": signoff,
            "independent": independent}


#: The stages used when a policy has no ``workflow`` section.
DEFAULT_STAGES: list[dict[str, Any]] = [
    _stage("requirements_scope", "Requirements and scope", ["documents"],
           {"default": {"roles": ["business_owner"]},
            "high": {"roles": ["business_owner", "risk_officer"]}}),
    _stage("data_quality_governance", "Data quality and governance checks", [],
           {"default": {"roles": ["validator"]},
            "high": {"roles": ["validator", "compliance"]},
            "low": {"skip": True}}),
    _stage("development", "Development", ["documents"],
           {"default": {"roles": ["data_scientist"]}}),
    _stage("validation_performance", "Validation and performance", ["certification"],
           {"default": {"roles": ["validator"]}}, independent=True),
    _stage("fairness_risk", "Fairness and risk", ["risk_assessment"],
           {"default": {"roles": ["risk_officer"]}, "low": {"skip": True}}),
    _stage("regulatory_review", "Regulatory review", [],
           {"default": {"roles": ["compliance"]},
            "high": {"roles": ["compliance", "security"]},
            "low": {"skip": True}}),
    _stage("deployment_approval", "Deployment approval", ["certification"],
           {"low": {"roles": ["business_owner"]},
            "medium": {"roles": ["risk_officer"]},
            "high": {"roles": ["risk_officer", "business_owner"], "approvers": 2}}),
    _stage("post_deployment_monitoring", "Post-deployment monitoring", [],
           {"default": {"roles": ["validator"]}}),
]


class WorkflowConfig(_Strict):
    """The validated ``workflow`` section of a policy."""

    stages: list[StageConfig] = Field(
        default_factory=lambda: [StageConfig.model_validate(s) for s in DEFAULT_STAGES]
    )
    deployment_stage: str = "deployment_approval"
    approval_valid_days: dict[str, int] = Field(
        default_factory=lambda: {"high": 365, "medium": 730, "low": 1095}
    )
    waivers: WaiverConfig = Field(default_factory=WaiverConfig)
    #: When a newer version of a model is registered, does the approval of the
    #: older ones end? (false: the older version stays deployable until its own
    #: approval expires or changes; the new version needs its own approval.)
    new_version_revokes_approval: bool = False
    #: How many different people must approve the stages of one submission up to
    #: and including the deployment stage, per tier (``default`` for the others;
    #: 1 when not given: then only the stages' own rules apply).
    distinct_signers: dict[str, int] = Field(default_factory=dict)
    #: Per tier (``default`` for the others): must the certification a stage or the
    #: gate rests on have been recorded with a signed attestation (DSSE envelope
    #: verified against a trusted key)? False when not given.
    require_signed_certification: dict[str, bool] = Field(default_factory=dict)

    @field_validator("require_signed_certification")
    @classmethod
    def _signed_tiers(cls, v: dict[str, bool]) -> dict[str, bool]:
        for key in v:
            if key != "default" and key not in TIERS:
                raise ValueError(f"unknown tier '{key}'; expected default, " + ", ".join(TIERS))
        return v

    @field_validator("distinct_signers")
    @classmethod
    def _signers(cls, v: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        for key, n in v.items():
            if key != "default" and key not in TIERS:
                raise ValueError(f"unknown tier '{key}'; expected default, " + ", ".join(TIERS))
            if n < 1:
                raise ValueError(f"tier '{key}': expected a number of people of at least 1, "
                                 f"got {n}")
        stages = info.data.get("stages")
        deployment = info.data.get("deployment_stage")
        if not stages or deployment not in [s.id for s in stages]:
            return v  # reported by the checks of those fields
        for tier in TIERS:
            n = v.get(tier, v.get("default", 1))
            slots = signoff_slots(stages, deployment, tier)
            if n > slots:
                raise ValueError(
                    f"tier '{tier}' needs {n} different signers but its stages up to "
                    f"'{deployment}' have only {slots} sign-off slot(s); lower the number "
                    "or add approvers to the stages")
        return v

    @field_validator("approval_valid_days")
    @classmethod
    def _days(cls, v: dict[str, int]) -> dict[str, int]:
        for key, days in v.items():
            if key != "default" and key not in TIERS:
                raise ValueError(f"unknown tier '{key}'; expected default, " + ", ".join(TIERS))
            if days < 1:
                raise ValueError(f"tier '{key}': approval validity must be at least 1 day")
        return v

    @model_validator(mode="after")
    def _check(self) -> WorkflowConfig:
        ids = [s.id for s in self.stages]
        if not ids:
            raise ValueError("'stages' must list at least one stage")
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError("stage(s) listed twice: " + ", ".join(dupes))
        if self.deployment_stage not in ids:
            raise ValueError(
                f"deployment_stage '{self.deployment_stage}' is not one of the stages "
                + ", ".join(ids)
            )
        dep = self.stage(self.deployment_stage)
        high = dep.for_tier("high")
        if high.skip or high.required_approvers < 2:
            raise ValueError(
                f"stage '{dep.id}' must need at least two distinct approvers for the high tier"
            )
        return self

    def stage(self, stage_id: str) -> StageConfig:
        for s in self.stages:
            if s.id == stage_id:
                return s
        raise PolicyError(
            f"unknown stage '{stage_id}'; expected one of " + ", ".join(s.id for s in self.stages)
        )

    def signers_for(self, tier: str) -> int:
        """Different people who must approve a submission of ``tier`` (at least 1)."""
        return self.distinct_signers.get(tier, self.distinct_signers.get("default", 1))

    def signed_certification_required(self, tier: str) -> bool:
        return self.require_signed_certification.get(
            tier, self.require_signed_certification.get("default", False))

    def valid_days(self, tier: str) -> int:
        return self.approval_valid_days.get(tier, self.approval_valid_days.get("default", 365))


def signoff_slots(stages: list[StageConfig], deployment_stage: str, tier: str) -> int:
    """Approver slots of the stages up to and including the deployment stage for one
    tier: the most different people who can approve one submission."""
    total = 0
    for stage in stages:
        total += stage.for_tier(tier).required_approvers
        if stage.id == deployment_stage:
            break
    return total


def parse_workflow(section: Any, *, source: str = "policy",
                   where: Callable[..., str] | None = None) -> WorkflowConfig:
    """Validate a raw ``workflow`` section (``None`` gives the defaults).

    Errors name the policy source (with the line when ``where(*path)`` can
    give ``file.yaml:LINE``) and the field path, e.g.
    ``credit-lending.yaml:88: workflow.stages.3.signoff.high.roles: ...``.
    """
    if section is None:
        return WorkflowConfig()
    if not isinstance(section, dict):
        raise PolicyError(f"{source}: 'workflow' must be a mapping, got {type(section).__name__}")
    try:
        return WorkflowConfig.model_validate(section)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ("workflow", *err["loc"])
        loc = ".".join(str(p) for p in path)
        msg = err["msg"].removeprefix("Value error, ")
        at = where(*path) if where is not None else source
        raise PolicyError(f"{at}: {loc}: {msg}") from None
