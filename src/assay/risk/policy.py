"""Read what risk needs from a policy, and what a tier sets.

Risk depends only on a policy's name, version, digest, its ``risk`` and
``workflow`` sections, and the check ids and review interval of each tier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import PolicyError
from assay.risk.config import TIERS, RiskConfig, parse_risk


@dataclass(frozen=True)
class RiskPolicy:
    """The parts of a policy risk tiering uses."""

    name: str
    version: str
    digest: str  # "sha256:<hex>" of the policy file
    risk: RiskConfig
    source: str
    checks: dict[str, list[str]] = field(default_factory=dict)  # tier -> check ids
    sections: dict[str, Any] = field(default_factory=dict)  # raw workflow / monitoring sections
    path: str | None = None  # the policy file, kept as evidence by an assessment


def _digest(value: str) -> str:
    return value if value.startswith("sha256:") else f"sha256:{value}"


def _from_policy_object(policy: Any, fallback_name: str) -> RiskPolicy:
    extra = dict(getattr(policy, "extra_sections", None) or {})
    source = str(getattr(policy, "source", None) or fallback_name)
    where = getattr(policy, "where", None)
    raw_risk = extra.get("risk")
    config = parse_risk(raw_risk, source=source, where=where)
    checks: dict[str, list[str]] = {}
    review: dict[str, int] = {}
    for tier in TIERS:
        found = getattr(policy, "tiers", {}).get(tier)
        if found is None:  # a policy need not define every tier
            continue
        checks[tier] = list(dict.fromkeys(str(s.id) for s in found.checks))  # once each
        days = getattr(found, "review_interval_days", None)
        if days is None:
            continue
        raw_tiers = raw_risk.get("tiers") if isinstance(raw_risk, dict) else None
        raw_tier = raw_tiers.get(tier) if isinstance(raw_tiers, dict) else None
        explicit = raw_tier.get("review_interval_days") if isinstance(raw_tier, dict) else None
        if explicit is not None and int(explicit) != int(days):
            at = where("risk", "tiers", tier, "review_interval_days") if where else source
            raise PolicyError(
                f"{at}: risk.tiers.{tier}.review_interval_days is {explicit} but "
                f"tiers.{tier}.review_interval_days is {days}; give it in one place"
            )
        review[tier] = int(days)
    config = _resolve_questionnaire(config, policy, source, where)
    if review:
        tiers = {t: (s.model_copy(update={"review_interval_days": review[t]}) if t in review
                     else s) for t, s in config.tiers.items()}
        config = config.model_copy(update={"tiers": tiers})
    return RiskPolicy(
        name=str(policy.name),
        version=str(policy.version),
        digest=_digest(str(policy.sha256)),
        risk=config,
        source=source,
        checks=checks,
        sections={k: extra[k] for k in ("workflow", "monitoring") if k in extra},
        path=str(policy.path) if getattr(policy, "path", None) else None,
    )


def _resolve_questionnaire(config: RiskConfig, policy: Any, source: str,
                           where: Any) -> RiskConfig:
    """A shipped questionnaire name stays; a file is found next to the policy file."""
    from assay.risk.questionnaire import SHIPPED_DIR, shipped_questionnaires

    name = config.questionnaire
    if (SHIPPED_DIR / f"{name}.yaml").is_file():
        return config
    path = Path(name)
    base = getattr(policy, "path", None)
    if not path.is_absolute() and base is not None:
        path = Path(base).parent / path
    if path.is_file():
        return config.model_copy(update={"questionnaire": str(path.resolve())})
    at = where("risk", "questionnaire") if where else source
    raise PolicyError(f"{at}: risk.questionnaire: '{name}' is neither a shipped questionnaire ("
                      + ", ".join(shipped_questionnaires())
                      + ") nor a file next to the policy")


def load_risk_policy(policy: Any = "default") -> RiskPolicy:
    """A :class:`RiskPolicy` from a shipped name, a path, or a loaded :class:`Policy`."""
    if isinstance(policy, RiskPolicy):
        return policy
    from assay.policy import load_policy

    return _from_policy_object(load_policy(policy), str(policy))


def tier_requirements(policy: Any, tier: str) -> dict[str, Any]:
    """What a tier sets: checks certification requires, sign-off roles, review interval, monitoring.

    ``signoff_roles`` maps each workflow stage that is not skipped for this
    tier to the roles that must sign it (from the policy's ``workflow``
    section, or the workflow defaults when it has none); ``signoff_approvers``
    to the number of distinct people who must approve it (at least one per
    role, more when the policy asks for extra approvers); ``signoff_people``
    the number of different people who must sign one submission
    (``workflow.distinct_signers``; 1 when the policy sets none).
    """
    rp = load_risk_policy(policy)
    if tier not in TIERS:
        raise PolicyError(f"{rp.source}: unknown tier '{tier}'; expected high, medium or low")
    settings = rp.risk.tier(tier)
    signoff: dict[str, list[str]] = {}
    approvers: dict[str, int] = {}
    people = 1
    try:
        from assay.workflow.config import parse_workflow
    except ImportError:  # the workflow package is optional for risk
        parse_workflow = None  # type: ignore[assignment]
    if parse_workflow is not None:
        wf = parse_workflow(rp.sections.get("workflow"), source=rp.source)
        for stage in wf.stages:
            s = stage.for_tier(tier)
            if not s.skip:
                signoff[stage.id] = list(s.roles)
                approvers[stage.id] = max(int(s.approvers or 0), len(s.roles))
        people = wf.signers_for(tier)
    return {
        "checks": list(rp.checks.get(tier, [])),
        "signoff_roles": signoff,
        "signoff_approvers": approvers,
        "signoff_people": people,
        "review_interval_days": settings.review_interval_days,
        "monitoring": dict(settings.monitoring),
    }
